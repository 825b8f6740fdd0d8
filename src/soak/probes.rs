//! Pings every interval, on a fixed schedule: `GET /hub/health` (hubsoak_hub_up),
//! `GET /hub/api/` (the hub's version into hubsoak_hub_info) and an authenticated
//! `GET /users/{name}` of a running simulated user. A tick whose previous pings are
//! still out is counted as dropped, never silently skipped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::hub::HubClient;
use crate::metrics::Metrics;

pub async fn run(
    client: HubClient,
    metrics: Metrics,
    interval: Duration,
    probe_user: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
) {
    let mut planned = Instant::now();
    let mut in_flight: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(planned) => {}
        }
        let this = planned;
        planned += interval;
        if in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            metrics.dropped("ping");
            continue;
        }
        metrics.lag("ping", this.elapsed());
        let user = probe_user.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (client, metrics) = (client.clone(), metrics.clone());
        in_flight = Some(tokio::spawn(async move {
            tokio::join!(
                health(&client, &metrics, this),
                version(&client, &metrics, this),
                user_ping(&client, &metrics, this, user),
            );
        }));
    }
    if let Some(h) = in_flight {
        h.abort();
    }
}

fn observe(metrics: &Metrics, target: &str, planned: Instant, ok: bool) {
    if ok {
        metrics
            .ping_duration
            .with_label_values(&[target])
            .observe(planned.elapsed().as_secs_f64());
    } else {
        metrics.ping_failures.with_label_values(&[target]).inc();
    }
}

async fn health(client: &HubClient, metrics: &Metrics, planned: Instant) {
    let result = client.health().await;
    let up = result.is_ok();
    if let Err(e) = result {
        tracing::debug!(error = %e, "health probe failed");
    }
    if metrics.hub_up.get() != i64::from(up) {
        tracing::info!(up, "hub health changed");
    }
    metrics.hub_up.set(i64::from(up));
    observe(metrics, "health", planned, up);
}

async fn version(client: &HubClient, metrics: &Metrics, planned: Instant) {
    match client.probe_version().await {
        Ok(v) => {
            metrics.set_hub_version(&v.version);
            observe(metrics, "api", planned, true);
        }
        Err(_) => observe(metrics, "api", planned, false),
    }
}

async fn user_ping(client: &HubClient, metrics: &Metrics, planned: Instant, user: Option<String>) {
    let Some(name) = user else {
        return;
    };
    let ok = matches!(client.probe_user(&name).await, Ok(Some(_)));
    observe(metrics, "user", planned, ok);
}
