//! The admin HTTP server: `/metrics`, `/livez` (the process answers — never the hub),
//! `/readyz` (settings loaded and the soak's loops running). Served on plain hyper.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Whether the soak's loops are running.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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
        "/readyz" if ready.get() => text(StatusCode::OK, plain, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, plain, "not ready\n"),
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
