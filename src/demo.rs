//! `hubsoak demo`: the simulator and a soak against it, in one process — realistic
//! spawn times with jitter, a little failure, a concurrent spawn limit, short sessions,
//! and every user running code in a kernel, so `/metrics` fills within a minute without
//! any hub.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::mockhub::{MockConfig, MockHub};
use crate::soak::settings::SoakSettings;
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

/// What `hubsoak demo` runs: the simulator's shape and the soak against it (its hub
/// address is set once the simulator listens).
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub soak: SoakSettings,
    pub hub_listen: std::net::SocketAddr,
    pub spawn_failure_rate: f64,
}

impl DemoError {
    /// A port that cannot be bound is bad input; the soak failing is not.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DemoError::Soak(_))
    }
}

pub async fn run(s: &DemoSettings, stop: CancellationToken) -> Result<SoakEnd, DemoError> {
    let mut settings = s.soak.clone();
    let hub = MockHub::new(MockConfig {
        token: settings.hub.token.expose().to_string(),
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
    let listener = TcpListener::bind(settings.metrics_listen)
        .await
        .map_err(|source| DemoError::MetricsBind {
            addr: settings.metrics_listen,
            source,
        })?;
    let metrics_addr = listener.local_addr().unwrap_or(settings.metrics_listen);
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
        "hubsoak demo: keeping {} alive for {}; Ctrl-C to stop sooner",
        crate::out::count(settings.population.target as u64, "server"),
        humantime::format_duration(settings.duration.unwrap_or_default())
    ));
    tracing::info!(addr = %metrics_addr, "admin server listening");
    let api_url: url::Url = format!("{api}/")
        .parse()
        .expect("the simulator's URL parses");
    settings.hub.api_url = api_url.clone();
    if let Some(journey) = &mut settings.journey {
        journey.public_url = crate::journey::public_url_from_api(&api_url);
    }
    settings.metrics_listen = metrics_addr;
    let end = soak::run(settings, listener, stop).await?;
    server.stop().await;
    Ok(end)
}
