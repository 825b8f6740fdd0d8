//! What the soak does, recorded once per event into everything that tells it: the
//! Prometheus metrics, the run report (since start; the end-of-run table and
//! `--report-json`), the status line's interval figures, and — for failures — a WARN
//! line through the rate-limited failure log.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::hub::{HubClient, RequestTally, SpawnPhase};
use tokio_util::sync::CancellationToken;

/// How often the soak's series (the report's charts) is sampled; it thins itself.
const SAMPLE_STEP: Duration = Duration::from_secs(5);
use crate::journey::{CodeCell, JourneyError, Notebook, Step, StepSink};
use crate::metrics::{Action, Metrics, Probe, Status};
use crate::report::{fmt_secs, Latency, Recorder, ReportMeta, RunReport};
use crate::voice::FailureLog;

/// How a spawn or a stop ended: the `status` label, and for failures a bounded reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Success,
    Timeout,
    Failure(&'static str),
}

impl Ended {
    fn status(self) -> Status {
        match self {
            Ended::Success => Status::Success,
            Ended::Timeout => Status::Timeout,
            Ended::Failure(_) => Status::Failure,
        }
    }

    fn reason(self) -> Option<&'static str> {
        match self {
            Ended::Success => None,
            Ended::Timeout => Some("timeout"),
            Ended::Failure(r) => Some(r),
        }
    }
}

/// The figures of one status interval.
#[derive(Debug, Default)]
struct Interval {
    spawns: Latency,
    stops: Latency,
    failures: BTreeMap<(&'static str, &'static str), u64>,
    lag_max: Duration,
    dropped: u64,
}

/// Slot counts for the status line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Census {
    pub target: usize,
    pub running: usize,
    pub starting: usize,
    pub stopping: usize,
    pub failed: usize,
}

pub struct SoakRecord {
    metrics: Metrics,
    journeys: bool,
    run: Arc<Mutex<Recorder>>,
    interval: Mutex<Interval>,
    voice: FailureLog,
    /// Every request the client sent, for the report's request table.
    pub tally: Arc<RequestTally>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SoakRecord {
    /// `notebooks`: the names of the journeys' notebooks, each shown even if never run.
    pub fn new(metrics: Metrics, journeys: bool, notebooks: &[&str]) -> Arc<Self> {
        let mut run = Recorder::default();
        run.series_step(SAMPLE_STEP);
        for action in ["spawn", "stop", "activity", "ping"] {
            run.expect(action);
        }
        for name in notebooks {
            run.expect_notebook(name);
        }
        Arc::new(SoakRecord {
            metrics,
            journeys,
            run: Arc::new(Mutex::new(run)),
            interval: Mutex::default(),
            voice: FailureLog::default(),
            tally: Arc::new(RequestTally::default()),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Samples the run's series (the report's charts) every `SAMPLE_STEP` until `stop`.
    pub fn sample(
        &self,
        client: HubClient,
        stop: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let metrics = self.metrics.clone();
        crate::report::sampler::sample(
            self.run.clone(),
            self.tally.clone(),
            Box::new(move || metrics.servers_now()),
            Some(client),
            SAMPLE_STEP,
            stop,
        )
    }

    fn failure(
        &self,
        action: &'static str,
        reason: &'static str,
        subject: &dyn Display,
        detail: &dyn Display,
    ) {
        {
            let mut run = lock(&self.run);
            run.failure(action, reason);
            run.error_message(action, reason, &subject.to_string(), &detail.to_string());
        }
        *lock(&self.interval)
            .failures
            .entry((action, reason))
            .or_default() += 1;
        self.voice.failed(action, reason, subject, detail);
    }

    pub fn spawn_finished(
        &self,
        ended: Ended,
        took: Duration,
        user: &dyn Display,
        detail: &dyn Display,
    ) {
        self.server_change(Step::Spawn, ended, took, user, detail);
    }

    /// Where a successful spawn's time went.
    pub fn spawn_phases(&self, phases: &[(SpawnPhase, Duration)]) {
        let mut run = lock(&self.run);
        for (phase, took) in phases {
            self.metrics.spawn_phase(*phase, *took);
            run.latency(phase.action(), *took);
        }
    }

    pub fn stop_finished(
        &self,
        ended: Ended,
        took: Duration,
        user: &dyn Display,
        detail: &dyn Display,
    ) {
        self.server_change(Step::Stop, ended, took, user, detail);
    }

    /// A spawn or a stop (`step`) ended: its histogram, its journey step, the report
    /// and the interval, or the failure.
    fn server_change(
        &self,
        step: Step,
        ended: Ended,
        took: Duration,
        user: &dyn Display,
        detail: &dyn Display,
    ) {
        match step {
            Step::Spawn => self.metrics.spawn_finished(ended.status(), took),
            _ => self.metrics.stop_finished(ended.status(), took),
        }
        if self.journeys {
            self.journey_metric(step, took, ended == Ended::Success);
        }
        let action = step.as_str();
        match ended.reason() {
            None => {
                lock(&self.run).success(action, Some(took));
                let mut interval = lock(&self.interval);
                match step {
                    Step::Spawn => interval.spawns.record(took),
                    _ => interval.stops.record(took),
                }
            }
            Some(reason) => self.failure(action, reason, user, detail),
        }
    }

    pub fn activity(
        &self,
        result: Result<Duration, (&'static str, &dyn Display)>,
        user: &dyn Display,
    ) {
        match result {
            Ok(took) => lock(&self.run).success("activity", Some(took)),
            Err((reason, detail)) => self.failure("activity", reason, user, detail),
        }
    }

    /// A probe (health, api, user), timed from its planned time.
    pub fn ping(&self, probe: Probe, result: Result<Duration, (&'static str, &dyn Display)>) {
        let target = probe.as_str();
        match result {
            Ok(took) => {
                self.metrics.ping_ok(probe, took);
                // The user ping is what activity-stress-test's ping is: comparable.
                if probe == Probe::User {
                    lock(&self.run).success("ping", Some(took));
                }
            }
            Err((reason, detail)) => {
                self.metrics.ping_failed(probe);
                if probe == Probe::User {
                    self.failure("ping", reason, &target, detail);
                } else {
                    self.voice.failed("ping", reason, &target, detail);
                }
            }
        }
    }

    pub fn lag(&self, action: Action, lag: Duration) {
        self.metrics.lag(action, lag);
        let mut i = lock(&self.interval);
        i.lag_max = i.lag_max.max(lag);
    }

    pub fn dropped(&self, action: Action) {
        self.metrics.dropped(action);
        lock(&self.interval).dropped += 1;
    }

    fn journey_metric(&self, step: Step, took: Duration, ok: bool) {
        if ok {
            self.metrics.journey_step_ok(step, took);
        } else {
            self.metrics.journey_step_failed(step);
        }
    }

    /// Prints the counts the failure log holds back once their window is over.
    pub fn flush(&self) {
        self.voice.flush();
    }

    /// One INFO line with the interval's figures; starts the next interval.
    pub fn status(&self, c: Census) {
        let i = std::mem::take(&mut *lock(&self.interval));
        let q = |l: &Latency, q: f64| {
            if l.count() == 0 {
                "-".to_string()
            } else {
                fmt_secs(l.quantile(q).as_secs_f64())
            }
        };
        let failures = if i.failures.is_empty() {
            "none".to_string()
        } else {
            i.failures
                .iter()
                .map(|((a, r), n)| format!("{a}/{r}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        tracing::info!(
            running = c.running,
            target = c.target,
            starting = c.starting,
            stopping = c.stopping,
            failed = c.failed,
            spawns = i.spawns.count(),
            spawn_p50 = %q(&i.spawns, 0.5),
            spawn_p95 = %q(&i.spawns, 0.95),
            stops = i.stops.count(),
            stop_p50 = %q(&i.stops, 0.5),
            stop_p95 = %q(&i.stops, 0.95),
            failures = %failures,
            lag_max = %fmt_secs(i.lag_max.as_secs_f64()),
            dropped = i.dropped,
            "status"
        );
    }

    /// The run report since start.
    pub fn report(&self, meta: ReportMeta) -> RunReport {
        self.voice.flush_all();
        lock(&self.run).report(meta, &self.tally)
    }
}

/// Journey steps (other than the spawn and stop, recorded above) into the metrics, the
/// report and, when they fail, the log.
impl StepSink for SoakRecord {
    fn step(&self, step: Step, took: Duration, result: Result<(), &JourneyError>) {
        self.journey_metric(step, took, result.is_ok());
        match result {
            Ok(()) => lock(&self.run).success(step.as_str(), Some(took)),
            Err(e) => self.failure(step.as_str(), e.reason(), &step.as_str(), e),
        }
    }

    fn cell(
        &self,
        notebook: &Notebook,
        cell: &CodeCell,
        took: Duration,
        result: Result<(), &JourneyError>,
    ) {
        if result.is_ok() {
            self.metrics.notebook_cell_ok(&notebook.name, took);
        }
        lock(&self.run).notebook_cell(
            &notebook.name,
            cell.position,
            cell.id.as_deref(),
            took,
            result.is_ok(),
        );
    }

    fn notebook(&self, notebook: &Notebook, result: Result<(), &JourneyError>) {
        let failure = result.err().map(JourneyError::reason);
        if let Some(reason) = failure {
            self.metrics.notebook_failed(&notebook.name, reason);
        }
        lock(&self.run).notebook_run(&notebook.name, failure);
    }
}
