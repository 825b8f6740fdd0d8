//! The simulated hub's tokens and groups: `GET /hub/api/user` (who a token is, with its
//! scopes), the scope each route needs (checked in one place, as JupyterHub's
//! `@needs_scope` does), and the groups API with properties, which the prefix lease
//! uses.

// An early-return response is built once per request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use super::http::{api_error, empty, json_response, Resp, INVALID_JSON};
use super::MockHub;

/// The expanded scopes of the all-powerful token (an admin's, with its subscopes).
const ALL_SCOPES: [&str; 20] = [
    "access:servers",
    "admin:auth_state",
    "admin:groups",
    "admin:server_state",
    "admin:servers",
    "admin:users",
    "delete:servers",
    "delete:users",
    "groups",
    "list:groups",
    "list:users",
    "read:groups",
    "read:metrics",
    "read:servers",
    "read:users",
    "read:users:activity",
    "servers",
    "tokens",
    "users",
    "users:activity",
];

pub fn routes() -> Router<MockHub> {
    Router::new()
        .route("/hub/api/user", get(whoami))
        .route(
            "/hub/api/groups/{name}",
            get(get_group).post(create_group).delete(delete_group),
        )
        .route("/hub/api/groups/{name}/properties", put(set_properties))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            matches!(scheme.to_ascii_lowercase().as_str(), "token" | "bearer").then(|| token.trim())
        })
}

/// The scopes of the token in `headers`: `None` if the hub does not know it.
pub(super) fn token_scopes(hub: &MockHub, headers: &HeaderMap) -> Option<Vec<String>> {
    let given = bearer(headers)?;
    if given == hub.inner.cfg.token {
        return Some(ALL_SCOPES.iter().map(|s| s.to_string()).collect());
    }
    if let Some((_, scopes)) = hub
        .inner
        .cfg
        .limited_tokens
        .iter()
        .find(|(t, _)| t == given)
    {
        return Some(scopes.clone());
    }
    // A user's own token: the user's own scopes, filtered to that user.
    let user = hub.su().user_of(given)?;
    Some(
        USER_SCOPES
            .iter()
            .map(|s| format!("{s}!user={user}"))
            .collect(),
    )
}

/// What JupyterHub's default `user` role grants a user over themselves.
const USER_SCOPES: [&str; 6] = [
    "read:users",
    "read:servers",
    "servers",
    "access:servers",
    "users:activity",
    "tokens",
];

/// The scope an API request needs (any one of them), as JupyterHub's handlers declare.
fn needed(method: &Method, path: &str) -> Option<&'static [&'static str]> {
    let rest = path.strip_prefix("/hub/api/")?.trim_end_matches('/');
    let parts: Vec<&str> = rest.split('/').collect();
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match (parts.as_slice(), read) {
        (["users"], true) => &["list:users"],
        (["users"], false) => &["admin:users"],
        (["users", _], true) => &["read:users"],
        (["users", _], false) => &["admin:users", "delete:users"],
        (["users", _, "activity"], _) => &["users:activity"],
        (["users", _, "tokens", ..], _) => &["tokens"],
        (["users", _, "server" | "servers", ..], true) => &["read:servers", "servers"],
        (["users", _, "server" | "servers", ..], false) => &["servers", "admin:servers"],
        (["groups", ..], true) => &["read:groups", "admin:groups"],
        (["groups", ..], false) => &["admin:groups"],
        _ => return None,
    })
}

/// 403 for a limited token without the scope the request needs.
pub(super) fn check_scope(
    hub: &MockHub,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Resp> {
    let want = needed(method, path)?;
    let held = token_scopes(hub, headers)?;
    // A scope filtered to a user (`read:users!user=NAME`) holds for that user's paths.
    let user = path
        .strip_prefix("/hub/api/users/")
        .and_then(|rest| rest.split('/').next())
        .filter(|u| !u.is_empty());
    let holds = |w: &str| {
        held.iter().any(|h| {
            h == w || user.is_some_and(|u| h.strip_prefix(w) == Some(&format!("!user={u}")))
        })
    };
    if want.iter().any(|w| holds(w)) {
        return None;
    }
    Some(api_error(
        StatusCode::FORBIDDEN,
        &format!(
            "Action is not authorized with current scopes; requires any of [{}]",
            want.join(", ")
        ),
    ))
}

/// Returns the refusal from a handler whose request's token is not accepted.
macro_rules! authorized {
    ($hub:expr, $headers:expr) => {
        if let Err(resp) = super::tokens::authorize(&$hub, &$headers) {
            return resp;
        }
    };
}
pub(super) use authorized;

/// The token check every authenticated route makes: `Authorization: token X` (or Bearer).
/// Which scopes a known token holds is checked before any handler runs.
pub(super) fn authorize(hub: &MockHub, headers: &HeaderMap) -> Result<(), Resp> {
    match token_scopes(hub, headers) {
        Some(_) => Ok(()),
        None => Err(api_error(
            StatusCode::FORBIDDEN,
            "Missing or invalid credentials.",
        )),
    }
}

async fn whoami(State(hub): State<MockHub>, headers: HeaderMap) -> Resp {
    let Some(mut scopes) = token_scopes(&hub, &headers) else {
        return api_error(StatusCode::FORBIDDEN, "Missing or invalid credentials.");
    };
    scopes.sort();
    json_response(
        StatusCode::OK,
        &json!({ "kind": "service", "name": "hubsoak", "roles": ["hubsoak"], "scopes": scopes }),
    )
}

fn group_model(name: &str, properties: &Value) -> Value {
    json!({ "kind": "group", "name": name, "users": [], "roles": [], "properties": properties })
}

fn groups(hub: &MockHub) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Value>> {
    hub.inner.groups.lock().unwrap_or_else(|e| e.into_inner())
}

async fn get_group(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    if let Err(r) = authorize(&hub, &headers) {
        return r;
    }
    match groups(&hub).get(&name) {
        Some(p) => json_response(StatusCode::OK, &group_model(&name, p)),
        None => api_error(StatusCode::NOT_FOUND, &format!("No such group: {name}")),
    }
}

async fn create_group(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    if let Err(r) = authorize(&hub, &headers) {
        return r;
    }
    let mut all = groups(&hub);
    if all.contains_key(&name) {
        return api_error(
            StatusCode::CONFLICT,
            &format!("Group {name} already exists"),
        );
    }
    all.insert(name.clone(), json!({}));
    json_response(StatusCode::CREATED, &group_model(&name, &json!({})))
}

async fn delete_group(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    if let Err(r) = authorize(&hub, &headers) {
        return r;
    }
    match groups(&hub).remove(&name) {
        Some(_) => empty(StatusCode::NO_CONTENT),
        None => api_error(StatusCode::NOT_FOUND, &format!("No such group: {name}")),
    }
}

async fn set_properties(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Resp {
    if let Err(r) = authorize(&hub, &headers) {
        return r;
    }
    let properties = match serde_json::from_slice::<Value>(&body) {
        Ok(p @ Value::Object(_)) => p,
        Ok(_) => return api_error(StatusCode::BAD_REQUEST, "Must specify properties"),
        Err(_) => return api_error(StatusCode::BAD_REQUEST, INVALID_JSON),
    };
    let mut all = groups(&hub);
    match all.get_mut(&name) {
        Some(p) => {
            *p = properties.clone();
            json_response(StatusCode::OK, &group_model(&name, &properties))
        }
        None => api_error(StatusCode::NOT_FOUND, &format!("No such group: {name}")),
    }
}
