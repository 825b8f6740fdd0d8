//! The population's hub work, each in a short-lived task that reports back to the
//! reconciler: adopting what a restarted soak finds, spawns, stops, activity reports,
//! journeys, and retiring surplus users.

use super::*;

impl Population {
    /// Our users on the hub, retried until the hub answers or `stop`.
    pub(super) async fn list_ours(&self, stop: &CancellationToken) -> Option<Vec<(OurName, User)>> {
        let mut wait = self.settings.population.backoff_min;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                listed = self.client.list_our_users(&self.settings.prefix) => match listed {
                    Ok(users) => return Some(users),
                    Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "cannot list our users yet"),
                },
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(self.settings.population.backoff_max);
        }
    }

    /// Takes over our users already on the hub, so a restarted soak neither duplicates
    /// nor orphans: users 1..=target become slots in their current state; any other of
    /// ours is stopped and deleted.
    pub(super) async fn adopt(&mut self, existing: Vec<(OurName, User)>) {
        let server = self.settings.population.server_name.clone();
        let target = self.slots.len() as u64;
        let (mut adopted, mut surplus) = (0, 0);
        for (name, user) in existing {
            let index = self.settings.prefix.index_of(name.as_str());
            let Some(i) = index
                .filter(|n| (1..=target).contains(n))
                .map(|n| n as usize - 1)
            else {
                surplus += 1;
                self.retire(name, user.servers.keys().cloned().collect());
                continue;
            };
            adopted += 1;
            self.slots[i].exists = true;
            match user.server(&server) {
                Some(s) if s.ready => self.became_running(i),
                Some(s) if s.pending.as_deref() == Some("stop") => {
                    self.set(i, State::Stopping);
                    let (client, tx, name, srv) = self.task_parts(i);
                    let deadline = Instant::now() + self.settings.population.stop_timeout;
                    self.tasks.spawn(async move {
                        let _ = client
                            .wait_until_stopped(name.as_str(), &srv, deadline.into_std())
                            .await;
                        let _ = tx.send(Done::AdoptedStop(i));
                    });
                }
                Some(_) => {
                    self.set(i, State::Starting);
                    let (client, tx, name, srv) = self.task_parts(i);
                    let deadline = Instant::now() + self.settings.population.spawn_timeout;
                    self.tasks.spawn(async move {
                        let ok = client
                            .wait_until_ready(name.as_str(), &srv, deadline.into_std())
                            .await
                            .is_ok();
                        let _ = tx.send(Done::AdoptedStart(i, ok));
                    });
                }
                None => {}
            }
        }
        // Create the missing users in a few requests rather than one per spawn.
        let missing: Vec<OurName> = self
            .slots
            .iter()
            .filter(|s| !s.exists)
            .map(|s| s.name.clone())
            .collect();
        for chunk in missing.chunks(100) {
            match self.client.create_users(chunk).await {
                Ok(_) => {
                    for name in chunk {
                        if let Some(slot) = self.slots.iter_mut().find(|s| &s.name == name) {
                            slot.exists = true;
                        }
                    }
                }
                // Each spawn creates its own user then.
                Err(e) => {
                    tracing::warn!(error = %e, "creating users failed; will create them one by one")
                }
            }
        }
        for i in 0..self.slots.len() {
            if self.slots[i].state == State::Absent && self.slots[i].active {
                self.queue_spawn(i);
            }
        }
        tracing::info!(
            target,
            adopted,
            surplus,
            created = missing.len(),
            "population adopted"
        );
    }

    /// Stops and deletes one of our users that is not a slot.
    pub(super) fn retire(&mut self, name: OurName, servers: Vec<String>) {
        let client = self.client.clone();
        let stop_timeout = self.settings.population.stop_timeout;
        self.tasks.spawn(async move {
            for server in servers {
                let deadline = std::time::Instant::now() + stop_timeout;
                if let Err(e) = client.stop_and_wait(&name, &server, deadline).await {
                    tracing::warn!(user = %name, error = %e, "stopping a surplus server failed");
                }
            }
            if let Err(e) = client.delete_user_when_stopped(&name, stop_timeout).await {
                tracing::warn!(user = %name, error = %e, "deleting a surplus user failed");
            }
        });
    }

    /// Uses the running server of slot `i` until `until`; its end ends the session.
    pub(super) fn launch_journey(&mut self, i: usize, until: Instant) {
        let Some(journeys) = self.journeys.clone() else {
            return;
        };
        let (_, tx, name, server) = self.task_parts(i);
        let epoch = self.slots[i].epoch;
        let record = self.record.clone();
        // Cancelled by the soak's end, or by this slot's retirement.
        let stop = self.journey_stop.child_token();
        self.slots[i].journey = Some(stop.clone());
        self.journey_tasks.spawn(async move {
            let j = journeys.settings();
            let started = Instant::now();
            let opened = tokio::select! {
                r = tokio::time::timeout(j.step_timeout, journeys.open(name.as_str(), &server)) => {
                    r.unwrap_or(Err(JourneyError::Timeout))
                }
                _ = stop.cancelled() => {
                    let _ = tx.send(Done::Journey(i, epoch));
                    return;
                }
            };
            if journeys.logs_in() {
                record.step(Step::Login, started.elapsed(), opened.as_ref().map(|_| ()));
            }
            let end = match opened {
                Ok(mut user) => {
                    let end =
                        run_kernel_session(&mut user, &journeys, until, &stop, &*record).await;
                    user.close(j.step_timeout).await;
                    end
                }
                Err(error) => SessionEnd::Failed {
                    step: Step::Login,
                    error,
                },
            };
            match &end {
                SessionEnd::Cancelled => {}
                // The failed step was logged where it was recorded.
                SessionEnd::Failed { step, error } => tracing::debug!(
                    user = %name,
                    step = step.as_str(),
                    %error,
                    "journey step failed; ending the session"
                ),
                SessionEnd::Completed { executions } => {
                    tracing::debug!(user = %name, executions, "journey completed")
                }
            }
            let _ = tx.send(Done::Journey(i, epoch));
        });
    }

    pub(super) fn activity(&mut self, i: usize, planned: Instant) {
        let interval = self.settings.activity_interval;
        let jitter = self.settings.activity_jitter;
        let factor = 1.0 + rand::thread_rng().gen_range(-jitter..=jitter);
        self.schedule(i, Due::Activity, planned + interval.mul_f64(factor));
        let lag = planned.elapsed();
        // The previous report is still out, or this one missed its whole slot.
        if self.slots[i].activity_busy || lag > interval {
            self.record.dropped(Action::Activity);
            return;
        }
        self.record.lag(Action::Activity, lag);
        self.slots[i].activity_busy = true;
        let (client, tx, name, server) = self.task_parts(i);
        let record = self.record.clone();
        self.tasks.spawn(async move {
            let sent = std::time::Instant::now();
            match client
                .post_activity(name.as_str(), &server, chrono::Utc::now())
                .await
            {
                Ok(()) => record.activity(Ok(sent.elapsed()), &name),
                Err(e) => record.activity(Err((e.reason().as_str(), &e)), &name),
            }
            let _ = tx.send(Done::Activity(i));
        });
    }

    pub(super) fn launch_spawn(&mut self, i: usize, planned: Instant) {
        self.set(i, State::Starting);
        self.spawns_in_flight += 1;
        self.record.lag(Action::Spawn, planned.elapsed());
        let (client, tx, name, server) = self.task_parts(i);
        let exists = self.slots[i].exists;
        let options = self.user_options.clone();
        let record = self.record.clone();
        let timeout = self.settings.population.spawn_timeout;
        self.tasks.spawn(async move {
            let planned = planned.into_std();
            let (result, why, trace) = spawn(
                &client,
                &name,
                &server,
                options.as_deref(),
                exists,
                planned,
                timeout,
            )
            .await;
            let ended = match (&result, &why) {
                (SpawnResult::Ready, _) => Ended::Success,
                (SpawnResult::TimedOut, _) => Ended::Timeout,
                (_, Some((reason, _))) => Ended::Failure(reason),
                (_, None) => Ended::Failure("spawn_failed"),
            };
            let detail = why.map(|(_, d)| d).unwrap_or_default();
            if let Some(trace) = &trace {
                record.spawn_phases(&trace.phases(crate::hub::wall_time(planned)));
            }
            record.spawn_finished(ended, planned.elapsed(), &name, &detail);
            let _ = tx.send(Done::Spawn(i, result));
        });
    }

    pub(super) fn launch_stop(&mut self, i: usize, planned: Instant) {
        self.set(i, State::Stopping);
        self.record.lag(Action::Stop, planned.elapsed());
        let (client, tx, name, server) = self.task_parts(i);
        let record = self.record.clone();
        let stop_timeout = self.settings.population.stop_timeout;
        let deadline = (planned + stop_timeout).into_std();
        self.tasks.spawn(async move {
            let result = client.stop_and_wait(&name, &server, deadline).await;
            let took = planned.elapsed();
            match &result {
                Ok(()) => record.stop_finished(Ended::Success, took, &name, &""),
                Err(StopWaitError::TimedOut) => record.stop_finished(
                    Ended::Timeout,
                    took,
                    &name,
                    &format_args!(
                        "still running after {}",
                        humantime::format_duration(stop_timeout)
                    ),
                ),
                Err(StopWaitError::Hub(e)) => {
                    record.stop_finished(Ended::Failure(e.reason().as_str()), took, &name, e)
                }
            }
            let _ = tx.send(Done::Stop(i, result.is_ok()));
        });
    }
}

/// Creates the user if needed, starts the server and waits for it, by the deadline.
pub(super) async fn spawn(
    client: &HubClient,
    name: &OurName,
    server: &str,
    options: Option<&Value>,
    exists: bool,
    planned: std::time::Instant,
    timeout: Duration,
) -> (
    SpawnResult,
    Option<(&'static str, String)>,
    Option<crate::hub::SpawnTrace>,
) {
    let deadline = planned + timeout;
    let attempt = async {
        if !exists {
            client.create_users(std::slice::from_ref(name)).await?;
        }
        client.start_and_wait(name, server, options, deadline).await
    };
    let result: Result<crate::hub::SpawnTrace, SpawnWaitError> =
        match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(r) => r,
            Err(_) => Err(SpawnWaitError::TimedOut),
        };
    let (result, why) = match result {
        Ok(trace) => return (SpawnResult::Ready, None, Some(trace)),
        Err(SpawnWaitError::TimedOut) => {
            // Cancel the pending spawn; its stop is followed by the retry's start.
            let _ = client.stop_server(name, server).await;
            let detail = format!(
                "not ready within {}; stopped",
                humantime::format_duration(timeout)
            );
            (SpawnResult::TimedOut, Some(("timeout", detail)))
        }
        Err(SpawnWaitError::Hub(e)) if e.status() == Some(404) => (
            SpawnResult::NoUser,
            Some((e.reason().as_str(), e.to_string())),
        ),
        // JupyterHub answers 500 when the spawn failed within its slow_spawn_timeout.
        Err(SpawnWaitError::Hub(e)) if e.status() == Some(500) => {
            (SpawnResult::Failed, Some(("spawn_failed", e.to_string())))
        }
        Err(SpawnWaitError::Hub(e)) => (
            SpawnResult::Failed,
            Some((e.reason().as_str(), e.to_string())),
        ),
        Err(e @ SpawnWaitError::Failed(_)) => {
            (SpawnResult::Failed, Some(("spawn_failed", e.to_string())))
        }
    };
    (result, why, None)
}
