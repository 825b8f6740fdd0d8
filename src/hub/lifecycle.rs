//! A server's life through the API, waited on: start and wait until ready (by the
//! progress stream, polling only as a fallback), stop and wait until gone (the hub has
//! no stop stream), delete a user whose server is still stopping, and the one teardown
//! of our users (stop every server, then delete) that purge, the one-shots' cleanup and
//! the soak's `on_exit` share. Every wait is bounded by a deadline.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde_json::Value;

use super::client::{HubClient, SpawnWaitError, StartOutcome, StopOutcome, StopWaitError};
use super::error::HubError;
use super::phases::{split, SeenEvent, SpawnPhase};
use super::token::{cut, redact};
use crate::names::OurName;

/// Progress events kept per spawn.
const MAX_EVENTS: usize = 200;

/// What a spawn that became ready went through: when the hub took the start, when it
/// was ready, and the progress events on the way.
#[derive(Debug, Clone)]
pub struct SpawnTrace {
    pub accepted: SystemTime,
    pub ready: SystemTime,
    pub events: Vec<SeenEvent>,
}

impl SpawnTrace {
    /// The spawn's phases, from its planned time; they add up to planned → ready.
    pub fn phases(&self, planned: SystemTime) -> Vec<(SpawnPhase, Duration)> {
        split(planned, self.accepted, self.ready, &self.events)
    }
}

/// `planned` (a moment on the monotonic clock, in the past) on the wall clock.
pub fn wall_time(planned: Instant) -> SystemTime {
    SystemTime::now() - planned.elapsed()
}

impl HubClient {
    /// Starts `server_name` of `name` (with `options`) and waits until it is ready, by
    /// `deadline`. The one "start and wait" of hubsoak: the soak's and the one-shots'.
    /// Tells what the progress stream said, for splitting the spawn into phases.
    pub async fn start_and_wait(
        &self,
        name: &OurName,
        server_name: &str,
        options: Option<&Value>,
        deadline: Instant,
    ) -> Result<SpawnTrace, SpawnWaitError> {
        let asked = async {
            let (outcome, accepted) = self.start_server_at(name, server_name, options).await?;
            let mut events = Vec::new();
            match outcome {
                StartOutcome::Ready | StartOutcome::AlreadyRunning => {}
                StartOutcome::Pending => {
                    self.watch_until_ready(name.as_str(), server_name, deadline, &mut events)
                        .await?
                }
            }
            Ok(SpawnTrace {
                accepted,
                ready: SystemTime::now(),
                events,
            })
        };
        match tokio::time::timeout_at(deadline.into(), asked).await {
            Ok(result) => result,
            Err(_) => Err(SpawnWaitError::TimedOut),
        }
    }

    /// Waits until the server is ready, by its progress stream, polling the user only
    /// when the stream is unavailable or ends early.
    pub async fn wait_until_ready(
        &self,
        name: &str,
        server_name: &str,
        deadline: Instant,
    ) -> Result<(), SpawnWaitError> {
        self.watch_until_ready(name, server_name, deadline, &mut Vec::new())
            .await
    }

    /// As [`wait_until_ready`](Self::wait_until_ready), keeping each progress event as it
    /// arrived in `seen`.
    async fn watch_until_ready(
        &self,
        name: &str,
        server_name: &str,
        deadline: Instant,
        seen: &mut Vec<SeenEvent>,
    ) -> Result<(), SpawnWaitError> {
        let watch = async {
            match self.open_progress(name, server_name).await {
                Ok(mut stream) => loop {
                    let next = stream.next_event_raw().await.map(|e| {
                        e.map(|(event, raw)| {
                            // Bounded: a spawner that talks a lot is heard up to a point.
                            if seen.len() < MAX_EVENTS {
                                seen.push(SeenEvent {
                                    arrived: SystemTime::now(),
                                    raw,
                                });
                            }
                            event
                        })
                    });
                    match next {
                        Ok(Some(event)) if event.failed => {
                            let message = event.message.unwrap_or_else(|| "no message".into());
                            return Err(SpawnWaitError::Failed(
                                cut(&redact(&message), 400).into_owned(),
                            ));
                        }
                        Ok(Some(event)) if event.ready => return Ok(()),
                        Ok(Some(_)) => continue,
                        // Ended or broke without a verdict: fall back to polling.
                        Ok(None) | Err(_) => break,
                    }
                },
                // Not pending: already ready, already gone, or an old hub.
                Err(err) if err.status() == Some(400) || err.status() == Some(404) => {}
                Err(err) if err.status().is_some() => return Err(SpawnWaitError::Hub(err)),
                Err(_) => {}
            }
            self.poll_until_ready(name, server_name).await
        };
        match tokio::time::timeout_at(deadline.into(), watch).await {
            Ok(result) => result,
            Err(_) => Err(SpawnWaitError::TimedOut),
        }
    }

    async fn poll_until_ready(&self, name: &str, server_name: &str) -> Result<(), SpawnWaitError> {
        loop {
            let user = self.get_user(name).await?;
            let server = user.as_ref().and_then(|u| u.server(server_name));
            match server {
                Some(s) if s.ready => return Ok(()),
                Some(s) if s.pending.is_some() => {}
                Some(_) => {}
                None => {
                    return Err(SpawnWaitError::Failed(
                        "the server is neither starting nor running".into(),
                    ))
                }
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
    }

    /// Stops a server and waits until it has left the user's `servers`, by `deadline`.
    pub async fn stop_and_wait(
        &self,
        name: &OurName,
        server_name: &str,
        deadline: Instant,
    ) -> Result<(), StopWaitError> {
        let asked = async {
            match self.stop_server(name, server_name).await? {
                StopOutcome::Stopped => Ok(()),
                StopOutcome::Pending => {
                    self.wait_until_stopped(name.as_str(), server_name, deadline)
                        .await
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), asked).await {
            Ok(result) => result,
            Err(_) => Err(StopWaitError::TimedOut),
        }
    }

    /// Deletes a user. JupyterHub refuses (400) while the user's server is stopping:
    /// then wait for the stop (up to `stop_wait`) and try again, twice at most.
    /// `Ok(false)` if the user did not exist.
    pub async fn delete_user_when_stopped(
        &self,
        name: &OurName,
        stop_wait: Duration,
    ) -> Result<bool, HubError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.delete_user(name).await {
                Err(e) if e.status() == Some(400) && tries < 3 => {
                    tracing::debug!(user = %name, "server still stopping; waiting to delete");
                    let deadline = Instant::now() + stop_wait;
                    let _ = self.wait_until_stopped(name.as_str(), "", deadline).await;
                }
                other => return other,
            }
        }
    }

    /// Polls until the server has left the user's `servers` (the hub has no stop stream).
    pub async fn wait_until_stopped(
        &self,
        name: &str,
        server_name: &str,
        deadline: Instant,
    ) -> Result<(), StopWaitError> {
        let poll = async {
            loop {
                let user = self.get_user(name).await?;
                if user.as_ref().and_then(|u| u.server(server_name)).is_none() {
                    return Ok(());
                }
                tokio::time::sleep(self.poll_interval()).await;
            }
        };
        match tokio::time::timeout_at(deadline.into(), poll).await {
            Ok(result) => result,
            Err(_) => Err(StopWaitError::TimedOut),
        }
    }

    /// Stops each `(user, server)`, `concurrency` at a time, each within `stop_timeout`
    /// of its request; tells `done` how each went (the time from request to gone).
    pub async fn stop_all(
        &self,
        servers: Vec<(OurName, String)>,
        concurrency: usize,
        stop_timeout: Duration,
        done: impl Fn(&OurName, Result<Duration, StopWaitError>),
    ) {
        let jobs = servers.into_iter().map(|(name, server)| async move {
            let asked = Instant::now();
            let result = self
                .stop_and_wait(&name, &server, asked + stop_timeout)
                .await
                .map(|()| asked.elapsed());
            (name, result)
        });
        each_as_done(jobs, concurrency, |(name, result)| done(&name, result)).await;
    }

    /// Deletes each user, `concurrency` at a time, waiting out a server still stopping
    /// (up to `stop_wait`); tells `done` how each went.
    pub async fn delete_all(
        &self,
        users: Vec<OurName>,
        concurrency: usize,
        stop_wait: Duration,
        done: impl Fn(&OurName, Result<bool, HubError>),
    ) {
        let jobs = users.into_iter().map(|name| async move {
            let result = self.delete_user_when_stopped(&name, stop_wait).await;
            (name, result)
        });
        each_as_done(jobs, concurrency, |(name, result)| done(&name, result)).await;
    }
}

/// Runs `jobs`, `concurrency` at a time, handing each result to `done` as it comes.
async fn each_as_done<F: std::future::Future>(
    jobs: impl Iterator<Item = F>,
    concurrency: usize,
    done: impl Fn(F::Output),
) {
    futures::stream::iter(jobs)
        .buffer_unordered(concurrency.max(1))
        .for_each(|out| {
            done(out);
            futures::future::ready(())
        })
        .await;
}
