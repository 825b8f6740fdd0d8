//! The simulated hub's server routes: start (default and named), stop, and the progress
//! event stream, with JupyterHub's answers for each phase (pending, already running,
//! throttled at the concurrent spawn limit, refused at the active server limit).

// An early-return response is built once per request; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Value};

use super::http::{api_error, empty, json_response, Resp, INVALID_JSON};
use super::state::{server_url, Phase};
use super::tokens::authorized;
use super::MockHub;
use crate::names::valid_server_name;

pub async fn start_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Resp {
    start(hub, headers, name, String::new(), body).await
}

pub async fn start_named(
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

pub async fn stop_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    stop(hub, headers, name, String::new()).await
}

pub async fn stop_named(
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

pub async fn progress_default(
    State(hub): State<MockHub>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Resp {
    progress(hub, headers, name, String::new()).await
}

pub async fn progress_named(
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
        // JupyterHub's first event, then the spawner's (replayed from the start).
        let mut sent = 0;
        if tx
            .send(event(
                &json!({"progress": 0, "message": "Server requested"}),
            ))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let snapshot = {
                let st = writer_hub.lock();
                st.users
                    .get(&name)
                    .and_then(|u| u.servers.get(&server))
                    .map(|s| {
                        (
                            s.phase.clone(),
                            s.events.get(sent..).unwrap_or(&[]).to_vec(),
                        )
                    })
            };
            if let Some((_, new)) = &snapshot {
                for e in new {
                    if tx.send(event(e)).await.is_err() {
                        return;
                    }
                }
                sent += new.len();
            }
            let (done, chunk) = match snapshot {
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
