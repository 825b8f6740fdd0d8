//! An in-process JupyterHub simulator, faithful to the API as a real 6.x hub answers it
//! (../shared/research/jupyterhub-facts.md): status codes, timing, throttling, the
//! progress stream, its own `/hub/metrics` as ground truth, and fault switches for tests.
//! Where it and a real hub disagree, this is what must change.

mod api;
mod faults;
mod http;
mod kernel;
mod servers;
mod singleuser;
mod state;
mod tokens;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntGauge, Registry, TextEncoder};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use state::Phase;
use state::{HubState, Phase as P};

#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The API token with every scope (an admin's).
    pub token: String,
    /// More tokens the hub accepts, each with only the scopes listed (as a service's
    /// role would give them); a request needing another scope gets 403.
    pub limited_tokens: Vec<(String, Vec<String>)>,
    /// JupyterHub's base_url without its trailing slash (`/jhub`), or `None` for `/`.
    pub base_url: Option<String>,
    /// Reported by `GET /hub/api/` and `X-JupyterHub-Version`.
    pub version: String,
    pub spawn_delay: Duration,
    /// A random extra 0..=jitter per spawn.
    pub spawn_jitter: Duration,
    /// Added to a spawn for pulling the image (0: the image is present). The progress
    /// stream reports the pull as KubeSpawner does (`Pulling`, `Pulled` events).
    pub image_pull_delay: Duration,
    /// The pod's scheduling, of the spawn's time (default a tenth).
    pub scheduling_delay: Option<Duration>,
    /// The container's start after the pull (default a fifth of the spawn's time).
    pub container_start_delay: Option<Duration>,
    pub stop_delay: Duration,
    /// Probability that a spawn fails.
    pub spawn_failure_rate: f64,
    /// Pending spawns beyond which a start gets 429 with Retry-After (JupyterHub's
    /// concurrent_spawn_limit); `None` for no limit.
    pub concurrent_spawn_limit: Option<usize>,
    /// Active servers beyond which a start gets 429 without Retry-After.
    pub active_server_limit: Option<usize>,
    /// Retry-After seconds, drawn uniformly (JupyterHub: 30..=60).
    pub retry_after: RangeInclusive<u64>,
    pub slow_spawn_timeout: Duration,
    pub slow_stop_timeout: Duration,
    pub allow_named_servers: bool,
    /// Whether `/hub/metrics` needs the token (JupyterHub's authenticate_prometheus).
    pub authenticate_prometheus: bool,
    /// The password the login form wants (SharedPasswordAuthenticator); `None`: any
    /// password (DummyAuthenticator).
    pub login_password: Option<String>,
    pub faults: Faults,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            token: "mock-token".into(),
            limited_tokens: Vec::new(),
            base_url: None,
            version: "6.1.1".into(),
            spawn_delay: Duration::from_secs(2),
            spawn_jitter: Duration::ZERO,
            image_pull_delay: Duration::ZERO,
            scheduling_delay: None,
            container_start_delay: None,
            stop_delay: Duration::ZERO,
            spawn_failure_rate: 0.0,
            concurrent_spawn_limit: None,
            active_server_limit: None,
            retry_after: 30..=60,
            slow_spawn_timeout: Duration::from_secs(10),
            slow_stop_timeout: Duration::from_secs(10),
            allow_named_servers: false,
            authenticate_prometheus: true,
            login_password: None,
            faults: Faults::default(),
        }
    }
}

/// What `hubsoak mock-hub` serves: where, with which token, and the simulator.
#[derive(Debug, Clone)]
pub struct MockHubSettings {
    pub listen: SocketAddr,
    /// `None`: make one up and print it.
    pub token: Option<crate::hub::Token>,
    pub config: MockConfig,
}

/// Failures injected before a request reaches the API (never on `/hub/metrics`,
/// which tests read as ground truth).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Probability of a 503 instead of the answer.
    pub server_error_rate: f64,
    /// Added before every answer.
    pub added_latency: Duration,
    /// Probability that a JSON answer's body is cut short.
    pub malformed_json_rate: f64,
    /// Probability that the connection is closed without an answer.
    pub drop_rate: f64,
    /// Apply the faults only to paths containing this (e.g. "/activity").
    pub only_paths_containing: Option<String>,
    /// Kernel starts answer this status instead of 201.
    pub kernel_start_status: Option<u16>,
    /// Kernels take execute requests and never answer them.
    pub kernel_silent: bool,
    /// Answer with this status, echoing the request's Authorization header in the body
    /// and in a header, as a careless proxy or WAF in front of a hub does.
    pub echo_credentials: Option<u16>,
    /// Answer with this status and error message (e.g. a long, localized one).
    pub answer: Option<(u16, String)>,
    /// Added to every spawn's time (a slower cluster: image pulls, scheduling).
    pub spawn_slowdown: Duration,
    /// Replaces `--spawn-failure-rate` while set.
    pub spawn_failure_rate: Option<f64>,
}

/// What the simulator saw, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Every request received, faults included.
    pub requests: u64,
    /// Requests that change state (POST, DELETE, PUT, PATCH).
    pub mutating_requests: u64,
    /// 429s sent with Retry-After.
    pub throttled: u64,
    /// Starts that came back for a user before its Retry-After had passed.
    pub early_retries: u64,
    /// Users created through the API.
    pub users_created: u64,
    /// Spawns begun.
    pub spawns_started: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    mutating_requests: AtomicU64,
    throttled: AtomicU64,
    early_retries: AtomicU64,
    users_created: AtomicU64,
    spawns_started: AtomicU64,
}

/// The hub's own metrics: what hubsoak's numbers are checked against.
struct Truth {
    registry: Registry,
    requests: HistogramVec,
    spawn: HistogramVec,
    stop: HistogramVec,
    running: IntGauge,
    total_users: IntGauge,
}

impl Truth {
    fn new() -> Self {
        let registry = Registry::new();
        let spawn = HistogramVec::new(
            HistogramOpts::new(
                "jupyterhub_server_spawn_duration_seconds",
                "Time taken for server spawning operation",
            )
            .buckets(crate::hub::SPAWN_BUCKETS.to_vec()),
            &["status", "reason"],
        )
        .expect("static metric definition");
        let stop = HistogramVec::new(
            HistogramOpts::new(
                "jupyterhub_server_stop_seconds",
                "Time taken for server stopping operation",
            )
            .buckets(crate::hub::SPAWN_BUCKETS.to_vec()),
            &["status"],
        )
        .expect("static metric definition");
        let running = IntGauge::new(
            "jupyterhub_running_servers",
            "The number of user servers currently running",
        )
        .expect("static metric definition");
        let total_users = IntGauge::new("jupyterhub_total_users", "Total number of users")
            .expect("static metric definition");
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "jupyterhub_request_duration_seconds",
                "Request duration for all HTTP requests",
            ),
            &["method", "handler", "code"],
        )
        .expect("static metric definition");
        for (status, reason) in [
            ("success", ""),
            ("failure", ""),
            ("error", ""),
            ("failure", "throttled"),
            ("failure", "too-many-users"),
            ("failure", "already-pending"),
        ] {
            spawn.with_label_values(&[status, reason]);
        }
        for status in ["success", "failure"] {
            stop.with_label_values(&[status]);
        }
        for c in [
            Box::new(spawn.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(stop.clone()),
            Box::new(running.clone()),
            Box::new(total_users.clone()),
            Box::new(requests.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Truth {
            registry,
            requests,
            spawn,
            stop,
            running,
            total_users,
        }
    }
}

struct Inner {
    cfg: MockConfig,
    faults: RwLock<Faults>,
    state: Mutex<HubState>,
    /// Bumped on every phase change; waiters re-read the state.
    changes: watch::Sender<u64>,
    truth: Truth,
    counters: Counters,
    singleuser: Mutex<singleuser::SingleUserState>,
    /// Groups by name: their properties.
    groups: Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// A simulated hub. Cheap to clone; clones share state, so a test can stop serving
/// and serve again on the same port with everything intact.
#[derive(Clone)]
pub struct MockHub {
    inner: Arc<Inner>,
}

/// A running server for a [`MockHub`].
pub struct MockServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MockServer {
    /// `http://addr/hub/api`.
    pub fn api_url(&self) -> String {
        format!("http://{}/hub/api", self.addr)
    }

    /// Stops accepting and drops every open connection, as a killed hub would.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

impl MockHub {
    pub fn new(cfg: MockConfig) -> Self {
        let (changes, _) = watch::channel(0);
        MockHub {
            inner: Arc::new(Inner {
                faults: RwLock::new(cfg.faults.clone()),
                cfg,
                state: Mutex::new(HubState::default()),
                changes,
                truth: Truth::new(),
                counters: Counters::default(),
                singleuser: Mutex::default(),
                groups: Mutex::default(),
            }),
        }
    }

    /// Serves on `listener` until `shutdown`; then drops every connection.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let router = match &self.inner.cfg.base_url {
            Some(base) => axum::Router::new().nest(base, api::router(self.clone())),
            None => api::router(self.clone()),
        };
        let hub = self.clone();
        crate::serve::serve_http1(listener, shutdown, move |req| {
            faults::handle_with_faults(hub.clone(), router.clone(), req)
        })
        .await;
        Ok(())
    }

    /// Binds `addr` (use port 0) and serves in the background.
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let hub = self.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { hub.serve(listener, token).await });
        Ok(MockServer {
            addr,
            shutdown,
            task,
        })
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// The faults now (changed live by tests, or over `PUT /hubsoak/faults`).
    pub fn faults(&self) -> Faults {
        self.inner
            .faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stats(&self) -> MockStats {
        let c = &self.inner.counters;
        MockStats {
            requests: c.requests.load(Ordering::Relaxed),
            mutating_requests: c.mutating_requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            early_retries: c.early_retries.load(Ordering::Relaxed),
            users_created: c.users_created.load(Ordering::Relaxed),
            spawns_started: c.spawns_started.load(Ordering::Relaxed),
        }
    }

    /// Never taken while the hub state's lock is held.
    fn su(&self) -> MutexGuard<'_, singleuser::SingleUserState> {
        self.inner
            .singleuser
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Users' own tokens not revoked.
    pub fn user_token_count(&self) -> usize {
        self.su().user_tokens_len()
    }

    /// Kernels started, and kernels deleted through the API (`DELETE …/api/kernels/{id}`).
    pub fn kernel_counts(&self) -> (u64, u64) {
        let su = self.su();
        (su.kernels_started, su.kernels_deleted)
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every user name, sorted.
    pub fn user_names(&self) -> Vec<String> {
        self.lock().users.keys().cloned().collect()
    }

    /// Creates a user directly (a test's "not ours" users).
    pub fn add_user(&self, name: &str) {
        let mut st = self.lock();
        if !st.users.contains_key(name) {
            st.add_user(name, false);
        }
        self.inner.truth.total_users.set(st.users.len() as i64);
    }

    /// Puts a user's server straight into Running (no spawn recorded).
    pub fn seed_running(&self, name: &str, server: &str) {
        let mut st = self.lock();
        if st.server_entry(name, server).is_some() {
            st.set_phase(name, server, P::Running, true);
        }
        self.inner.truth.running.set(st.running as i64);
    }

    /// The phase of a user's server, if the user exists.
    pub fn phase(&self, name: &str, server: &str) -> Option<Phase> {
        self.lock().users.get(name).map(|u| {
            u.servers
                .get(server)
                .map_or(P::Stopped, |s| s.phase.clone())
        })
    }

    /// The user's last activity as the hub recorded it.
    /// The user options the server was last started with.
    pub fn user_options(&self, name: &str, server: &str) -> Option<serde_json::Value> {
        self.lock()
            .users
            .get(name)
            .and_then(|u| u.servers.get(server))
            .map(|s| s.user_options.clone())
    }

    pub fn last_activity(&self, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.lock().users.get(name).and_then(|u| u.last_activity)
    }

    /// Servers currently (spawning, running, stopping).
    pub fn server_counts(&self) -> (usize, usize, usize) {
        let st = self.lock();
        (st.spawning, st.running, st.stopping)
    }

    /// `jupyterhub_server_spawn_duration_seconds_count{status, reason}`.
    pub fn spawn_count(&self, status: &str, reason: &str) -> u64 {
        self.inner
            .truth
            .spawn
            .with_label_values(&[status, reason])
            .get_sample_count()
    }

    /// `jupyterhub_server_stop_seconds_count{status}`.
    pub fn stop_count(&self, status: &str) -> u64 {
        self.inner
            .truth
            .stop
            .with_label_values(&[status])
            .get_sample_count()
    }

    /// The `/hub/metrics` text.
    pub fn metrics_text(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.inner.truth.registry.gather(), &mut buf);
        // A real hub's prometheus_client exports its process's CPU and memory; so does
        // the simulator (its process is the one it runs in).
        String::from_utf8_lossy(&buf).into_owned() + &crate::process::metrics_text()
    }

    /// Records a request in `jupyterhub_request_duration_seconds`, labelled by the
    /// handler class JupyterHub would use.
    fn observe_request(&self, method: &str, path: &str, code: u16, seconds: f64) {
        // /user/… goes to the proxy and the servers, not the hub.
        if !path.starts_with("/hub/") {
            return;
        }
        let handler = faults::handler_name(path);
        self.inner
            .truth
            .requests
            .with_label_values(&[method, handler, &code.to_string()])
            .observe(seconds);
    }

    fn notify(&self) {
        self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn sync_gauges(&self, st: &HubState) {
        self.inner.truth.running.set(st.running as i64);
        self.inner.truth.total_users.set(st.users.len() as i64);
    }

    /// Starts a spawn; a timer finishes it. Returns the spawn's generation.
    fn begin_spawn(&self, st: &mut HubState, user: &str, server: &str) -> u64 {
        let generation = st.set_phase(user, server, P::Spawning, true);
        self.inner
            .counters
            .spawns_started
            .fetch_add(1, Ordering::Relaxed);
        let cfg = &self.inner.cfg;
        let faults = self.faults();
        let failure_rate = faults.spawn_failure_rate.unwrap_or(cfg.spawn_failure_rate);
        let (delay, fails) = {
            let mut rng = rand::thread_rng();
            let jitter = if cfg.spawn_jitter.is_zero() {
                Duration::ZERO
            } else {
                cfg.spawn_jitter.mul_f64(rng.gen_range(0.0..=1.0))
            };
            (
                cfg.spawn_delay + faults.spawn_slowdown + jitter,
                rng.gen_bool(failure_rate.clamp(0.0, 1.0)),
            )
        };
        let hub = self.clone();
        let (user, server) = (user.to_string(), server.to_string());
        let began = Instant::now();
        let pod = if server.is_empty() {
            format!("jupyter-{user}")
        } else {
            format!("jupyter-{user}--{server}")
        };
        let scheduling = cfg.scheduling_delay.unwrap_or(delay / 10).min(delay);
        let container = cfg
            .container_start_delay
            .unwrap_or(delay / 5)
            .min(delay - scheduling);
        let pull = cfg.image_pull_delay;
        let startup = delay - scheduling - container;
        tokio::spawn(async move {
            // As KubeSpawner reports a pod: each Kubernetes event of it, in order.
            let steps: Vec<(Duration, Vec<(&str, String)>)> = vec![
                (
                    scheduling,
                    vec![(
                        "Scheduled",
                        format!("Successfully assigned hub/{pod} to node-1"),
                    )],
                ),
                (
                    Duration::ZERO,
                    if pull.is_zero() {
                        vec![(
                            "Pulled",
                            "Container image \"quay.io/jupyter/base-notebook:latest\" already present on machine".to_string(),
                        )]
                    } else {
                        vec![(
                            "Pulling",
                            "Pulling image \"quay.io/jupyter/base-notebook:latest\"".to_string(),
                        )]
                    },
                ),
                (
                    pull,
                    if pull.is_zero() {
                        vec![]
                    } else {
                        vec![(
                            "Pulled",
                            format!(
                                "Successfully pulled image \"quay.io/jupyter/base-notebook:latest\" in {:.3}s",
                                pull.as_secs_f64()
                            ),
                        )]
                    },
                ),
                (
                    container,
                    vec![
                        ("Created", "Created container notebook".to_string()),
                        ("Started", "Started container notebook".to_string()),
                    ],
                ),
            ];
            for (wait, events) in steps {
                tokio::time::sleep(wait).await;
                {
                    let mut st = hub.lock();
                    match st.server_mut(&user, &server) {
                        Some(s) if s.generation == generation && s.phase == P::Spawning => {
                            for (reason, message) in events {
                                // Toward 90 %, a third closer with each event (KubeSpawner).
                                s.progress += (90 - s.progress) / 3;
                                s.events
                                    .push(state::pod_event(s.progress, reason, &message));
                            }
                        }
                        _ => return,
                    }
                }
                hub.notify();
            }
            tokio::time::sleep(startup).await;
            let mut st = hub.lock();
            let current = st
                .server_mut(&user, &server)
                .is_some_and(|s| s.generation == generation && s.phase == P::Spawning);
            if !current {
                return;
            }
            let seconds = began.elapsed().as_secs_f64();
            if fails {
                st.set_phase(
                    &user,
                    &server,
                    P::Failed("Spawn failed: simulated spawner failure".into()),
                    false,
                );
                hub.inner
                    .truth
                    .spawn
                    .with_label_values(&["error", ""])
                    .observe(seconds);
            } else {
                st.set_phase(&user, &server, P::Running, false);
                hub.inner
                    .truth
                    .spawn
                    .with_label_values(&["success", ""])
                    .observe(seconds);
            }
            hub.sync_gauges(&st);
            drop(st);
            hub.notify();
        });
        generation
    }

    /// Starts a stop; a timer finishes it. Returns the stop's generation.
    fn begin_stop(&self, st: &mut HubState, user: &str, server: &str) -> u64 {
        let generation = st.set_phase(user, server, P::Stopping, true);
        self.sync_gauges(st);
        let delay = self.inner.cfg.stop_delay;
        let hub = self.clone();
        let (user, server) = (user.to_string(), server.to_string());
        let began = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut st = hub.lock();
            let current = st
                .server_mut(&user, &server)
                .is_some_and(|s| s.generation == generation && s.phase == P::Stopping);
            if current {
                st.set_phase(&user, &server, P::Stopped, false);
                hub.inner
                    .truth
                    .stop
                    .with_label_values(&["success"])
                    .observe(began.elapsed().as_secs_f64());
                hub.sync_gauges(&st);
            }
            drop(st);
            hub.notify();
        });
        generation
    }

    /// Waits until the server of `generation` leaves `transient` or `limit` passes;
    /// returns the phase then (`None` if the user or that generation is gone).
    async fn settle(
        &self,
        user: &str,
        server: &str,
        generation: u64,
        transient: &Phase,
        limit: Duration,
    ) -> Option<Phase> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut changes = self.inner.changes.subscribe();
        loop {
            let phase = {
                let st = self.lock();
                let s = st.users.get(user)?.servers.get(server)?;
                if s.generation != generation {
                    return None;
                }
                s.phase.clone()
            };
            if &phase != transient {
                return Some(phase);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return Some(phase),
            }
        }
    }
}
