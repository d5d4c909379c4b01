//! `Duration`: the one type for every span a person writes in a manifest (`90d`, `24h`, `1d12h`).
//!
//! The schema carries a pattern, so the API server itself refuses a malformed value; parsing here
//! applies the same grammar, so a manifest read offline (`seatwarden plan`) fails the same way.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The grammar, shared by the schema and the parser: one or more `<number><unit>` parts, units
/// `d`, `h`, `m`, `s`, each unit at most once and in that order.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,8}s)?$";

/// A span of time written as `90d`, `24h`, `30m`, `1d12h`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    seconds: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: expected a number with a unit such as 90d, 24h, 30m or 1d12h")]
pub struct DurationError {
    input: String,
}

impl Duration {
    pub const fn from_secs(seconds: i64) -> Self {
        Self { seconds }
    }

    pub const fn from_days(days: i64) -> Self {
        Self { seconds: days * 86_400 }
    }

    pub const fn from_hours(hours: i64) -> Self {
        Self { seconds: hours * 3_600 }
    }

    pub const fn as_secs(&self) -> i64 {
        self.seconds
    }

    /// Whole days, rounded down: what a reason shown to a person uses.
    pub const fn whole_days(&self) -> i64 {
        self.seconds / 86_400
    }

    pub fn to_signed(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(self.seconds)
    }

    pub fn to_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds.max(0) as u64)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || DurationError { input: input.to_owned() };
        if input.is_empty() {
            return Err(err());
        }
        let mut seconds: i64 = 0;
        let mut digits = String::new();
        // Units must appear in this order, each at most once (same as DURATION_PATTERN).
        let mut next_unit = 0usize;
        const UNITS: [(char, i64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
        for c in input.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let Some(pos) = UNITS[next_unit..].iter().position(|(u, _)| *u == c) else {
                return Err(err());
            };
            if digits.is_empty() || digits.len() > 8 {
                return Err(err());
            }
            let idx = next_unit + pos;
            let n: i64 = digits.parse().map_err(|_| err())?;
            seconds = seconds.checked_add(n * UNITS[idx].1).ok_or_else(err)?;
            digits.clear();
            next_unit = idx + 1;
        }
        if !digits.is_empty() {
            return Err(err());
        }
        Ok(Self { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.seconds;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "minLength": 2,
            "description": "A span of time: a number with a unit, d, h, m or s, e.g. 90d, 24h, 1d12h."
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        assert_eq!("90d".parse::<Duration>().unwrap(), Duration::from_days(90));
        assert_eq!("24h".parse::<Duration>().unwrap(), Duration::from_hours(24));
        assert_eq!("1d12h".parse::<Duration>().unwrap(), Duration::from_hours(36));
        assert_eq!("30m".parse::<Duration>().unwrap().as_secs(), 1800);
        assert_eq!("1d2h3m4s".parse::<Duration>().unwrap().as_secs(), 86_400 + 7_200 + 180 + 4);
        assert_eq!("0d".parse::<Duration>().unwrap().as_secs(), 0);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "90", "d", "-3d", "3 d", "3days", "1h1d", "1d1d", "3w", "1.5d", "h1", "1s1m"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn parser_and_schema_pattern_agree() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for s in ["90d", "24h", "1d12h", "30m", "5s", "1d2h3m4s", "90", "1h1d", "3w", "-1d", "1d1d", "3 d"] {
            let parsed = s.parse::<Duration>().is_ok();
            let matched = re.is_match(s) && s.len() >= 2;
            assert_eq!(parsed, matched, "parser and pattern disagree on {s:?}");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["90d", "1d12h", "1d2h3m4s", "45s"] {
            assert_eq!(s.parse::<Duration>().unwrap().to_string(), s);
        }
        // Display normalizes to the largest units; parsing it back gives the same span.
        let d: Duration = "24h".parse().unwrap();
        assert_eq!(d.to_string(), "1d");
        assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
    }
}
