//! `hubsoak demo`: the simulator and a soak against it, in one process — realistic
//! spawn times with jitter, a little failure, a concurrent spawn limit, short sessions,
//! and every user running code in a kernel, so `/metrics` fills within a minute without
//! any hub.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::hub::HubSettings;
use crate::hub::Token;
use crate::journey::{AuthMode, JourneySettings};
use crate::mockhub::{MockConfig, MockHub};
use crate::soak::settings::{OnExit, PopulationSettings, SoakSettings};
use crate::soak::{self, SoakEnd};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--hub-listen: cannot bind {addr}: {source}")]
    HubBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("--metrics-listen: cannot bind {addr}: {source}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Soak(#[from] soak::SoakError),
}

/// What `hubsoak demo` runs: the simulator's shape and the soak against it.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub metrics_listen: std::net::SocketAddr,
    pub hub_listen: std::net::SocketAddr,
    pub target: usize,
    pub spawn_failure_rate: f64,
    pub duration: Duration,
    pub session_min: Duration,
    pub session_max: Duration,
}

impl DemoError {
    /// A port that cannot be bound is bad input; the soak failing is not.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DemoError::Soak(_))
    }
}

pub async fn run(s: &DemoSettings, stop: CancellationToken) -> Result<SoakEnd, DemoError> {
    let token = Token::random();
    let hub = MockHub::new(MockConfig {
        token: token.expose().to_string(),
        spawn_delay: Duration::from_secs(2),
        spawn_jitter: Duration::from_secs(6),
        stop_delay: Duration::from_millis(500),
        spawn_failure_rate: s.spawn_failure_rate,
        concurrent_spawn_limit: Some(8),
        retry_after: 2..=5,
        slow_spawn_timeout: Duration::from_secs(3),
        // Like a hub with authenticate_prometheus = False, so Prometheus can scrape it.
        authenticate_prometheus: false,
        ..MockConfig::default()
    });
    let server = hub
        .start(s.hub_listen)
        .await
        .map_err(|source| DemoError::HubBind {
            addr: s.hub_listen,
            source,
        })?;
    let listener = TcpListener::bind(s.metrics_listen)
        .await
        .map_err(|source| DemoError::MetricsBind {
            addr: s.metrics_listen,
            source,
        })?;
    let metrics_addr = listener.local_addr().unwrap_or(s.metrics_listen);
    let api = server.api_url();
    crate::out::line(format_args!(
        "hubsoak demo: a simulated JupyterHub at {api}"
    ));
    crate::out::line(format_args!(
        "hubsoak demo: the hub's own metrics at http://{}/hub/metrics",
        server.addr
    ));
    crate::out::line(format_args!(
        "hubsoak demo: metrics at http://{metrics_addr}/metrics (also /livez, /readyz)"
    ));
    crate::out::line(format_args!(
        "hubsoak demo: keeping {} servers alive for {}; Ctrl-C to stop sooner",
        s.target,
        humantime::format_duration(s.duration)
    ));
    tracing::info!(addr = %metrics_addr, "admin server listening");
    let api_url: url::Url = format!("{api}/")
        .parse()
        .expect("the simulator's URL parses");
    let settings = SoakSettings {
        // The simulated servers run kernels too: every user runs code through its session.
        journey: Some(JourneySettings {
            public_url: crate::journey::public_url_from_api(&api_url),
            auth: AuthMode::Token,
            code: "5 * 4".into(),
            expect: "20".into(),
            think_time: Duration::from_secs(5),
            step_timeout: Duration::from_secs(30),
            kernel_name: String::new(),
        }),
        hub: HubSettings {
            api_url,
            token,
            token_file: None,
            request_timeout: Duration::from_secs(10),
            ca_file: None,
            max_in_flight: 64,
        },
        prefix: crate::names::Prefix::new("demo").expect("a valid prefix"),
        shard: None,
        population: PopulationSettings {
            target: s.target,
            max_spawns_in_flight: 10,
            spawn_rate: 60.0,
            session_min: s.session_min,
            session_max: s.session_max,
            spawn_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(20),
            server_name: String::new(),
            user_options: Default::default(),
            arrivals: crate::soak::schedule::Arrivals::Paced,
            batch_size: 10,
            stages: Vec::new(),
        },
        activity_interval: Duration::from_secs(10),
        activity_jitter: 0.1,
        ping_interval: Duration::from_secs(5),
        metrics_listen: metrics_addr,
        on_exit: OnExit::Purge,
        grace: Duration::from_secs(30),
        log_format: crate::logging::LogFormat::Text,
        duration: Some(s.duration),
        status_interval: Duration::from_secs(30),
        lease_ttl: Duration::from_secs(60),
        report_json: None,
        warnings: Vec::new(),
    };
    let end = soak::run(settings, listener, stop).await?;
    server.stop().await;
    Ok(end)
}
