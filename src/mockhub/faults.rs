//! The simulated hub's front door: every request is counted, then the fault switches
//! (added latency, dropped connections, 503s, a fixed answer, echoed credentials, cut
//! JSON), then the scope check, then the API; every answer carries the hub's version.
//! `GET`/`PUT /hubsoak/faults` (with the hub's token) reads and changes the faults of a
//! running simulator, so a test or an operator can stage a regression live.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::Router;
use rand::Rng;
use tower::ServiceExt;

use super::http::{api_error, Resp};
use super::MockHub;

/// A connection dropped on purpose by the fault layer.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Every request passes here first: counting, then the fault switches, then the API.
pub async fn handle_with_faults(
    hub: MockHub,
    router: Router,
    req: Request<hyper::body::Incoming>,
) -> Result<Resp, Dropped> {
    let counters = &hub.inner.counters;
    counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if matches!(
        *req.method(),
        Method::POST | Method::DELETE | Method::PUT | Method::PATCH
    ) {
        counters
            .mutating_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let faults = hub.faults();
    let path = req.uri().path();
    // The ground truth and the fault switch itself are never faulted.
    let faultable = path != "/hub/metrics"
        && !path.starts_with("/hubsoak/")
        && faults
            .only_paths_containing
            .as_deref()
            .is_none_or(|only| path.contains(only));
    let mut malformed = false;
    if faultable {
        if !faults.added_latency.is_zero() {
            tokio::time::sleep(faults.added_latency).await;
        }
        let (drop, fail, cut) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_bool(faults.drop_rate.clamp(0.0, 1.0)),
                rng.gen_bool(faults.server_error_rate.clamp(0.0, 1.0)),
                rng.gen_bool(faults.malformed_json_rate.clamp(0.0, 1.0)),
            )
        };
        if drop {
            return Err(Dropped);
        }
        if fail {
            return Ok(with_version(
                &hub,
                api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            ));
        }
        if let Some((status, message)) = &faults.answer {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(with_version(&hub, api_error(status, message)));
        }
        if let Some(status) = faults.echo_credentials {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let mut resp = api_error(
                status,
                &format!("Invalid credentials in Authorization: {given}"),
            );
            if let Ok(v) = HeaderValue::from_str(&given) {
                resp.headers_mut().insert("x-echo-authorization", v);
            }
            return Ok(with_version(&hub, resp));
        }
        malformed = cut;
    }
    if let Some(refused) = super::tokens::check_scope(&hub, req.method(), path, req.headers()) {
        return Ok(with_version(&hub, refused));
    }
    let (method, path, started) = (
        req.method().to_string(),
        req.uri().path().to_string(),
        std::time::Instant::now(),
    );
    let resp = match router.oneshot(req.map(Body::new)).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    hub.observe_request(
        &method,
        &path,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let resp = if malformed && is_json {
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from("{\"items\": [{\"name\": "))
    } else {
        resp
    };
    Ok(with_version(&hub, resp))
}

/// The JupyterHub handler class that serves `path` (the `handler` label of
/// `jupyterhub_request_duration_seconds`).
pub fn handler_name(path: &str) -> &'static str {
    let rest = path.trim_end_matches('/');
    if rest == "/hub/health" {
        "jupyterhub.handlers.pages.HealthCheckHandler"
    } else if rest == "/hub/metrics" {
        "jupyterhub.handlers.metrics.MetricsHandler"
    } else if rest == "/hub/api" {
        "jupyterhub.apihandlers.base.APIHandler"
    } else if rest == "/hub/api/users" {
        "jupyterhub.apihandlers.users.UserListAPIHandler"
    } else if rest.ends_with("/progress") {
        "jupyterhub.apihandlers.users.SpawnProgressAPIHandler"
    } else if rest.ends_with("/tokens") {
        "jupyterhub.apihandlers.users.UserTokenListAPIHandler"
    } else if rest.contains("/tokens/") {
        "jupyterhub.apihandlers.users.UserTokenAPIHandler"
    } else if rest.ends_with("/activity") {
        "jupyterhub.apihandlers.users.ActivityAPIHandler"
    } else if rest.ends_with("/server") || rest.contains("/servers/") {
        "jupyterhub.apihandlers.users.UserServerAPIHandler"
    } else if rest.starts_with("/hub/api/users/") {
        "jupyterhub.apihandlers.users.UserAPIHandler"
    } else {
        "jupyterhub.handlers.base.Template404"
    }
}

pub fn with_version(hub: &MockHub, mut resp: Resp) -> Resp {
    if let Ok(v) = HeaderValue::from_str(&hub.inner.cfg.version) {
        resp.headers_mut().insert("x-jupyterhub-version", v);
    }
    resp
}

/// The faults a running simulator can be given over HTTP; unset fields keep their value.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    pub spawn_failure_rate: Option<f64>,
    /// Seconds added to every spawn.
    pub spawn_slowdown_s: Option<f64>,
    pub server_error_rate: Option<f64>,
    /// Seconds added before every answer.
    pub added_latency_s: Option<f64>,
}

impl FaultsPatch {
    fn of(f: &super::Faults) -> FaultsPatch {
        FaultsPatch {
            spawn_failure_rate: f.spawn_failure_rate,
            spawn_slowdown_s: Some(f.spawn_slowdown.as_secs_f64()),
            server_error_rate: Some(f.server_error_rate),
            added_latency_s: Some(f.added_latency.as_secs_f64()),
        }
    }

    /// `faults` with this patch applied, or why it cannot be.
    fn apply(&self, mut faults: super::Faults) -> Result<super::Faults, String> {
        let rate = |v: f64| {
            (0.0..=1.0)
                .contains(&v)
                .then_some(v)
                .ok_or("rates are between 0 and 1")
        };
        let secs = |v: f64| {
            std::time::Duration::try_from_secs_f64(v).map_err(|_| "durations are seconds >= 0")
        };
        if let Some(v) = self.spawn_failure_rate {
            faults.spawn_failure_rate = Some(rate(v)?);
        }
        if let Some(v) = self.spawn_slowdown_s {
            faults.spawn_slowdown = secs(v)?;
        }
        if let Some(v) = self.server_error_rate {
            faults.server_error_rate = rate(v)?;
        }
        if let Some(v) = self.added_latency_s {
            faults.added_latency = secs(v)?;
        }
        Ok(faults)
    }
}

pub fn routes() -> Router<MockHub> {
    Router::new().route(
        "/hubsoak/faults",
        axum::routing::get(get_faults).put(put_faults),
    )
}

async fn get_faults(
    axum::extract::State(hub): axum::extract::State<MockHub>,
    headers: axum::http::HeaderMap,
) -> Resp {
    super::tokens::authorized!(hub, headers);
    super::http::json_response(
        StatusCode::OK,
        &serde_json::to_value(FaultsPatch::of(&hub.faults())).unwrap_or_default(),
    )
}

async fn put_faults(
    axum::extract::State(hub): axum::extract::State<MockHub>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Resp {
    super::tokens::authorized!(hub, headers);
    let patch: FaultsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &format!("bad faults: {e}")),
    };
    match patch.apply(hub.faults()) {
        Ok(faults) => {
            tracing::info!(?patch, "faults changed");
            hub.set_faults(faults);
            super::http::json_response(
                StatusCode::OK,
                &serde_json::to_value(FaultsPatch::of(&hub.faults())).unwrap_or_default(),
            )
        }
        Err(why) => api_error(StatusCode::BAD_REQUEST, &why),
    }
}
