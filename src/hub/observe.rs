//! The one small hook through which the hub client reports what it did. The client
//! knows no metric names; `metrics.rs` and the one-shot report implement this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::error::{FailureReason, Operation};

/// Told about every attempt (a retried call is several attempts) and every retry.
pub trait Observer: Send + Sync + 'static {
    fn on_request(&self, op: Operation, elapsed: Duration, failure: Option<FailureReason>);
    fn on_retry(&self, op: Operation);
}

impl<T: Observer + ?Sized> Observer for std::sync::Arc<T> {
    fn on_request(&self, op: Operation, elapsed: Duration, failure: Option<FailureReason>) {
        (**self).on_request(op, elapsed, failure)
    }

    fn on_retry(&self, op: Operation) {
        (**self).on_retry(op)
    }
}

/// Tells both: e.g. the soak's metrics and the tally its end-of-run report is made from.
pub struct Both<A, B>(pub A, pub B);

impl<A: Observer, B: Observer> Observer for Both<A, B> {
    fn on_request(&self, op: Operation, elapsed: Duration, failure: Option<FailureReason>) {
        self.0.on_request(op, elapsed, failure);
        self.1.on_request(op, elapsed, failure);
    }

    fn on_retry(&self, op: Operation) {
        self.0.on_retry(op);
        self.1.on_retry(op);
    }
}

/// Observes nothing.
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_request(&self, _: Operation, _: Duration, _: Option<FailureReason>) {}
    fn on_retry(&self, _: Operation) {}
}

const OPS: usize = Operation::ALL.len();
const REASONS: usize = FailureReason::ALL.len();

/// Counts of requests, failures by reason and retries, per operation (lock-free), and
/// each operation's latency (an HDR histogram at 2 significant digits, made on its
/// first request).
#[derive(Default)]
pub struct RequestTally {
    requests: [AtomicU64; OPS],
    retries: [AtomicU64; OPS],
    failures: [[AtomicU64; REASONS]; OPS],
    latency: [Mutex<Option<Histogram<u64>>>; OPS],
}

/// Microseconds, 1 µs to 1 h.
const LATENCY_MAX_US: u64 = 3_600_000_000;

fn op_index(op: Operation) -> usize {
    Operation::ALL.iter().position(|o| *o == op).unwrap_or(0)
}

fn reason_index(reason: FailureReason) -> usize {
    FailureReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

impl RequestTally {
    pub fn requests(&self, op: Operation) -> u64 {
        self.requests[op_index(op)].load(Ordering::Relaxed)
    }

    pub fn retries(&self, op: Operation) -> u64 {
        self.retries[op_index(op)].load(Ordering::Relaxed)
    }

    pub fn failures(&self, op: Operation, reason: FailureReason) -> u64 {
        self.failures[op_index(op)][reason_index(reason)].load(Ordering::Relaxed)
    }

    /// p50, p95 and p99 of `op`'s attempts, in seconds.
    pub fn latency(&self, op: Operation) -> Option<[f64; 3]> {
        let h = self.latency[op_index(op)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let h = h.as_ref().filter(|h| !h.is_empty())?;
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        Some([q(0.50), q(0.95), q(0.99)])
    }
}

impl Observer for RequestTally {
    fn on_request(&self, op: Operation, elapsed: Duration, failure: Option<FailureReason>) {
        let i = op_index(op);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        let mut h = self.latency[i].lock().unwrap_or_else(|e| e.into_inner());
        if h.is_none() {
            *h = Histogram::new_with_bounds(1, LATENCY_MAX_US, 2).ok();
        }
        if let Some(h) = h.as_mut() {
            let us = (elapsed.as_micros() as u64).clamp(1, LATENCY_MAX_US);
            h.saturating_record(us);
        }
        drop(h);
        if let Some(reason) = failure {
            self.failures[i][reason_index(reason)].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_retry(&self, op: Operation) {
        self.retries[op_index(op)].fetch_add(1, Ordering::Relaxed);
    }
}
