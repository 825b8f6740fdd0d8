//! Everything that can go wrong talking to a hub, and how a failed answer or connection
//! becomes one (with the hub's message, redacted and cut, and a hint), classified into the bounded
//! `reason` set of the metric catalog.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use url::Url;

use super::models::ApiError;
use super::token::{cut, redact};

/// A hub API call, as named in `hubsoak_requests_total{operation}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateUsers,
    DeleteUser,
    StartServer,
    StopServer,
    GetUser,
    ListUsers,
    Activity,
    Progress,
    Health,
    Version,
    /// `GET /user`: who the token is and which scopes it holds.
    Identity,
    /// The prefix lease (a group's properties).
    Lease,
    /// `GET /hub/metrics`: the hub's own process figures, for the run report.
    HubMetrics,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::CreateUsers,
        Operation::DeleteUser,
        Operation::StartServer,
        Operation::StopServer,
        Operation::GetUser,
        Operation::ListUsers,
        Operation::Activity,
        Operation::Progress,
        Operation::Health,
        Operation::Version,
        Operation::Identity,
        Operation::Lease,
        Operation::HubMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateUsers => "create_users",
            Operation::DeleteUser => "delete_user",
            Operation::StartServer => "start_server",
            Operation::StopServer => "stop_server",
            Operation::GetUser => "get_user",
            Operation::ListUsers => "list_users",
            Operation::Activity => "activity",
            Operation::Progress => "progress",
            Operation::Health => "health",
            Operation::Version => "version",
            Operation::Identity => "identity",
            Operation::Lease => "lease",
            Operation::HubMetrics => "hub_metrics",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request failed: the bounded `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    Throttled,
    ClientError,
    ServerError,
    Timeout,
    Connection,
    InvalidResponse,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        FailureReason::Throttled,
        FailureReason::ClientError,
        FailureReason::ServerError,
        FailureReason::Timeout,
        FailureReason::Connection,
        FailureReason::InvalidResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Throttled => "throttled",
            FailureReason::ClientError => "client_error",
            FailureReason::ServerError => "server_error",
            FailureReason::Timeout => "timeout",
            FailureReason::Connection => "connection",
            FailureReason::InvalidResponse => "invalid_response",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed hub call. Messages hold the operation, status and the hub's own message,
/// never a header (so never the token).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("{op}: hub answered {status}: {message}")]
    Status {
        op: Operation,
        status: u16,
        message: String,
        /// From `Retry-After` on a 429.
        retry_after: Option<Duration>,
    },
    #[error("{op}: no answer within {after:?}")]
    Timeout { op: Operation, after: Duration },
    #[error("{op}: connection failed: {detail}")]
    Connection { op: Operation, detail: String },
    #[error("{op}: invalid response: {detail}")]
    InvalidResponse { op: Operation, detail: String },
}

impl HubError {
    pub fn reason(&self) -> FailureReason {
        match self {
            HubError::Status { status: 429, .. } => FailureReason::Throttled,
            HubError::Status { status, .. } if *status >= 500 => FailureReason::ServerError,
            HubError::Status { .. } => FailureReason::ClientError,
            HubError::Timeout { .. } => FailureReason::Timeout,
            HubError::Connection { .. } => FailureReason::Connection,
            HubError::InvalidResponse { .. } => FailureReason::InvalidResponse,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            HubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            HubError::Status { message, .. } => Some(message),
            _ => None,
        }
    }
}
/// What to do about a connection that failed, when the cause is knowable.
fn connection_hint(detail: &str, url: Option<&Url>) -> Option<String> {
    let place = url
        .map(|u| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or(""),
                u.port_or_known_default().unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "that address".into());
    if detail.contains("Connection refused") {
        Some(format!(
            "nothing listens at {place}: is the hub running, and is this its address?"
        ))
    } else if detail.contains("InvalidContentType")
        || detail.contains("corrupt message")
        || detail.contains("wrong version number")
    {
        Some(format!(
            "a TLS handshake with a plain-http port: is the hub serving http? use http://{place}/…"
        ))
    } else if detail.contains("dns error") || detail.contains("failed to lookup address") {
        Some(format!("the name in {place} does not resolve"))
    } else {
        None
    }
}

pub(super) fn api_message(body: &Bytes) -> String {
    serde_json::from_slice::<ApiError>(body)
        .ok()
        .and_then(|e| e.message)
        .unwrap_or_default()
}

/// An error for a status the call did not expect, with the hub's message and, on a
/// 429, its `Retry-After`.
pub(super) fn status_error(
    op: Operation,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
) -> HubError {
    if status.is_success() {
        return HubError::InvalidResponse {
            op,
            detail: format!("unexpected status {status}"),
        };
    }
    let mut message = api_message(body);
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("").to_string();
    }
    // Untrusted text: no secret in it, and short whatever the hub sends.
    let message = cut(&redact(&message), 200).into_owned();
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    HubError::Status {
        op,
        status: status.as_u16(),
        message,
        retry_after,
    }
}

pub(super) fn transport_error(op: Operation, err: &reqwest::Error, timeout: Duration) -> HubError {
    if err.is_timeout() {
        HubError::Timeout { op, after: timeout }
    } else {
        // Headers never appear in reqwest's message; a URL's query might: redact.
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        let mut detail = cut(&redact(&detail), 400).into_owned();
        if let Some(hint) = connection_hint(&detail, err.url()) {
            detail.push_str(" — ");
            detail.push_str(&hint);
        }
        HubError::Connection { op, detail }
    }
}
