//! `Duration`: the one type for every span a person writes in a manifest (`90d`, `12w`, `24h`).
//!
//! What a span may be written in depends on what it measures, so each field says which units it
//! takes ([`Units`]):
//! - inactivity thresholds, notice lead times, grace periods and suspended-for take **days and
//!   weeks** only (`90d`, `12w`, `2w3d`): Atlassian records activity per day and it lags up to
//!   24 hours, so a span below a day can't mean anything there, and `m` would be ambiguous
//!   (minutes? months?) — `inactiveFor: 6m` once planned with a threshold of six minutes;
//! - the activity-lag margin takes days, weeks and hours;
//! - schedule intervals (and the tools' own spans) also take minutes and seconds, where they make
//!   sense.
//!
//! The schema carries each grammar as a pattern, so the API server itself refuses a malformed
//! value; parsing here applies the same grammar with a message that says why, so a manifest read
//! offline (`seatwarden plan`) fails the same way, with the reason.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every unit, largest first, with its length in seconds.
const UNITS: [(char, i64); 5] = [('w', 7 * 86_400), ('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// The grammar of any span: one or more `<number><unit>` parts, units `w`, `d`, `h`, `m`, `s`,
/// each at most once and in that order.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,4}w)?([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,8}s)?$";
/// The grammar of a span counted in days: weeks and days only.
pub const DAYS_PATTERN: &str = r"^([0-9]{1,4}w)?([0-9]{1,5}d)?$";
/// The grammar of the activity-lag margin: weeks, days and hours.
pub const HOURS_PATTERN: &str = r"^([0-9]{1,4}w)?([0-9]{1,5}d)?([0-9]{1,6}h)?$";

/// Which units a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// `w d h m s`: schedule intervals, retention ages, the simulator's clock.
    Any,
    /// `w d`: inactivity thresholds, lead times, grace periods, suspended-for, `--inactive`.
    Days,
    /// `w d h`: the activity-lag margin.
    Hours,
}

impl Units {
    fn allows(self, unit: char) -> bool {
        match self {
            Units::Any => true,
            Units::Days => matches!(unit, 'w' | 'd'),
            Units::Hours => matches!(unit, 'w' | 'd' | 'h'),
        }
    }

    pub fn pattern(self) -> &'static str {
        match self {
            Units::Any => DURATION_PATTERN,
            Units::Days => DAYS_PATTERN,
            Units::Hours => HOURS_PATTERN,
        }
    }

    fn examples(self) -> &'static str {
        match self {
            Units::Any => "90d, 12w, 24h, 30m or 1d12h",
            Units::Days => "90d, 12w or 2w3d",
            Units::Hours => "1d, 12h or 1d12h",
        }
    }
}

/// A span of time written as `90d`, `12w`, `24h`, `30m`, `1d12h`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    seconds: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: {why}")]
pub struct DurationError {
    input: String,
    why: String,
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

    /// Parses `input` in the grammar of `units`, with a message that says why a value is refused.
    pub fn parse(input: &str, units: Units) -> Result<Self, DurationError> {
        let refuse = |why: String| DurationError { input: input.to_owned(), why };
        let malformed = || refuse(format!("expected a number with a unit, such as {}", units.examples()));
        if input.is_empty() {
            return Err(malformed());
        }
        let mut seconds: i64 = 0;
        let mut digits = String::new();
        // Units must appear in this order, each at most once (same as DURATION_PATTERN).
        let mut next_unit = 0usize;
        let mut refused: Option<char> = None;
        for c in input.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let Some(pos) = UNITS[next_unit..].iter().position(|(u, _)| *u == c) else {
                return Err(malformed());
            };
            if digits.is_empty() || digits.len() > 8 {
                return Err(malformed());
            }
            let idx = next_unit + pos;
            if !units.allows(c) {
                refused.get_or_insert(c);
            }
            let n: i64 = digits.parse().map_err(|_| malformed())?;
            seconds = n.checked_mul(UNITS[idx].1).and_then(|s| seconds.checked_add(s)).ok_or_else(malformed)?;
            digits.clear();
            next_unit = idx + 1;
        }
        if !digits.is_empty() {
            return Err(malformed());
        }
        match (refused, units) {
            (None, _) => Ok(Self { seconds }),
            (Some('m'), Units::Days) => Err(refuse(format!(
                "\"m\" is ambiguous (minutes or months?), and this span is counted in days: Atlassian records \
                 activity per day, so write days or weeks, such as {}",
                units.examples()
            ))),
            (Some('m'), _) => Err(refuse(format!(
                "\"m\" is ambiguous (minutes or months?) and spans below an hour mean nothing here: write {}",
                units.examples()
            ))),
            (Some(_), Units::Days) => Err(refuse(format!(
                "hours and seconds are below a day, and this span is counted in days (Atlassian records activity \
                 per day and it lags up to 24 hours): write days or weeks, such as {}",
                units.examples()
            ))),
            (Some(_), _) => Err(refuse(format!("seconds are too short to matter here: write {}", units.examples()))),
        }
    }

    /// Parses a span counted in days (`90d`, `12w`), as `users list --inactive` takes it.
    pub fn parse_days(input: &str) -> Result<Self, DurationError> {
        Self::parse(input, Units::Days)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Any unit: the grammar of schedule intervals and the tools' own spans.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input, Units::Any)
    }
}

impl fmt::Display for Duration {
    /// The largest units first; weeks are written as days (`84d`), which every grammar reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.seconds;
        if rest == 0 {
            return f.write_str("0d");
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

fn schema_for(units: Units, description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": units.pattern(),
        "minLength": 2,
        "description": description
    })
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema_for(Units::Any, "A span of time: a number with a unit, w, d, h, m (minutes) or s, e.g. 12h, 30m, 1d12h.")
    }

    fn inline_schema() -> bool {
        true
    }
}

const DAYS_DESCRIPTION: &str = "A span counted in days: days or weeks, e.g. 90d, 12w, 2w3d. Hours, minutes and \
    seconds are refused: Atlassian records activity per day and it lags up to 24 hours, and m would be ambiguous \
    (minutes or months).";

/// `#[serde(with = "days")]` for a span counted in days (see [`Units::Days`]).
pub mod days {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        d.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s, Units::Days).map_err(serde::de::Error::custom)
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        schema_for(Units::Days, DAYS_DESCRIPTION)
    }
}

/// `#[serde(with = "days_list")]` for a list of spans counted in days (notice lead times).
pub mod days_list {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items.iter().map(|s| Duration::parse(s, Units::Days).map_err(serde::de::Error::custom)).collect()
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "array", "items": schema_for(Units::Days, DAYS_DESCRIPTION)})
    }
}

/// `#[serde(with = "hours")]` for the activity-lag margin (see [`Units::Hours`]).
pub mod hours {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        d.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s, Units::Hours).map_err(serde::de::Error::custom)
    }

    pub fn schema(_: &mut SchemaGenerator) -> Schema {
        schema_for(
            Units::Hours,
            "A span of days, weeks or hours, e.g. 1d, 12h. Minutes and seconds are refused (m would be ambiguous).",
        )
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
        assert_eq!("12w".parse::<Duration>().unwrap(), Duration::from_days(84));
        assert_eq!("2w3d".parse::<Duration>().unwrap(), Duration::from_days(17));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "90", "d", "-3d", "3 d", "3days", "1h1d", "1d1d", "1d1w", "1.5d", "h1", "1s1m", "3y"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn spans_counted_in_days_take_days_and_weeks_only() {
        assert_eq!(Duration::parse_days("90d").unwrap(), Duration::from_days(90));
        assert_eq!(Duration::parse_days("12w").unwrap(), Duration::from_days(84));
        assert_eq!(Duration::parse_days("0d").unwrap(), Duration::from_days(0));
        // `m` is refused as ambiguous, with the reason.
        let e = Duration::parse_days("6m").unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("minutes or months"), "{e}");
        assert!(e.contains("90d, 12w"), "the message shows what to write: {e}");
        // Hours and seconds are below a day, and the message says why that matters.
        for below in ["36h", "1d12h", "3600s"] {
            let e = Duration::parse_days(below).unwrap_err().to_string();
            assert!(e.contains("below a day") && e.contains("per day"), "{below}: {e}");
        }
        // The margin takes hours, never minutes.
        assert_eq!(Duration::parse("12h", Units::Hours).unwrap(), Duration::from_hours(12));
        assert!(Duration::parse("30m", Units::Hours).unwrap_err().to_string().contains("ambiguous"));
        // Schedule intervals take minutes.
        assert_eq!(Duration::parse("30m", Units::Any).unwrap().as_secs(), 1800);
    }

    #[test]
    fn serde_helpers_refuse_what_the_field_cannot_mean() {
        #[derive(Deserialize, Serialize)]
        struct Rule {
            #[serde(with = "days")]
            inactive_for: Duration,
            #[serde(with = "days_list")]
            leads: Vec<Duration>,
        }
        let ok: Rule = serde_json::from_str(r#"{"inactive_for": "12w", "leads": ["2w", "3d"]}"#).unwrap();
        assert_eq!(ok.inactive_for, Duration::from_days(84));
        assert_eq!(ok.leads, vec![Duration::from_days(14), Duration::from_days(3)]);
        // What is written back parses again in the same grammar.
        let back: Rule = serde_json::from_value(serde_json::to_value(&ok).unwrap()).unwrap();
        assert_eq!(back.inactive_for, ok.inactive_for);
        let e = serde_json::from_str::<Rule>(r#"{"inactive_for": "6m", "leads": []}"#).err().unwrap().to_string();
        assert!(e.contains("ambiguous"), "{e}");
        let e = serde_json::from_str::<Rule>(r#"{"inactive_for": "90d", "leads": ["12h"]}"#).err().unwrap().to_string();
        assert!(e.contains("below a day"), "{e}");
    }

    #[test]
    fn parser_and_schema_patterns_agree() {
        let samples = [
            "90d", "24h", "1d12h", "30m", "5s", "1d2h3m4s", "90", "1h1d", "3w", "12w", "2w3d", "-1d", "1d1d", "3 d",
            "6m", "1w1h", "0d", "d",
        ];
        for units in [Units::Any, Units::Days, Units::Hours] {
            let re = regex::Regex::new(units.pattern()).unwrap();
            for s in samples {
                let parsed = Duration::parse(s, units).is_ok();
                let matched = re.is_match(s) && s.len() >= 2;
                assert_eq!(parsed, matched, "parser and pattern disagree on {s:?} ({units:?})");
            }
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
        let w = Duration::parse_days("12w").unwrap();
        assert_eq!(w.to_string(), "84d");
        assert_eq!(Duration::parse_days(&w.to_string()).unwrap(), w);
        assert_eq!(Duration::from_secs(0).to_string(), "0d");
    }
}
