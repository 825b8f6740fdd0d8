//! The population reconciler: one small state machine per simulated user (a slot), all
//! driven by one scheduler task from a timer queue. Hub calls run in short-lived tasks
//! that report back, so thousands of idle users cost a few hundred bytes each.
//!
//! absent → starting → running → stopping → absent (churn), and failed → (backoff) → the
//! action that failed. Every action has a planned time: spawns arrive at spawn_rate
//! (paced, batched or Poisson), stops at the session's end, activity on its interval.
//! Latency counts from the plan; lateness goes to hubsoak_schedule_lag_seconds, and an
//! action that cannot run in its slot to hubsoak_actions_dropped_total.
//!
//! The target may move (population.stages): slots up to the peak exist, those below the
//! current target are active; an inactive slot's server is stopped and not respawned.

mod tasks;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;

use crate::hub::{HubClient, SpawnWaitError, StopWaitError, User};
use crate::journey::{run_kernel_session, JourneyError, Journeys, SessionEnd, Step, StepSink};
use crate::metrics::{Action, Metrics, ServerState};
use crate::names::OurName;
use crate::soak::record::{Census, Ended, SoakRecord};
use crate::soak::schedule::{peak, target_at, Planner};
use crate::soak::settings::SoakSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No server; a spawn is queued.
    Absent,
    Starting,
    Running,
    Stopping,
    /// Backing off before retrying `Retry`.
    Failed,
}

impl State {
    fn gauge(self) -> Option<ServerState> {
        match self {
            State::Absent => None,
            State::Starting => Some(ServerState::Starting),
            State::Running => Some(ServerState::Running),
            State::Stopping => Some(ServerState::Stopping),
            State::Failed => Some(ServerState::Failed),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Spawn,
    Stop,
}

struct Slot {
    name: OurName,
    state: State,
    /// Bumped by every state change; timers of an older epoch are stale.
    epoch: u64,
    /// Whether the user exists on the hub, as far as we know.
    exists: bool,
    /// Failures in a row, for backoff.
    failures: u32,
    retry: Retry,
    activity_busy: bool,
    /// Below the current target: keep a server running.
    active: bool,
    /// The running journey, to end it early when the slot is retired.
    journey: Option<CancellationToken>,
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Spawn,
    Stop,
    Activity,
    Retry,
}

#[derive(Debug)]
enum SpawnResult {
    Ready,
    Failed,
    TimedOut,
    NoUser,
}

#[derive(Debug)]
enum Done {
    Spawn(usize, SpawnResult),
    Stop(usize, bool),
    Activity(usize),
    /// An adopted server that was already starting (true: it became ready).
    AdoptedStart(usize, bool),
    /// An adopted server that was already stopping has stopped (or we gave up).
    AdoptedStop(usize),
    /// The journey on slot `i` (in state epoch `e`) ended: its session is over.
    Journey(usize, u64),
}

/// How long journeys get to stop their kernels when the soak stops.
const JOURNEY_DRAIN: Duration = Duration::from_secs(10);

/// The reconciler. `run` consumes it.
pub struct Population {
    client: HubClient,
    metrics: Metrics,
    record: Arc<SoakRecord>,
    settings: Arc<SoakSettings>,
    user_options: Option<Arc<Value>>,
    slots: Vec<Slot>,
    queue: DelayQueue<(usize, Due, u64)>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    planner: Planner,
    /// When the stages began.
    started: Instant,
    spawns_in_flight: usize,
    waiting_spawns: VecDeque<(usize, Instant)>,
    tasks: JoinSet<()>,
    /// A running user's name for the ping task's `GET /users/{name}`.
    probe_user: Arc<Mutex<Option<String>>>,
    /// Set when journeys are enabled: running servers get a journey each.
    journeys: Option<Arc<Journeys>>,
    journey_stop: CancellationToken,
    journey_tasks: JoinSet<()>,
}

impl Population {
    pub fn new(
        client: HubClient,
        record: Arc<SoakRecord>,
        settings: Arc<SoakSettings>,
        probe_user: Arc<Mutex<Option<String>>>,
        journeys: Option<Arc<Journeys>>,
    ) -> Self {
        let metrics = record.metrics().clone();
        // A new run counts its slots afresh (a paused run left its counts behind).
        metrics.servers_reset();
        let p = &settings.population;
        // With stages, every slot the peak needs exists from the start; the target
        // decides which are active.
        let (capacity, initial) = if p.stages.is_empty() {
            (p.target, p.target)
        } else {
            (peak(&p.stages), target_at(&p.stages, Duration::ZERO))
        };
        let slots = (1..=capacity as u64)
            .map(|n| Slot {
                name: settings.prefix.name(n),
                state: State::Absent,
                epoch: 0,
                exists: false,
                failures: 0,
                retry: Retry::Spawn,
                activity_busy: false,
                active: (n as usize) <= initial,
                journey: None,
            })
            .collect();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let user_options =
            (!p.user_options.is_empty()).then(|| Arc::new(Value::Object(p.user_options.clone())));
        metrics.population_target(initial);
        Population {
            planner: Planner::new(p.arrivals, p.spawn_rate, p.batch_size),
            started: Instant::now(),
            client,
            metrics,
            record,
            user_options,
            slots,
            queue: DelayQueue::new(),
            done_tx,
            done_rx,
            spawns_in_flight: 0,
            waiting_spawns: VecDeque::new(),
            tasks: JoinSet::new(),
            probe_user,
            settings,
            journeys,
            journey_stop: CancellationToken::new(),
            journey_tasks: JoinSet::new(),
        }
    }

    /// Adopts what is on the hub, then keeps the population at its target until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let Some(existing) = self.list_ours(&stop).await else {
            return;
        };
        self.adopt(existing).await;
        let status_every = self.settings.status_interval;
        let mut status = tokio::time::interval(if status_every.is_zero() {
            Duration::from_secs(3600)
        } else {
            status_every
        });
        status.tick().await;
        let staged = !self.settings.population.stages.is_empty();
        let mut stage_tick = tokio::time::interval(Duration::from_millis(250));
        self.started = Instant::now();
        loop {
            while self.tasks.try_join_next().is_some() {}
            while self.journey_tasks.try_join_next().is_some() {}
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = self.done_rx.recv() => self.on_done(done),
                Some(expired) = self.queue.next(), if !self.queue.is_empty() => {
                    let planned = expired.deadline();
                    let (slot, due, epoch) = expired.into_inner();
                    self.on_due(slot, due, epoch, planned);
                }
                _ = status.tick(), if !status_every.is_zero() => self.record.status(self.census()),
                _ = stage_tick.tick(), if staged => {
                    let target = target_at(&self.settings.population.stages, self.started.elapsed());
                    self.set_target(target);
                }
            }
        }
        // Journeys stop their kernels (a left server keeps no stray kernel of ours).
        self.journey_stop.cancel();
        let drain = async { while self.journey_tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(JOURNEY_DRAIN, drain).await.is_err() {
            tracing::warn!("journeys did not stop their kernels in time");
        }
        self.journey_tasks.abort_all();
        self.tasks.abort_all();
    }

    fn task_parts(&self, i: usize) -> (HubClient, mpsc::UnboundedSender<Done>, OurName, String) {
        (
            self.client.clone(),
            self.done_tx.clone(),
            self.slots[i].name.clone(),
            self.settings.population.server_name.clone(),
        )
    }

    /// Moves slot `i` to `state`: a new epoch, the gauges, the probe user.
    fn set(&mut self, i: usize, state: State) {
        let slot = &mut self.slots[i];
        let old = slot.state;
        slot.state = state;
        slot.epoch += 1;
        self.metrics.server_moved(old.gauge(), state.gauge());
        let mut probe = self.probe_user.lock().unwrap_or_else(|e| e.into_inner());
        if state == State::Running && probe.is_none() {
            *probe = Some(slot.name.as_str().to_string());
        } else if old == State::Running && probe.as_deref() == Some(slot.name.as_str()) {
            *probe = self
                .slots
                .iter()
                .find(|s| s.state == State::Running)
                .map(|s| s.name.as_str().to_string());
        }
    }

    fn schedule(&mut self, i: usize, due: Due, at: Instant) {
        self.queue.insert_at((i, due, self.slots[i].epoch), at);
    }

    /// Queues a spawn at the next arrival time (if the slot is active).
    fn queue_spawn(&mut self, i: usize) {
        if self.slots[i].state != State::Absent {
            self.set(i, State::Absent);
        }
        if !self.slots[i].active {
            return;
        }
        let planned = self.planner.plan(Instant::now());
        self.schedule(i, Due::Spawn, planned);
    }

    /// Moves the target: slots below it become active (and spawn), those above it are
    /// retired (their servers stopped, not respawned).
    fn set_target(&mut self, target: usize) {
        let current = self.slots.iter().filter(|s| s.active).count();
        if target == current {
            return;
        }
        self.metrics.population_target(target);
        tracing::debug!(from = current, to = target, "population target");
        for i in 0..self.slots.len() {
            let wanted = i < target;
            if wanted == self.slots[i].active {
                continue;
            }
            self.slots[i].active = wanted;
            match (wanted, self.slots[i].state) {
                (true, State::Absent) => self.queue_spawn(i),
                // A new epoch drops its queued spawn.
                (false, State::Absent) => self.set(i, State::Absent),
                (false, State::Running) => self.end_session(i),
                // Starting, stopping or backing off: handled when that ends.
                _ => {}
            }
        }
    }

    /// Ends slot `i`'s session now: its journey first (which stops its kernel, then
    /// reports), else the server's stop.
    fn end_session(&mut self, i: usize) {
        match self.slots[i].journey.take() {
            Some(journey) => journey.cancel(),
            None => self.launch_stop(i, Instant::now()),
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let p = &self.settings.population;
        let exp = p
            .backoff_min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        exp.min(p.backoff_max)
            .mul_f64(rand::thread_rng().gen_range(0.8..=1.0))
    }

    fn session(&self) -> Duration {
        let p = &self.settings.population;
        if p.session_max <= p.session_min {
            return p.session_min;
        }
        let span = (p.session_max - p.session_min).as_secs_f64();
        p.session_min + Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=span))
    }

    fn became_running(&mut self, i: usize) {
        self.set(i, State::Running);
        if !self.slots[i].active {
            // Retired while it started.
            self.slots[i].failures = 0;
            self.slots[i].exists = true;
            self.launch_stop(i, Instant::now());
            return;
        }
        self.slots[i].failures = 0;
        self.slots[i].exists = true;
        let now = Instant::now();
        let end = now + self.session();
        if self.journeys.is_some() {
            // The journey ends the session (at its end, or early on a failed step).
            self.launch_journey(i, end);
        } else {
            self.schedule(i, Due::Stop, end);
        }
        // The first report lands anywhere in the first interval: no bursts.
        let first = self
            .settings
            .activity_interval
            .mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        self.schedule(i, Due::Activity, now + first);
    }

    fn fail(&mut self, i: usize, retry: Retry) {
        self.slots[i].failures += 1;
        self.slots[i].retry = retry;
        let wait = self.backoff(self.slots[i].failures);
        self.set(i, State::Failed);
        self.schedule(i, Due::Retry, Instant::now() + wait);
    }

    fn on_due(&mut self, i: usize, due: Due, epoch: u64, planned: Instant) {
        if self.slots.get(i).is_none_or(|s| s.epoch != epoch) {
            return;
        }
        match (due, self.slots[i].state) {
            (Due::Spawn, State::Absent) => {
                if self.spawns_in_flight < self.settings.population.max_spawns_in_flight {
                    self.launch_spawn(i, planned);
                } else {
                    self.waiting_spawns.push_back((i, planned));
                }
            }
            (Due::Stop, State::Running) => self.launch_stop(i, planned),
            (Due::Activity, State::Running) => self.activity(i, planned),
            (Due::Retry, State::Failed)
                if !self.slots[i].active && self.slots[i].retry == Retry::Spawn =>
            {
                self.set(i, State::Absent)
            }
            (Due::Retry, State::Failed) => match self.slots[i].retry {
                Retry::Spawn => self.queue_spawn(i),
                Retry::Stop => self.launch_stop(i, planned),
            },
            _ => {}
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Spawn(i, result) => {
                self.spawns_in_flight = self.spawns_in_flight.saturating_sub(1);
                match result {
                    SpawnResult::Ready => self.became_running(i),
                    SpawnResult::NoUser => {
                        self.slots[i].exists = false;
                        self.fail(i, Retry::Spawn);
                    }
                    SpawnResult::Failed | SpawnResult::TimedOut => self.fail(i, Retry::Spawn),
                }
                while self.spawns_in_flight < self.settings.population.max_spawns_in_flight {
                    let Some((next, planned)) = self.waiting_spawns.pop_front() else {
                        break;
                    };
                    if self.slots[next].state == State::Absent && self.slots[next].active {
                        self.launch_spawn(next, planned);
                    }
                }
            }
            Done::Stop(i, true) | Done::AdoptedStop(i) => self.queue_spawn(i),
            Done::Stop(i, false) => self.fail(i, Retry::Stop),
            Done::Activity(i) => self.slots[i].activity_busy = false,
            Done::AdoptedStart(i, true) => self.became_running(i),
            Done::AdoptedStart(i, false) => self.fail(i, Retry::Spawn),
            Done::Journey(i, epoch) => {
                if self.slots[i].epoch == epoch && self.slots[i].state == State::Running {
                    self.slots[i].journey = None;
                    self.launch_stop(i, Instant::now());
                }
            }
        }
    }

    fn census(&self) -> Census {
        let count = |state| self.slots.iter().filter(|s| s.state == state).count();
        Census {
            target: self.slots.iter().filter(|s| s.active).count(),
            running: count(State::Running),
            starting: count(State::Starting),
            stopping: count(State::Stopping),
            failed: count(State::Failed),
        }
    }
}
