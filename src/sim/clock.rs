//! The simulator's own clock: it starts at `--now` and ticks with real time, or stands still when
//! frozen. Every instant the simulator reports (activity, events, rate-limit windows) comes from it.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct SimClock {
    /// The simulated instant at `anchor_real`.
    anchor_sim: Timestamp,
    anchor_real: Instant,
    frozen: bool,
}

impl SimClock {
    pub fn new(now: Timestamp, frozen: bool) -> Self {
        Self { anchor_sim: now, anchor_real: Instant::now(), frozen }
    }

    pub fn now(&self) -> Timestamp {
        if self.frozen {
            return self.anchor_sim;
        }
        let elapsed = SignedDuration::try_from(self.anchor_real.elapsed()).unwrap_or(SignedDuration::MAX);
        self.anchor_sim.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    pub fn set_now(&mut self, now: Timestamp) {
        self.anchor_sim = now;
        self.anchor_real = Instant::now();
    }

    pub fn advance(&mut self, by: SignedDuration) {
        let now = self.now();
        self.set_now(now.checked_add(by).unwrap_or(Timestamp::MAX));
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    pub fn set_frozen(&mut self, frozen: bool) {
        let now = self.now();
        self.frozen = frozen;
        self.set_now(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_told() {
        let start: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
        let mut clock = SimClock::new(start, true);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_hours(24));
        assert_eq!(clock.now(), "2026-07-02T00:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn a_ticking_clock_moves_from_its_start() {
        let start: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
        let clock = SimClock::new(start, false);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now() > start);
        assert!(clock.now() < start + SignedDuration::from_secs(60));
    }
}
