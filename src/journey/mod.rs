//! Simulated users that do real work on their server: optionally log in through the
//! hub's form, start a kernel, execute code over its websocket and check the output,
//! think, repeat until the session ends, stop the kernel. Each step is timed and bounded
//! by a timeout. With notebooks, each round runs one notebook's code cells on a fresh
//! kernel instead of `code` (`notebook.rs`). The server itself is started and stopped by
//! the caller (soak or `simulate`), which stops it whatever happened here.

mod kernel;
mod notebook;
mod session;

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use kernel::KernelChannel;
pub use notebook::{
    load as load_notebooks, parse as parse_notebook, CodeCell, Notebook, MAX_NOTEBOOKS,
};
pub use session::{Journeys, UserSession};

use crate::hub::Token;

/// How a simulated user reaches their server.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthMode {
    /// hubsoak's API token (it needs `access:servers`); works with any authenticator.
    Token,
    /// A token of the user's own, made through the API for each session and revoked at
    /// its end (hubsoak's token needs the `tokens` scope instead of `access:servers`).
    UserToken,
    /// The hub's login form (DummyAuthenticator, SharedPasswordAuthenticator, …), then
    /// the server's OAuth handshake, with cookies.
    Form { password: Option<Token> },
}

impl AuthMode {
    /// The scope hubsoak's token needs for this way into the servers.
    pub fn need(&self) -> Option<crate::hub::Need> {
        match self {
            AuthMode::Token => Some(crate::hub::ACCESS_SERVERS),
            AuthMode::UserToken => Some(crate::hub::TOKENS),
            AuthMode::Form { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            AuthMode::Token => "token",
            AuthMode::UserToken => "user-token",
            AuthMode::Form { .. } => "form",
        }
    }
}

/// What every journey does; validated.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneySettings {
    /// The hub's public address, under which `hub/login` and `user/{name}/` are.
    pub public_url: Url,
    pub auth: AuthMode,
    pub code: String,
    /// The output must contain this (empty: any output will do).
    pub expect: String,
    /// Pause between executions.
    pub think_time: Duration,
    /// Limit for each step.
    pub step_timeout: Duration,
    /// The kernel to start; empty: the server's default (a notebook's own kernelspec).
    pub kernel_name: String,
    /// Run these, one per round, instead of `code` (empty: run `code`).
    pub notebooks: Vec<Notebook>,
}

/// A step of a journey: the `step` label of the journey metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Login,
    Spawn,
    KernelStart,
    Execute,
    KernelStop,
    Stop,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Login,
        Step::Spawn,
        Step::KernelStart,
        Step::Execute,
        Step::KernelStop,
        Step::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::Spawn => "spawn",
            Step::KernelStart => "kernel_start",
            Step::Execute => "execute",
            Step::KernelStop => "kernel_stop",
            Step::Stop => "stop",
        }
    }

    /// hubtraf's name for a journey that ended at this step.
    pub fn outcome(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::Spawn => "start-server",
            Step::KernelStart => "start-kernel",
            Step::Execute => "run-code",
            Step::KernelStop => "stop-kernel",
            Step::Stop => "stop-server",
        }
    }
}

/// The hub's public address from its API URL: `…/hub/api/` → `…/`.
pub fn public_url_from_api(api: &url::Url) -> url::Url {
    let mut url = api.clone();
    let path = url.path().to_string();
    let base = path
        .strip_suffix("hub/api/")
        .or_else(|| path.strip_suffix("hub/api"))
        .unwrap_or("/");
    url.set_path(base);
    url.set_query(None);
    url
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JourneyError {
    #[error("no answer within the step timeout")]
    Timeout,
    #[error("HTTP {0}")]
    Status(u16),
    #[error("connection: {0}")]
    Connection(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// `ename: evalue`; the traceback (ANSI codes stripped) is for the debug log.
    #[error("the kernel reported {error}")]
    Kernel { error: String, traceback: String },
    /// A failure with where it happened (a notebook's cell, its kernel).
    #[error("{at}: {error}")]
    At {
        at: String,
        error: Box<JourneyError>,
    },
    #[error("the output did not contain the expected text; got {0:?}")]
    UnexpectedOutput(String),
    #[error("the hub refused the login")]
    LoginRejected,
}

impl JourneyError {
    /// A bounded reason, for reports.
    pub fn reason(&self) -> &'static str {
        match self {
            JourneyError::Timeout => "timeout",
            JourneyError::Status(code) if *code >= 500 => "http_5xx",
            JourneyError::Status(code) if *code >= 400 => "http_4xx",
            JourneyError::Status(_) => "http_other",
            JourneyError::Connection(_) => "connection",
            JourneyError::Protocol(_) => "protocol",
            JourneyError::Kernel { .. } => "kernel_error",
            JourneyError::At { error, .. } => error.reason(),
            JourneyError::UnexpectedOutput(_) => "unexpected_output",
            JourneyError::LoginRejected => "login_rejected",
        }
    }

    /// This error, said to have happened `at` (if given).
    fn at(self, at: Option<&str>) -> JourneyError {
        match at {
            None => self,
            Some(at) => JourneyError::At {
                at: at.to_string(),
                error: Box::new(self),
            },
        }
    }

    fn from_reqwest(e: reqwest::Error) -> JourneyError {
        if e.is_timeout() {
            JourneyError::Timeout
        } else if let Some(status) = e.status() {
            JourneyError::Status(status.as_u16())
        } else {
            // Not the error's Display alone: reqwest's source chain says what broke.
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail = format!("{detail}: {s}");
                source = s.source();
            }
            JourneyError::Connection(detail)
        }
    }
}

/// Where step results go: metrics for a soak, the report for `simulate`.
pub trait StepSink: Send + Sync {
    fn step(&self, step: Step, took: Duration, result: Result<(), &JourneyError>);
    /// A notebook's cell ran (it is also reported as an `execute` step).
    fn cell(
        &self,
        notebook: &Notebook,
        cell: &CodeCell,
        took: Duration,
        result: Result<(), &JourneyError>,
    );
    /// A notebook run ended: every cell ran, or the kernel or a cell failed.
    fn notebook(&self, notebook: &Notebook, result: Result<(), &JourneyError>);
}

/// How a kernel session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Every execution gave the expected output (or every notebook ran) and the kernel
    /// was stopped.
    Completed {
        executions: u32,
    },
    Failed {
        step: Step,
        error: JourneyError,
    },
    /// Told to stop; the kernel was stopped (or that was tried).
    Cancelled,
}

/// Runs `work` within `timeout`: how long it took and how it ended; None if `cancel`
/// came first.
async fn bounded<T, F>(
    timeout: Duration,
    cancel: &CancellationToken,
    work: F,
) -> Option<(Duration, Result<T, JourneyError>)>
where
    F: std::future::Future<Output = Result<T, JourneyError>>,
{
    let started = Instant::now();
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, work) => r.unwrap_or(Err(JourneyError::Timeout)),
        _ = cancel.cancelled() => return None,
    };
    Some((started.elapsed(), result))
}

/// Runs `step` under the step timeout (or `cancel`), reporting it to `sink`; a failure
/// is said to have happened `at`, if given.
async fn timed<T, F>(
    sink: &dyn StepSink,
    step: Step,
    timeout: Duration,
    cancel: &CancellationToken,
    at: Option<&str>,
    work: F,
) -> Option<Result<T, JourneyError>>
where
    F: std::future::Future<Output = Result<T, JourneyError>>,
{
    let (took, result) = bounded(timeout, cancel, work).await?;
    let result = result.map_err(|e| e.at(at));
    sink.step(step, took, result.as_ref().map(|_| ()));
    Some(result)
}

/// Deletes kernel `id` as the `kernel_stop` step; never cancelled (it is the cleanup).
async fn stop_kernel(
    user: &UserSession,
    id: &str,
    timeout: Duration,
    sink: &dyn StepSink,
) -> Result<(), JourneyError> {
    let never = CancellationToken::new();
    timed(
        sink,
        Step::KernelStop,
        timeout,
        &never,
        None,
        user.stop_kernel(id),
    )
    .await
    .unwrap_or(Ok(()))
}

/// Starts a kernel as the `kernel_start` step (a failure said to be `at`, if given); a
/// failed or cancelled start still ends in any kernel it made being deleted.
async fn open_kernel(
    user: &mut UserSession,
    kernel_name: &str,
    at: Option<&str>,
    timeout: Duration,
    cancel: &CancellationToken,
    sink: &dyn StepSink,
) -> Result<(String, KernelChannel), SessionEnd> {
    let started = timed(sink, Step::KernelStart, timeout, cancel, at, async {
        user.start_kernel(kernel_name).await
    })
    .await;
    let end = match started {
        Some(Ok(started)) => return Ok(started),
        None => SessionEnd::Cancelled,
        Some(Err(error)) => {
            tracing::debug!(user = user.name(), %error, "kernel start failed");
            SessionEnd::Failed {
                step: Step::KernelStart,
                error,
            }
        }
    };
    // A kernel may exist even though its start failed (e.g. the websocket did not
    // open); the session holds its id then.
    if let Some(id) = user.take_pending_kernel() {
        let _ = stop_kernel(user, &id, timeout, sink).await;
    }
    Err(end)
}

/// Closes the channel and deletes the kernel; how the round ended (`end`) wins over a
/// failed deletion.
async fn close_kernel(
    user: &UserSession,
    id: &str,
    channel: KernelChannel,
    end: Option<SessionEnd>,
    timeout: Duration,
    sink: &dyn StepSink,
) -> Option<SessionEnd> {
    channel.close().await;
    let stopped = stop_kernel(user, id, timeout, sink).await;
    match (end, stopped) {
        (Some(end), _) => Some(end),
        (None, Err(error)) => Some(SessionEnd::Failed {
            step: Step::KernelStop,
            error,
        }),
        (None, Ok(())) => None,
    }
}

/// The think time before the next round, unless the session ends first; false: stop.
async fn think(think_time: Duration, until: Instant, cancel: &CancellationToken) -> bool {
    if Instant::now() + think_time >= until {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(think_time) => true,
        _ = cancel.cancelled() => false,
    }
}

/// On a running server: start a kernel, execute the code (with think time between)
/// until `until`, at least once, then stop the kernel — also after a failure and when
/// cancelled, so no kernel is left behind by us. With notebooks, each round is one
/// notebook (in turn, from one the `journeys` pick) on a kernel of its own.
pub async fn run_kernel_session(
    user: &mut UserSession,
    journeys: &Journeys,
    until: Instant,
    cancel: &CancellationToken,
    sink: &dyn StepSink,
) -> SessionEnd {
    let settings = journeys.settings();
    if !settings.notebooks.is_empty() {
        return notebook::run_session(user, journeys, until, cancel, sink).await;
    }
    let timeout = settings.step_timeout;
    let (id, mut channel) =
        match open_kernel(user, &settings.kernel_name, None, timeout, cancel, sink).await {
            Ok(kernel) => kernel,
            Err(end) => return end,
        };
    let mut executions = 0u32;
    let end = loop {
        let result = timed(sink, Step::Execute, timeout, cancel, None, async {
            let output = channel.execute(&settings.code).await?;
            if output.contains(settings.expect.as_str()) {
                Ok(())
            } else {
                let shown = crate::hub::cut(&crate::hub::redact(&output), 300).into_owned();
                Err(JourneyError::UnexpectedOutput(shown))
            }
        })
        .await;
        match result {
            None => break Some(SessionEnd::Cancelled),
            Some(Err(error)) => {
                tracing::debug!(user = user.name(), %error, "execute failed");
                if let JourneyError::Kernel { traceback, .. } = &error {
                    tracing::debug!(user = user.name(), %traceback, "the code's traceback");
                }
                break Some(SessionEnd::Failed {
                    step: Step::Execute,
                    error,
                });
            }
            Some(Ok(())) => executions += 1,
        }
        if !think(settings.think_time, until, cancel).await {
            break cancel.is_cancelled().then_some(SessionEnd::Cancelled);
        }
    };
    close_kernel(user, &id, channel, end, timeout, sink)
        .await
        .unwrap_or(SessionEnd::Completed { executions })
}
