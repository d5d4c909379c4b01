//! Pacing per API family, and the pure arithmetic of waits: request slots from a budget, header-driven
//! slow-downs, `Retry-After` and `X-RateLimit-Reset` parsing, exponential backoff with full jitter.
//!
//! Everything here is a function of its inputs (instants are passed in) so it is tested without I/O.
//! Server instants (`X-RateLimit-Reset`, HTTP-date `Retry-After`) are turned into durations against the
//! server's own `Date` header, never against our wall clock: the simulator may run on its own clock.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// Time between two request slots for a budget of `requests_per_minute`.
pub fn slot_interval(requests_per_minute: u32) -> Duration {
    Duration::from_secs(60) / requests_per_minute.max(1)
}

/// The pacing state of one API family. Requests take slots spaced by the budget's interval (no
/// burst), later when the server's headers say the remaining allowance is thin, and not before a
/// pause the server asked for.
#[derive(Debug)]
pub struct Pacer {
    base_interval: Duration,
    /// Concurrency of the client: that many responses may be in flight behind a header we read.
    concurrency: u64,
    next_slot: Option<Instant>,
    /// A slower interval derived from `X-RateLimit-Remaining`/`Reset`, valid until the reset.
    adjusted: Option<(Duration, Instant)>,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub fn new(requests_per_minute: u32, concurrency: usize) -> Self {
        Self {
            base_interval: slot_interval(requests_per_minute),
            concurrency: concurrency.max(1) as u64,
            next_slot: None,
            adjusted: None,
            paused_until: None,
        }
    }

    /// The interval in force at `now`.
    pub fn interval(&self, now: Instant) -> Duration {
        match self.adjusted {
            Some((interval, until)) if now < until => interval.max(self.base_interval),
            _ => self.base_interval,
        }
    }

    /// Takes the next slot: the instant at which a request may be sent (never before `now`).
    pub fn reserve(&mut self, now: Instant) -> Instant {
        self.reserve_slot(now).at
    }

    /// [`Pacer::reserve`], saying what holds the request until its slot: the client's own budget
    /// (the slots before it), or a pause Atlassian asked for (reported when it began).
    pub fn reserve_slot(&mut self, now: Instant) -> Slot {
        let mut slot = Slot { at: now, held_by: None };
        if let Some(next) = self.next_slot
            && next > slot.at
        {
            slot = Slot { at: next, held_by: Some(Hold::Budget) };
        }
        if let Some(paused) = self.paused_until
            && paused >= slot.at
            && paused > now
        {
            slot = Slot { at: paused, held_by: Some(Hold::RateLimit) };
        }
        self.next_slot = Some(slot.at + self.interval(slot.at));
        slot
    }

    /// Holds every request of the family until `until` (a 429/503 or an exhausted allowance).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Reads the rate-limit headers of a response received at `now`. Returns the pause it imposed,
    /// if the allowance is exhausted (counting requests that may be in flight behind this one).
    pub fn observe(&mut self, now: Instant, info: &RateLimitInfo, reset_cap: Duration) -> Option<Duration> {
        let (Some(remaining), Some(reset_in)) = (info.remaining, info.reset_in) else {
            return None;
        };
        let reset_in = reset_in.min(reset_cap);
        let usable = remaining.saturating_sub(self.concurrency - 1);
        if usable == 0 {
            if reset_in.is_zero() {
                return None;
            }
            self.pause_until(now + reset_in);
            return Some(reset_in);
        }
        // Spread what is left over the time to the reset.
        let spread = reset_in / u32::try_from(usable).unwrap_or(u32::MAX);
        if spread > self.base_interval {
            self.adjusted = Some((spread, now + reset_in));
        }
        None
    }
}

/// A request's slot, and what holds it until then (None: it goes at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub at: Instant,
    pub held_by: Option<Hold>,
}

/// What a request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The client's request budget (`requestBudget`, `--requests-per-minute`): earlier slots.
    Budget,
    /// A pause after a 429/503 or an exhausted allowance.
    RateLimit,
}

/// The rate-limit headers of one response, as durations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Time until the allowance resets, by the server's clock.
    pub reset_in: Option<Duration>,
    /// `max(Retry-After, Beta-Retry-After)`, as sent (0 stays 0 here; see [`clamp_wait`]).
    pub retry_after: Option<Duration>,
}

impl RateLimitInfo {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let server_now = text("date").and_then(parse_http_date);
        let retry_after = [text("retry-after"), text("beta-retry-after")]
            .into_iter()
            .flatten()
            .filter_map(|v| parse_retry_after(v, server_now))
            .max();
        RateLimitInfo {
            limit: text("x-ratelimit-limit").and_then(|v| v.parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_in: text("x-ratelimit-reset").and_then(|v| parse_reset(v, server_now)),
            retry_after,
        }
    }
}

/// An HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`), as in `Date` and `Retry-After`.
pub fn parse_http_date(value: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()
}

/// `Retry-After`: delta-seconds (fractions tolerated) or an HTTP-date measured against the server's
/// `Date`. Unparseable values are ignored (the caller falls back to backoff).
pub fn parse_retry_after(value: &str, server_now: Option<Timestamp>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = parse_http_date(value)?;
    Some(until(at, server_now?))
}

/// `X-RateLimit-Reset`: an ISO-8601 instant (with or without seconds), measured against the server's
/// `Date`. Numbers are tolerated: epoch seconds when large, else seconds to the reset.
pub fn parse_reset(value: &str, server_now: Option<Timestamp>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(n) = value.parse::<u64>() {
        if n > 1_000_000_000 {
            let at = Timestamp::from_second(i64::try_from(n).ok()?).ok()?;
            return Some(until(at, server_now?));
        }
        return Some(Duration::from_secs(n));
    }
    let at: Timestamp = value.parse().ok()?;
    Some(until(at, server_now?))
}

fn until(at: Timestamp, now: Timestamp) -> Duration {
    let span = at.duration_since(now);
    if span.is_negative() { Duration::ZERO } else { span.unsigned_abs() }
}

/// A server-requested wait, clamped: 0 becomes `floor` (Jira sends 0 meaning "soon"), more than `cap`
/// becomes `cap`. Returns the wait and whether it was capped (to be reported).
pub fn clamp_wait(requested: Duration, floor: Duration, cap: Duration) -> (Duration, bool) {
    if requested > cap {
        return (cap, true);
    }
    (requested.max(floor).min(cap), false)
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base · 2^(retry-1))]`. `unit` is a
/// random number in `[0, 1)` (passed in so the arithmetic is testable).
pub fn backoff_delay(retry: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exp).min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn slots_are_spaced_by_the_budget_without_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(600, 1); // 100 ms
        assert_eq!(slot_interval(600), Duration::from_millis(100));
        let slots: Vec<_> = (0..5).map(|_| p.reserve(t0)).collect();
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(*s - t0, Duration::from_millis(100 * i as u64));
        }
        // Idle time is not banked: a request long after the last slot goes at once, then paces.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.reserve(later), later);
        assert_eq!(p.reserve(later), later + Duration::from_millis(100));
    }

    #[test]
    fn any_minute_holds_at_most_the_budget() {
        let t0 = Instant::now();
        let mut p = Pacer::new(120, 4);
        let slots: Vec<_> = (0..1000).map(|i| p.reserve(t0 + Duration::from_millis(i * 7))).collect();
        for (i, s) in slots.iter().enumerate() {
            let in_window = slots[i..].iter().take_while(|t| **t < *s + Duration::from_secs(60)).count();
            assert!(in_window <= 120, "window at slot {i} holds {in_window}");
        }
    }

    #[test]
    fn a_slot_says_whether_the_budget_or_a_pause_holds_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(60, 1); // 1 s
        assert_eq!(p.reserve_slot(t0), Slot { at: t0, held_by: None });
        let second = p.reserve_slot(t0);
        assert_eq!(second, Slot { at: t0 + Duration::from_secs(1), held_by: Some(Hold::Budget) });
        p.pause_until(t0 + Duration::from_secs(5));
        let third = p.reserve_slot(t0);
        assert_eq!(third, Slot { at: t0 + Duration::from_secs(5), held_by: Some(Hold::RateLimit) });
        // After the pause, the budget holds the next one again.
        let fourth = p.reserve_slot(t0);
        assert_eq!(fourth, Slot { at: t0 + Duration::from_secs(6), held_by: Some(Hold::Budget) });
        // Idle long enough and nothing holds a request.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.reserve_slot(later).held_by, None);
    }

    #[test]
    fn a_pause_holds_every_slot_until_it_ends() {
        let t0 = Instant::now();
        let mut p = Pacer::new(6000, 1);
        p.reserve(t0);
        p.pause_until(t0 + Duration::from_secs(2));
        p.pause_until(t0 + Duration::from_secs(1)); // a shorter pause never shortens a longer one
        assert_eq!(p.reserve(t0), t0 + Duration::from_secs(2));
    }

    #[test]
    fn thin_allowance_slows_down_and_exhausted_allowance_pauses() {
        let t0 = Instant::now();
        let mut p = Pacer::new(6000, 2); // 10 ms base
        let info = RateLimitInfo { remaining: Some(11), reset_in: Some(Duration::from_secs(10)), ..Default::default() };
        assert_eq!(p.observe(t0, &info, Duration::from_secs(60)), None);
        // 11 left, one may be in flight behind this response: 10 usable over 10 s → 1 s apart.
        assert_eq!(p.interval(t0), Duration::from_secs(1));
        assert_eq!(p.interval(t0 + Duration::from_secs(11)), Duration::from_millis(10), "after the reset");

        let info = RateLimitInfo { remaining: Some(1), reset_in: Some(Duration::from_secs(5)), ..Default::default() };
        assert_eq!(p.observe(t0, &info, Duration::from_secs(60)), Some(Duration::from_secs(5)));
        assert!(p.reserve(t0) >= t0 + Duration::from_secs(5));

        // A generous allowance never speeds up past the budget.
        let mut p = Pacer::new(60, 1);
        let info =
            RateLimitInfo { remaining: Some(1000), reset_in: Some(Duration::from_secs(1)), ..Default::default() };
        p.observe(t0, &info, Duration::from_secs(60));
        assert_eq!(p.interval(t0), Duration::from_secs(1));
    }

    #[test]
    fn reset_pause_is_capped() {
        let t0 = Instant::now();
        let mut p = Pacer::new(60, 1);
        let info =
            RateLimitInfo { remaining: Some(0), reset_in: Some(Duration::from_secs(86_400)), ..Default::default() };
        assert_eq!(p.observe(t0, &info, Duration::from_secs(30)), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_forms() {
        let now = ts("2026-01-01T00:00:00Z");
        assert_eq!(parse_retry_after("5", None), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 0 ", None), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("0.25", None), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("-3", None), None);
        assert_eq!(parse_retry_after("soon", None), None);
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", Some(now)), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", None), None, "no server clock");
        assert_eq!(parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", Some(now)), Some(Duration::ZERO));
    }

    #[test]
    fn reset_forms() {
        let now = ts("2026-01-01T10:00:00Z");
        assert_eq!(parse_reset("2026-01-01T10:01:00Z", Some(now)), Some(Duration::from_secs(60)));
        assert_eq!(parse_reset("2026-01-01T10:01Z", Some(now)), Some(Duration::from_secs(60)), "Jira's form");
        assert_eq!(parse_reset("2026-01-01T10:00:00.500+00:00", Some(now)), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("2026-01-01T09:00:00Z", Some(now)), Some(Duration::ZERO));
        assert_eq!(parse_reset("2026-01-01T10:01:00Z", None), None);
        assert_eq!(parse_reset("12", None), Some(Duration::from_secs(12)));
        assert_eq!(parse_reset("1767261660", Some(now)), Some(Duration::from_secs(60)));
        assert_eq!(parse_reset("tomorrow", Some(now)), None);
    }

    #[test]
    fn headers_are_read_against_the_server_date() {
        let mut h = HeaderMap::new();
        h.insert("date", HeaderValue::from_static("Thu, 01 Jan 2026 10:00:00 GMT"));
        h.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("42"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("2026-01-01T10:00:20Z"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        h.insert("beta-retry-after", HeaderValue::from_static("7"));
        let info = RateLimitInfo::from_headers(&h);
        assert_eq!(info.limit, Some(100));
        assert_eq!(info.remaining, Some(42));
        assert_eq!(info.reset_in, Some(Duration::from_secs(20)));
        assert_eq!(info.retry_after, Some(Duration::from_secs(7)), "the larger hint wins");
        assert_eq!(RateLimitInfo::from_headers(&HeaderMap::new()), RateLimitInfo::default());
    }

    #[test]
    fn waits_are_clamped_and_capping_is_reported() {
        let floor = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        assert_eq!(clamp_wait(Duration::ZERO, floor, cap), (floor, false));
        assert_eq!(clamp_wait(Duration::from_secs(5), floor, cap), (Duration::from_secs(5), false));
        assert_eq!(clamp_wait(Duration::from_secs(86_400), floor, cap), (cap, true));
        // A cap below the floor (tests use tiny caps) wins.
        assert_eq!(clamp_wait(Duration::ZERO, floor, Duration::from_millis(20)), (Duration::from_millis(20), false));
    }

    #[test]
    fn backoff_grows_exponentially_within_full_jitter() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff_delay(1, base, cap, 0.999_999), Duration::from_secs(1).mul_f64(0.999_999));
        assert_eq!(backoff_delay(3, base, cap, 0.5), Duration::from_secs(2));
        assert_eq!(backoff_delay(4, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff_delay(10, base, cap, 1.0), cap);
        assert_eq!(backoff_delay(99, base, cap, 1.0), cap, "no overflow");
        assert_eq!(backoff_delay(5, base, cap, 0.0), Duration::ZERO);
    }
}
