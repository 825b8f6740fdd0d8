//! The simulated hub's HTTP surface: the routes, and the handlers of the hub's own
//! endpoints (health, version, metrics), users and activity. Servers are in servers.rs,
//! the fault layer in faults.rs, tokens and groups in tokens.rs.

// An early-return response is built once per request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::http::{api_error, empty, json_response, Resp, INVALID_JSON};
use super::servers::{
    progress_default, progress_named, start_default, start_named, stop_default, stop_named,
};
use super::state::Phase;
use super::tokens::authorized;
use super::MockHub;

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
        .merge(super::faults::routes())
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(hub)
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
