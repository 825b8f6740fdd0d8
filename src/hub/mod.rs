//! The JupyterHub REST client and its vocabulary.

mod access;
mod client;
mod error;
mod lease;
mod lifecycle;
mod models;
mod observe;
mod retry;
mod token;

pub use access::{
    Access, CheckError, Identity, Need, Problem, ProblemKind, ACCESS_SERVERS, ACTIVITY,
    CREATE_USERS, LEASE, LIST_USERS, READ_USERS, SERVERS, TOKENS,
};
pub use client::{
    http_builder, ClientBuildError, ClientConfig, HubClient, ProgressStream, SpawnWaitError,
    StartOutcome, StopOutcome, StopWaitError,
};
pub use error::{FailureReason, HubError, Operation};
pub use lease::{group_name, Claim, Holder, Lease};
pub use models::{HubVersion, Pagination, ProgressEvent, Server, User, UserPage};
pub use observe::{Both, NoopObserver, Observer, RequestTally};
pub use retry::{Idempotency, RetryPolicy};
pub use token::{cut, redact, AuthHeader, InvalidToken, Minted, Token, REDACTED};
