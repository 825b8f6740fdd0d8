//! The admin HTTP server: `/metrics`, `/livez` (the process answers — never the hub),
//! `/readyz` (hubsoak can do its job: the endpoint is a hub, the token is accepted and
//! holds the scopes the work needs, the prefix lease is ours; else 503 with the reason).
//! Served on plain hyper.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Whether the soak is doing its job, and if not, why.
#[derive(Clone)]
pub struct Readiness(Arc<Mutex<Result<(), String>>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(Mutex::new(Err("starting".into()))))
    }
}

impl Readiness {
    pub fn ready(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Ok(());
    }

    pub fn not_ready(&self, why: impl Into<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Err(why.into());
    }

    pub fn get(&self) -> Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

async fn route(
    req: Request<Incoming>,
    metrics: Metrics,
    ready: Readiness,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, plain, "GET only\n"));
    }
    Ok(match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode(),
        ),
        "/livez" => text(StatusCode::OK, plain, "ok\n"),
        "/readyz" => match ready.get() {
            Ok(()) => text(StatusCode::OK, plain, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                plain,
                format!("not ready: {why}\n"),
            ),
        },
        "/" => text(StatusCode::OK, plain, "hubsoak: /metrics /livez /readyz\n"),
        _ => text(StatusCode::NOT_FOUND, plain, "not found\n"),
    })
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: Readiness,
    shutdown: CancellationToken,
) {
    crate::serve::serve_http1(listener, shutdown, move |req| {
        route(req, metrics.clone(), ready.clone())
    })
    .await;
}
