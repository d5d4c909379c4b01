//! Injected faults: `429=0.1,500=0.01,503=0.02,latency=20ms,fail-page=3,malformed=0.01`, and listings
//! that lie quietly: `duplicate-page=2,cycle-cursor=3,empty-directory=2,api-tokens=403`.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

/// What the simulator does wrong on purpose. Rates are probabilities per request (0.0 to 1.0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Share of requests answered 429 with `Retry-After`.
    pub rate_429: f64,
    /// Share of requests answered 500.
    pub rate_500: f64,
    /// Share of requests answered 503 with `Retry-After`.
    pub rate_503: f64,
    /// Added to every request before it is handled.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// The Nth page (1-based) of every listing fails with 500, every time.
    pub fail_page: Option<u32>,
    /// Share of successful JSON responses whose body is cut short (does not parse).
    pub malformed: f64,
    /// Listings (v2 users search, API tokens) serve their Nth page twice: its `next` cursor leads
    /// to the same entries again, then paging goes on. Nothing is lost; everyone on it is listed twice.
    #[serde(default)]
    pub duplicate_page: Option<u32>,
    /// Listings (v2 users search, API tokens): the Nth page's `next` is the first page's cursor,
    /// so paging never ends unless the client notices.
    #[serde(default)]
    pub cycle_cursor: Option<u32>,
    /// This directory (a directory id, or its 1-based position) answers its users search with
    /// `data: []` and no error, while its groups keep their members and its stats count them.
    #[serde(default)]
    pub empty_directory: Option<String>,
    /// The API Access API refuses the token listing with 403 (the plan or the key's scopes).
    #[serde(default)]
    pub api_tokens_refused: bool,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultsError {
    #[error("fault spec part {part:?}: expected NAME=VALUE (names: {KNOWN})")]
    Syntax { part: String },
    #[error("fault spec {name}: unknown fault (known: {KNOWN})")]
    UnknownName { name: String },
    #[error("fault spec {name}={value}: a rate must be a number from 0 to 1")]
    BadRate { name: String, value: String },
    #[error("fault spec latency={value}: expected a duration such as 20ms or 1s")]
    BadLatency { value: String },
    #[error("fault spec {name}={value}: expected a page number from 1")]
    BadPage { name: String, value: String },
    #[error("fault spec api-tokens={value}: the only refusal is 403")]
    BadTokenRefusal { value: String },
    #[error("fault spec empty-directory: expected a directory id or its position from 1")]
    BadDirectory,
}

const KNOWN: &str =
    "429, 500, 503, latency, fail-page, malformed, duplicate-page, cycle-cursor, empty-directory, api-tokens";

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `429=0.1,500=0.01,503=0.02,latency=20ms,fail-page=3,malformed=0.01` (any subset, any
    /// order; an empty spec means no faults).
    pub fn parse(spec: &str) -> Result<Self, FaultsError> {
        let mut faults = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| FaultsError::Syntax { part: part.to_string() })?;
            let (name, value) = (name.trim(), value.trim());
            let rate = || -> Result<f64, FaultsError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| FaultsError::BadRate { name: name.to_string(), value: value.to_string() })
            };
            match name {
                "429" => faults.rate_429 = rate()?,
                "500" => faults.rate_500 = rate()?,
                "503" => faults.rate_503 = rate()?,
                "malformed" => faults.malformed = rate()?,
                "latency" => faults.latency = parse_latency(value)?,
                "fail-page" | "duplicate-page" | "cycle-cursor" => {
                    let page = value
                        .parse::<u32>()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| FaultsError::BadPage { name: name.to_string(), value: value.to_string() })?;
                    match name {
                        "fail-page" => faults.fail_page = Some(page),
                        "duplicate-page" => faults.duplicate_page = Some(page),
                        _ => faults.cycle_cursor = Some(page),
                    }
                }
                "empty-directory" if !value.is_empty() && value != "0" => {
                    faults.empty_directory = Some(value.to_string())
                }
                "empty-directory" => return Err(FaultsError::BadDirectory),
                "api-tokens" if value == "403" => faults.api_tokens_refused = true,
                "api-tokens" => return Err(FaultsError::BadTokenRefusal { value: value.to_string() }),
                _ => return Err(FaultsError::UnknownName { name: name.to_string() }),
            }
        }
        Ok(faults)
    }

    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }

    /// Where a listing's `next` link leads from page `page` (1-based) starting at position `at`,
    /// whose true continuation is `next_at`: (position, page number), with `duplicate-page` and
    /// `cycle-cursor` applied.
    pub fn next_page(&self, at: usize, page: u32, next_at: Option<usize>) -> Option<(usize, u32)> {
        if self.cycle_cursor == Some(page) && next_at.is_some() {
            return Some((0, 1));
        }
        if self.duplicate_page == Some(page) {
            return Some((at, page + 1));
        }
        next_at.map(|n| (n, page + 1))
    }

    /// The `empty-directory` fault names the directory with this id at this position (0-based).
    pub fn empties(&self, directory_id: &str, position: usize) -> bool {
        self.empty_directory.as_deref().is_some_and(|d| d == directory_id || d.parse::<usize>() == Ok(position + 1))
    }
}

fn parse_latency(value: &str) -> Result<Duration, FaultsError> {
    let bad = || FaultsError::BadLatency { value: value.to_string() };
    let (number, scale_ms) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !(0.0..=600_000.0).contains(&(n * scale_ms)) {
        return Err(bad());
    }
    Ok(Duration::from_micros((n * scale_ms * 1000.0).round() as u64))
}

impl FromStr for Faults {
    type Err = FaultsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Faults::parse(s)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, rate) in [("429", self.rate_429), ("500", self.rate_500), ("503", self.rate_503)] {
            if rate > 0.0 {
                parts.push(format!("{name}={rate}"));
            }
        }
        if !self.latency.is_zero() {
            parts.push(format!("latency={}ms", self.latency.as_millis()));
        }
        if let Some(p) = self.fail_page {
            parts.push(format!("fail-page={p}"));
        }
        if self.malformed > 0.0 {
            parts.push(format!("malformed={}", self.malformed));
        }
        if let Some(p) = self.duplicate_page {
            parts.push(format!("duplicate-page={p}"));
        }
        if let Some(p) = self.cycle_cursor {
            parts.push(format!("cycle-cursor={p}"));
        }
        if let Some(d) = &self.empty_directory {
            parts.push(format!("empty-directory={d}"));
        }
        if self.api_tokens_refused {
            parts.push("api-tokens=403".to_string());
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let f = Faults::parse("429=0.1,500=0.01,503=0.02,latency=20ms,fail-page=3,malformed=0.01").unwrap();
        assert_eq!(f.rate_429, 0.1);
        assert_eq!(f.rate_500, 0.01);
        assert_eq!(f.rate_503, 0.02);
        assert_eq!(f.latency, Duration::from_millis(20));
        assert_eq!(f.fail_page, Some(3));
        assert_eq!(f.malformed, 0.01);
        assert_eq!(Faults::parse(&f.to_string()).unwrap(), f);
    }

    #[test]
    fn listing_faults_parse_and_print_back() {
        let f = Faults::parse("duplicate-page=2,cycle-cursor=3,empty-directory=2,api-tokens=403").unwrap();
        assert_eq!((f.duplicate_page, f.cycle_cursor), (Some(2), Some(3)));
        assert_eq!(f.empty_directory.as_deref(), Some("2"));
        assert!(f.api_tokens_refused);
        assert_eq!(Faults::parse(&f.to_string()).unwrap(), f);
    }

    #[test]
    fn empty_spec_means_no_faults() {
        assert!(Faults::parse("").unwrap().is_none());
        assert_eq!(Faults::parse("latency=1s").unwrap().latency, Duration::from_secs(1));
    }

    #[test]
    fn bad_specs_name_the_part() {
        assert_eq!(Faults::parse("429=2"), Err(FaultsError::BadRate { name: "429".into(), value: "2".into() }));
        assert!(matches!(Faults::parse("404=0.1"), Err(FaultsError::UnknownName { .. })));
        assert!(matches!(Faults::parse("latency"), Err(FaultsError::Syntax { .. })));
        assert!(matches!(Faults::parse("fail-page=0"), Err(FaultsError::BadPage { .. })));
        assert!(Faults::parse("cycle-cursor=x").unwrap_err().to_string().contains("cycle-cursor=x"));
        assert!(matches!(Faults::parse("api-tokens=500"), Err(FaultsError::BadTokenRefusal { .. })));
        assert!(matches!(Faults::parse("empty-directory="), Err(FaultsError::BadDirectory)));
        assert!(matches!(Faults::parse("latency=fast"), Err(FaultsError::BadLatency { .. })));
        assert!(Faults::parse("429=0.1,oops").unwrap_err().to_string().contains("oops"));
    }
}
