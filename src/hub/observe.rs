//! The one small hook through which the hub client reports what it did. The client
//! knows no metric names; `metrics.rs` and the one-shot report implement this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// Lock-free counts of requests, failures by reason and retries, per operation.
#[derive(Default)]
pub struct RequestTally {
    requests: [AtomicU64; OPS],
    retries: [AtomicU64; OPS],
    failures: [[AtomicU64; REASONS]; OPS],
}

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
}

impl Observer for RequestTally {
    fn on_request(&self, op: Operation, _elapsed: Duration, failure: Option<FailureReason>) {
        let i = op_index(op);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        if let Some(reason) = failure {
            self.failures[i][reason_index(reason)].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_retry(&self, op: Operation) {
        self.retries[op_index(op)].fetch_add(1, Ordering::Relaxed);
    }
}
