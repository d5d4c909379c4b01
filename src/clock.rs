//! Time is an input: the operator, `demo` and `plan` read it from a [`Clock`] that tests and the demo
//! can set and advance in step with the simulator's.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A clock that only moves when told (demo, tests).
    Manual(Arc<Mutex<Timestamp>>),
    /// The clock of a simulator's control API (`GET {base}/_sim/clock`), so a separately running
    /// operator and simulator share one time that a test drives.
    Remote { http: reqwest::Client, url: String, api_key: String },
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the clock at {url}: {message}")]
pub struct ClockError {
    pub url: String,
    pub message: String,
}

impl Clock {
    pub fn manual(at: Timestamp) -> Self {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    /// Reads the simulator's clock from its control API.
    pub fn remote(base_url: &str, api_key: &str) -> Self {
        Clock::Remote {
            http: reqwest::Client::new(),
            url: format!("{}/_sim/clock", base_url.trim_end_matches('/')),
            api_key: api_key.to_owned(),
        }
    }

    pub async fn now(&self) -> Result<Timestamp, ClockError> {
        match self {
            Clock::System => Ok(Timestamp::now()),
            Clock::Manual(t) => Ok(*t.lock().expect("clock lock")),
            Clock::Remote { http, url, api_key } => {
                let err = |message: String| ClockError { url: url.clone(), message };
                let resp =
                    http.get(url).bearer_auth(api_key).send().await.map_err(|e| err(e.without_url().to_string()))?;
                if !resp.status().is_success() {
                    return Err(err(format!("HTTP {}", resp.status())));
                }
                let body: serde_json::Value = resp.json().await.map_err(|e| err(e.without_url().to_string()))?;
                body["now"]
                    .as_str()
                    .ok_or_else(|| err("no `now` field".into()))?
                    .parse()
                    .map_err(|e: jiff::Error| err(e.to_string()))
            }
        }
    }

    /// Moves a manual clock forward; other clocks are not ours to move.
    pub fn advance(&self, by: SignedDuration) {
        if let Clock::Manual(t) = self {
            let mut t = t.lock().expect("clock lock");
            *t = t.checked_add(by).expect("clock stays in range");
        }
    }

    pub fn set(&self, at: Timestamp) {
        if let Clock::Manual(t) = self {
            *t.lock().expect("clock lock") = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_only_when_told() {
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let c = Clock::manual(t0);
        assert_eq!(c.now().await.unwrap(), t0);
        c.advance(SignedDuration::from_hours(24));
        assert_eq!(c.now().await.unwrap(), "2026-11-02T00:00:00Z".parse().unwrap());
    }
}
