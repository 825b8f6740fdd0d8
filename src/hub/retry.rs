//! The retry policy of DESIGN.md: 429 with `Retry-After` waits at least that long (plus
//! jitter, capped); 429 without it is final ("too many users"); 502/503/504, timeouts and
//! connection failures back off exponentially; only idempotent calls are retried at all.

use std::time::Duration;

use rand::Rng;

use super::error::{FailureReason, HubError};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after a 429 that carried `Retry-After`.
    pub max_throttle_retries: u32,
    /// Longest `Retry-After` we honour; a longer one is waited only this long.
    pub max_retry_after: Duration,
    /// Retries after 502/503/504, timeouts and connection failures.
    pub max_error_retries: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_throttle_retries: 10,
            max_retry_after: Duration::from_secs(120),
            max_error_retries: 3,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Whether JupyterHub lets us send a call twice without changing the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, DELETE, and the POSTs JupyterHub makes idempotent: creating users that exist
    /// is skipped, starting a pending spawn returns 202, activity sets a timestamp.
    Idempotent,
    /// Never sent twice.
    Once,
}

impl RetryPolicy {
    /// How long to wait before the next attempt, or `None` to give up with `err`.
    /// `throttle_retries` and `error_retries` count the retries already made.
    pub fn next_delay(
        &self,
        err: &HubError,
        idempotency: Idempotency,
        throttle_retries: u32,
        error_retries: u32,
    ) -> Option<Duration> {
        if idempotency == Idempotency::Once {
            return None;
        }
        match (err.reason(), err) {
            (
                FailureReason::Throttled,
                HubError::Status {
                    retry_after: Some(after),
                    ..
                },
            ) => {
                if throttle_retries >= self.max_throttle_retries {
                    return None;
                }
                let base = (*after).min(self.max_retry_after);
                // Never earlier than asked; up to 20% later so throttled clients spread out.
                let jitter = base.mul_f64(rand::thread_rng().gen_range(0.0..0.2));
                Some(base + jitter)
            }
            (
                FailureReason::ServerError,
                HubError::Status {
                    status: 502..=504, ..
                },
            ) => self.backoff(error_retries),
            (FailureReason::Timeout | FailureReason::Connection, _) => self.backoff(error_retries),
            _ => None,
        }
    }

    fn backoff(&self, error_retries: u32) -> Option<Duration> {
        if error_retries >= self.max_error_retries {
            return None;
        }
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << error_retries.min(16))
            .min(self.max_backoff);
        // "Equal jitter": half fixed, half random.
        let half = exp / 2;
        Some(half + half.mul_f64(rand::thread_rng().gen_range(0.0..1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Operation;

    fn status(status: u16, retry_after: Option<u64>) -> HubError {
        HubError::Status {
            op: Operation::StartServer,
            status,
            message: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn honours_retry_after_never_earlier() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d = p
                .next_delay(&status(429, Some(3)), Idempotency::Idempotent, 0, 0)
                .unwrap();
            assert!(d >= Duration::from_secs(3) && d <= Duration::from_millis(3600));
        }
    }

    #[test]
    fn caps_retry_after() {
        let p = RetryPolicy {
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let d = p
            .next_delay(&status(429, Some(600)), Idempotency::Idempotent, 0, 0)
            .unwrap();
        assert!(d <= Duration::from_secs(6));
    }

    #[test]
    fn too_many_users_is_final() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(&status(429, None), Idempotency::Idempotent, 0, 0),
            None
        );
    }

    #[test]
    fn gateway_errors_back_off_then_give_up() {
        let p = RetryPolicy::default();
        let e = status(503, None);
        assert!(p.next_delay(&e, Idempotency::Idempotent, 0, 0).is_some());
        assert!(p.next_delay(&e, Idempotency::Idempotent, 0, 3).is_none());
        assert!(p.next_delay(&e, Idempotency::Once, 0, 0).is_none());
        assert!(p
            .next_delay(&status(500, None), Idempotency::Idempotent, 0, 0)
            .is_none());
        assert!(p
            .next_delay(&status(404, None), Idempotency::Idempotent, 0, 0)
            .is_none());
    }
}
