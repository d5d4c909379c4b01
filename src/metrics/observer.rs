//! The Atlassian client's metric hooks, feeding the operator's registry.

use std::time::Duration;

use super::Metrics;
use crate::atlassian::ClientObserver;

impl ClientObserver for Metrics {
    fn on_request(&self, operation: &'static str, outcome: &'static str, latency: Duration) {
        self.atlassian_requests.with_label_values(&[operation, outcome]).inc();
        self.atlassian_request_duration.with_label_values(&[operation]).observe(latency.as_secs_f64());
    }

    fn on_retry(&self, operation: &'static str) {
        self.atlassian_retries.with_label_values(&[operation]).inc();
    }

    fn on_rate_limit_wait(&self, family: &'static str, duration: Duration) {
        self.atlassian_rate_limited.with_label_values(&[family]).inc();
        self.atlassian_rate_limit_wait.with_label_values(&[family]).inc_by(duration.as_secs_f64());
    }
}
