//! The JupyterHub REST client and its vocabulary.

mod access;
mod client;
mod error;
mod lease;
mod lifecycle;
mod models;
mod observe;
mod phases;
mod progress;
mod retry;
mod settings;
mod token;

/// JupyterHub's own buckets for `jupyterhub_server_spawn_duration_seconds` (and its stop
/// histogram): hubsoak's spawn histogram uses them so the two line up.
pub const SPAWN_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
];

pub use access::{
    Access, CheckError, Identity, Need, Problem, ProblemKind, ACCESS_SERVERS, ACTIVITY,
    CREATE_USERS, LEASE, LIST_USERS, READ_USERS, SERVERS, TOKENS,
};
pub use client::{
    http_builder, ClientBuildError, ClientConfig, HubClient, SpawnWaitError, StartOutcome,
    StopOutcome, StopWaitError,
};
pub use error::{FailureReason, HubError, Operation};
pub use lease::{group_name, Claim, Holder, Lease};
pub use lifecycle::{wall_time, SpawnTrace};
pub use models::{HubVersion, Pagination, ProgressEvent, Server, User, UserPage};
pub use observe::{Both, NoopObserver, Observer, RequestTally};
pub use phases::{SeenEvent, SpawnPhase};
pub use progress::ProgressStream;
pub use retry::{Idempotency, RetryPolicy};
pub use settings::HubSettings;
pub use token::{cut, redact, AuthHeader, InvalidToken, Minted, Token, TokenFileError, REDACTED};
