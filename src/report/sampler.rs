//! Fills a run's [`Series`]: every step, the interval's latency percentiles from the
//! recorder, requests and failures from the request tally, servers by state, and the CPU
//! and memory of hubsoak (from /proc) and of the hub (its `/hub/metrics`,
//! tried once and dropped if the token may not read it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::series::{ProcessReading, Sample};
use super::Recorder;
use crate::hub::{HubClient, Operation, RequestTally};

/// Servers by state, kept by the runner as they change.
#[derive(Debug, Default)]
pub struct ServerCounts {
    pub starting: AtomicU64,
    pub running: AtomicU64,
    pub stopping: AtomicU64,
}

impl ServerCounts {
    /// One server moved from `from` to `to` (either may be none).
    pub fn moved(&self, from: Option<&AtomicU64>, to: Option<&AtomicU64>) {
        if let Some(c) = from {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        if let Some(c) = to {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// hubsoak's own CPU seconds and resident memory.
fn own_reading() -> Option<ProcessReading> {
    crate::process::usage().map(|(cpu_s, rss_bytes)| ProcessReading { cpu_s, rss_bytes })
}

fn totals(tally: &RequestTally) -> (u64, u64) {
    Operation::ALL.iter().fold((0, 0), |(r, f), op| {
        (
            r + tally.requests(*op),
            f + crate::hub::FailureReason::ALL
                .iter()
                .map(|reason| tally.failures(*op, *reason))
                .sum::<u64>(),
        )
    })
}

/// Servers starting, running and stopping now.
pub type ServersNow = Box<dyn Fn() -> (u64, u64, u64) + Send + Sync>;

impl ServerCounts {
    /// This count as the sampler reads it.
    pub fn reader(self: &Arc<Self>) -> ServersNow {
        let c = self.clone();
        Box::new(move || {
            (
                c.starting.load(Ordering::Relaxed),
                c.running.load(Ordering::Relaxed),
                c.stopping.load(Ordering::Relaxed),
            )
        })
    }
}

/// Samples every `step` until `stop`; the recorder keeps the series.
pub async fn sample(
    recorder: Arc<Mutex<Recorder>>,
    tally: Arc<RequestTally>,
    servers: ServersNow,
    hub: Option<HubClient>,
    step: Duration,
    stop: CancellationToken,
) {
    let own = own_reading;
    let mut hub = hub;
    let hub_reading = |text: Result<String, crate::hub::HubError>| match text {
        Ok(text) => ProcessReading::from_metrics(&text),
        Err(_) => None,
    };
    // A slow or hung hub never holds up the end of the run.
    let read_hub = |client: Option<HubClient>| {
        let stop = stop.clone();
        async move {
            let client = client?;
            tokio::select! {
                text = client.hub_metrics() => hub_reading(text),
                _ = stop.cancelled() => None,
            }
        }
    };
    let started = Instant::now();
    let mut last = (started, totals(&tally), own(), None::<ProcessReading>);
    if hub.is_some() {
        last.3 = read_hub(hub.clone()).await;
        if last.3.is_none() {
            tracing::debug!("the hub's /hub/metrics is not readable with this token; the report shows hubsoak's own usage only");
            hub = None;
        }
    }
    let mut ticks = tokio::time::interval(step);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        let wall = now.duration_since(last.0).as_secs_f64();
        let (requests, failures) = totals(&tally);
        let own_now = own();
        let hub_now = read_hub(hub.clone()).await;
        let usage = |now: Option<ProcessReading>, before: Option<ProcessReading>| {
            now.zip(before).and_then(|(n, b)| n.since(&b, wall))
        };
        let (starting, running, stopping) = servers();
        let sample = Sample {
            t_s: now.duration_since(started).as_secs_f64(),
            latency: BTreeMap::new(),
            starting,
            running,
            stopping,
            requests_per_s: (requests - last.1 .0) as f64 / wall.max(1e-9),
            failures_per_s: (failures - last.1 .1) as f64 / wall.max(1e-9),
            hubsoak: usage(own_now, last.2),
            hub: usage(hub_now, last.3),
        };
        {
            let mut r = recorder.lock().unwrap_or_else(|e| e.into_inner());
            let mut sample = sample;
            sample.latency = r.take_interval();
            r.push_sample(sample);
        }
        // A missed reading of the hub leaves no baseline: its next interval is skipped
        // rather than measured over two intervals' CPU in one's time.
        last = (now, (requests, failures), own_now, hub_now);
    }
}
