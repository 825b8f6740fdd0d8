//! Everything that can go wrong talking to a hub, classified into the bounded
//! `reason` set of the metric catalog.

use std::fmt;
use std::time::Duration;

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
}

impl Operation {
    pub const ALL: [Operation; 12] = [
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
