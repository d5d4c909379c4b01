//! Delivery with bounded retries and exponential backoff. Only transient failures are retried: a
//! refused address or a broken template fails the same way every time.

use std::time::Duration;

use super::{DeliveryFuture, Message, Notifier, NotifyError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// The wait after the first failure; each later wait is `multiplier` times the one before.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub multiplier: u32,
}

impl Default for RetryPolicy {
    /// About half a minute of trying in all: long enough for a mail server's brief hiccup, short
    /// enough not to hold a run. A notice that still fails defers its action to the next run.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            multiplier: 3,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failures (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1).saturating_pow(attempt.saturating_sub(1));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Wraps a notifier and retries its transient failures. The error after the last attempt says
/// how many were made and what the last one answered.
pub struct RetryingNotifier<N> {
    inner: N,
    policy: RetryPolicy,
}

impl<N: Notifier> RetryingNotifier<N> {
    pub fn new(inner: N, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    pub fn inner(&self) -> &N {
        &self.inner
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<N: Notifier> Notifier for RetryingNotifier<N> {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let attempts = self.policy.max_attempts.max(1);
            let mut attempt = 1;
            loop {
                match self.inner.deliver(message).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_transient() && attempt < attempts => {
                        let delay = self.policy.delay_after(attempt);
                        tracing::warn!(
                            kind = ?message.kind,
                            attempt,
                            of = attempts,
                            retry_in_ms = delay.as_millis() as u64,
                            error = %e,
                            "delivery failed; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    Err(NotifyError::Transient(text)) => {
                        let attempts =
                            if attempt == 1 { "1 attempt".to_owned() } else { format!("{attempt} attempts") };
                        return Err(NotifyError::Transient(format!("gave up after {attempts}: {text}")));
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            multiplier: 3,
        };
        let delays: Vec<u128> = (1..=5).map(|a| p.delay_after(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 300, 900, 1000, 1000]);
        assert_eq!(RetryPolicy { multiplier: 0, ..p.clone() }.delay_after(4), Duration::from_millis(100));
        assert_eq!(p.delay_after(u32::MAX), Duration::from_millis(1000));
    }
}
