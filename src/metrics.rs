//! The metric catalog of ../shared/DESIGN.md, in one place, and how each event is
//! recorded into it. Dashboards and alerts are written against these names. No label
//! ever holds a user or server name: every label value is one of an enum's (`Status`,
//! `ServerState`, `Probe`, `Action`, and the hub's `Operation`, `FailureReason`,
//! `ProblemKind`, the journey's `Step`) or a configured notebook's name (at most 50),
//! each series is created at start so it exists before its first event, and callers
//! record through one method per event (`spawn_finished`, `ping_ok`,
//! `journey_step_failed`, …), never by label strings.

use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::hub::{FailureReason, Observer, Operation, ProblemKind, SpawnPhase, SPAWN_BUCKETS};
use crate::journey::Step;

/// Coarser than a spawn's: five phases of a spawn cost 45 series, not 75.
const PHASE_BUCKETS: [f64; 6] = [1.0, 5.0, 15.0, 60.0, 180.0, 600.0];
const STOP_BUCKETS: [f64; 9] = [0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
const REQUEST_BUCKETS: [f64; 6] = [0.025, 0.1, 0.25, 0.5, 1.0, 5.0];
const PING_BUCKETS: [f64; 5] = [0.005, 0.025, 0.1, 0.5, 2.5];
const LAG_BUCKETS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];
const JOURNEY_BUCKETS: [f64; 6] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0];
/// Cells run from milliseconds (arithmetic) to minutes (loading data).
const CELL_BUCKETS: [f64; 7] = [0.01, 0.1, 0.5, 2.5, 10.0, 60.0, 300.0];
/// The notebook failure reasons created at start (others appear when they happen).
const CELL_REASONS: [&str; 2] = ["kernel_error", "timeout"];

/// The operations in `hubsoak_requests_total{operation}`. Health and version probes are
/// not among them: they are `hubsoak_ping_*{target}`.
pub const OPERATIONS: [Operation; 8] = [
    Operation::CreateUsers,
    Operation::DeleteUser,
    Operation::StartServer,
    Operation::StopServer,
    Operation::GetUser,
    Operation::ListUsers,
    Operation::Activity,
    Operation::Progress,
];

/// A label's values: an enum whose every value is pre-created.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

label_enum!(
    /// `state` of `hubsoak_servers`.
    ServerState { Starting => "starting", Running => "running", Stopping => "stopping", Failed => "failed" }
);
label_enum!(
    /// `status` of the spawn and stop histograms.
    Status { Success => "success", Failure => "failure", Timeout => "timeout" }
);
label_enum!(
    /// `target` of the ping metrics: what was probed.
    Probe { Health => "health", Api => "api", User => "user" }
);
label_enum!(
    /// `action` of the schedule metrics.
    Action { Spawn => "spawn", Stop => "stop", Activity => "activity", Ping => "ping" }
);

/// Every series hubsoak exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    hub_info: IntGaugeVec,
    hub_up: IntGauge,
    population_target: IntGauge,
    servers: IntGaugeVec,
    spawn_duration: HistogramVec,
    spawn_phase_duration: HistogramVec,
    stop_duration: HistogramVec,
    requests: IntCounterVec,
    request_failures: IntCounterVec,
    request_duration: HistogramVec,
    retries: IntCounterVec,
    ping_duration: HistogramVec,
    ping_failures: IntCounterVec,
    journey_step_duration: HistogramVec,
    journey_failures: IntCounterVec,
    notebook_cell_duration: HistogramVec,
    notebook_failures: IntCounterVec,
    schedule_lag: HistogramVec,
    actions_dropped: IntCounterVec,
    /// hubsoak's own faults (it cannot work), apart from the hub's.
    problem: IntGaugeVec,
    hub_version: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("static metric definition")
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

impl Metrics {
    /// The catalog, registered and pre-created. `journeys` adds the journey series
    /// (only exported when journeys are enabled); `notebooks` (their names, at most
    /// `journey::MAX_NOTEBOOKS`) the notebook series.
    pub fn new(journeys: bool, notebooks: &[&str]) -> Metrics {
        let registry = Registry::new();
        let build_info = GaugeVec::new(
            Opts::new("hubsoak_build_info", "hubsoak's version; always 1"),
            &["version"],
        )
        .expect("static metric definition");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        let hub_info = IntGaugeVec::new(
            Opts::new(
                "hubsoak_hub_info",
                "The hub's version from GET /hub/api/; always 1",
            ),
            &["version"],
        )
        .expect("static metric definition");
        hub_info.with_label_values(&["unknown"]).set(1);
        let hub_up = IntGauge::new("hubsoak_hub_up", "1 if the last GET /hub/health succeeded")
            .expect("static metric definition");
        let population_target = IntGauge::new(
            "hubsoak_population_target",
            "Servers the soak keeps running",
        )
        .expect("static metric definition");
        let servers = IntGaugeVec::new(
            Opts::new("hubsoak_servers", "Simulated users' servers by state"),
            &["state"],
        )
        .expect("static metric definition");
        let m = Metrics {
            hub_info,
            hub_up,
            population_target,
            servers,
            spawn_duration: histogram(
                "hubsoak_spawn_duration_seconds",
                "From a spawn's planned time until the hub said ready, failed, or we gave up",
                &["status"],
                &SPAWN_BUCKETS,
            ),
            spawn_phase_duration: histogram(
                "hubsoak_spawn_phase_duration_seconds",
                "Where successful spawns' time went: queued, scheduling, image_pull, container_start, server_startup (they add up to the spawn)",
                &["phase"],
                &PHASE_BUCKETS,
            ),
            stop_duration: histogram(
                "hubsoak_stop_duration_seconds",
                "From a stop's planned time until the server left the user's servers",
                &["status"],
                &STOP_BUCKETS,
            ),
            requests: counter(
                "hubsoak_requests_total",
                "Hub API requests sent (each attempt)",
                &["operation"],
            ),
            request_failures: counter(
                "hubsoak_request_failures_total",
                "Hub API requests that failed, by reason",
                &["operation", "reason"],
            ),
            request_duration: histogram(
                "hubsoak_request_duration_seconds",
                "Hub API request latency (each attempt)",
                &["operation"],
                &REQUEST_BUCKETS,
            ),
            retries: counter(
                "hubsoak_retries_total",
                "Hub API requests retried",
                &["operation"],
            ),
            ping_duration: histogram(
                "hubsoak_ping_duration_seconds",
                "Probe latency from its planned time: health, api (GET /hub/api/), user",
                &["target"],
                &PING_BUCKETS,
            ),
            ping_failures: counter(
                "hubsoak_ping_failures_total",
                "Probes that failed",
                &["target"],
            ),
            journey_step_duration: histogram(
                "hubsoak_journey_step_duration_seconds",
                "Duration of each step of a simulated user's journey",
                &["step"],
                &JOURNEY_BUCKETS,
            ),
            journey_failures: counter(
                "hubsoak_journey_failures_total",
                "Journey steps that failed",
                &["step"],
            ),
            notebook_cell_duration: histogram(
                "hubsoak_notebook_cell_duration_seconds",
                "Duration of each notebook cell that ran without error",
                &["notebook"],
                &CELL_BUCKETS,
            ),
            notebook_failures: counter(
                "hubsoak_notebook_failures_total",
                "Notebook runs that failed: a cell raised or timed out, or the kernel failed",
                &["notebook", "reason"],
            ),
            schedule_lag: histogram(
                "hubsoak_schedule_lag_seconds",
                "How late an action started after its planned time",
                &["action"],
                &LAG_BUCKETS,
            ),
            actions_dropped: counter(
                "hubsoak_actions_dropped_total",
                "Actions that could not run in their slot",
                &["action"],
            ),
            problem: IntGaugeVec::new(
                Opts::new(
                    "hubsoak_problem",
                    "1 while hubsoak itself cannot work, by why (see /readyz)",
                ),
                &["problem"],
            )
            .expect("static metric definition"),
            hub_version: Default::default(),
            registry,
        };
        for s in ServerState::ALL {
            m.servers.with_label_values(&[s.as_str()]);
        }
        for p in SpawnPhase::ALL {
            m.spawn_phase_duration.with_label_values(&[p.as_str()]);
        }
        for s in Status::ALL {
            m.spawn_duration.with_label_values(&[s.as_str()]);
            m.stop_duration.with_label_values(&[s.as_str()]);
        }
        for op in OPERATIONS {
            let op = op.as_str();
            m.requests.with_label_values(&[op]);
            m.retries.with_label_values(&[op]);
            m.request_duration.with_label_values(&[op]);
            for r in FailureReason::ALL {
                m.request_failures.with_label_values(&[op, r.as_str()]);
            }
        }
        for p in Probe::ALL {
            m.ping_duration.with_label_values(&[p.as_str()]);
            m.ping_failures.with_label_values(&[p.as_str()]);
        }
        for a in Action::ALL {
            m.schedule_lag.with_label_values(&[a.as_str()]);
            m.actions_dropped.with_label_values(&[a.as_str()]);
        }
        for p in ProblemKind::ALL {
            m.problem.with_label_values(&[p.as_str()]);
        }
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(build_info),
            Box::new(m.hub_info.clone()),
            Box::new(m.hub_up.clone()),
            Box::new(m.population_target.clone()),
            Box::new(m.servers.clone()),
            Box::new(m.spawn_duration.clone()),
            Box::new(m.spawn_phase_duration.clone()),
            Box::new(m.stop_duration.clone()),
            Box::new(m.requests.clone()),
            Box::new(m.request_failures.clone()),
            Box::new(m.request_duration.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.ping_duration.clone()),
            Box::new(m.ping_failures.clone()),
            Box::new(m.schedule_lag.clone()),
            Box::new(m.actions_dropped.clone()),
            Box::new(m.problem.clone()),
        ];
        if journeys {
            for s in Step::ALL {
                m.journey_step_duration.with_label_values(&[s.as_str()]);
                m.journey_failures.with_label_values(&[s.as_str()]);
            }
            collectors.push(Box::new(m.journey_step_duration.clone()));
            collectors.push(Box::new(m.journey_failures.clone()));
        }
        if journeys && !notebooks.is_empty() {
            for name in notebooks {
                m.notebook_cell_duration.with_label_values(&[*name]);
                for reason in CELL_REASONS {
                    m.notebook_failures.with_label_values(&[*name, reason]);
                }
            }
            collectors.push(Box::new(m.notebook_cell_duration.clone()));
            collectors.push(Box::new(m.notebook_failures.clone()));
        }
        #[cfg(target_os = "linux")]
        collectors.push(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        for c in collectors {
            m.registry.register(c).expect("unique metric names");
        }
        m
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(32 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }

    /// The hub's version, once a probe or check read it.
    pub fn hub_version(&self) -> Option<String> {
        self.hub_version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the hub version series (there is only ever one).
    pub fn set_hub_version(&self, version: &str) {
        // A hub's text: no secret, and short, even in a label.
        let version = crate::hub::cut(&crate::hub::redact(version), 64).into_owned();
        let version = version.as_str();
        let mut current = self.hub_version.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_deref() == Some(version) {
            return;
        }
        *current = Some(version.to_string());
        self.hub_info.reset();
        self.hub_info.with_label_values(&[version]).set(1);
    }

    /// The one problem hubsoak has now (`None`: it can work).
    pub fn set_problem(&self, problem: Option<ProblemKind>) {
        for p in ProblemKind::ALL {
            self.problem
                .with_label_values(&[p.as_str()])
                .set(i64::from(Some(p) == problem));
        }
    }

    /// How late `action` started after its planned time.
    pub fn lag(&self, action: Action, lag: Duration) {
        self.schedule_lag
            .with_label_values(&[action.as_str()])
            .observe(lag.as_secs_f64());
    }

    /// `action` could not run in its slot.
    pub fn dropped(&self, action: Action) {
        self.actions_dropped
            .with_label_values(&[action.as_str()])
            .inc();
    }

    /// A spawn ended, `took` from its planned time.
    pub fn spawn_finished(&self, status: Status, took: Duration) {
        self.spawn_duration
            .with_label_values(&[status.as_str()])
            .observe(took.as_secs_f64());
    }

    /// One phase of a successful spawn took `took`.
    pub fn spawn_phase(&self, phase: SpawnPhase, took: Duration) {
        self.spawn_phase_duration
            .with_label_values(&[phase.as_str()])
            .observe(took.as_secs_f64());
    }

    /// A stop ended, `took` from its planned time.
    pub fn stop_finished(&self, status: Status, took: Duration) {
        self.stop_duration
            .with_label_values(&[status.as_str()])
            .observe(took.as_secs_f64());
    }

    /// A server moved between states (`None`: not counted, e.g. no server).
    pub fn server_moved(&self, from: Option<ServerState>, to: Option<ServerState>) {
        if from == to {
            return;
        }
        if let Some(s) = from {
            self.servers.with_label_values(&[s.as_str()]).dec();
        }
        if let Some(s) = to {
            self.servers.with_label_values(&[s.as_str()]).inc();
        }
    }

    /// Servers starting, running and stopping now.
    pub fn servers_now(&self) -> (u64, u64, u64) {
        let get =
            |s: ServerState| self.servers.with_label_values(&[s.as_str()]).get().max(0) as u64;
        (
            get(ServerState::Starting),
            get(ServerState::Running),
            get(ServerState::Stopping),
        )
    }

    /// Counts servers afresh (a new run of the population).
    pub fn servers_reset(&self) {
        for s in ServerState::ALL {
            self.servers.with_label_values(&[s.as_str()]).set(0);
        }
    }

    /// The servers the soak keeps running now.
    pub fn population_target(&self, target: usize) {
        self.population_target.set(target as i64);
    }

    /// Whether the hub answered its health check; the value before.
    pub fn hub_up(&self, up: bool) -> bool {
        let was = self.hub_up.get() == 1;
        self.hub_up.set(i64::from(up));
        was
    }

    /// A probe answered, `took` from its planned time.
    pub fn ping_ok(&self, probe: Probe, took: Duration) {
        self.ping_duration
            .with_label_values(&[probe.as_str()])
            .observe(took.as_secs_f64());
    }

    pub fn ping_failed(&self, probe: Probe) {
        self.ping_failures
            .with_label_values(&[probe.as_str()])
            .inc();
    }

    /// A journey step succeeded in `took`.
    pub fn journey_step_ok(&self, step: Step, took: Duration) {
        self.journey_step_duration
            .with_label_values(&[step.as_str()])
            .observe(took.as_secs_f64());
    }

    pub fn journey_step_failed(&self, step: Step) {
        self.journey_failures
            .with_label_values(&[step.as_str()])
            .inc();
    }

    /// A cell of `notebook` (a configured notebook's name) ran in `took`.
    pub fn notebook_cell_ok(&self, notebook: &str, took: Duration) {
        self.notebook_cell_duration
            .with_label_values(&[notebook])
            .observe(took.as_secs_f64());
    }

    /// A run of `notebook` failed; `reason` is a `JourneyError::reason`.
    pub fn notebook_failed(&self, notebook: &str, reason: &'static str) {
        self.notebook_failures
            .with_label_values(&[notebook, reason])
            .inc();
    }
}

impl Observer for Metrics {
    fn on_request(&self, op: Operation, elapsed: Duration, failure: Option<FailureReason>) {
        // Probes have their own series.
        if !OPERATIONS.contains(&op) {
            return;
        }
        let op = op.as_str();
        self.requests.with_label_values(&[op]).inc();
        self.request_duration
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.request_failures
                .with_label_values(&[op, reason.as_str()])
                .inc();
        }
    }

    fn on_retry(&self, op: Operation) {
        if OPERATIONS.contains(&op) {
            self.retries.with_label_values(&[op.as_str()]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_before_any_event() {
        let text = String::from_utf8(Metrics::new(false, &[]).encode()).unwrap();
        for name in [
            "hubsoak_build_info{version=",
            "hubsoak_hub_info{version=\"unknown\"} 1",
            "hubsoak_hub_up 0",
            "hubsoak_population_target 0",
            "hubsoak_servers{state=\"failed\"} 0",
            "hubsoak_spawn_duration_seconds_count{status=\"timeout\"} 0",
            "hubsoak_spawn_phase_duration_seconds_count{phase=\"image_pull\"} 0",
            "hubsoak_stop_duration_seconds_count{status=\"failure\"} 0",
            "hubsoak_requests_total{operation=\"progress\"} 0",
            "hubsoak_request_failures_total{operation=\"activity\",reason=\"throttled\"} 0",
            "hubsoak_request_duration_seconds_count{operation=\"start_server\"} 0",
            "hubsoak_retries_total{operation=\"start_server\"} 0",
            "hubsoak_ping_duration_seconds_count{target=\"user\"} 0",
            "hubsoak_schedule_lag_seconds_count{action=\"activity\"} 0",
            "hubsoak_actions_dropped_total{action=\"ping\"} 0",
            "hubsoak_problem{problem=\"token_rejected\"} 0",
            "hubsoak_problem{problem=\"missing_scope\"} 0",
            "hubsoak_problem{problem=\"not_a_hub\"} 0",
            "hubsoak_problem{problem=\"prefix_held\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(!text.contains("hubsoak_journey"));
        assert!(!text.contains("hubsoak_notebook"));
        let with = String::from_utf8(Metrics::new(true, &[]).encode()).unwrap();
        assert!(with.contains("hubsoak_journey_failures_total{step=\"execute\"} 0"));
        assert!(!with.contains("hubsoak_notebook"));
        let nb = String::from_utf8(Metrics::new(true, &["intro", "xarray"]).encode()).unwrap();
        for series in [
            "hubsoak_notebook_cell_duration_seconds_count{notebook=\"intro\"} 0",
            "hubsoak_notebook_failures_total{notebook=\"xarray\",reason=\"kernel_error\"} 0",
            "hubsoak_notebook_failures_total{notebook=\"xarray\",reason=\"timeout\"} 0",
        ] {
            assert!(nb.contains(series), "{series} missing");
        }
    }

    #[test]
    fn hub_version_is_a_single_series() {
        let m = Metrics::new(false, &[]);
        m.set_hub_version("5.2.1");
        m.set_hub_version("6.1.1");
        let text = String::from_utf8(m.encode()).unwrap();
        assert_eq!(text.matches("hubsoak_hub_info{").count(), 1);
        assert!(text.contains("hubsoak_hub_info{version=\"6.1.1\"} 1"));
    }
}
