//! The simulated hub's HTTP surface: routes, auth, the fault layer and each handler.

// An early-return response is built once per request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::http::{api_error, empty, json_response, Resp, INVALID_JSON};
use super::state::{server_url, Phase};
use super::tokens::authorize;
use super::MockHub;
use crate::names::valid_server_name;

/// A connection dropped on purpose by the fault layer.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

pub fn router(hub: MockHub) -> Router {
    Router::new()
        .route("/hub/health", get(health))
        .route("/hub/api", get(version))
        .route("/hub/api/", get(version))
        .route("/hub/metrics", get(metrics))
        .route("/hub/api/users", get(list_users).post(create_users))
        .route(
            "/hub/api/users/{name}",
            get(get_user).post(create_user).delete(delete_user),
        )
        .route(
            "/hub/api/users/{name}/server",
            axum::routing::post(start_default).delete(stop_default),
        )
        .route(
            "/hub/api/users/{name}/servers/{server}",
            axum::routing::post(start_named).delete(stop_named),
        )
        .route(
            "/hub/api/users/{name}/server/progress",
            get(progress_default),
        )
        .route(
            "/hub/api/users/{name}/servers/{server}/progress",
            get(progress_named),
        )
        .route(
            "/hub/api/users/{name}/activity",
            axum::routing::post(activity),
        )
        .merge(super::singleuser::routes())
        .merge(super::tokens::routes())
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(hub)
}

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

fn with_version(hub: &MockHub, mut resp: Resp) -> Resp {
    if let Ok(v) = HeaderValue::from_str(&hub.inner.cfg.version) {
        resp.headers_mut().insert("x-jupyterhub-version", v);
    }
    resp
}

macro_rules! authorized {
    ($hub:expr, $headers:expr) => {
        if let Err(resp) = authorize(&$hub, &$headers) {
            return resp;
        }
    };
}

async fn health() -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::empty())
        .unwrap_or_default()
}

async fn version(State(hub): State<MockHub>) -> Resp {
    json_response(StatusCode::OK, &json!({ "version": hub.inner.cfg.version }))
}

async fn metrics(State(hub): State<MockHub>, headers: HeaderMap) -> Resp {
    if hub.inner.cfg.authenticate_prometheus {
        authorized!(hub, headers);
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Body::from(hub.metrics_text()))
        .unwrap_or_default()
}

async fn list_users(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Resp {
    authorized!(hub, headers);
    let paginated = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/jupyterhub-pagination+json"));
    let number = |key: &str| params.get(key).and_then(|v| v.parse::<u64>().ok());
    let offset = number("offset").unwrap_or(0);
    // Without the pagination header JupyterHub defaults to its largest page and
    // silently cuts the list there.
    let default_limit = if paginated { 50 } else { 200 };
    let limit = number("limit").unwrap_or(default_limit).clamp(1, 200);
    let filter = params.get("name_filter").cloned().unwrap_or_default();
    let state_filter = params.get("state").cloned();
    if let Some(s) = &state_filter {
        if !matches!(s.as_str(), "active" | "ready" | "inactive") {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("Unrecognized state filter: {s:?}"),
            );
        }
    }
    let st = hub.lock();
    let mut users: Vec<_> = st
        .users
        .values()
        .filter(|u| u.name.contains(&filter))
        .filter(|u| match state_filter.as_deref() {
            Some("active") => u.servers.values().any(|s| s.phase.is_active()),
            Some("ready") => u.servers.values().any(|s| s.phase == Phase::Running),
            Some("inactive") => !u.servers.values().any(|s| s.phase.is_active()),
            _ => true,
        })
        .collect();
    users.sort_by_key(|u| u.id);
    let total = users.len() as u64;
    let items: Vec<Value> = users
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|u| st.user_model(u))
        .collect();
    if !paginated {
        return json_response(StatusCode::OK, &Value::Array(items));
    }
    let next = (offset + limit < total).then(|| {
        json!({
            "offset": offset + limit,
            "limit": limit,
            "url": format!("/hub/api/users?offset={}&limit={}", offset + limit, limit),
        })
    });
    json_response(
        StatusCode::OK,
        &json!({
            "items": items,
            "_pagination": { "offset": offset, "limit": limit, "total": total, "next": next },
        }),
    )
}

async fn create_users(State(hub): State<MockHub>, headers: HeaderMap, body: Bytes) -> Resp {
    authorized!(hub, headers);
    let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, INVALID_JSON);
    };
    let names: Vec<String> = match data.get("usernames") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_lowercase))
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Must specify at least one user to create",
        );
    }
    let invalid: Vec<&String> = names
        .iter()
        .filter(|n| n.is_empty() || n.contains('/') || n.len() > 255)
        .collect();
    if !invalid.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid usernames: {invalid:?}"),
        );
    }
    let admin = data.get("admin").and_then(Value::as_bool).unwrap_or(false);
    let mut st = hub.lock();
    let mut created = Vec::new();
    for name in &names {
        if !st.users.contains_key(name) {
            st.add_user(name, admin);
            created.push(name.clone());
            hub.inner
                .counters
                .users_created
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    hub.sync_gauges(&st);
    if created.is_empty() {
        return api_error(
            StatusCode::CONFLICT,
            &format!("All {} users already exist", names.len()),
        );
    }
    let models: Vec<Value> = created
        .iter()
        .filter_map(|n| st.users.get(n).map(|u| st.user_model(u)))
        .collect();
    json_response(StatusCode::CREATED, &Value::Array(models))
}

/// `POST /users/{name}`: one user (body: optional `{"admin": bool}`); 409 if it exists.
async fn create_user(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Resp {
    authorized!(hub, headers);
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => serde_json::Map::new(),
            Err(_) => return api_error(StatusCode::BAD_REQUEST, INVALID_JSON),
        }
    };
    let name = name.to_lowercase();
    let mut st = hub.lock();
    if st.users.contains_key(&name) {
        return api_error(StatusCode::CONFLICT, &format!("User {name} already exists"));
    }
    let admin = data.get("admin").and_then(Value::as_bool).unwrap_or(false);
    st.add_user(&name, admin);
    hub.inner
        .counters
        .users_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    hub.sync_gauges(&st);
    match st.users.get(&name) {
        Some(u) => json_response(StatusCode::CREATED, &st.user_model(u)),
        None => api_error(StatusCode::INTERNAL_SERVER_ERROR, "user vanished"),
    }
}

async fn get_user(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    authorized!(hub, headers);
    let st = hub.lock();
    match st.users.get(&name) {
        Some(user) => json_response(StatusCode::OK, &st.user_model(user)),
        None => api_error(StatusCode::NOT_FOUND, &format!("No such user: '{name}'")),
    }
}

async fn delete_user(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    authorized!(hub, headers);
    let stopping_msg = format!("{name}'s server is in the process of stopping, please wait.");
    // Like JupyterHub: refuse while the default server is stopping; stop a running one
    // first (waiting up to slow_stop_timeout) and refuse if it is still stopping then.
    let pending_stop = {
        let mut st = hub.lock();
        let Some(user) = st.users.get(&name) else {
            return empty(StatusCode::NOT_FOUND);
        };
        let default = user.servers.get("").map(|s| s.phase.clone());
        match default {
            Some(Phase::Stopping) => return api_error(StatusCode::BAD_REQUEST, &stopping_msg),
            Some(Phase::Running | Phase::Spawning) => Some(hub.begin_stop(&mut st, &name, "")),
            _ => None,
        }
    };
    if let Some(generation) = pending_stop {
        let limit = hub.inner.cfg.slow_stop_timeout;
        let phase = hub
            .settle(&name, "", generation, &Phase::Stopping, limit)
            .await;
        if phase == Some(Phase::Stopping) {
            return api_error(StatusCode::BAD_REQUEST, &stopping_msg);
        }
    }
    let mut st = hub.lock();
    // Named servers go with the user.
    st.remove_user(&name);
    hub.sync_gauges(&st);
    drop(st);
    hub.notify();
    empty(StatusCode::NO_CONTENT)
}

async fn start_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Resp {
    start(hub, headers, name, String::new(), body).await
}

async fn start_named(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path((name, server)): Path<(String, String)>,
    body: Bytes,
) -> Resp {
    start(hub, headers, name, server, body).await
}

fn check_named(hub: &MockHub, server: &str) -> Result<(), Resp> {
    if server.is_empty() {
        return Ok(());
    }
    if !hub.inner.cfg.allow_named_servers {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "Named servers are not enabled.",
        ));
    }
    if !valid_server_name(server) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid server_name: {server:?}"),
        ));
    }
    Ok(())
}

fn log_name(name: &str, server: &str) -> String {
    if server.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{server}")
    }
}

async fn start(
    hub: MockHub,
    headers: HeaderMap,
    name: String,
    server: String,
    body: Bytes,
) -> Resp {
    authorized!(hub, headers);
    if let Err(resp) = check_named(&hub, &server) {
        return resp;
    }
    // 6.x accepts {"user_options": {...}} as well as the bare options of 5.x.
    let options = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) => match map.remove("user_options") {
            Some(inner @ Value::Object(_)) if map.is_empty() => inner,
            Some(other) => {
                map.insert("user_options".into(), other);
                Value::Object(map)
            }
            None => Value::Object(map),
        },
        Ok(Value::Null) | Err(_) if body.iter().all(u8::is_ascii_whitespace) => json!({}),
        _ => return api_error(StatusCode::BAD_REQUEST, INVALID_JSON),
    };
    let cfg = &hub.inner.cfg;
    let spawn_metric = &hub.inner.truth.spawn;
    let generation = {
        let mut st = hub.lock();
        let (spawning, running) = (st.spawning, st.running);
        let Some(user) = st.users.get_mut(&name) else {
            return api_error(StatusCode::NOT_FOUND, &format!("No such user: {name}"));
        };
        let now = Instant::now();
        if user.retry_not_before.is_some_and(|t| now < t) {
            hub.inner
                .counters
                .early_retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let phase = user
            .servers
            .get(&server)
            .map_or(Phase::Stopped, |s| s.phase.clone());
        match phase {
            Phase::Stopping => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    &format!("{} is pending stop", log_name(&name, &server)),
                )
            }
            Phase::Spawning => {
                spawn_metric
                    .with_label_values(&["failure", "already-pending"])
                    .observe(0.0);
                return empty(StatusCode::ACCEPTED);
            }
            Phase::Running => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    &format!("{} is already running", log_name(&name, &server)),
                )
            }
            Phase::Stopped | Phase::Failed(_) => {}
        }
        if cfg
            .active_server_limit
            .is_some_and(|l| spawning + running >= l)
        {
            spawn_metric
                .with_label_values(&["failure", "too-many-users"])
                .observe(0.0);
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Active user limit exceeded. Try again in a few minutes.",
            );
        }
        if cfg.concurrent_spawn_limit.is_some_and(|l| spawning >= l) {
            let secs = rand::thread_rng().gen_range(cfg.retry_after.clone());
            user.retry_not_before = Some(now + Duration::from_secs(secs));
            hub.inner
                .counters
                .throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            spawn_metric
                .with_label_values(&["failure", "throttled"])
                .observe(0.0);
            let mut resp = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many users trying to log in right now. Try again in {secs} seconds."),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
        user.retry_not_before = None;
        if let Some(rec) = st.server_entry(&name, &server) {
            rec.user_options = options;
        }
        let generation = hub.begin_spawn(&mut st, &name, &server);
        drop(st);
        hub.notify();
        generation
    };
    let phase = hub
        .settle(
            &name,
            &server,
            generation,
            &Phase::Spawning,
            cfg.slow_spawn_timeout,
        )
        .await;
    match phase {
        Some(Phase::Running) => empty(StatusCode::CREATED),
        Some(Phase::Failed(message)) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        _ => empty(StatusCode::ACCEPTED),
    }
}

async fn stop_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    stop(hub, headers, name, String::new()).await
}

async fn stop_named(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path((name, server)): Path<(String, String)>,
) -> Resp {
    stop(hub, headers, name, server).await
}

async fn stop(hub: MockHub, headers: HeaderMap, name: String, server: String) -> Resp {
    authorized!(hub, headers);
    if let Err(resp) = check_named(&hub, &server) {
        return resp;
    }
    let generation = {
        let mut st = hub.lock();
        let Some(user) = st.users.get(&name) else {
            return api_error(StatusCode::NOT_FOUND, &format!("No such user: {name}"));
        };
        let phase = match user.servers.get(&server) {
            Some(s) => s.phase.clone(),
            None => {
                return api_error(
                    StatusCode::NOT_FOUND,
                    &format!("{name} has no server named '{server}'"),
                )
            }
        };
        st.server_entry(&name, &server);
        match phase {
            Phase::Stopping => return empty(StatusCode::ACCEPTED),
            Phase::Stopped | Phase::Failed(_) => return empty(StatusCode::NO_CONTENT),
            Phase::Running | Phase::Spawning => {
                let generation = hub.begin_stop(&mut st, &name, &server);
                drop(st);
                hub.notify();
                generation
            }
        }
    };
    let phase = hub
        .settle(
            &name,
            &server,
            generation,
            &Phase::Stopping,
            hub.inner.cfg.slow_stop_timeout,
        )
        .await;
    if phase == Some(Phase::Stopping) {
        empty(StatusCode::ACCEPTED)
    } else {
        empty(StatusCode::NO_CONTENT)
    }
}

async fn progress_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    progress(hub, headers, name, String::new()).await
}

async fn progress_named(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path((name, server)): Path<(String, String)>,
) -> Resp {
    progress(hub, headers, name, server).await
}

fn event(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn ready_event(name: &str, server: &str) -> Value {
    let url = server_url(name, server);
    json!({
        "progress": 100,
        "ready": true,
        "message": format!("Server ready at {url}"),
        "html_message": format!("Server ready at <a href=\"{url}\">{url}</a>"),
        "url": url,
    })
}

fn failed_event(message: &str) -> Value {
    json!({ "progress": 100, "failed": true, "message": message })
}

/// `text/event-stream` of a spawn: progress events, then ready or failed; a blank
/// keep-alive every 8 s while nothing happens.
async fn progress(hub: MockHub, headers: HeaderMap, name: String, server: String) -> Resp {
    authorized!(hub, headers);
    let phase = {
        let st = hub.lock();
        let Some(user) = st.users.get(&name) else {
            return api_error(StatusCode::NOT_FOUND, &format!("No such user: {name}"));
        };
        match user.servers.get(&server) {
            Some(s) if s.touched => s.phase.clone(),
            // Never loaded: JupyterHub answers a bare 404.
            _ => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"status": 404, "message": null}),
                )
            }
        }
    };
    let stream_of = |first: Vec<Bytes>| {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(futures::stream::iter(
                first.into_iter().map(Ok::<_, Infallible>),
            )))
            .unwrap_or_default()
    };
    match phase {
        Phase::Running => return stream_of(vec![event(&ready_event(&name, &server))]),
        Phase::Failed(message) => return stream_of(vec![event(&failed_event(&message))]),
        Phase::Spawning => {}
        Phase::Stopped | Phase::Stopping => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("{} is not starting...", log_name(&name, &server)),
            )
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer_hub = hub.clone();
    tokio::spawn(async move {
        let mut changes = writer_hub.inner.changes.subscribe();
        let mut last_progress = None;
        loop {
            let snapshot = {
                let st = writer_hub.lock();
                st.users
                    .get(&name)
                    .and_then(|u| u.servers.get(&server))
                    .map(|s| (s.phase.clone(), s.progress))
            };
            let (done, chunk) = match snapshot {
                Some((Phase::Spawning, p)) if last_progress != Some(p) => {
                    last_progress = Some(p);
                    let message = if p == 0 {
                        "Server requested".to_string()
                    } else {
                        format!("Spawning server... ({p}%)")
                    };
                    (
                        false,
                        Some(event(&json!({ "progress": p, "message": message }))),
                    )
                }
                Some((Phase::Spawning, _)) => (false, None),
                Some((Phase::Running, _)) => (true, Some(event(&ready_event(&name, &server)))),
                Some((Phase::Failed(message), _)) => (true, Some(event(&failed_event(&message)))),
                _ => (
                    true,
                    Some(event(&failed_event(
                        "Spawn cancelled: the server was stopped",
                    ))),
                ),
            };
            if let Some(chunk) = chunk {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(8)) => {
                    if tx.send(Bytes::from_static(b"\n")).await.is_err() { return; }
                }
                _ = tx.closed() => return,
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

/// ISO-8601 with `Z`, an offset, or naive (taken as UTC).
fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

fn validate_timestamp(raw: &Value) -> Result<DateTime<Utc>, Resp> {
    let text = raw.as_str().unwrap_or_default();
    let Some(t) = parse_timestamp(text) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid timestamp: {raw}"),
        ));
    };
    if t - Utc::now() > chrono::Duration::minutes(59) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            &format!("Rejecting activity from more than an hour in the future: {text}"),
        ));
    }
    Ok(t)
}

async fn activity(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Resp {
    authorized!(hub, headers);
    let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, INVALID_JSON);
    };
    let last = data.get("last_activity").filter(|v| !v.is_null());
    let servers = data.get("servers").filter(|v| !v.is_null());
    if last.is_none() && servers.is_none() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "body must contain at least one of `last_activity` or `servers`",
        );
    }
    let servers = match servers {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "servers must be a dict of the form {server_name: {last_activity: timestamp}}",
            )
        }
    };
    let user_time = match last.map(validate_timestamp).transpose() {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let mut server_times = Vec::new();
    for (server, info) in &servers {
        let Some(raw) = info.get("last_activity") else {
            return api_error(
                StatusCode::BAD_REQUEST,
                "servers must be a dict of the form {server_name: {last_activity: timestamp}}",
            );
        };
        match validate_timestamp(raw) {
            Ok(t) => server_times.push((server.clone(), t)),
            Err(resp) => return resp,
        }
    }
    let mut st = hub.lock();
    let Some(user) = st.users.get_mut(&name) else {
        return api_error(StatusCode::NOT_FOUND, &format!("No such user: '{name}'"));
    };
    for (server, _) in &server_times {
        if !user.servers.contains_key(server) {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("No such server '{server}' for user {name}"),
            );
        }
    }
    // JupyterHub keeps the newest time it has been told.
    let newest =
        |old: Option<DateTime<Utc>>, new: DateTime<Utc>| Some(old.map_or(new, |o| o.max(new)));
    if let Some(t) = user_time {
        user.last_activity = newest(user.last_activity, t);
    }
    for (server, t) in server_times {
        if let Some(rec) = user.servers.get_mut(&server) {
            rec.last_activity = newest(rec.last_activity, t);
        }
        user.last_activity = newest(user.last_activity, t);
    }
    empty(StatusCode::OK)
}
