//! The JupyterHub REST client and its vocabulary.

mod client;
mod error;
mod models;
mod observe;
mod retry;
mod token;

pub use client::{
    http_builder, ClientBuildError, ClientConfig, HubClient, ProgressStream, SpawnWaitError,
    StartOutcome, StopOutcome, StopWaitError,
};
pub use error::{FailureReason, HubError, Operation};
pub use models::{HubVersion, Pagination, ProgressEvent, Server, User, UserPage};
pub use observe::{NoopObserver, Observer, RequestTally};
pub use retry::{Idempotency, RetryPolicy};
pub use token::{InvalidToken, Token};
