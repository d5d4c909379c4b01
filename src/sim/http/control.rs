//! The control API under `/_sim/` (Bearer org API key), for tests and demos that run the simulator
//! as a separate process: clock, faults, rate limit, state save/reset, event and request logs.

use std::path::PathBuf;

use axum::{http::Method, response::Response};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::{Ctx, json, no_content};
use crate::{crd::duration::Duration, sim::Faults};

pub(super) async fn route(ctx: &Ctx<'_>, method: &Method, segs: &[&str]) -> Option<Response> {
    Some(match (method.as_str(), segs) {
        ("GET", ["_sim"] | ["_sim", "info"]) => info(ctx),
        ("GET", ["_sim", "clock"]) => clock(ctx),
        ("POST" | "PUT", ["_sim", "clock"]) => set_clock(ctx),
        ("GET", ["_sim", "faults"]) => faults(ctx),
        ("POST" | "PUT", ["_sim", "faults"]) => set_faults(ctx),
        ("POST" | "PUT", ["_sim", "rate-limit"]) => set_rate_limit(ctx),
        ("GET", ["_sim", "events"]) => events(ctx),
        ("GET", ["_sim", "requests"]) => {
            let counts = super::super::lock(&ctx.shared.counters).counts;
            json(200, &counts)
        }
        ("GET", ["_sim", "state"]) => json(200, &*ctx.shared.read()),
        ("POST", ["_sim", "state", "save"]) => save(ctx).await,
        ("POST", ["_sim", "state", "reset"]) => {
            ctx.shared.reset();
            no_content()
        }
        _ => return None,
    })
}

fn bad(ctx: &Ctx<'_>, detail: &str) -> Response {
    ctx.error(400, "SIM-400", "Bad request", detail)
}

fn info(ctx: &Ctx<'_>) -> Response {
    let state = ctx.shared.read();
    json(
        200,
        &serde_json::json!({
            "baseUrl": ctx.base_url(),
            "orgId": state.org_id,
            "directoryIds": state.directories.iter().map(|d| &d.id).collect::<Vec<_>>(),
            "users": state.users.len(),
            "groups": state.groups.len(),
            "now": ctx.shared.now().to_string(),
        }),
    )
}

fn clock(ctx: &Ctx<'_>) -> Response {
    let c = super::super::lock(&ctx.shared.clock);
    json(200, &serde_json::json!({"now": c.now().to_string(), "frozen": c.is_frozen()}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    /// Set the clock to this instant (RFC 3339).
    now: Option<String>,
    /// Move the clock forward: `90d`, `1d12h`, `30m`.
    advance: Option<String>,
    frozen: Option<bool>,
}

fn set_clock(ctx: &Ctx<'_>) -> Response {
    let body: ClockBody = match serde_json::from_slice(&ctx.body) {
        Ok(b) => b,
        Err(e) => return bad(ctx, &format!("request body: {e} (expected {{\"now\"?, \"advance\"?, \"frozen\"?}})")),
    };
    let now = match body.now.as_deref().map(str::parse::<Timestamp>).transpose() {
        Ok(n) => n,
        Err(e) => return bad(ctx, &format!("now: {e}")),
    };
    let advance = match body.advance.as_deref().map(str::parse::<Duration>).transpose() {
        Ok(a) => a,
        Err(e) => return bad(ctx, &format!("advance: {e}")),
    };
    let mut c = super::super::lock(&ctx.shared.clock);
    if let Some(f) = body.frozen {
        c.set_frozen(f);
    }
    if let Some(n) = now {
        c.set_now(n);
    }
    if let Some(a) = advance {
        c.advance(SignedDuration::from_secs(a.as_secs()));
    }
    json(200, &serde_json::json!({"now": c.now().to_string(), "frozen": c.is_frozen()}))
}

fn faults(ctx: &Ctx<'_>) -> Response {
    let f = ctx.shared.faults();
    json(200, &serde_json::json!({"spec": f.to_string(), "faults": f}))
}

#[derive(Deserialize)]
struct FaultsBody {
    spec: String,
}

fn set_faults(ctx: &Ctx<'_>) -> Response {
    let body: FaultsBody = match serde_json::from_slice(&ctx.body) {
        Ok(b) => b,
        Err(e) => return bad(ctx, &format!("request body: {e} (expected {{\"spec\": \"429=0.1,...\"}})")),
    };
    match Faults::parse(&body.spec) {
        Ok(f) => {
            *super::super::lock(&ctx.shared.faults) = f.clone();
            json(200, &serde_json::json!({"spec": f.to_string(), "faults": f}))
        }
        Err(e) => bad(ctx, &e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitBody {
    per_minute: Option<u32>,
}

fn set_rate_limit(ctx: &Ctx<'_>) -> Response {
    let body: RateLimitBody = match serde_json::from_slice(&ctx.body) {
        Ok(b) => b,
        Err(e) => return bad(ctx, &format!("request body: {e} (expected {{\"perMinute\": N or null}})")),
    };
    *super::super::lock(&ctx.shared.rate_limit) = body.per_minute;
    json(200, &serde_json::json!({"perMinute": body.per_minute}))
}

fn events(ctx: &Ctx<'_>) -> Response {
    let since = match ctx.query.int("since", 0, 0, u32::MAX) {
        Ok(s) => s as u64,
        Err(e) => return bad(ctx, &e),
    };
    let state = ctx.shared.read();
    let events: Vec<_> = state.events.iter().filter(|e| e.seq > since).collect();
    json(200, &serde_json::json!({"events": events}))
}

#[derive(Deserialize, Default)]
struct SaveBody {
    path: Option<PathBuf>,
}

async fn save(ctx: &Ctx<'_>) -> Response {
    let body: SaveBody = if ctx.body.is_empty() {
        SaveBody::default()
    } else {
        match serde_json::from_slice(&ctx.body) {
            Ok(b) => b,
            Err(e) => return bad(ctx, &format!("request body: {e} (expected {{\"path\"?: \"FILE\"}})")),
        }
    };
    match ctx.shared.save(body.path.as_deref()) {
        Ok(path) => json(200, &serde_json::json!({"path": path})),
        Err(e) => ctx.error(500, "SIM-500", "Save failed", &e.to_string()),
    }
}
