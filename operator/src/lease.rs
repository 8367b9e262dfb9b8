//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder writes status.
//!
//! In: the Lease as read from the API server. Out: `true`/`false` on a watch channel (am I the
//! leader), and the Lease created, renewed, taken over or released. Every write is a create or a
//! PUT carrying the `resourceVersion` read, so two candidates cannot both win a round: the loser
//! gets 409 Conflict and follows.

use crate::api_error::{is_conflict, is_not_found};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a Lease stays valid after its last renewal, unless it says otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (and a follower checks) the Lease.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);

/// What one candidate should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it over.
    TakeOver,
    /// Somebody else holds a fresh Lease: follow.
    Follow {
        /// The current holder's identity.
        holder: String,
    },
}

/// Decides what candidate `me` does with `lease` at `now`.
///
/// The Lease has expired when `renewTime` (else `acquireTime`) plus `leaseDurationSeconds` lies
/// before `now`; `duration` stands in when the Lease names no positive duration. A Lease without
/// any time is expired. Our own Lease is renewed even when expired.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp, duration: Duration) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let Some(spec) = &lease.spec else {
        return Decision::TakeOver;
    };
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Decision::TakeOver,
        Some(holder) if holder == me => return Decision::Renew,
        Some(holder) => holder,
    };
    let valid_for = match spec.lease_duration_seconds {
        Some(secs) if secs > 0 => SignedDuration::from_secs(i64::from(secs)),
        _ => SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX),
    };
    let last = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    match last {
        Some(MicroTime(last)) if now.duration_since(*last) <= valid_for => Decision::Follow {
            holder: holder.to_owned(),
        },
        _ => Decision::TakeOver,
    }
}

/// Runs leader election for one identity on one Lease.
pub struct LeaderElector {
    client: kube::Client,
    namespace: String,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_every: Duration,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_every", &self.renew_every)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, competing as `identity` (unique per replica, for
    /// example the Pod name), with [`DEFAULT_LEASE_DURATION`] and [`DEFAULT_RENEW_EVERY`].
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_every: DEFAULT_RENEW_EVERY,
        }
    }

    /// Sets how long the Lease stays valid after a renewal (whole seconds; at least 1s).
    pub fn with_lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = lease_duration;
        self
    }

    /// Sets how often to renew or check the Lease; keep it well below the lease duration.
    pub fn with_renew_every(mut self, renew_every: Duration) -> Self {
        self.renew_every = renew_every;
        self
    }

    /// Competes for the Lease until `stop` completes, publishing whether we lead on `leader`
    /// (only changes are published).
    ///
    /// Errors are logged and retried every round; after renewals have failed for longer than
    /// the lease duration, `false` is published. On stop, `false` is published and, if we
    /// led, the Lease is released (holder cleared) so that a successor need not wait.
    pub async fn run(self, leader: watch::Sender<bool>, stop: impl Future<Output = ()>) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut stop = std::pin::pin!(stop);
        let mut leading = false;
        let mut last_renewed: Option<Instant> = None;
        loop {
            let round = tokio::select! {
                () = &mut stop => break,
                round = self.round(&api) => round,
            };
            match round {
                Ok(true) => {
                    last_renewed = Some(Instant::now());
                    leading = true;
                }
                Ok(false) => leading = false,
                Err(error) => {
                    tracing::warn!(lease = %self.name, %error, "lease round failed");
                    let expired = last_renewed.is_none_or(|t| t.elapsed() > self.lease_duration);
                    if leading && expired {
                        tracing::warn!(lease = %self.name, "lease not renewed in time");
                        leading = false;
                    }
                }
            }
            self.publish(&leader, leading);
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.renew_every) => {}
            }
        }
        self.publish(&leader, false);
        if leading {
            self.release(&api).await;
        }
    }

    /// Publishes `leading` when it differs from the last value, logging the change.
    fn publish(&self, leader: &watch::Sender<bool>, leading: bool) {
        let changed = leader.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            tracing::info!(lease = %self.name, identity = %self.identity, leading, "leadership changed");
        }
    }

    /// The Lease duration in whole seconds, as stored in `leaseDurationSeconds` (at least 1).
    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// One round: read, decide, write. `Ok(true)` when we hold the Lease afterwards.
    async fn round(&self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = api.get_opt(&self.name).await?;
        let lease = match (
            decide(current.as_ref(), &self.identity, now, self.lease_duration),
            current,
        ) {
            (Decision::Follow { holder }, _) => {
                tracing::debug!(lease = %self.name, %holder, "following");
                return Ok(false);
            }
            (Decision::Create, _) | (_, None) => return self.create(api, now).await,
            (Decision::Renew, Some(lease)) => self.renewed(lease, now, false),
            (Decision::TakeOver, Some(lease)) => self.renewed(lease, now, true),
        };
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => {
                tracing::debug!(lease = %self.name, "lost the race for the lease");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Creates the Lease held by us; 409 means another candidate created it first.
    async fn create(&self, api: &Api<Lease>, now: Timestamp) -> Result<bool, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.lease_seconds()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// `lease` renewed by us at `now`; `take_over` also makes us the holder (a transition).
    /// Its `resourceVersion` stays, so the PUT fails if someone wrote in between.
    fn renewed(&self, mut lease: Lease, now: Timestamp, take_over: bool) -> Lease {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if take_over {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        } else if spec.acquire_time.is_none() {
            spec.acquire_time = Some(MicroTime(now));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.lease_seconds());
        lease
    }

    /// Clears the holder if it is still us, so that a successor need not wait for expiry.
    async fn release(&self, api: &Api<Lease>) {
        let mut lease = match api.get(&self.name).await {
            Ok(lease) => lease,
            Err(error) if is_not_found(&error) => return,
            Err(error) => {
                tracing::warn!(lease = %self.name, %error, "cannot read lease to release it");
                return;
            }
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.name, identity = %self.identity, "lease released")
            }
            Err(error) => tracing::warn!(lease = %self.name, %error, "cannot release lease"),
        }
    }
}
