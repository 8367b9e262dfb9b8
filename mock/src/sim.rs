//! The simulated engine shared by every HTTP worker: the [`Engine`] behind one mutex (never
//! held across an await), the channels that wake waiting requests, and the metrics, updated
//! under the same lock so the gauges always tell the engine's truth.
//!
//! A handler [`Sim::submit`]s its request and gets a [`Ticket`]; [`Ticket::admitted`] resolves
//! once the request is in the running set. Dropping the ticket (answer done, stream ended or
//! client gone) finishes the request and admits whoever now fits.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use tokio::sync::oneshot;

use crate::{
    engine::{Admission, Engine, EngineConfig, SeqId, Sequence, Submitted, TooLong},
    metrics::Metrics,
};

/// The engine, its waiters and its metrics.
#[derive(Debug)]
pub struct Sim {
    inner: Mutex<Inner>,
    metrics: Metrics,
    block_size: usize,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    waiters: HashMap<SeqId, oneshot::Sender<Admission>>,
}

impl Sim {
    /// An idle engine of `config` reporting to `metrics`.
    pub fn new(config: EngineConfig, metrics: Metrics) -> Self {
        let engine = Engine::new(config);
        metrics.engine(&engine.snapshot());
        Self {
            block_size: engine.block_size(),
            inner: Mutex::new(Inner {
                engine,
                waiters: HashMap::new(),
            }),
            metrics,
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Tokens per KV-cache block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Rejects a request longer than the whole KV cache.
    pub fn check_fits(&self, prompt: usize, completion: usize) -> Result<(), TooLong> {
        self.lock().engine.check_fits(prompt, completion)
    }

    /// Admits `seq` or queues it.
    pub fn submit(self: &Arc<Self>, seq: Sequence) -> Result<Ticket, TooLong> {
        let mut inner = self.lock();
        let (id, state) = match inner.engine.submit(seq)? {
            Submitted::Running(admission) => {
                self.metrics.admitted(&admission);
                (admission.id, Admit::Now(admission))
            }
            Submitted::Waiting(id) => {
                let (tx, rx) = oneshot::channel();
                inner.waiters.insert(id, tx);
                (id, Admit::Later(rx))
            }
        };
        self.metrics.engine(&inner.engine.snapshot());
        Ok(Ticket {
            sim: Arc::clone(self),
            id,
            state,
        })
    }

    fn finish(&self, id: SeqId) {
        let mut inner = self.lock();
        inner.waiters.remove(&id);
        for admission in inner.engine.finish(id) {
            self.metrics.admitted(&admission);
            if let Some(waiter) = inner.waiters.remove(&admission.id) {
                // The receiver lives in the ticket, whose drop finishes the request under
                // this lock: it cannot be gone while the request is still known.
                let _ = waiter.send(admission);
            }
        }
        self.metrics.engine(&inner.engine.snapshot());
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A submitted request; dropping it ends the request in the engine.
#[derive(Debug)]
pub struct Ticket {
    sim: Arc<Sim>,
    id: SeqId,
    state: Admit,
}

#[derive(Debug)]
enum Admit {
    Now(Admission),
    Later(oneshot::Receiver<Admission>),
}

impl Ticket {
    /// Waits until the request runs (at once when it was admitted on submission).
    pub async fn admitted(&mut self) -> Admission {
        match &mut self.state {
            Admit::Now(admission) => *admission,
            Admit::Later(rx) => {
                let admission = rx
                    .await
                    .expect("the engine keeps a waiter until it admits it or its ticket drops");
                self.state = Admit::Now(admission);
                admission
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.sim.finish(self.id);
    }
}
