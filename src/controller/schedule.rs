//! When a policy is due: the pure decision that keeps the operator's own status writes from
//! starting runs, and that respects the schedule's window and the run-now annotation.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use crate::crd::{LifecyclePolicy, Weekday, Window};

pub const RUN_NOW_ANNOTATION: &str = "seatwarden.io/run-now";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Run now; the string says why (for logs and the run record).
    Now(&'static str),
    /// Not yet: wake up after this long.
    Later(SignedDuration),
}

/// Decides whether `policy` should run at `now`.
///
/// A run is due when the spec changed since the last run (generation), when the run-now annotation
/// carries a value not yet handled, or when the interval has passed since the last run; in the last
/// case only inside the schedule's window. Status writes change none of these, so they never start
/// a run.
pub fn due(policy: &LifecyclePolicy, now: Timestamp) -> Due {
    let status = policy.status.clone().unwrap_or_default();
    if let Some(v) = policy.metadata.annotations.as_ref().and_then(|a| a.get(RUN_NOW_ANNOTATION))
        && status.last_handled_run_now.as_deref() != Some(v.as_str())
    {
        return Due::Now("run-now annotation");
    }
    let Some(last) = status.last_run_time.map(|t| t.0) else {
        return window_wait(policy.spec.schedule.window.as_ref(), now).map_or(Due::Now("first run"), Due::Later);
    };
    if status.observed_generation != policy.metadata.generation {
        return Due::Now("policy changed");
    }
    let next = last.checked_add(policy.spec.schedule.interval.to_signed()).unwrap_or(last);
    if next > now {
        return Due::Later(now.duration_until(next));
    }
    window_wait(policy.spec.schedule.window.as_ref(), now).map_or(Due::Now("interval elapsed"), Due::Later)
}

/// The next run time, for status: interval after the last run, moved into the window.
pub fn next_run(policy: &LifecyclePolicy, last_run: Timestamp) -> Timestamp {
    let next = last_run.checked_add(policy.spec.schedule.interval.to_signed()).unwrap_or(last_run);
    match window_wait(policy.spec.schedule.window.as_ref(), next) {
        Some(wait) => next.checked_add(wait).unwrap_or(next),
        None => next,
    }
}

/// None when `now` is inside the window (or there is none); else how long until it opens.
/// A malformed window (bad time zone) is treated as always open and reported by validation.
pub fn window_wait(window: Option<&Window>, now: Timestamp) -> Option<SignedDuration> {
    let window = window?;
    let tz = TimeZone::get(&window.time_zone).ok()?;
    let parse = |s: &str| -> Option<jiff::civil::Time> { s.parse().ok() };
    let (start, end) = (parse(&window.start)?, parse(&window.end)?);
    // Look at most 8 days ahead, minute steps would be wasteful: check each day's window start.
    let local = now.to_zoned(tz.clone());
    if inside(window, &local, start, end) {
        return None;
    }
    for day in 0..=8 {
        let date = local.date().checked_add(jiff::Span::new().days(day)).ok()?;
        let candidate = date.to_datetime(start).to_zoned(tz.clone()).ok()?;
        if candidate.timestamp() > now && day_allowed(window, candidate.date().weekday()) {
            return Some(now.duration_until(candidate.timestamp()));
        }
    }
    None
}

fn inside(window: &Window, local: &jiff::Zoned, start: jiff::civil::Time, end: jiff::civil::Time) -> bool {
    let t = local.time();
    if start <= end {
        day_allowed(window, local.date().weekday()) && t >= start && t < end
    } else {
        // Spans midnight: the part after midnight belongs to the previous day's window.
        (t >= start && day_allowed(window, local.date().weekday()))
            || (t < end
                && day_allowed(window, local.date().yesterday().map(|d| d.weekday()).unwrap_or(local.weekday())))
    }
}

fn day_allowed(window: &Window, day: jiff::civil::Weekday) -> bool {
    use jiff::civil::Weekday as W;
    window.days.is_empty()
        || window.days.iter().any(|d| {
            matches!(
                (d, day),
                (Weekday::Monday, W::Monday)
                    | (Weekday::Tuesday, W::Tuesday)
                    | (Weekday::Wednesday, W::Wednesday)
                    | (Weekday::Thursday, W::Thursday)
                    | (Weekday::Friday, W::Friday)
                    | (Weekday::Saturday, W::Saturday)
                    | (Weekday::Sunday, W::Sunday)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{LifecyclePolicyStatus, PolicyMode};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn policy(window: Option<Window>) -> LifecyclePolicy {
        let mut p: LifecyclePolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": "p", "namespace": "n", "generation": 3},
            "spec": {"organizationRef": {"name": "o"}, "schedule": {"interval": "12h"}}
        }))
        .unwrap();
        p.spec.schedule.window = window;
        p.spec.mode = PolicyMode::Enforce;
        p
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn first_run_is_due_and_status_writes_do_not_start_runs() {
        let mut p = policy(None);
        assert_eq!(due(&p, ts("2026-11-25T10:00:00Z")), Due::Now("first run"));
        p.status = Some(LifecyclePolicyStatus {
            observed_generation: Some(3),
            last_run_time: Some(Time(ts("2026-11-25T10:00:00Z"))),
            ..Default::default()
        });
        // Right after the run (its own status write lands): not due, wake at the interval.
        assert_eq!(due(&p, ts("2026-11-25T10:00:05Z")), Due::Later(SignedDuration::from_secs(12 * 3600 - 5)));
        assert_eq!(due(&p, ts("2026-11-25T22:00:00Z")), Due::Now("interval elapsed"));
        // A spec change (generation) is due at once.
        p.metadata.generation = Some(4);
        assert_eq!(due(&p, ts("2026-11-25T10:00:05Z")), Due::Now("policy changed"));
    }

    #[test]
    fn run_now_annotation_runs_once_per_value() {
        let mut p = policy(None);
        p.status = Some(LifecyclePolicyStatus {
            observed_generation: Some(3),
            last_run_time: Some(Time(ts("2026-11-25T10:00:00Z"))),
            ..Default::default()
        });
        p.metadata.annotations = Some([(RUN_NOW_ANNOTATION.to_owned(), "1".to_owned())].into());
        assert_eq!(due(&p, ts("2026-11-25T10:01:00Z")), Due::Now("run-now annotation"));
        p.status.as_mut().unwrap().last_handled_run_now = Some("1".into());
        assert!(matches!(due(&p, ts("2026-11-25T10:01:00Z")), Due::Later(_)));
    }

    #[test]
    fn window_in_a_time_zone_and_days() {
        let w = Window {
            start: "08:00".into(),
            end: "18:00".into(),
            time_zone: "Europe/Berlin".into(),
            days: vec![Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday],
        };
        // Wednesday 2026-11-25 10:00 UTC = 11:00 Berlin: inside.
        assert_eq!(window_wait(Some(&w), ts("2026-11-25T10:00:00Z")), None);
        // 18:30 Berlin: next opening Thursday 08:00 Berlin = 07:00 UTC.
        assert_eq!(window_wait(Some(&w), ts("2026-11-25T17:30:00Z")), Some(SignedDuration::from_mins(13 * 60 + 30)));
        // Saturday: wait until Monday 08:00 Berlin.
        let wait = window_wait(Some(&w), ts("2026-11-28T10:00:00Z")).unwrap();
        assert_eq!(ts("2026-11-28T10:00:00Z").checked_add(wait).unwrap(), ts("2026-11-30T07:00:00Z"));
        let p = policy(Some(w));
        assert!(matches!(due(&p, ts("2026-11-28T10:00:00Z")), Due::Later(_)));
    }

    #[test]
    fn window_spanning_midnight() {
        let w = Window { start: "22:00".into(), end: "04:00".into(), time_zone: "UTC".into(), days: vec![] };
        assert_eq!(window_wait(Some(&w), ts("2026-11-25T23:00:00Z")), None);
        assert_eq!(window_wait(Some(&w), ts("2026-11-26T03:00:00Z")), None);
        assert_eq!(window_wait(Some(&w), ts("2026-11-26T05:00:00Z")), Some(SignedDuration::from_hours(17)));
    }
}
