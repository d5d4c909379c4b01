//! Fencing (DESIGN invariant 10): only the leader writes, and "leader" is confirmed right before
//! each write rather than taken from a flag that a paused process cannot update.
//!
//! [`LeaseFence`] checks the Lease object itself: this replica must be its holder, with more than
//! a margin of validity left. A confirmation is reused until that margin is reached, measured on
//! the monotonic clock, which keeps running while a process is stopped (SIGSTOP, a long GC pause,
//! a frozen VM): a replica resumed after its lease ran out finds its confirmation stale, reads the
//! Lease again, sees another holder (or an expired lease) and writes nothing.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

use crate::record::{Fence, FenceFuture};

/// Validity a confirmation must leave: less than the lease manager's grace (it renews when that
/// much is left), more than one write takes to be sent.
pub const LEASE_MARGIN: Duration = Duration::from_secs(2);

pub struct LeaseFence {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The lease manager's view (false as soon as it knows it lost the lease).
    held: Arc<AtomicBool>,
    margin: Duration,
    confirmed_until: Mutex<Option<Instant>>,
}

impl LeaseFence {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, held: Arc<AtomicBool>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            held,
            margin: LEASE_MARGIN,
            confirmed_until: Mutex::new(None),
        }
    }

    async fn confirm_now(&self) -> Result<(), String> {
        if !self.held.load(Ordering::SeqCst) {
            return Err("this replica does not hold the leader lease".into());
        }
        if self.confirmed_until.lock().expect("fence lock").is_some_and(|until| Instant::now() < until) {
            return Ok(());
        }
        *self.confirmed_until.lock().expect("fence lock") = None;
        let asked = Instant::now();
        let wall = jiff::Timestamp::now();
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| format!("the leader lease could not be read: {e}"))?
            .and_then(|l| l.spec)
            .ok_or_else(|| format!("the leader lease {} does not exist", self.name))?;
        let holder = lease.holder_identity.clone().unwrap_or_default();
        if holder != self.identity {
            self.held.store(false, Ordering::SeqCst);
            return Err(format!("the leader lease is held by {holder:?}, not this replica"));
        }
        let renewed = lease.renew_time.map(|t| t.0).ok_or("the leader lease has no renew time")?;
        let duration = jiff::SignedDuration::from_secs(i64::from(lease.lease_duration_seconds.unwrap_or(15)));
        let left =
            (renewed + duration).duration_since(wall) - jiff::SignedDuration::try_from(self.margin).unwrap_or_default();
        if left <= jiff::SignedDuration::ZERO {
            return Err("the leader lease is not confirmed with the margin a write needs".into());
        }
        let left = Duration::try_from(left).unwrap_or_default();
        *self.confirmed_until.lock().expect("fence lock") = Some(asked + left);
        Ok(())
    }
}

impl Fence for LeaseFence {
    fn confirm(&self) -> FenceFuture<'_> {
        Box::pin(async move {
            let r = self.confirm_now().await;
            if let Err(why) = &r {
                tracing::warn!(why, "write refused: leadership not confirmed");
            }
            r
        })
    }
}
