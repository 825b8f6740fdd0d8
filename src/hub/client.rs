//! The JupyterHub REST client: one place that knows the API's paths, status codes,
//! pagination, timeouts and the retry policy (the progress stream is in progress.rs,
//! how failures become `HubError`s in error.rs).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use super::error::{api_message, status_error, transport_error, HubError, Operation};
use super::models::{HubVersion, User, UserPage};
use super::observe::Observer;
use super::retry::{Idempotency, RetryPolicy};
use super::settings::HubSettings;
use super::token::{AuthHeader, Token};
use crate::names::{OurName, Prefix};

const PAGINATION_ACCEPT: &str = "application/jupyterhub-pagination+json";
/// JupyterHub's largest page.
const PAGE_LIMIT: u64 = 200;

/// What a client needs; built from validated settings only.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The hub API base, ending in `/hub/api/`.
    pub api_url: Url,
    pub token: Token,
    /// Limit for one attempt of one call, body included.
    pub request_timeout: Duration,
    /// Extra PEM CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Calls in flight at once (progress streams not included).
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    /// How often to poll a server's state when polling is the only way.
    pub poll_interval: Duration,
    /// A progress stream silent for this long is given up (the hub sends keep-alives every 8 s).
    pub progress_idle_timeout: Duration,
}

impl ClientConfig {
    /// The client for `hub`, with the client's own poll interval, progress idle timeout
    /// and retry policy. Every timeout and limit comes from the settings (whose defaults
    /// are config/hubsoak.toml's).
    pub fn new(hub: &HubSettings) -> Self {
        ClientConfig {
            api_url: hub.api_url.clone(),
            token: hub.token.clone(),
            request_timeout: hub.request_timeout,
            ca_file: hub.ca_file.clone(),
            max_in_flight: hub.max_in_flight,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_millis(500),
            progress_idle_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("CA file {path} holds no usable PEM certificate: {detail}")]
    CaCert { path: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The result of `POST /users/{name}/server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// 201: ready within the hub's slow_spawn_timeout.
    Ready,
    /// 202: still starting (or a spawn was already pending).
    Pending,
    /// 400 "already running".
    AlreadyRunning,
}

/// The result of `DELETE /users/{name}/server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// 204.
    Stopped,
    /// 202: still stopping after the hub's slow_stop_timeout.
    Pending,
}

/// Why waiting for a server to become ready ended without it being ready.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpawnWaitError {
    #[error("spawn failed: {0}")]
    Failed(String),
    #[error("not ready before the deadline")]
    TimedOut,
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// Why waiting for a server to stop ended without it being stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StopWaitError {
    #[error("still running at the deadline")]
    TimedOut,
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// The HTTP client settings every hubsoak client shares: user agent, timeouts, and the
/// extra CA certificates.
pub fn http_builder(
    ca_file: Option<&std::path::Path>,
    request_timeout: Duration,
) -> Result<reqwest::ClientBuilder, ClientBuildError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("hubsoak/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(request_timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientBuildError::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientBuildError::CaCert {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(ClientBuildError::CaCert {
                path: path.display().to_string(),
                detail: "no certificate found".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

#[derive(Clone)]
pub struct HubClient {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    http: reqwest::Client,
    api: Url,
    pub(super) auth: AuthHeader,
    /// Bumped on every 401 or 403: the soak re-checks that it can still work.
    auth_refusals: tokio::sync::watch::Sender<u64>,
    pub(super) cfg: ClientConfig,
    pub(super) observer: Arc<dyn Observer>,
    permits: Semaphore,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("api", &self.inner.api.as_str())
            .finish_non_exhaustive()
    }
}

impl HubClient {
    pub fn new(cfg: ClientConfig, observer: Arc<dyn Observer>) -> Result<Self, ClientBuildError> {
        let builder = http_builder(cfg.ca_file.as_deref(), cfg.request_timeout)?
            .redirect(reqwest::redirect::Policy::none());
        let http = builder
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        let auth = AuthHeader::new(&cfg.token);
        let mut api = cfg.api_url.clone();
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        Ok(HubClient {
            inner: Arc::new(Inner {
                http,
                api,
                auth,
                auth_refusals: tokio::sync::watch::Sender::new(0),
                permits: Semaphore::new(cfg.max_in_flight.max(1)),
                cfg,
                observer,
            }),
        })
    }

    pub fn api_url(&self) -> &Url {
        &self.inner.api
    }

    /// The header every request carries; share it to rotate the token everywhere.
    pub fn auth(&self) -> &AuthHeader {
        &self.inner.auth
    }

    /// How often to poll a server's state when polling is the only way.
    pub(super) fn poll_interval(&self) -> Duration {
        self.inner.cfg.poll_interval
    }

    /// Changes whenever the hub answers 401 or 403.
    pub fn auth_refusals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.auth_refusals.subscribe()
    }

    /// `{api}/a/b/c`, each segment escaped.
    pub(super) fn api_path(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(super) fn server_path(&self, name: &str, server_name: &str, tail: &[&str]) -> Url {
        let mut segments = vec!["users", name];
        if server_name.is_empty() {
            segments.push("server");
        } else {
            segments.extend(["servers", server_name]);
        }
        segments.extend(tail);
        self.api_path(&segments)
    }

    /// `/hub/health` lives beside the API, not under it.
    fn health_url(&self) -> Url {
        self.inner
            .api
            .join("../health")
            .unwrap_or_else(|_| self.inner.api.clone())
    }

    /// One call, retried per the policy. `handle` turns a response into a result; it
    /// answers statuses it does not expect with [`status_error`].
    pub(super) async fn call<T>(
        &self,
        op: Operation,
        idempotency: Idempotency,
        build: impl Fn() -> reqwest::RequestBuilder,
        handle: impl Fn(StatusCode, &HeaderMap, Bytes) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let (mut throttle_retries, mut error_retries) = (0u32, 0u32);
        loop {
            let result = self.attempt(op, &build, &handle).await;
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let delay =
                self.inner
                    .cfg
                    .retry
                    .next_delay(&err, idempotency, throttle_retries, error_retries);
            let Some(delay) = delay else {
                return Err(err);
            };
            if err.status() == Some(429) {
                throttle_retries += 1;
            } else {
                error_retries += 1;
            }
            tracing::debug!(operation = %op, reason = %err.reason(), delay_ms = delay.as_millis() as u64, "retrying");
            self.inner.observer.on_retry(op);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt<T>(
        &self,
        op: Operation,
        build: &impl Fn() -> reqwest::RequestBuilder,
        handle: &impl Fn(StatusCode, &HeaderMap, Bytes) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let timeout = self.inner.cfg.request_timeout;
        let _permit = self.inner.permits.acquire().await;
        let started = Instant::now();
        let result = async {
            let response = build()
                .header(AUTHORIZATION, self.inner.auth.get())
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| transport_error(op, &e, timeout))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| transport_error(op, &e, timeout))?;
            handle(status, &headers, body)
        }
        .await;
        let elapsed = started.elapsed();
        match &result {
            Ok(_) => {
                tracing::debug!(operation = %op, ms = elapsed.as_millis() as u64, "request ok")
            }
            Err(e) => {
                tracing::debug!(operation = %op, ms = elapsed.as_millis() as u64, error = %e, "request failed")
            }
        }
        // The hub's own metrics need a scope hubsoak's work does not (`read:metrics`):
        // a refusal there is no sign that the token stopped working.
        if op != Operation::HubMetrics {
            self.note_refusal(&result);
        }
        self.inner
            .observer
            .on_request(op, elapsed, result.as_ref().err().map(HubError::reason));
        result
    }

    fn note_refusal<T>(&self, result: &Result<T, HubError>) {
        if let Err(e) = result {
            if matches!(e.status(), Some(401 | 403)) {
                self.inner.auth_refusals.send_modify(|n| *n += 1);
            }
        }
    }

    pub(super) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.inner.http.request(method, url)
    }

    /// `GET /hub/api/`: the hub's version. Needs no scope.
    pub async fn version(&self) -> Result<HubVersion, HubError> {
        self.version_with(Idempotency::Idempotent).await
    }

    /// `GET /hub/api/` once, never retried (a probe).
    pub async fn probe_version(&self) -> Result<HubVersion, HubError> {
        self.version_with(Idempotency::Once).await
    }

    async fn version_with(&self, idempotency: Idempotency) -> Result<HubVersion, HubError> {
        let op = Operation::Version;
        let url = self.inner.api.clone();
        self.call(
            op,
            idempotency,
            || self.request(Method::GET, url.clone()),
            |status, headers, body| match status {
                StatusCode::OK => decode(op, &body),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `GET /hub/health`: the hub is serving. Not retried: a probe reports what it sees.
    pub async fn health(&self) -> Result<(), HubError> {
        let op = Operation::Health;
        let url = self.health_url();
        self.call(
            op,
            Idempotency::Once,
            || self.request(Method::GET, url.clone()),
            |status, headers, body| match status {
                s if s.is_success() => Ok(()),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `GET /hub/metrics` with the token: the hub's Prometheus text. A hub that does not
    /// let this token read it answers 403 (it needs `read:metrics`).
    pub async fn hub_metrics(&self) -> Result<String, HubError> {
        let op = Operation::HubMetrics;
        let url = self
            .inner
            .api
            .join("../metrics")
            .unwrap_or_else(|_| self.inner.api.clone());
        self.call(
            op,
            Idempotency::Once,
            || self.request(Method::GET, url.clone()),
            |status, headers, body| match status {
                s if s.is_success() => Ok(String::from_utf8_lossy(&body).into_owned()),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `POST /users`: creates those of `names` that do not exist and returns them.
    /// Names that exist are skipped by the hub (409 when all exist: an empty list here).
    pub async fn create_users(&self, names: &[OurName]) -> Result<Vec<User>, HubError> {
        let op = Operation::CreateUsers;
        let url = self.api_path(&["users"]);
        let body = serde_json::json!({ "usernames": names });
        self.call(
            op,
            Idempotency::Idempotent,
            || self.request(Method::POST, url.clone()).json(&body),
            |status, headers, body| match status {
                StatusCode::CREATED => decode(op, &body),
                StatusCode::CONFLICT => Ok(Vec::new()),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// Every user whose name starts with `{prefix}-`, through every page. `name_filter`
    /// is a substring match on the hub, so each name is checked again here.
    pub async fn list_our_users(&self, prefix: &Prefix) -> Result<Vec<(OurName, User)>, HubError> {
        let op = Operation::ListUsers;
        let stem = prefix.stem();
        let mut ours = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut url = self.api_path(&["users"]);
            url.query_pairs_mut()
                .append_pair("name_filter", &stem)
                .append_pair("offset", &offset.to_string())
                .append_pair("limit", &PAGE_LIMIT.to_string());
            let page = self
                .call(
                    op,
                    Idempotency::Idempotent,
                    || {
                        self.request(Method::GET, url.clone())
                            .header(ACCEPT, PAGINATION_ACCEPT)
                    },
                    |status, headers, body| match status {
                        StatusCode::OK => decode_page(op, &body),
                        _ => Err(status_error(op, status, headers, &body)),
                    },
                )
                .await?;
            let got = page.items.len() as u64;
            ours.extend(
                page.items
                    .into_iter()
                    .filter_map(|u| prefix.claim(&u.name).map(|n| (n, u))),
            );
            match page.next_offset {
                Some(next) if got > 0 && next > offset => offset = next,
                _ => break,
            }
        }
        Ok(ours)
    }

    /// `GET /users/{name}`; `None` if there is no such user.
    pub async fn get_user(&self, name: &str) -> Result<Option<User>, HubError> {
        self.get_user_with(name, Idempotency::Idempotent).await
    }

    /// `GET /users/{name}` once, never retried: a probe reports what it sees.
    pub async fn probe_user(&self, name: &str) -> Result<Option<User>, HubError> {
        self.get_user_with(name, Idempotency::Once).await
    }

    async fn get_user_with(
        &self,
        name: &str,
        idempotency: Idempotency,
    ) -> Result<Option<User>, HubError> {
        let op = Operation::GetUser;
        let url = self.api_path(&["users", name]);
        self.call(
            op,
            idempotency,
            || self.request(Method::GET, url.clone()),
            |status, headers, body| match status {
                StatusCode::OK => decode(op, &body).map(Some),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `POST /users/{name}/server` (or `/servers/{server_name}`), the body being the
    /// user options (the form both 5.x and 6.x accept). Retried on 429 with
    /// `Retry-After`: a throttled spawn never began, and a pending one answers 202.
    pub async fn start_server(
        &self,
        name: &OurName,
        server_name: &str,
        user_options: Option<&serde_json::Value>,
    ) -> Result<StartOutcome, HubError> {
        self.start_server_at(name, server_name, user_options)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// As [`start_server`](Self::start_server), with when the attempt that succeeded was
    /// sent (after any throttled or failed ones): when the hub took the start.
    pub async fn start_server_at(
        &self,
        name: &OurName,
        server_name: &str,
        user_options: Option<&serde_json::Value>,
    ) -> Result<(StartOutcome, SystemTime), HubError> {
        let op = Operation::StartServer;
        let url = self.server_path(name.as_str(), server_name, &[]);
        let body = user_options
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        // Each attempt builds its request just before sending it: the last build is the
        // attempt that succeeded.
        let sent_ns = AtomicU64::new(0);
        let since_epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        let outcome = self
            .call(
                op,
                Idempotency::Idempotent,
                || {
                    sent_ns.store(since_epoch(SystemTime::now()), Ordering::Relaxed);
                    self.request(Method::POST, url.clone()).json(&body)
                },
                |status, headers, body| match status {
                    StatusCode::CREATED => Ok(StartOutcome::Ready),
                    StatusCode::ACCEPTED => Ok(StartOutcome::Pending),
                    StatusCode::BAD_REQUEST if api_message(&body).contains("already running") => {
                        Ok(StartOutcome::AlreadyRunning)
                    }
                    _ => Err(status_error(op, status, headers, &body)),
                },
            )
            .await?;
        let sent = SystemTime::UNIX_EPOCH + Duration::from_nanos(sent_ns.load(Ordering::Relaxed));
        Ok((outcome, sent))
    }

    /// `DELETE /users/{name}/server`: 204 stopped, 202 still stopping.
    pub async fn stop_server(
        &self,
        name: &OurName,
        server_name: &str,
    ) -> Result<StopOutcome, HubError> {
        let op = Operation::StopServer;
        let url = self.server_path(name.as_str(), server_name, &[]);
        self.call(
            op,
            Idempotency::Idempotent,
            || self.request(Method::DELETE, url.clone()),
            |status, headers, body| match status {
                StatusCode::NO_CONTENT | StatusCode::OK => Ok(StopOutcome::Stopped),
                StatusCode::ACCEPTED => Ok(StopOutcome::Pending),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `DELETE /users/{name}`. `Ok(false)` if the user did not exist.
    pub async fn delete_user(&self, name: &OurName) -> Result<bool, HubError> {
        let op = Operation::DeleteUser;
        let url = self.api_path(&["users", name.as_str()]);
        self.call(
            op,
            Idempotency::Idempotent,
            || self.request(Method::DELETE, url.clone()),
            |status, headers, body| match status {
                StatusCode::NO_CONTENT | StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }

    /// `POST /users/{name}/activity` shaped like a single-user server's report:
    /// the user's and the named server's last activity.
    pub async fn post_activity(
        &self,
        name: &str,
        server_name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), HubError> {
        let op = Operation::Activity;
        let url = self.api_path(&["users", name, "activity"]);
        let ts = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let body = serde_json::json!({
            "last_activity": ts,
            "servers": { server_name: { "last_activity": ts } },
        });
        self.call(
            op,
            Idempotency::Idempotent,
            || self.request(Method::POST, url.clone()).json(&body),
            |status, headers, body| match status {
                s if s.is_success() => Ok(()),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }
}

struct Page {
    items: Vec<User>,
    next_offset: Option<u64>,
}

/// A paginated page, or — from a hub too old to paginate — a plain list, paged by offset.
fn decode_page(op: Operation, body: &Bytes) -> Result<Page, HubError> {
    if let Ok(page) = serde_json::from_slice::<UserPage>(body) {
        let next_offset = page.pagination.next.as_ref().map(|n| n.offset);
        return Ok(Page {
            items: page.items,
            next_offset,
        });
    }
    let items: Vec<User> = decode(op, body)?;
    let next_offset = (items.len() as u64 >= PAGE_LIMIT).then_some(items.len() as u64);
    Ok(Page { items, next_offset })
}

pub(super) fn decode<T: DeserializeOwned>(op: Operation, body: &Bytes) -> Result<T, HubError> {
    serde_json::from_slice(body).map_err(|e| HubError::InvalidResponse {
        op,
        detail: if body.trim_ascii_start().starts_with(b"<") {
            "an HTML page where JSON was expected: this looks like a login page; is the \
             endpoint the hub's API (…/hub/api)?"
                .to_string()
        } else {
            e.to_string()
        },
    })
}
