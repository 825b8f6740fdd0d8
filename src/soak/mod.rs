//! `hubsoak soak`: keep a population of simulated users alive on a hub, probe it, and
//! export what is measured on the admin server, until a signal (or `--duration`); then
//! apply `shutdown.on_exit` within `shutdown.grace`.

pub mod gate;
pub mod population;
pub mod probes;
pub mod record;
pub mod schedule;
pub mod settings;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::names::OurName;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Readiness};
use crate::hub::{
    Both, ClientBuildError, ClientConfig, HubClient, HubError, Lease, Need, ACTIVITY, CREATE_USERS,
    LEASE, LIST_USERS, READ_USERS, SERVERS,
};
use crate::journey::Journeys;
use crate::metrics::Metrics;
use crate::report::ReportMeta;
use gate::{Gate, Interrupted};
use record::SoakRecord;
use settings::{OnExit, SoakSettings};

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
    /// hubsoak could not work when it ended (a problem of its own: see hubsoak_problem),
    /// or never got to work at all.
    Unable,
}

/// The scopes the configured soak needs.
pub fn needs(settings: &SoakSettings) -> Vec<Need> {
    let mut needs = vec![
        CREATE_USERS,
        LIST_USERS,
        READ_USERS,
        SERVERS,
        ACTIVITY,
        LEASE,
    ];
    needs.extend(settings.journey.as_ref().and_then(|j| j.auth.need()));
    needs
}

/// Runs the soak. The admin server answers on `listener` from the start to the end;
/// `stop` (a signal) ends scheduling and begins the exit.
pub async fn run(
    settings: SoakSettings,
    listener: TcpListener,
    stop: CancellationToken,
) -> Result<SoakEnd, SoakError> {
    let settings = Arc::new(settings);
    let notebooks: Vec<&str> = settings
        .journey
        .iter()
        .flat_map(|j| &j.notebooks)
        .map(|n| n.name.as_str())
        .collect();
    let metrics = Metrics::new(settings.journey.is_some(), &notebooks);
    let record = SoakRecord::new(metrics.clone(), settings.journey.is_some(), &notebooks);
    let client = HubClient::new(
        ClientConfig::new(&settings.hub),
        Arc::new(Both(metrics.clone(), record.tally.clone())),
    )?;
    let journeys = match &settings.journey {
        Some(j) => Some(Arc::new(Journeys::new(
            j.clone(),
            &settings.hub.api_url,
            client.auth(),
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
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }

    let started_at = chrono::Utc::now();
    if let Some(d) = settings.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            tracing::info!("--duration reached");
            stop.cancel();
        });
    }
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(record.sample(client.clone(), sampling.clone()));
    let probe_user = Arc::new(Mutex::new(None));
    let probes = tokio::spawn(probes::run(
        client.clone(),
        record.clone(),
        settings.ping_interval,
        probe_user.clone(),
        stop.clone(),
    ));
    tracing::info!(
        endpoint = %settings.hub.api_url,
        prefix = settings.prefix.as_str(),
        target = settings.population.target,
        journeys = settings.journey.is_some(),
        "soak started"
    );
    let mut gate = Gate::new(
        client.clone(),
        metrics.clone(),
        ready.clone(),
        needs(&settings),
        Lease::new(client.clone(), &settings.prefix, settings.lease_ttl),
        settings.hub.token_file.clone(),
    );
    // Run the population while hubsoak can work; wait while it cannot.
    while gate.wait_until_able(&stop).await {
        let run = stop.child_token();
        let population = population::Population::new(
            client.clone(),
            record.clone(),
            settings.clone(),
            probe_user.clone(),
            journeys.clone(),
        );
        let (_, why) = tokio::join!(population.run(run.clone()), async {
            let why = gate.watch(&run).await;
            run.cancel();
            why
        });
        if matches!(why, Interrupted::Stop) || stop.is_cancelled() {
            break;
        }
        tracing::warn!("the population is paused until hubsoak can work again");
    }
    ready.not_ready("shutting down");
    let _ = probes.await;

    let end = if gate.holding && gate.problem().is_none() {
        apply_on_exit(&client, &settings).await
    } else {
        tracing::error!(
            problem = gate.problem().map_or("none", |p| p.kind().as_str()),
            worked = gate.worked,
            "hubsoak could not work when it ended; on_exit not applied"
        );
        SoakEnd::Unable
    };
    gate.release().await;
    sampling.cancel();
    let _ = sampler.await;
    let unable = (end == SoakEnd::Unable).then(|| match gate.problem() {
        Some(p) => format!("{}: {p}", p.kind()),
        None => "it never got to work".to_string(),
    });
    summary(&record, &settings, started_at, unable);
    admin_stop.cancel();
    let _ = admin.await;
    Ok(end)
}

async fn apply_on_exit(client: &HubClient, settings: &SoakSettings) -> SoakEnd {
    tracing::info!(on_exit = settings.on_exit.as_str(), grace = ?settings.grace, "shutting down");
    let started = Instant::now();
    match tokio::time::timeout(settings.grace, on_exit(client, settings)).await {
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
    }
}

/// The end-of-run table on stdout, as the one-shots print it, and `--report-json`.
fn summary(
    record: &SoakRecord,
    settings: &SoakSettings,
    started_at: chrono::DateTime<chrono::Utc>,
    unable: Option<String>,
) {
    let meta = ReportMeta {
        command: "soak".into(),
        endpoint: settings.hub.api_url.to_string(),
        hub_version: record.metrics().hub_version(),
        prefix: settings.prefix.as_str().to_string(),
        dry_run: false,
        started_at,
        parameters: serde_json::json!({
            "population": settings.population,
            "activity_interval_s": settings.activity_interval.as_secs_f64(),
            "ping_interval_s": settings.ping_interval.as_secs_f64(),
            "journeys": settings.journey.is_some(),
            "on_exit": settings.on_exit,
        }),
    };
    let mut report = record.report(meta);
    report.unable = unable;
    crate::out::print(&report.render());
    if let Some(path) = &settings.report_json {
        if let Err(e) = report.write_json(path) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the report");
        }
    }
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
    let failed = |what: &str, name: &OurName, e: &dyn std::fmt::Display| {
        tracing::warn!(user = %name, error = %e, "{what} failed at shutdown");
        1
    };
    let stops = AtomicUsize::new(0);
    client
        .stop_all(servers, EXIT_CONCURRENCY, settings.grace, |name, result| {
            if let Err(e) = result {
                stops.fetch_add(failed("stopping a server", name, &e), Relaxed);
            }
        })
        .await;
    let stops = stops.into_inner();
    tracing::info!(servers_failed = stops, "our servers stopped");
    let deletes = AtomicUsize::new(0);
    if settings.on_exit == OnExit::Purge {
        let users = ours.into_iter().map(|(name, _)| name).collect();
        let stop_wait = settings.population.stop_timeout;
        client
            .delete_all(users, EXIT_CONCURRENCY, stop_wait, |name, result| {
                if let Err(e) = result {
                    deletes.fetch_add(failed("deleting a user", name, &e), Relaxed);
                }
            })
            .await;
        tracing::info!(users_failed = deletes.load(Relaxed), "our users deleted");
    }
    let deletes = deletes.into_inner();
    if stops + deletes > 0 {
        return Err(ExitError::Incomplete { stops, deletes });
    }
    Ok(())
}
