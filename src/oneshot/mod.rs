//! The one-shot commands operators know from hub-stress-test.py — `stress-test`,
//! `activity-stress-test`, `purge` — and what they share: connecting, progress display,
//! stopping and deleting our users (through the hub client's one teardown), and
//! finishing with a report.

pub mod activity;
pub mod purge;
pub mod settings;
pub mod simulate;
pub mod stress;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::hub::{
    CheckError, Claim, ClientBuildError, ClientConfig, HubClient, HubError, Lease, Need, Problem,
    RequestTally, SpawnWaitError, StopWaitError, User,
};
use crate::names::OurName;
use crate::report::sampler::ServerCounts;
use crate::report::{Recorder, ReportMeta, RunReport};

/// How often a one-shot run's series is sampled (it thins itself on long runs).
const SAMPLE_STEP: Duration = Duration::from_secs(1);
use settings::{ReportSettings, Scope, ServerChoice};

/// How a spawn of a one-shot run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Spawned {
    Ready,
    /// Still pending when given up on: it needs stopping.
    Abandoned,
    Failed,
}

pub use crate::out::progress_bar;
pub use crate::report::Outcome;

/// A run that could not get to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// hubsoak cannot work on this hub as set up: bad input, found before any change.
    #[error(transparent)]
    Unusable(Problem),
    #[error("{doing}: {source}")]
    Hub {
        doing: &'static str,
        source: HubError,
    },
    #[error("cannot merge the rounds' reports: {0}")]
    Merge(String),
    #[error("cannot write the report to {path}: {source}")]
    Report {
        path: String,
        source: std::io::Error,
    },
}

impl RunError {
    /// Whether this is bad input (exit 2) rather than a run that failed.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RunError::Unusable(_))
    }
}

/// How long a one-shot's prefix lease lasts unless renewed.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// One run's shared parts: the client, what it counted, what the run recorded.
pub struct Run {
    pub client: HubClient,
    pub scope: Scope,
    pub tally: Arc<RequestTally>,
    recorder: Arc<Mutex<Recorder>>,
    pub cancel: CancellationToken,
    meta: ReportMeta,
    /// The prefix lease while this run holds it (released however the run ends).
    lease: Option<HeldLease>,
    /// WARN lines for failures, a count rather than a flood.
    voice: crate::voice::FailureLog,
    /// Servers by state, for the report's series.
    pub servers: Arc<ServerCounts>,
    /// Stops the series' sampler.
    sampling: CancellationToken,
}

impl Run {
    /// Checks that hubsoak can do work needing `needs` on the hub and takes the prefix
    /// lease, before any state-changing request; a problem is [`RunError::Unusable`].
    pub async fn connect(
        scope: &Scope,
        command: &str,
        parameters: serde_json::Value,
        cancel: CancellationToken,
        needs: &[Need],
    ) -> Result<Run, RunError> {
        let tally = Arc::new(RequestTally::default());
        let client = HubClient::new(ClientConfig::new(&scope.hub), tally.clone())?;
        let hub_version = match client.check_access(needs).await {
            Ok(access) => Some(access.version),
            Err(CheckError::Problem(p)) => return Err(RunError::Unusable(p)),
            Err(CheckError::Unreachable(source)) => {
                return Err(RunError::Hub {
                    doing: "checking the hub and the token",
                    source,
                })
            }
        };
        let lease = take_lease(&client, scope).await?;
        tracing::info!(
            endpoint = %scope.hub.api_url,
            hub_version = hub_version.as_deref().unwrap_or("unknown"),
            prefix = scope.prefix.as_str(),
            dry_run = scope.dry_run,
            "{command}"
        );
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let servers = Arc::new(ServerCounts::default());
        let sampling = CancellationToken::new();
        tokio::spawn(crate::report::sampler::sample(
            recorder.clone(),
            tally.clone(),
            servers.reader(),
            Some(client.clone()),
            SAMPLE_STEP,
            sampling.clone(),
        ));
        Ok(Run {
            client,
            scope: scope.clone(),
            tally,
            recorder,
            servers,
            sampling,
            cancel,
            meta: ReportMeta {
                command: command.to_string(),
                endpoint: scope.hub.api_url.to_string(),
                hub_version,
                prefix: scope.prefix.as_str().to_string(),
                dry_run: scope.dry_run,
                started_at: Utc::now(),
                parameters,
            },
            lease,
            voice: crate::voice::FailureLog::default(),
        })
    }

    /// Every user of ours on the hub (all pages).
    pub async fn list_ours(&self) -> Result<Vec<(OurName, User)>, RunError> {
        self.client
            .list_our_users(&self.scope.prefix)
            .await
            .map_err(|source| RunError::Hub {
                doing: "listing our users",
                source,
            })
    }

    /// `count` new names after the highest index among `existing`, so a run after a
    /// `--keep` run never collides.
    pub fn next_names(&self, existing: &[(OurName, User)], count: u64) -> Vec<OurName> {
        let prefix = &self.scope.prefix;
        let first = existing
            .iter()
            .filter_map(|(n, _)| prefix.index_of(n.as_str()))
            .max()
            .map_or(1, |m| m + 1);
        (first..first + count).map(|i| prefix.name(i)).collect()
    }

    pub fn record(&self) -> MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A failed `action` of `subject` (a user) for `reason`: into the report, and a WARN
    /// line (rate-limited per action and reason).
    pub fn failed(
        &self,
        action: &'static str,
        reason: &'static str,
        subject: &dyn std::fmt::Display,
        detail: &dyn std::fmt::Display,
    ) {
        {
            let mut record = self.record();
            record.failure(action, reason);
            record.error_message(action, reason, &subject.to_string(), &detail.to_string());
        }
        self.voice.failed(action, reason, subject, detail);
    }

    /// Times `phase` into the report.
    pub fn phase_done(&self, phase: &str, since: Instant) {
        self.record().phase(phase, since.elapsed());
    }

    /// Checks the thresholds, prints the table to stdout, writes the JSON, and says how
    /// the run went: with thresholds, they alone decide; without, any failure does.
    pub async fn finish(
        mut self,
        settings: &ReportSettings,
    ) -> Result<(Outcome, RunReport), RunError> {
        self.voice.flush_all();
        self.sampling.cancel();
        if let Some(held) = self.lease.take() {
            held.release().await;
        }
        let mut report = self.record().report(self.meta.clone(), &self.tally);
        report.thresholds = settings
            .thresholds
            .iter()
            .map(|t| t.check(&report))
            .collect();
        crate::out::print(&report.render());
        if let Some(path) = settings.json.as_deref() {
            write_report(path, &report)?;
        }
        let outcome = if !report.thresholds.is_empty() {
            if report.thresholds.iter().all(|t| t.passed) {
                Outcome::Clean
            } else {
                Outcome::ThresholdsMissed
            }
        } else if report.failed {
            Outcome::Failures
        } else {
            Outcome::Clean
        };
        Ok((outcome, report))
    }
}

/// A one-shot's lease: renewed while it runs, released when the run finishes — or,
/// when the run ends in an error, by [`release_leases`] before the process exits, so
/// the next run is not refused for a minute.
struct HeldLease {
    lease: Option<Lease>,
    renewal: tokio::task::JoinHandle<()>,
}

/// Releases handed over by runs that ended in an error, for `main` to wait on.
static RELEASING: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

impl HeldLease {
    async fn release(mut self) {
        self.renewal.abort();
        if let Some(lease) = self.lease.take() {
            release(&lease).await;
        }
    }
}

async fn release(lease: &Lease) {
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "cannot release the prefix lease; it expires by itself");
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if let Some(lease) = self.lease.take() {
            let handle = tokio::spawn(async move { release(&lease).await });
            RELEASING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
    }
}

/// Waits (a few seconds at most) for the leases of runs that ended in an error.
pub async fn release_leases() {
    let pending: Vec<_> = std::mem::take(&mut *RELEASING.lock().unwrap_or_else(|e| e.into_inner()));
    let all = futures::future::join_all(pending);
    let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
}

/// Takes the prefix lease for the run (renewed until it ends), or refuses to run on a
/// prefix another instance holds — unless `--force`. A dry run only looks.
async fn take_lease(client: &HubClient, scope: &Scope) -> Result<Option<HeldLease>, RunError> {
    let lease = Lease::new(client.clone(), &scope.prefix, LEASE_TTL);
    let hub_error = |source| RunError::Hub {
        doing: "taking the prefix lease",
        source,
    };
    let holder = if scope.dry_run {
        lease
            .read()
            .await
            .map_err(hub_error)?
            .filter(|h| h.expires > Utc::now())
    } else {
        let mut claim = lease.acquire().await.map_err(hub_error)?;
        if claim == Claim::Contended {
            claim = lease.acquire().await.map_err(hub_error)?;
        }
        match claim {
            Claim::Held => {
                let renewing = lease.clone();
                let renewal = tokio::spawn(async move {
                    let mut every = tokio::time::interval(LEASE_TTL / 3);
                    every.tick().await;
                    loop {
                        every.tick().await;
                        if let Err(e) = renewing.renew().await {
                            tracing::warn!(error = %e, "cannot renew the prefix lease");
                        }
                    }
                });
                return Ok(Some(HeldLease {
                    lease: Some(lease),
                    renewal,
                }));
            }
            Claim::HeldBy(h) => Some(h),
            Claim::Contended => None,
        }
    };
    match holder {
        None => Ok(None),
        Some(h) if scope.force => {
            tracing::warn!(holder = %h, "prefix held by another hubsoak; going ahead (--force)");
            Ok(None)
        }
        Some(h) => Err(RunError::Unusable(Problem::PrefixHeld {
            prefix: scope.prefix.as_str().to_string(),
            holder: h.to_string(),
        })),
    }
}

/// Writes `report` as JSON to `path`.
pub fn write_report(path: &std::path::Path, report: &RunReport) -> Result<(), RunError> {
    report.write_json(path).map_err(|source| RunError::Report {
        path: path.display().to_string(),
        source,
    })
}

/// Prints a dry run's plan.
pub fn print_plan(lines: &[String]) {
    crate::out::line(format_args!("dry run: nothing will be changed. Plan:"));
    for line in lines {
        crate::out::line(format_args!("  - {line}"));
    }
}

/// Stops each `(user, server)`, `concurrency` at a time, with a progress bar; the stop
/// latency runs from the request until the server has left the user's `servers`.
pub async fn stop_servers(
    run: &Run,
    servers: Vec<(OurName, String)>,
    concurrency: usize,
    stop_timeout: Duration,
) {
    if servers.is_empty() {
        return;
    }
    let bar = progress_bar(servers.len() as u64, "stop");
    let c = &run.servers;
    // All asked at once as far as the chart can tell: running → stopping → gone.
    for _ in &servers {
        c.moved(Some(&c.running), Some(&c.stopping));
    }
    run.client
        .stop_all(servers, concurrency, stop_timeout, |name, result| {
            c.moved(Some(&c.stopping), None);
            match result {
                Ok(took) => run.record().success("stop", Some(took)),
                Err(e) => run.failed("stop", stop_reason(&e), name, &e),
            }
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
}

fn stop_reason(e: &StopWaitError) -> &'static str {
    match e {
        StopWaitError::TimedOut => "timeout",
        StopWaitError::Hub(e) => e.reason().as_str(),
    }
}

/// Deletes each user, `concurrency` at a time, with a progress bar.
pub async fn delete_users(
    run: &Run,
    users: Vec<OurName>,
    concurrency: usize,
    stop_timeout: Duration,
) {
    if users.is_empty() {
        return;
    }
    let bar = progress_bar(users.len() as u64, "delete");
    run.client
        .delete_all(users, concurrency, stop_timeout, |name, result| {
            match result {
                Ok(_) => run.record().success("delete_user", None),
                Err(e) => run.failed("delete_user", e.reason().as_str(), name, &e),
            }
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
}

/// Creates `names` in requests of `batch` names; returns those the hub created.
pub async fn create_users(run: &Run, names: &[OurName], batch: usize) -> Vec<OurName> {
    let mut created = Vec::new();
    let bar = progress_bar(names.len() as u64, "create");
    for (i, chunk) in names.chunks(batch.max(1)).enumerate() {
        if run.cancel.is_cancelled() {
            break;
        }
        match run.client.create_users(chunk).await {
            Ok(users) => {
                let mut made = 0;
                for name in chunk {
                    if users.iter().any(|u| u.name == name.as_str()) {
                        created.push(name.clone());
                        run.record().success("create_user", None);
                        made += 1;
                    } else {
                        // Someone made it between our listing and now: not ours to use.
                        run.record().failure("create_user", "already_exists");
                    }
                }
                tracing::info!(batch = i + 1, created = made, "users created");
            }
            Err(e) => {
                let batch = format_args!("batch {}", i + 1).to_string();
                for _ in chunk {
                    run.failed("create_user", e.reason().as_str(), &batch, &e);
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    created
}

/// Starts one server and waits for it; records the outcome.
pub async fn spawn_server(
    run: &Run,
    name: &OurName,
    server: &ServerChoice,
    planned: Instant,
    timeout: Duration,
) -> Spawned {
    let c = &run.servers;
    c.moved(None, Some(&c.starting));
    let spawned = spawn_attempt(run, name, server, planned, timeout).await;
    match spawned {
        Spawned::Ready | Spawned::Abandoned => c.moved(Some(&c.starting), Some(&c.running)),
        Spawned::Failed => c.moved(Some(&c.starting), None),
    }
    spawned
}

async fn spawn_attempt(
    run: &Run,
    name: &OurName,
    server: &ServerChoice,
    planned: Instant,
    timeout: Duration,
) -> Spawned {
    let attempt = run.client.start_and_wait(
        name,
        &server.server_name,
        server.user_options.as_ref(),
        planned + timeout,
    );
    let result = tokio::select! {
        r = attempt => r,
        _ = run.cancel.cancelled() => {
            run.record().failure("spawn", "cancelled");
            return Spawned::Abandoned;
        }
    };
    match result {
        Ok(trace) => {
            let mut record = run.record();
            record.success("spawn", Some(planned.elapsed()));
            for (phase, took) in trace.phases(crate::hub::wall_time(planned)) {
                record.latency(phase.action(), took);
            }
            Spawned::Ready
        }
        Err(e @ SpawnWaitError::TimedOut) => {
            run.failed("spawn", "timeout", name, &e);
            Spawned::Abandoned
        }
        Err(e @ SpawnWaitError::Failed(_)) => {
            run.failed("spawn", "spawn_failed", name, &e);
            Spawned::Failed
        }
        // JupyterHub answers 500 when the spawn failed within its slow_spawn_timeout.
        Err(SpawnWaitError::Hub(e)) if e.status() == Some(500) => {
            run.failed("spawn", "spawn_failed", name, &e);
            Spawned::Failed
        }
        Err(SpawnWaitError::Hub(e)) => {
            run.failed("spawn", e.reason().as_str(), name, &e);
            // A gateway error or lost answer may have left a spawn behind: stop it too.
            if e.status().is_some_and(|c| c >= 500) || e.status().is_none() {
                Spawned::Abandoned
            } else {
                Spawned::Failed
            }
        }
    }
}
