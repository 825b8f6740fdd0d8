//! The simulated hub's front door: every request is counted, then the fault switches
//! (added latency, dropped connections, 503s, a fixed answer, echoed credentials, cut
//! JSON), then the scope check, then the API; every answer carries the hub's version.

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
    let faultable = path != "/hub/metrics"
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
