//! Pings every interval, on a fixed schedule: `GET /hub/health` (hubsoak_hub_up),
//! `GET /hub/api/` (the hub's version into hubsoak_hub_info) and an authenticated
//! `GET /users/{name}` of a running simulated user. A tick whose previous pings are
//! still out is counted as dropped, never silently skipped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::hub::HubClient;
use crate::metrics::{Action, Probe};
use crate::soak::record::SoakRecord;

pub async fn run(
    client: HubClient,
    record: Arc<SoakRecord>,
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
            record.dropped(Action::Ping);
            continue;
        }
        record.lag(Action::Ping, this.elapsed());
        let user = probe_user.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (client, record) = (client.clone(), record.clone());
        in_flight = Some(tokio::spawn(async move {
            tokio::join!(
                health(&client, &record, this),
                version(&client, &record, this),
                user_ping(&client, &record, this, user),
            );
            record.flush();
        }));
    }
    if let Some(h) = in_flight {
        h.abort();
    }
}

async fn health(client: &HubClient, record: &SoakRecord, planned: Instant) {
    let result = client.health().await;
    let metrics = record.metrics();
    let up = result.is_ok();
    if metrics.hub_up(up) != up {
        match &result {
            Ok(()) => tracing::info!("the hub answers its health check"),
            Err(e) => tracing::warn!(error = %e, "the hub does not answer its health check"),
        }
    }
    match result {
        Ok(()) => record.ping(Probe::Health, Ok(planned.elapsed())),
        Err(e) => record.ping(Probe::Health, Err((e.reason().as_str(), &e))),
    }
}

async fn version(client: &HubClient, record: &SoakRecord, planned: Instant) {
    match client.probe_version().await {
        Ok(v) => {
            record.metrics().set_hub_version(&v.version);
            record.ping(Probe::Api, Ok(planned.elapsed()));
        }
        Err(e) => record.ping(Probe::Api, Err((e.reason().as_str(), &e))),
    }
}

async fn user_ping(
    client: &HubClient,
    record: &SoakRecord,
    planned: Instant,
    user: Option<String>,
) {
    let Some(name) = user else {
        return;
    };
    match client.probe_user(&name).await {
        Ok(Some(_)) => record.ping(Probe::User, Ok(planned.elapsed())),
        Ok(None) => record.ping(
            Probe::User,
            Err(("not_found", &format_args!("{name} is gone"))),
        ),
        Err(e) => record.ping(Probe::User, Err((e.reason().as_str(), &e))),
    }
}
