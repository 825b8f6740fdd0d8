//! `hubsoak soak`: keep a population of simulated users alive on a hub, probe it, and
//! export what is measured on the admin server, until a signal (or `--duration`); then
//! apply `shutdown.on_exit` within `shutdown.grace`.

pub mod population;
pub mod probes;
pub mod schedule;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Readiness};
use crate::config::soak::{OnExit, SoakSettings};
use crate::hub::{ClientBuildError, HubClient, HubError};
use crate::journey::Journeys;
use crate::metrics::Metrics;

/// Servers stopped (or users deleted) at once on the way out.
const EXIT_CONCURRENCY: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    Client(#[from] ClientBuildError),
}

/// Why `on_exit` did not finish.
#[derive(Debug, thiserror::Error)]
enum ExitError {
    #[error("cannot list our users: {0}")]
    List(#[from] HubError),
    #[error("{stops} servers could not be stopped, {deletes} users could not be deleted")]
    Incomplete { stops: usize, deletes: usize },
}

/// How the soak ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakEnd {
    /// on_exit was applied in full.
    Clean,
    /// on_exit could not finish within the grace period (or the hub refused).
    Incomplete,
}

/// Runs the soak. The admin server answers on `listener` from the start to the end;
/// `stop` (a signal) ends scheduling and begins the exit.
pub async fn run(
    settings: SoakSettings,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<SoakEnd, SoakError> {
    let settings = Arc::new(settings);
    let metrics = Metrics::new(settings.journey.is_some());
    let client = HubClient::new(settings.hub.client_config(), Arc::new(metrics.clone()))?;
    let journeys = match &settings.journey {
        Some(j) => Some(Arc::new(Journeys::new(
            j.clone(),
            &settings.hub.api_url,
            &settings.hub.token,
            settings.hub.ca_file.as_deref(),
            settings.hub.request_timeout,
        )?)),
        None => None,
    };
    let ready = Readiness::default();
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(admin::serve(
        listener,
        metrics.clone(),
        ready.clone(),
        admin_stop.clone(),
    ));

    if let Some(d) = settings.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            tracing::info!("--duration reached");
            stop.cancel();
        });
    }
    let probe_user = Arc::new(Mutex::new(None));
    let probes = tokio::spawn(probes::run(
        client.clone(),
        metrics.clone(),
        settings.ping_interval,
        probe_user.clone(),
        stop.clone(),
    ));
    let population = population::Population::new(
        client.clone(),
        metrics.clone(),
        settings.clone(),
        probe_user,
        journeys,
    );
    tracing::info!(
        endpoint = %settings.hub.api_url,
        prefix = settings.prefix.as_str(),
        target = settings.population.target,
        journeys = settings.journey.is_some(),
        "soak started"
    );
    ready.set(true);
    population.run(stop.clone()).await;
    ready.set(false);
    let _ = probes.await;

    tracing::info!(on_exit = ?settings.on_exit, grace = ?settings.grace, "shutting down");
    let started = Instant::now();
    let end = match tokio::time::timeout(settings.grace, on_exit(&client, &settings)).await {
        Ok(Ok(())) => {
            tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "shutdown complete"
            );
            SoakEnd::Clean
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "shutdown could not finish");
            SoakEnd::Incomplete
        }
        Err(_) => {
            tracing::error!(grace = ?settings.grace, "shutdown did not finish within the grace period");
            SoakEnd::Incomplete
        }
    };
    admin_stop.cancel();
    let _ = admin.await;
    Ok(end)
}

/// `leave` nothing, `stop` our servers, or `purge` our users — only users with our
/// prefix, read fresh from the hub.
async fn on_exit(client: &HubClient, settings: &SoakSettings) -> Result<(), ExitError> {
    if settings.on_exit == OnExit::Leave {
        return Ok(());
    }
    let ours = client.list_our_users(&settings.prefix).await?;
    let servers: Vec<_> = ours
        .iter()
        .flat_map(|(name, user)| user.servers.keys().map(move |s| (name.clone(), s.clone())))
        .collect();
    let stop_deadline = Instant::now() + settings.grace;
    let stops = count_failures(servers, |(name, server)| async move {
        client
            .stop_and_wait(&name, &server, stop_deadline)
            .await
            .is_ok()
    })
    .await;
    tracing::info!(servers_failed = stops, "our servers stopped");
    let mut deletes = 0;
    if settings.on_exit == OnExit::Purge {
        let stop_wait = settings.population.stop_timeout;
        deletes = count_failures(ours, |(name, _)| async move {
            client
                .delete_user_when_stopped(&name, stop_wait)
                .await
                .is_ok()
        })
        .await;
        tracing::info!(users_failed = deletes, "our users deleted");
    }
    if stops + deletes > 0 {
        return Err(ExitError::Incomplete { stops, deletes });
    }
    Ok(())
}

/// Runs `job` on every item, `EXIT_CONCURRENCY` at a time; how many returned false.
async fn count_failures<T, F, Fut>(items: Vec<T>, job: F) -> usize
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    futures::stream::iter(items)
        .map(job)
        .buffer_unordered(EXIT_CONCURRENCY)
        .filter(|ok| futures::future::ready(!*ok))
        .count()
        .await
}
