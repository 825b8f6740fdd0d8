//! The simulated hub's HTTP answers, shared by its API, its tokens and groups, and its
//! single-user servers: JSON bodies and JupyterHub's `{"status", "message"}` errors.

use axum::body::Body;
use axum::http::{header, Response, StatusCode};
use serde_json::{json, Value};

pub(super) type Resp = Response<Body>;

/// JupyterHub's answer to a body that does not parse.
pub(super) const INVALID_JSON: &str = "Invalid JSON in body of request";

pub(super) fn json_response(status: StatusCode, body: &Value) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

pub(super) fn api_error(status: StatusCode, message: &str) -> Resp {
    json_response(
        status,
        &json!({ "status": status.as_u16(), "message": message }),
    )
}

pub(super) fn empty(status: StatusCode) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::empty())
        .unwrap_or_default()
}
