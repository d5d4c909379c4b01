//! Failure points: named instants of a run at which a test can make it stop as if the process had
//! crashed there, to prove that whatever instant a crash comes, the ledger and the audit trail keep
//! enough to settle every write exactly (DESIGN invariant 5).
//!
//! In-process tests arm a point and the run returns [`RecordError::Interrupted`] there, dropping its
//! in-memory state. The end-to-end tests arm one in the real binary with
//! `SEATWARDEN_FAIL_AT=<point>:<n>` and the process aborts at the n-th time it passes that point.

use std::sync::{
    OnceLock,
    atomic::{AtomicU32, Ordering},
};

use crate::record::RecordError;

/// The instants of a run, in the order one write passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// A batch's intents are saved in the ledger (the audit trail has them Planned); nothing sent.
    AfterIntent,
    /// A write returned; nothing has recorded its outcome.
    AfterWrite,
    /// A batch's outcomes are saved in the ledger; the audit trail still says Planned.
    AfterLedgerSave,
    /// Every outcome is in the ledger and the audit trail; the run's closing record (phase, end
    /// time) and the ledger's release of the settled entries are not written.
    BeforeAuditWrite,
    /// A notice was delivered and saved in the ledger; the next one is not sent.
    BetweenNotices,
}

impl FailPoint {
    pub const ALL: [FailPoint; 5] = [
        FailPoint::AfterIntent,
        FailPoint::AfterWrite,
        FailPoint::AfterLedgerSave,
        FailPoint::BeforeAuditWrite,
        FailPoint::BetweenNotices,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailPoint::AfterIntent => "after-intent",
            FailPoint::AfterWrite => "after-write",
            FailPoint::AfterLedgerSave => "after-ledger-save",
            FailPoint::BeforeAuditWrite => "before-audit-write",
            FailPoint::BetweenNotices => "between-notices",
        }
    }

    pub fn parse(s: &str) -> Option<FailPoint> {
        Self::ALL.into_iter().find(|p| p.label() == s)
    }
}

/// At most one armed point: it fires the `nth` time (from 1) the run passes it.
#[derive(Debug, Default)]
pub struct FailPoints {
    armed: Option<(FailPoint, u32)>,
    abort: bool,
    passed: AtomicU32,
}

impl FailPoints {
    /// Nothing armed (production).
    pub fn none() -> Self {
        Self::default()
    }

    /// Fires at the `nth` pass of `point` by returning [`RecordError::Interrupted`].
    pub fn arm(point: FailPoint, nth: u32) -> Self {
        Self { armed: Some((point, nth.max(1))), abort: false, passed: AtomicU32::new(0) }
    }

    /// The process-wide points from `SEATWARDEN_FAIL_AT=<point>:<n>`: the process aborts there.
    /// An unparsable value arms nothing and says so once.
    pub fn process() -> &'static FailPoints {
        static POINTS: OnceLock<FailPoints> = OnceLock::new();
        POINTS.get_or_init(|| {
            let Ok(spec) = std::env::var("SEATWARDEN_FAIL_AT") else { return FailPoints::none() };
            let (name, nth) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
            match (FailPoint::parse(name.trim()), nth.trim().parse::<u32>()) {
                (Some(point), Ok(nth)) => {
                    tracing::warn!(point = point.label(), nth, "failure point armed: the process aborts there");
                    FailPoints { abort: true, ..FailPoints::arm(point, nth) }
                }
                _ => {
                    tracing::warn!(spec, "SEATWARDEN_FAIL_AT not understood (expected <point>:<n>); nothing armed");
                    FailPoints::none()
                }
            }
        })
    }

    /// Called at each failure point.
    pub fn pass(&self, point: FailPoint) -> Result<(), RecordError> {
        let Some((armed, nth)) = self.armed else { return Ok(()) };
        if armed != point {
            return Ok(());
        }
        let n = self.passed.fetch_add(1, Ordering::SeqCst) + 1;
        if n != nth {
            return Ok(());
        }
        if self.abort {
            eprintln!("seatwarden: failure point {} reached ({nth}): aborting", point.label());
            std::process::abort();
        }
        Err(RecordError::Interrupted(point.label()))
    }

    /// Whether the armed point fired (tests check their crash really happened).
    pub fn fired(&self) -> bool {
        self.armed.is_some_and(|(_, nth)| self.passed.load(Ordering::SeqCst) >= nth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_at_the_nth_pass_of_its_point_only() {
        let f = FailPoints::arm(FailPoint::AfterWrite, 2);
        assert!(f.pass(FailPoint::AfterIntent).is_ok());
        assert!(f.pass(FailPoint::AfterWrite).is_ok());
        assert!(!f.fired());
        assert!(matches!(f.pass(FailPoint::AfterWrite), Err(RecordError::Interrupted("after-write"))));
        assert!(f.fired());
        assert!(f.pass(FailPoint::AfterWrite).is_ok());
        assert!(FailPoints::none().pass(FailPoint::AfterWrite).is_ok());
        for p in FailPoint::ALL {
            assert_eq!(FailPoint::parse(p.label()), Some(p));
        }
    }
}
