//! Prometheus metrics. Every label comes from a bounded set — policy and organization names, product
//! keys, action kinds, outcomes, error variants — never an account id or an email.

mod observer;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric seatwarden exports, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Users by status (active, suspended, deactivated, invited-never-active), per organization.
    pub users: IntGaugeVec,
    /// Users not active on a product for at least `inactive_for` (30d, 60d, 90d, 180d, 365d).
    pub inactive_users: IntGaugeVec,
    /// Billable seats in use per product (members of the mapped licensed groups, not suspended).
    pub licensed_seats: IntGaugeVec,
    /// Actions by policy, action, mode (enforce, dry_run) and outcome (planned, applied, failed, deferred, skipped, unknown: sent without an answer).
    pub actions: IntCounterVec,
    /// Seats reclaimed by applied actions, per policy and product.
    pub seats_reclaimed: IntCounterVec,
    /// Projected monthly savings of the seats each policy reclaimed, in the organization's currency.
    pub projected_monthly_savings: GaugeVec,
    /// Notices waiting for their lead time to pass, per policy.
    pub pending_notices: IntGaugeVec,
    /// Notices by policy and outcome (delivered, failed, would_send).
    pub notices: IntCounterVec,
    pub reconcile_runs: IntCounterVec,
    pub reconcile_errors: IntCounterVec,
    pub reconcile_duration: HistogramVec,
    pub last_successful_run: GaugeVec,
    pub safety_halts: IntCounterVec,
    /// 1 while a policy's last run halted on maxActionPercent.
    pub safety_halted: IntGaugeVec,
    pub atlassian_requests: IntCounterVec,
    pub atlassian_request_duration: HistogramVec,
    pub atlassian_retries: IntCounterVec,
    pub atlassian_rate_limited: IntCounterVec,
    pub atlassian_rate_limit_wait: prometheus::CounterVec,
    /// 1 when the process runs with --dry-run (no Atlassian write, no notice).
    pub process_dry_run: IntGauge,
    /// 1 while this replica holds the leader lease.
    pub leader: IntGauge,
}

/// The names of every metric, for the chart's dashboard and alerts test.
pub const METRIC_NAMES: &[&str] = &[
    "seatwarden_users",
    "seatwarden_inactive_users",
    "seatwarden_licensed_seats",
    "seatwarden_actions_total",
    "seatwarden_seats_reclaimed_total",
    "seatwarden_projected_monthly_savings",
    "seatwarden_pending_notices",
    "seatwarden_notices_total",
    "seatwarden_reconcile_runs_total",
    "seatwarden_reconcile_errors_total",
    "seatwarden_reconcile_duration_seconds",
    "seatwarden_last_successful_run_timestamp_seconds",
    "seatwarden_safety_halts_total",
    "seatwarden_safety_halted",
    "seatwarden_atlassian_requests_total",
    "seatwarden_atlassian_request_duration_seconds",
    "seatwarden_atlassian_retries_total",
    "seatwarden_atlassian_rate_limited_total",
    "seatwarden_atlassian_rate_limit_wait_seconds_total",
    "seatwarden_process_dry_run",
    "seatwarden_leader",
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let igv = |name: &str, help: &str, labels: &[&str]| {
            reg(&registry, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let icv = |name: &str, help: &str, labels: &[&str]| {
            reg(&registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let duration_buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let run_buckets = vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];
        Self {
            users: igv("seatwarden_users", "Users by status.", &["organization", "status"]),
            inactive_users: igv(
                "seatwarden_inactive_users",
                "Users not active on a product for at least inactive_for.",
                &["organization", "product", "inactive_for"],
            ),
            licensed_seats: igv(
                "seatwarden_licensed_seats",
                "Billable seats in use per product.",
                &["organization", "product"],
            ),
            actions: icv(
                "seatwarden_actions_total",
                "Actions by policy, action, mode and outcome.",
                &["policy", "action", "mode", "outcome"],
            ),
            seats_reclaimed: icv(
                "seatwarden_seats_reclaimed_total",
                "Seats reclaimed by applied actions.",
                &["policy", "product"],
            ),
            projected_monthly_savings: reg(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "seatwarden_projected_monthly_savings",
                        "Projected monthly savings of the seats reclaimed, in the organization's currency.",
                    ),
                    &["policy", "currency"],
                )
                .expect("valid metric"),
            ),
            pending_notices: igv(
                "seatwarden_pending_notices",
                "Users warned and waiting for the lead time to pass.",
                &["policy"],
            ),
            notices: icv("seatwarden_notices_total", "Notices by outcome.", &["policy", "outcome"]),
            reconcile_runs: icv("seatwarden_reconcile_runs_total", "Policy runs.", &["policy"]),
            reconcile_errors: icv(
                "seatwarden_reconcile_errors_total",
                "Failed policy runs by error kind.",
                &["policy", "error"],
            ),
            reconcile_duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("seatwarden_reconcile_duration_seconds", "Duration of a policy run.")
                        .buckets(run_buckets),
                    &["policy"],
                )
                .expect("valid metric"),
            ),
            last_successful_run: reg(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "seatwarden_last_successful_run_timestamp_seconds",
                        "Unix time of the last successful run.",
                    ),
                    &["policy"],
                )
                .expect("valid metric"),
            ),
            safety_halts: icv("seatwarden_safety_halts_total", "Runs halted by maxActionPercent.", &["policy"]),
            safety_halted: igv("seatwarden_safety_halted", "1 while the last run halted.", &["policy"]),
            atlassian_requests: icv(
                "seatwarden_atlassian_requests_total",
                "Atlassian API requests by operation and outcome.",
                &["operation", "outcome"],
            ),
            atlassian_request_duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "seatwarden_atlassian_request_duration_seconds",
                        "Atlassian API request latency.",
                    )
                    .buckets(duration_buckets),
                    &["operation"],
                )
                .expect("valid metric"),
            ),
            atlassian_retries: icv("seatwarden_atlassian_retries_total", "Retried Atlassian requests.", &["operation"]),
            atlassian_rate_limited: icv(
                "seatwarden_atlassian_rate_limited_total",
                "Atlassian responses 429 (rate limited).",
                &["family"],
            ),
            atlassian_rate_limit_wait: reg(
                &registry,
                prometheus::CounterVec::new(
                    Opts::new(
                        "seatwarden_atlassian_rate_limit_wait_seconds_total",
                        "Seconds spent waiting on rate limits.",
                    ),
                    &["family"],
                )
                .expect("valid metric"),
            ),
            process_dry_run: reg(
                &registry,
                IntGauge::new("seatwarden_process_dry_run", "1 when the process runs with --dry-run.").expect("valid"),
            ),
            leader: reg(
                &registry,
                IntGauge::new("seatwarden_leader", "1 while this replica is the leader.").expect("valid"),
            ),
            registry,
        }
    }

    /// Creates a policy's counter series at 0, so `increase()` and `rate()` see its first actions
    /// (a series born with value 1 has no earlier sample to increase from).
    pub fn init_policy(&self, policy: &str, mode: &str, products: &[&str]) {
        const ACTIONS: [&str; 8] = [
            "suspend",
            "restore",
            "deactivate",
            "enable",
            "remove-from-directory",
            "remove-group",
            "add-group",
            "invite",
        ];
        const OUTCOMES: [&str; 6] = ["planned", "applied", "failed", "deferred", "skipped", "unknown"];
        for action in ACTIONS {
            for outcome in OUTCOMES {
                self.actions.with_label_values(&[policy, action, mode, outcome]);
            }
        }
        for product in products {
            self.seats_reclaimed.with_label_values(&[policy, product]);
        }
        for outcome in ["delivered", "failed"] {
            self.notices.with_label_values(&[policy, outcome]);
        }
        self.reconcile_runs.with_label_values(&[policy]);
        self.safety_halts.with_label_values(&[policy]);
    }

    /// Gives every metric one series with sample labels, so the exposition shows each name with its
    /// label names: what the tests compare the dashboard, alerts and METRIC_NAMES against.
    #[doc(hidden)]
    pub fn touch_every_metric(&self) {
        self.users.with_label_values(&["o", "active"]).set(1);
        self.inactive_users.with_label_values(&["o", "confluence", "90d"]).set(1);
        self.licensed_seats.with_label_values(&["o", "confluence"]).set(1);
        self.actions.with_label_values(&["p", "suspend", "enforce", "applied"]).inc();
        self.seats_reclaimed.with_label_values(&["p", "confluence"]).inc();
        self.projected_monthly_savings.with_label_values(&["p", "USD"]).set(1.0);
        self.pending_notices.with_label_values(&["p"]).set(1);
        self.notices.with_label_values(&["p", "delivered"]).inc();
        self.reconcile_runs.with_label_values(&["p"]).inc();
        self.reconcile_errors.with_label_values(&["p", "snapshot"]).inc();
        self.reconcile_duration.with_label_values(&["p"]).observe(1.0);
        self.last_successful_run.with_label_values(&["p"]).set(1.0);
        self.safety_halts.with_label_values(&["p"]).inc();
        self.safety_halted.with_label_values(&["p"]).set(0);
        self.atlassian_requests.with_label_values(&["users_search", "ok"]).inc();
        self.atlassian_request_duration.with_label_values(&["users_search"]).observe(0.1);
        self.atlassian_retries.with_label_values(&["users_search"]).inc();
        self.atlassian_rate_limited.with_label_values(&["org"]).inc();
        self.atlassian_rate_limit_wait.with_label_values(&["org"]).inc_by(1.0);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = vec![];
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding never fails");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_is_exported_and_labels_are_bounded() {
        let m = Metrics::new();
        m.touch_every_metric();
        let text = m.render();
        for name in METRIC_NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} is not exported");
        }
        let families = m.registry.gather();
        assert_eq!(families.len(), METRIC_NAMES.len(), "METRIC_NAMES lists every metric");
        for f in families {
            for metric in f.get_metric() {
                for l in metric.get_label() {
                    assert!(
                        !matches!(l.name(), "account_id" | "email" | "user"),
                        "{} has an unbounded label {}",
                        f.name(),
                        l.name()
                    );
                }
            }
        }
    }
}
