//! When a policy is due: the pure decision that keeps the operator's own status writes from
//! starting runs, and that holds every run inside the schedule's maintenance window.
//!
//! Every reason to run — the first run, a spec change (un-pausing included), the interval —
//! waits for the window. The run-now annotation is the one explicit override: it runs at once,
//! inside the window or not, and the run's status says so. `seatwarden plan`, `demo` and the
//! operator all decide with this one function, so the preview says when the operator will act.
//!
//! A window is open, on each allowed day, from the first instant the local wall clock reads
//! `start` until the first instant it reads `end` (the next day when `end` is not after `start`).
//! Across daylight-saving changes that means: a start or end the clock skips (spring forward)
//! falls on the transition itself, and one the clock reads twice (fall back) is its first reading.
//! A time zone that doesn't exist makes the spec invalid; it never means "always open".

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, Time},
    tz::{AmbiguousOffset, TimeZone},
};

use crate::crd::{LifecyclePolicy, PolicyMode, RunTrigger, Weekday, Window};

pub const RUN_NOW_ANNOTATION: &str = "seatwarden.io/run-now";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Run now, for this reason (for logs, status and the run record).
    Now(RunTrigger),
    /// Not yet: wake up after this long.
    Later(SignedDuration),
    /// The schedule can't be evaluated (an unknown time zone, ...): the policy never runs until
    /// its spec is fixed. The message names the field.
    Invalid(String),
}

impl RunTrigger {
    /// For logs and reasons.
    pub fn describe(self) -> &'static str {
        match self {
            RunTrigger::FirstRun => "first run",
            RunTrigger::SpecChanged => "policy changed",
            RunTrigger::IntervalElapsed => "interval elapsed",
            RunTrigger::RunNowAnnotation => "run-now annotation",
        }
    }
}

/// A maintenance window, parsed and checked.
#[derive(Clone, Debug)]
pub struct OpenWindow {
    tz: TimeZone,
    start: Time,
    end: Time,
    days: Vec<Weekday>,
}

/// Checks a window as the operator and `plan` read it. Returns the field and what is wrong.
pub fn validate_window(window: &Window) -> Result<OpenWindow, (String, String)> {
    let tz = TimeZone::get(&window.time_zone).map_err(|_| {
        (
            "spec.schedule.window.timeZone".to_owned(),
            format!(
                "unknown time zone {:?}: use an IANA name such as Europe/Berlin, America/New_York or UTC \
                 (the window is never assumed to be always open)",
                window.time_zone
            ),
        )
    })?;
    let time = |field: &str, s: &str| -> Result<Time, (String, String)> {
        let bad =
            || (format!("spec.schedule.window.{field}"), format!("{s:?} is not a time of day as HH:MM (e.g. 08:00)"));
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Time::new(h, m, 0, 0).map_err(|_| bad())
    };
    let (start, end) = (time("start", &window.start)?, time("end", &window.end)?);
    if start == end {
        return Err((
            "spec.schedule.window.end".to_owned(),
            format!(
                "the window opens and closes at {}: it would never be open (omit the window to run at any time)",
                window.start
            ),
        ));
    }
    Ok(OpenWindow { tz, start, end, days: window.days.clone() })
}

impl OpenWindow {
    /// The first instant the wall clock of the zone reads `t` or later on `date`.
    fn instant(&self, date: Date, t: Time) -> Option<Timestamp> {
        let dt = date.to_datetime(t);
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
            // Read twice (fall back): the first reading.
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
            // Skipped (spring forward): the clock jumps past `t` at the transition.
            AmbiguousOffset::Gap { before, after } => {
                let a = before.to_timestamp(dt).ok()?;
                let b = after.to_timestamp(dt).ok()?;
                let earliest = a.min(b);
                self.tz.following(earliest).next().map(|tr| tr.timestamp())
            }
        }
    }

    /// The window that opens on `date`, as instants; None when the day is not allowed or the
    /// window is empty that day (both ends skipped by a clock change).
    fn on(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        if !day_allowed(&self.days, date.weekday()) {
            return None;
        }
        let open = self.instant(date, self.start)?;
        let end_date = if self.end > self.start { date } else { date.tomorrow().ok()? };
        let close = self.instant(end_date, self.end)?;
        (close > open).then_some((open, close))
    }

    fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.tz.clone()).date()
    }

    pub fn contains(&self, at: Timestamp) -> bool {
        let today = self.local_date(at);
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .filter_map(|d| self.on(d))
            .any(|(open, close)| open <= at && at < close)
    }

    /// The instant the window is next open at or after `at` (`at` itself when open then).
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.contains(at) {
            return Some(at);
        }
        let mut date = self.local_date(at);
        for _ in 0..=8 {
            if let Some((open, _)) = self.on(date)
                && open > at
            {
                return Some(open);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// When the policy may run at the earliest and why, ignoring the window; None when the
/// annotation overrides everything.
fn earliest(policy: &LifecyclePolicy) -> (RunTrigger, Option<Timestamp>) {
    let status = policy.status.as_ref();
    if let Some(v) = policy.metadata.annotations.as_ref().and_then(|a| a.get(RUN_NOW_ANNOTATION))
        && status.and_then(|s| s.last_handled_run_now.as_deref()) != Some(v.as_str())
    {
        return (RunTrigger::RunNowAnnotation, None);
    }
    let Some(last) = status.and_then(|s| s.last_run_time.as_ref()).map(|t| t.0) else {
        return (RunTrigger::FirstRun, Some(Timestamp::MIN));
    };
    if status.and_then(|s| s.observed_generation) != policy.metadata.generation {
        return (RunTrigger::SpecChanged, Some(Timestamp::MIN));
    }
    let next = last.checked_add(policy.spec.schedule.interval.to_signed()).unwrap_or(Timestamp::MAX);
    (RunTrigger::IntervalElapsed, Some(next))
}

/// Decides whether `policy` should run at `now`.
///
/// A run is due when the run-now annotation carries a value not yet handled (at once), or —
/// inside the window only — when it never ran, its spec changed since the last run
/// (generation), or the interval has passed since the last run. Status writes change none of
/// these, so they never start a run.
pub fn due(policy: &LifecyclePolicy, now: Timestamp) -> Due {
    let window = match policy.spec.schedule.window.as_ref().map(validate_window).transpose() {
        Ok(w) => w,
        Err((field, message)) => return Due::Invalid(format!("{field}: {message}")),
    };
    let (trigger, earliest) = earliest(policy);
    let Some(earliest) = earliest else {
        return Due::Now(trigger);
    };
    let at = earliest.max(now);
    let open = match &window {
        None => Some(at),
        Some(w) => w.next_open(at),
    };
    match open {
        Some(t) if t <= now => Due::Now(trigger),
        Some(t) => Due::Later(now.duration_until(t)),
        // No opening within a week and a day (every opening falls into a clock change): look
        // again in a day.
        None => Due::Later(SignedDuration::from_hours(24)),
    }
}

/// The next run time, for status: interval after the last run, moved into the window.
pub fn next_run(policy: &LifecyclePolicy, last_run: Timestamp) -> Timestamp {
    let next = last_run.checked_add(policy.spec.schedule.interval.to_signed()).unwrap_or(last_run);
    match policy.spec.schedule.window.as_ref().map(validate_window) {
        Some(Ok(w)) => w.next_open(next).unwrap_or(next),
        _ => next,
    }
}

/// Whether a policy runs at `now` and when it runs next, as `seatwarden plan` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlook {
    /// Why it runs now, if it does.
    pub runs_now: Option<RunTrigger>,
    /// When it runs next: the run after this one when it runs now; None when it never runs
    /// (paused, or an invalid schedule).
    pub next_run: Option<Timestamp>,
    /// A sentence for people: why it runs or waits, and the window it waits for.
    pub explanation: String,
}

/// `due`, worded for the preview.
pub fn outlook(policy: &LifecyclePolicy, now: Timestamp) -> Outlook {
    let window = policy.spec.schedule.window.as_ref();
    let window_words = window
        .map(|w| {
            let days = if w.days.is_empty() {
                "every day".to_owned()
            } else {
                w.days.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ")
            };
            format!("window {}–{} {} ({days})", w.start, w.end, w.time_zone)
        })
        .unwrap_or_else(|| "no window".to_owned());
    if policy.spec.mode == PolicyMode::Paused {
        return Outlook {
            runs_now: None,
            next_run: None,
            explanation: "paused: never runs until spec.mode changes".into(),
        };
    }
    match due(policy, now) {
        Due::Now(trigger) => {
            let how = if trigger == RunTrigger::RunNowAnnotation
                && window.and_then(|w| validate_window(w).ok()).is_some_and(|w| !w.contains(now))
            {
                format!("runs now: the {RUN_NOW_ANNOTATION} annotation overrides the {window_words}")
            } else {
                format!("runs now ({}; {window_words})", trigger.describe())
            };
            Outlook { runs_now: Some(trigger), next_run: Some(next_run(policy, now)), explanation: how }
        }
        Due::Later(wait) => {
            let at = now.checked_add(wait).unwrap_or(now);
            let (trigger, earliest) = earliest(policy);
            let inside = window.and_then(|w| validate_window(w).ok()).is_none_or(|w| w.contains(now));
            let why = if !inside {
                format!("outside its {window_words}; it runs when the window opens ({})", trigger.describe())
            } else {
                let last = earliest.map(|e| e.to_string()).unwrap_or_default();
                format!(
                    "the interval {} has not elapsed (next due {last}; {window_words})",
                    policy.spec.schedule.interval
                )
            };
            Outlook { runs_now: None, next_run: Some(at), explanation: format!("waits: {why}") }
        }
        Due::Invalid(why) => Outlook { runs_now: None, next_run: None, explanation: format!("never runs: {why}") },
    }
}

fn day_allowed(days: &[Weekday], day: jiff::civil::Weekday) -> bool {
    use jiff::civil::Weekday as W;
    days.is_empty()
        || days.iter().any(|d| {
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time as KTime;

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

    fn ran_at(p: &mut LifecyclePolicy, at: &str) {
        p.status = Some(LifecyclePolicyStatus {
            observed_generation: p.metadata.generation,
            last_run_time: Some(KTime(ts(at))),
            ..Default::default()
        });
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(start: &str, end: &str, tz: &str, days: Vec<Weekday>) -> Window {
        Window { start: start.into(), end: end.into(), time_zone: tz.into(), days }
    }

    fn weekdays() -> Vec<Weekday> {
        vec![Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday]
    }

    /// When the window next opens at or after `at` (None: open).
    fn wait(w: &Window, at: &str) -> Option<Timestamp> {
        let w = validate_window(w).unwrap();
        let at = ts(at);
        if w.contains(at) { None } else { w.next_open(at) }
    }

    #[test]
    fn first_run_is_due_and_status_writes_do_not_start_runs() {
        let mut p = policy(None);
        assert_eq!(due(&p, ts("2026-11-25T10:00:00Z")), Due::Now(RunTrigger::FirstRun));
        ran_at(&mut p, "2026-11-25T10:00:00Z");
        // Right after the run (its own status write lands): not due, wake at the interval.
        assert_eq!(due(&p, ts("2026-11-25T10:00:05Z")), Due::Later(SignedDuration::from_secs(12 * 3600 - 5)));
        assert_eq!(due(&p, ts("2026-11-25T22:00:00Z")), Due::Now(RunTrigger::IntervalElapsed));
        // A spec change (generation) is due at once when there is no window.
        p.metadata.generation = Some(4);
        assert_eq!(due(&p, ts("2026-11-25T10:00:05Z")), Due::Now(RunTrigger::SpecChanged));
    }

    #[test]
    fn run_now_annotation_runs_once_per_value() {
        let mut p = policy(None);
        ran_at(&mut p, "2026-11-25T10:00:00Z");
        p.metadata.annotations = Some([(RUN_NOW_ANNOTATION.to_owned(), "1".to_owned())].into());
        assert_eq!(due(&p, ts("2026-11-25T10:01:00Z")), Due::Now(RunTrigger::RunNowAnnotation));
        p.status.as_mut().unwrap().last_handled_run_now = Some("1".into());
        assert!(matches!(due(&p, ts("2026-11-25T10:01:00Z")), Due::Later(_)));
    }

    #[test]
    fn every_reason_to_run_waits_for_the_window_but_run_now() {
        // Weekdays 08:00–18:00 Berlin. Saturday 2026-11-28 10:00 UTC is outside.
        let w = window("08:00", "18:00", "Europe/Berlin", weekdays());
        let saturday = ts("2026-11-28T10:00:00Z");
        let monday_open = ts("2026-11-30T07:00:00Z");
        let mut p = policy(Some(w));
        // First run: waits for Monday 08:00 Berlin.
        assert_eq!(due(&p, saturday), Due::Later(saturday.duration_until(monday_open)));
        // A spec change (un-pausing is one) waits too.
        ran_at(&mut p, "2026-11-27T10:00:00Z");
        p.metadata.generation = Some(4);
        assert_eq!(due(&p, saturday), Due::Later(saturday.duration_until(monday_open)));
        // The interval elapsed long ago: still waits.
        p.metadata.generation = Some(3);
        assert_eq!(due(&p, saturday), Due::Later(saturday.duration_until(monday_open)));
        // Inside the window each of them runs.
        assert_eq!(due(&p, monday_open), Due::Now(RunTrigger::IntervalElapsed));
        p.metadata.generation = Some(5);
        assert_eq!(due(&p, monday_open), Due::Now(RunTrigger::SpecChanged));
        // The run-now annotation is the one override.
        p.metadata.annotations = Some([(RUN_NOW_ANNOTATION.to_owned(), "now".to_owned())].into());
        assert_eq!(due(&p, saturday), Due::Now(RunTrigger::RunNowAnnotation));
        let o = outlook(&p, saturday);
        assert_eq!(o.runs_now, Some(RunTrigger::RunNowAnnotation));
        assert!(o.explanation.contains("overrides"), "{}", o.explanation);
    }

    #[test]
    fn an_unknown_time_zone_is_invalid_never_always_open() {
        let mut p = policy(Some(window("08:00", "18:00", "Europe/Berln", vec![])));
        match due(&p, ts("2026-11-25T10:00:00Z")) {
            Due::Invalid(why) => {
                assert!(why.contains("spec.schedule.window.timeZone") && why.contains("Europe/Berln"), "{why}")
            }
            other => panic!("an unknown zone must not run: {other:?}"),
        }
        let o = outlook(&p, ts("2026-11-25T10:00:00Z"));
        assert_eq!((o.runs_now, o.next_run), (None, None));
        assert!(o.explanation.contains("never runs"), "{}", o.explanation);
        // Even the run-now annotation doesn't run an invalid schedule.
        p.metadata.annotations = Some([(RUN_NOW_ANNOTATION.to_owned(), "1".to_owned())].into());
        assert!(matches!(due(&p, ts("2026-11-25T10:00:00Z")), Due::Invalid(_)));
        // A window that opens and closes at once is refused too.
        let e = validate_window(&window("08:00", "08:00", "UTC", vec![])).unwrap_err();
        assert_eq!(e.0, "spec.schedule.window.end");
    }

    #[test]
    fn window_in_a_time_zone_and_days() {
        let w = window("08:00", "18:00", "Europe/Berlin", weekdays());
        // Wednesday 2026-11-25 10:00 UTC = 11:00 Berlin: inside.
        assert_eq!(wait(&w, "2026-11-25T10:00:00Z"), None);
        // 18:30 Berlin: next opening Thursday 08:00 Berlin = 07:00 UTC.
        assert_eq!(wait(&w, "2026-11-25T17:30:00Z"), Some(ts("2026-11-26T07:00:00Z")));
        // Saturday: wait until Monday 08:00 Berlin.
        assert_eq!(wait(&w, "2026-11-28T10:00:00Z"), Some(ts("2026-11-30T07:00:00Z")));
    }

    #[test]
    fn window_spanning_midnight() {
        let w = window("22:00", "04:00", "UTC", vec![]);
        assert_eq!(wait(&w, "2026-11-25T23:00:00Z"), None);
        assert_eq!(wait(&w, "2026-11-26T03:00:00Z"), None);
        assert_eq!(wait(&w, "2026-11-26T05:00:00Z"), Some(ts("2026-11-26T22:00:00Z")));
        // The part after midnight belongs to the day the window opened.
        let fridays = window("22:00", "04:00", "UTC", vec![Weekday::Friday]);
        assert_eq!(wait(&fridays, "2026-11-28T03:00:00Z"), None, "Saturday 03:00 is Friday's window");
        assert_eq!(wait(&fridays, "2026-11-29T03:00:00Z"), Some(ts("2026-12-04T22:00:00Z")));
    }

    #[test]
    fn daylight_saving_in_berlin() {
        // Spring forward 2026-03-29: 02:00 CET → 03:00 CEST (01:00 UTC).
        let w = window("02:30", "04:00", "Europe/Berlin", vec![]);
        // The clock never reads 02:30: the window opens at the jump (03:00 CEST = 01:00 UTC).
        assert_eq!(wait(&w, "2026-03-29T00:00:00Z"), Some(ts("2026-03-29T01:00:00Z")));
        assert_eq!(wait(&w, "2026-03-29T01:00:00Z"), None);
        assert_eq!(wait(&w, "2026-03-29T01:59:00Z"), None, "03:59 CEST");
        assert_eq!(wait(&w, "2026-03-29T02:00:00Z"), Some(ts("2026-03-30T00:30:00Z")), "closed at 04:00 CEST");
        // The day before and after: 02:30 local at the zone's offset.
        assert_eq!(wait(&w, "2026-03-28T00:00:00Z"), Some(ts("2026-03-28T01:30:00Z")), "CET, +01");
        // Fall back 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 is read twice: the first reading.
        assert_eq!(wait(&w, "2026-10-24T23:00:00Z"), Some(ts("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert_eq!(wait(&w, "2026-10-25T02:30:00Z"), None, "03:30 CET, still before 04:00");
        assert_eq!(wait(&w, "2026-10-25T03:00:00Z"), Some(ts("2026-10-26T01:30:00Z")), "04:00 CET closes it");
        // A policy due at the gap runs exactly when `plan` said it would.
        let p = policy(Some(w));
        let before = ts("2026-03-29T00:00:00Z");
        let o = outlook(&p, before);
        assert_eq!(o.next_run, Some(ts("2026-03-29T01:00:00Z")));
        assert_eq!(due(&p, o.next_run.unwrap()), Due::Now(RunTrigger::FirstRun));
        assert!(matches!(due(&p, ts("2026-03-29T00:59:59Z")), Due::Later(_)));
    }

    #[test]
    fn daylight_saving_in_new_york() {
        // Spring forward 2026-03-08: 02:00 EST → 03:00 EDT (07:00 UTC). A window inside the gap
        // is empty that day (the clock reads neither end) and opens again the next day.
        let gap = window("02:10", "02:50", "America/New_York", vec![]);
        assert_eq!(wait(&gap, "2026-03-08T06:00:00Z"), Some(ts("2026-03-09T06:10:00Z")), "EDT, -04");
        assert_eq!(wait(&gap, "2026-03-07T07:20:00Z"), None, "EST the day before: 02:20");
        // A night window across the change: 22:00–06:00 opens at 22:00 EST, closes at 06:00 EDT.
        let night = window("22:00", "06:00", "America/New_York", vec![Weekday::Saturday]);
        assert_eq!(wait(&night, "2026-03-08T03:00:00Z"), None, "22:00 EST Saturday");
        assert_eq!(wait(&night, "2026-03-08T09:59:00Z"), None, "05:59 EDT Sunday");
        assert_eq!(wait(&night, "2026-03-08T10:00:00Z"), Some(ts("2026-03-15T02:00:00Z")), "06:00 EDT closes it");
        // Fall back 2026-11-01: 02:00 EDT → 01:00 EST (06:00 UTC). 01:30 is read twice.
        let w = window("01:30", "03:00", "America/New_York", vec![]);
        assert_eq!(wait(&w, "2026-11-01T05:00:00Z"), Some(ts("2026-11-01T05:30:00Z")), "01:30 EDT, first reading");
        assert_eq!(wait(&w, "2026-11-01T06:45:00Z"), None, "01:45 EST, the second hour");
        assert_eq!(wait(&w, "2026-11-01T08:00:00Z"), Some(ts("2026-11-02T06:30:00Z")), "03:00 EST closes it");
        // next_run moves the interval into the window across the change.
        let mut p = policy(Some(w));
        p.spec.schedule.interval = "1d".parse().unwrap();
        assert_eq!(next_run(&p, ts("2026-10-31T05:30:00Z")), ts("2026-11-01T05:30:00Z"));
        assert_eq!(next_run(&p, ts("2026-11-01T05:30:00Z")), ts("2026-11-02T06:30:00Z"), "01:30 EST");
    }

    #[test]
    fn outlook_says_whether_and_when() {
        let w = window("08:00", "18:00", "UTC", vec![]);
        let mut p = policy(Some(w));
        let o = outlook(&p, ts("2026-11-25T07:00:00Z"));
        assert_eq!(o.runs_now, None);
        assert_eq!(o.next_run, Some(ts("2026-11-25T08:00:00Z")));
        assert!(o.explanation.contains("outside its window 08:00–18:00 UTC"), "{}", o.explanation);
        let o = outlook(&p, ts("2026-11-25T09:00:00Z"));
        assert_eq!(o.runs_now, Some(RunTrigger::FirstRun));
        // The run after this one: 12 h later is 21:00, outside; the window opens again at 08:00.
        assert_eq!(o.next_run, Some(ts("2026-11-26T08:00:00Z")));
        p.spec.mode = PolicyMode::Paused;
        assert_eq!(outlook(&p, ts("2026-11-25T09:00:00Z")).next_run, None);
    }
}
