//! The discipline of the priority and fairness queue in front of the scheduler: which waiting
//! request goes next, which one is shed when the queue is full, and the recent usage of each
//! user that fairness compares.
//!
//! - Priority is strict: a request of a higher priority always goes before a lower one
//!   (InferenceObjective `priority`, higher first, negatives allowed).
//! - Within one priority, the user with the least recent weighted usage goes first
//!   ([`Usage::score`]: Kthena's `tokenWeight × tokens + requestNumWeight × requests` over a
//!   sliding window), ties broken by the earlier arrival.
//! - Each user's requests leave in the order they came (FIFO per user, Kthena issue #1771):
//!   only the oldest waiting request of a user is ever compared, and the score is read when
//!   the choice is made, not frozen at arrival.
//! - A full queue sheds from its lowest priority: the newest request of the user with the
//!   most requests waiting there; a request no higher than that lowest priority is refused
//!   instead.
//!
//! Time is a millisecond clock passed in; nothing here reads a clock or locks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Kthena's fairness weights (`FAIRNESS_*_WEIGHT`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of a prompt token (`FAIRNESS_INPUT_TOKEN_WEIGHT`, default 1).
    pub input: f64,
    /// Weight of a generated token (`FAIRNESS_OUTPUT_TOKEN_WEIGHT`, default 2).
    pub output: f64,
    /// Weight of the weighted tokens in the score (`FAIRNESS_PRIORITY_TOKEN_WEIGHT`, default 1).
    pub token: f64,
    /// Weight of the request count in the score (`FAIRNESS_PRIORITY_REQUEST_NUM_WEIGHT`,
    /// default 0).
    pub request_num: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            input: 1.0,
            output: 2.0,
            token: 1.0,
            request_num: 0.0,
        }
    }
}

/// Buckets a window is cut into: usage older than the window leaves one bucket at a time.
const BUCKETS: u64 = 60;

/// Recent usage of each user over a sliding window, in buckets of a sixtieth of it (so a
/// user costs at most 61 buckets of memory, whatever its traffic).
#[derive(Debug, Clone)]
pub struct Usage {
    window_ms: u64,
    bucket_ms: u64,
    users: HashMap<Arc<str>, UserUsage>,
    last_sweep: u64,
}

#[derive(Debug, Clone, Default)]
struct UserUsage {
    /// (bucket start, weighted tokens, requests), oldest first.
    buckets: VecDeque<(u64, f64, u64)>,
    tokens: f64,
    requests: u64,
}

impl UserUsage {
    fn expire(&mut self, now: u64, window_ms: u64) {
        while let Some(&(start, tokens, requests)) = self.buckets.front() {
            if start.saturating_add(window_ms) > now {
                break;
            }
            self.buckets.pop_front();
            self.tokens -= tokens;
            self.requests -= requests;
        }
        if self.buckets.is_empty() {
            self.tokens = 0.0;
        }
    }
}

impl Usage {
    /// Usage counted over the last `window` (`FAIRNESS_WINDOW_SIZE`; at least 1 ms).
    pub fn new(window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        Self {
            window_ms,
            bucket_ms: (window_ms / BUCKETS).max(1),
            users: HashMap::new(),
            last_sweep: 0,
        }
    }

    /// Charges `user` one request of `input` prompt and `output` generated tokens at `now`.
    pub fn charge(&mut self, user: &str, now: u64, input: u64, output: u64, w: &Weights) {
        self.sweep(now);
        let tokens = input as f64 * w.input + output as f64 * w.output;
        let start = now - now % self.bucket_ms;
        let u = match self.users.get_mut(user) {
            Some(u) => u,
            None => self.users.entry(Arc::from(user)).or_default(),
        };
        u.expire(now, self.window_ms);
        match u.buckets.back_mut() {
            Some(b) if b.0 == start => {
                b.1 += tokens;
                b.2 += 1;
            }
            _ => u.buckets.push_back((start, tokens, 1)),
        }
        u.tokens += tokens;
        u.requests += 1;
    }

    /// The weighted tokens `user` was charged within the window before `now`.
    pub fn tokens(&mut self, user: &str, now: u64) -> f64 {
        self.user(user, now).map_or(0.0, |u| u.tokens)
    }

    /// `user`'s fairness score at `now`: `token × tokens + request_num × requests` over the
    /// window; lower goes first.
    pub fn score(&mut self, user: &str, now: u64, w: &Weights) -> f64 {
        self.user(user, now).map_or(0.0, |u| {
            w.token * u.tokens + w.request_num * u.requests as f64
        })
    }

    /// Users with usage in the window (the last sweep may keep expired ones a bucket longer).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    fn user(&mut self, user: &str, now: u64) -> Option<&UserUsage> {
        let window = self.window_ms;
        let u = self.users.get_mut(user)?;
        u.expire(now, window);
        Some(u)
    }

    /// Forgets users whose usage left the window, once per bucket.
    fn sweep(&mut self, now: u64) {
        if now.saturating_sub(self.last_sweep) < self.bucket_ms {
            return;
        }
        self.last_sweep = now;
        let window = self.window_ms;
        self.users.retain(|_, u| {
            u.expire(now, window);
            !u.buckets.is_empty()
        });
    }
}

/// A waiting request's place, to take it out when it gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Its priority.
    pub priority: i32,
    /// Its user.
    pub user: Arc<str>,
    /// Its arrival order in the queue.
    pub seq: u64,
}

/// What [`Discipline::push`] did with a request.
#[derive(Debug)]
pub enum Pushed<T> {
    /// Queued; the queue was full and `shed` (a lower priority's) was taken out for it.
    Queued {
        /// The new request's place.
        ticket: Ticket,
        /// The request shed to make room, with its place.
        shed: Option<(Ticket, T)>,
    },
    /// Refused: the queue is full of requests of its priority or higher.
    Refused(T),
}

/// The waiting requests: per priority, per user, oldest first.
#[derive(Debug)]
pub struct Discipline<T> {
    bands: BTreeMap<i32, Band<T>>,
    len: usize,
    next_seq: u64,
}

#[derive(Debug)]
struct Band<T> {
    users: HashMap<Arc<str>, VecDeque<(u64, T)>>,
    len: usize,
}

impl<T> Default for Band<T> {
    fn default() -> Self {
        Self {
            users: HashMap::new(),
            len: 0,
        }
    }
}

impl<T> Default for Discipline<T> {
    fn default() -> Self {
        Self {
            bands: BTreeMap::new(),
            len: 0,
            next_seq: 0,
        }
    }
}

impl<T> Discipline<T> {
    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Requests waiting at `priority`.
    pub fn len_at(&self, priority: i32) -> usize {
        self.bands.get(&priority).map_or(0, |b| b.len)
    }

    /// Queues `item` of `user` at `priority`. With `max` or more already waiting, a request
    /// of the lowest priority below `priority` is shed for it (the newest of the user with
    /// the most waiting there); when there is none, `item` is refused.
    pub fn push(&mut self, priority: i32, user: &str, item: T, max: usize) -> Pushed<T> {
        let mut shed = None;
        if self.len >= max {
            let lowest = self.bands.keys().next().copied();
            match lowest {
                Some(lowest) if lowest < priority => shed = self.shed_from(lowest),
                _ => return Pushed::Refused(item),
            }
            if shed.is_none() {
                return Pushed::Refused(item);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let band = self.bands.entry(priority).or_default();
        let user: Arc<str> = match band.users.get_key_value(user) {
            Some((k, _)) => k.clone(),
            None => Arc::from(user),
        };
        band.users
            .entry(user.clone())
            .or_default()
            .push_back((seq, item));
        band.len += 1;
        self.len += 1;
        Pushed::Queued {
            ticket: Ticket {
                priority,
                user,
                seq,
            },
            shed,
        }
    }

    /// Takes out the request at `ticket`, when it still waits.
    pub fn remove(&mut self, ticket: &Ticket) -> Option<T> {
        let band = self.bands.get_mut(&ticket.priority)?;
        let queue = band.users.get_mut(&ticket.user)?;
        let i = queue.binary_search_by_key(&ticket.seq, |e| e.0).ok()?;
        let (_, item) = queue.remove(i)?;
        if queue.is_empty() {
            band.users.remove(&ticket.user);
        }
        self.took(ticket.priority);
        Some(item)
    }

    /// Takes out the next request: the highest priority's, of the user with the lowest
    /// `score` there (the earlier arrival on a tie), that user's oldest.
    pub fn pop(&mut self, mut score: impl FnMut(&str) -> f64) -> Option<(Ticket, T)> {
        let (&priority, band) = self.bands.iter_mut().next_back()?;
        let mut best: Option<(f64, u64, &Arc<str>)> = None;
        for (user, queue) in &band.users {
            let Some(&(seq, _)) = queue.front() else {
                continue;
            };
            let s = score(user);
            let better = match best {
                None => true,
                Some((bs, bseq, _)) => s < bs || (s == bs && seq < bseq),
            };
            if better {
                best = Some((s, seq, user));
            }
        }
        let user = best?.2.clone();
        let queue = band.users.get_mut(&user)?;
        let (seq, item) = queue.pop_front()?;
        if queue.is_empty() {
            band.users.remove(&user);
        }
        self.took(priority);
        Some((
            Ticket {
                priority,
                user,
                seq,
            },
            item,
        ))
    }

    /// The newest request of the user with the most waiting at `priority`.
    fn shed_from(&mut self, priority: i32) -> Option<(Ticket, T)> {
        let band = self.bands.get_mut(&priority)?;
        let user = band
            .users
            .iter()
            .max_by_key(|(_, q)| (q.len(), q.back().map(|e| e.0)))
            .map(|(u, _)| u.clone())?;
        let queue = band.users.get_mut(&user)?;
        let (seq, item) = queue.pop_back()?;
        if queue.is_empty() {
            band.users.remove(&user);
        }
        self.took(priority);
        Some((
            Ticket {
                priority,
                user,
                seq,
            },
            item,
        ))
    }

    fn took(&mut self, priority: i32) {
        self.len -= 1;
        if let Some(band) = self.bands.get_mut(&priority) {
            band.len -= 1;
            if band.len == 0 {
                self.bands.remove(&priority);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops everything, scoring users by `scores` (0 for others); returns the items.
    fn drain(d: &mut Discipline<&'static str>, scores: &[(&str, f64)]) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some((_, item)) = d.pop(|u| {
            scores
                .iter()
                .find(|(n, _)| *n == u)
                .map_or(0.0, |(_, s)| *s)
        }) {
            out.push(item);
        }
        out
    }

    fn queued<T: std::fmt::Debug>(p: Pushed<T>) -> Ticket {
        match p {
            Pushed::Queued { ticket, shed: None } => ticket,
            other => panic!("expected queued without shedding, got {other:?}"),
        }
    }

    #[test]
    fn a_higher_priority_always_goes_first_whatever_the_usage() {
        let mut d = Discipline::default();
        queued(d.push(0, "light", "standard-1", 10));
        queued(d.push(-1, "light", "sheddable", 10));
        queued(d.push(5, "heavy", "critical", 10));
        queued(d.push(0, "light", "standard-2", 10));
        // The heavy user's critical request beats a user with no usage at all.
        let order = drain(&mut d, &[("heavy", 1e9)]);
        assert_eq!(order, ["critical", "standard-1", "standard-2", "sheddable"]);
        assert!(d.is_empty());
    }

    #[test]
    fn each_users_requests_leave_in_arrival_order_even_when_scores_change() {
        let mut d = Discipline::default();
        for item in ["a1", "a2", "a3"] {
            queued(d.push(0, "a", item, 10));
        }
        for item in ["b1", "b2"] {
            queued(d.push(0, "b", item, 10));
        }
        // Scores that flip at every call: whoever is picked, it is that user's oldest.
        let mut calls = 0.0;
        let mut order = Vec::new();
        while let Some((t, item)) = d.pop(|u| {
            calls += 1.0;
            if u == "a" { calls } else { 100.0 - calls }
        }) {
            order.push((t.user.to_string(), item));
        }
        let of = |u: &str| -> Vec<&str> {
            order
                .iter()
                .filter(|(n, _)| n == u)
                .map(|(_, i)| *i)
                .collect()
        };
        assert_eq!(of("a"), ["a1", "a2", "a3"]);
        assert_eq!(of("b"), ["b1", "b2"]);
    }

    #[test]
    fn within_a_priority_the_user_with_fewer_recent_weighted_tokens_goes_first() {
        let w = Weights::default();
        let mut usage = Usage::new(Duration::from_secs(3600));
        // 100 prompt tokens (weight 1) against 60 generated ones (weight 2): 100 < 120.
        usage.charge("prompt-heavy", 1_000, 100, 0, &w);
        usage.charge("output-heavy", 1_000, 0, 60, &w);
        assert_eq!(usage.tokens("prompt-heavy", 1_000), 100.0);
        assert_eq!(usage.tokens("output-heavy", 1_000), 120.0);
        let mut d = Discipline::default();
        queued(d.push(0, "output-heavy", "o1", 10));
        queued(d.push(0, "prompt-heavy", "p1", 10));
        queued(d.push(0, "new", "n1", 10));
        let mut order = Vec::new();
        while let Some((_, item)) = d.pop(|u| usage.score(u, 2_000, &w)) {
            order.push(item);
        }
        // The newcomer (0) first, then 100, then 120: arrival order is the other way round.
        assert_eq!(order, ["n1", "p1", "o1"]);
    }

    #[test]
    fn equal_scores_go_by_arrival() {
        let mut d = Discipline::default();
        queued(d.push(0, "b", "b1", 10));
        queued(d.push(0, "a", "a1", 10));
        queued(d.push(0, "c", "c1", 10));
        assert_eq!(drain(&mut d, &[]), ["b1", "a1", "c1"]);
    }

    #[test]
    fn the_request_count_weight_counts_requests_and_the_token_weight_scales_tokens() {
        let w = Weights {
            input: 1.0,
            output: 2.0,
            token: 0.5,
            request_num: 10.0,
        };
        let mut usage = Usage::new(Duration::from_secs(60));
        usage.charge("u", 0, 10, 5, &w);
        usage.charge("u", 10, 0, 0, &w);
        // 0.5 × (10 + 2 × 5) + 10 × 2 requests.
        assert_eq!(usage.score("u", 20, &w), 0.5 * 20.0 + 20.0);
        assert_eq!(usage.score("nobody", 20, &w), 0.0);
    }

    #[test]
    fn usage_leaves_the_window_and_forgotten_users_are_swept() {
        let w = Weights::default();
        // A 60 s window: buckets of one second.
        let mut usage = Usage::new(Duration::from_secs(60));
        usage.charge("old", 0, 100, 0, &w);
        usage.charge("old", 30_000, 10, 0, &w);
        assert_eq!(usage.tokens("old", 59_999), 110.0);
        // The first bucket [0, 1 s) left at 60 s; the one of 30 s is still in.
        assert_eq!(usage.tokens("old", 60_000), 10.0);
        assert_eq!(usage.tokens("old", 90_000), 0.0);
        usage.charge("other", 200_000, 1, 0, &w);
        assert_eq!(usage.users(), 1, "the expired user was swept");
    }

    #[test]
    fn a_full_queue_sheds_the_lowest_priority_newest_request_of_its_busiest_user() {
        let mut d = Discipline::default();
        queued(d.push(-1, "flood", "f1", 4));
        queued(d.push(-1, "flood", "f2", 4));
        queued(d.push(-1, "calm", "c1", 4));
        queued(d.push(0, "x", "x1", 4));
        // Full: a priority-0 request sheds the flooding user's newest sheddable one.
        match d.push(0, "y", "y1", 4) {
            Pushed::Queued {
                shed: Some((t, item)),
                ..
            } => {
                assert_eq!((item, t.priority, &*t.user), ("f2", -1, "flood"));
            }
            other => panic!("expected a shed, got {other:?}"),
        }
        assert_eq!(d.len(), 4);
        // A sheddable request is refused: nothing lower to shed.
        assert!(matches!(d.push(-1, "calm", "c2", 4), Pushed::Refused("c2")));
        // So is one of the same priority as the lowest waiting.
        queued(d.push(5, "z", "z0", 5));
        assert!(matches!(d.push(-1, "z", "z1", 5), Pushed::Refused("z1")));
        assert_eq!(d.len_at(-1), 2);
        assert_eq!(drain(&mut d, &[]), ["z0", "x1", "y1", "f1", "c1"]);
    }

    #[test]
    fn a_removed_request_is_gone_and_others_keep_their_order() {
        let mut d = Discipline::default();
        let t1 = queued(d.push(0, "a", "a1", 10));
        let t2 = queued(d.push(0, "a", "a2", 10));
        queued(d.push(0, "a", "a3", 10));
        assert_eq!(d.remove(&t2), Some("a2"));
        assert_eq!(d.remove(&t2), None, "removed once");
        assert_eq!(d.len(), 2);
        assert_eq!(drain(&mut d, &[]), ["a1", "a3"]);
        assert_eq!(d.remove(&t1), None, "popped already");
        assert_eq!(d.len_at(0), 0);
    }
}
