//! `simulate N`: hubtraf's simulated class. Users arrive at random times within the start
//! delay; each logs in (form mode), starts a server, starts a kernel and runs code in it
//! (with think time) for a random session, stops the kernel, and leaves — its server is
//! stopped whatever failed on the way. The report tallies each journey's outcome by the
//! step it ended at (login, start-server, start-kernel, run-code, …, completed) and times
//! every step.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::settings::SimulateSettings;
use super::{
    create_users, delete_users, print_plan, spawn_server, Outcome, Run, RunError, Spawned,
};
use crate::hub::{Need, CREATE_USERS, LEASE, LIST_USERS, READ_USERS, SERVERS};
use crate::journey::{
    run_kernel_session, CodeCell, JourneyError, Journeys, Notebook, SessionEnd, Step, StepSink,
};
use crate::names::OurName;
use crate::report::RunReport;

/// The report's row of whole journeys: ok = completed, failures by the step they ended at.
pub const JOURNEY: &str = "journey";

impl StepSink for Run {
    fn step(&self, step: Step, took: Duration, result: Result<(), &JourneyError>) {
        match result {
            Ok(()) => self.record().success(step.as_str(), Some(took)),
            Err(e) => self.failed(step.as_str(), e.reason(), &step.as_str(), e),
        }
    }

    fn cell(
        &self,
        notebook: &Notebook,
        cell: &CodeCell,
        took: Duration,
        result: Result<(), &JourneyError>,
    ) {
        self.record().notebook_cell(
            &notebook.name,
            cell.position,
            cell.id.as_deref(),
            took,
            result.is_ok(),
        );
    }

    fn notebook(&self, notebook: &Notebook, result: Result<(), &JourneyError>) {
        self.record()
            .notebook_run(&notebook.name, result.err().map(JourneyError::reason));
    }
}

/// The scopes a `simulate` run needs: a stress test's, and its journeys' way in.
fn needs(j: &crate::journey::JourneySettings) -> Vec<Need> {
    let mut needs = vec![CREATE_USERS, LIST_USERS, READ_USERS, SERVERS, LEASE];
    needs.extend(j.auth.need());
    needs
}

pub async fn run(
    s: &SimulateSettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    let j = &s.journey;
    let mut params = json!({
        "users": s.users,
        "session_min_s": s.session_min.as_secs_f64(),
        "session_max_s": s.session_max.as_secs_f64(),
        "start_delay_max_s": s.start_delay_max.as_secs_f64(),
        "auth": j.auth.name(),
        "code": j.code,
        "expect": j.expect,
        "notebooks": j.notebooks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        "think_time_s": j.think_time.as_secs_f64(),
        "step_timeout_s": j.step_timeout.as_secs_f64(),
        "public_url": j.public_url.as_str(),
        "server_name": s.server.server_name,
        "user_options": s.server.user_options,
        "keep": s.keep,
    });
    // With notebooks, the code and its expected output are not used: not shown either.
    if !j.notebooks.is_empty() {
        if let Some(p) = params.as_object_mut() {
            p.remove("code");
            p.remove("expect");
        }
    }
    let run = Run::connect(&s.scope, "simulate", params, cancel, &needs(j)).await?;
    let hub = &s.scope.hub;
    let journeys = Journeys::new(
        j.clone(),
        &hub.api_url,
        run.client.auth(),
        hub.ca_file.as_deref(),
        hub.request_timeout,
    )?;
    run.record().expect(JOURNEY);
    for notebook in &j.notebooks {
        run.record().expect_notebook(&notebook.name);
    }
    let existing = run.list_ours().await?;
    let names = run.next_names(&existing, s.users);

    if s.scope.dry_run {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        print_plan(&[
            format!(
                "create {}, {} to {}",
                crate::out::count(names.len() as u64, "user"),
                names[0],
                names[names.len() - 1]
            ),
            format!(
                "each arrives within {}, {}starts {}, {} every {} for {} to {}, then stops it",
                h(s.start_delay_max),
                if journeys.logs_in() {
                    "logs in through the hub's form, "
                } else {
                    ""
                },
                if s.server.server_name.is_empty() {
                    "their default server".to_string()
                } else {
                    format!("their server {:?}", s.server.server_name)
                },
                if j.notebooks.is_empty() {
                    format!("runs {:?} in a kernel", j.code)
                } else {
                    let names: Vec<String> = j
                        .notebooks
                        .iter()
                        .map(|n| {
                            format!(
                                "{} ({})",
                                n.name,
                                crate::out::count(n.cells.len() as u64, "code cell")
                            )
                        })
                        .collect();
                    format!(
                        "runs a notebook on a fresh kernel, in turn: {}",
                        names.join(", ")
                    )
                },
                h(j.think_time),
                h(s.session_min),
                h(s.session_max),
            ),
            if s.keep {
                "keep the users (--keep); their servers are stopped".to_string()
            } else {
                "then delete every user this run created".to_string()
            },
        ]);
        return run.finish(&s.report).await;
    }

    let t = Instant::now();
    let created = create_users(&run, &names, 100).await;
    run.phase_done("create", t);

    let t = Instant::now();
    let bar = super::progress_bar(created.len() as u64, "users");
    let steps = crate::out::progress_line("steps");
    let all = futures::future::join_all(created.iter().map(|name| {
        let (run, journeys, bar) = (&run, &journeys, bar.clone());
        async move {
            let outcome = user_journey(run, s, journeys, name).await;
            match outcome {
                None => run.record().success(JOURNEY, None),
                Some(reason) => run.record().failure(JOURNEY, reason),
            }
            bar.inc(1);
        }
    }));
    let counting = async {
        loop {
            steps.set_message(step_counts(&run, journeys.logs_in()));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::select! {
        _ = all => {}
        _ = counting => {}
    }
    bar.finish_and_clear();
    steps.finish_and_clear();
    run.phase_done("journeys", t);

    if !s.keep {
        let t = Instant::now();
        delete_users(&run, created, 10, s.stop_timeout).await;
        run.phase_done("delete", t);
    }
    run.finish(&s.report).await
}

/// The journeys so far, step by step: `spawn 8 · kernel_start 7 · execute 40 (2 failed) …`.
fn step_counts(run: &Run, logs_in: bool) -> String {
    let record = run.record();
    Step::ALL
        .iter()
        .filter(|step| logs_in || **step != Step::Login)
        .map(|step| {
            let t = record.tally(step.as_str());
            match t.failed() {
                0 => format!("{} {}", step.as_str(), t.success),
                n => format!("{} {} ({n} failed)", step.as_str(), t.success),
            }
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn uniform(min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    min + Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=(max - min).as_secs_f64()))
}

/// One user's visit; `None` if it completed, else where it ended.
async fn user_journey(
    run: &Run,
    s: &SimulateSettings,
    journeys: &Journeys,
    name: &OurName,
) -> Option<&'static str> {
    let arrival = uniform(Duration::ZERO, s.start_delay_max);
    tokio::select! {
        _ = tokio::time::sleep(arrival) => {}
        _ = run.cancel.cancelled() => return Some("cancelled"),
    }
    let j = &s.journey;
    let server = &s.server.server_name;
    let logging_in = Instant::now();
    let opened = tokio::select! {
        r = tokio::time::timeout(j.step_timeout, journeys.open(name.as_str(), server)) => {
            r.unwrap_or(Err(JourneyError::Timeout))
        }
        _ = run.cancel.cancelled() => return Some("cancelled"),
    };
    if journeys.logs_in() {
        run.step(
            Step::Login,
            logging_in.elapsed(),
            opened.as_ref().map(|_| ()),
        );
    }
    let mut user = match opened {
        Ok(user) => user,
        // Recorded (and logged) as the login step's failure.
        Err(_) => return Some(Step::Login.outcome()),
    };
    // spawn_server records the spawn under "spawn", like stress-test.
    let spawned = spawn_server(run, name, &s.server, Instant::now(), s.spawn_timeout).await;
    let end = match spawned {
        Spawned::Ready => {
            let until = tokio::time::Instant::now() + uniform(s.session_min, s.session_max);
            Some(run_kernel_session(&mut user, journeys, until, &run.cancel, run).await)
        }
        Spawned::Abandoned | Spawned::Failed => None,
    };
    user.close(j.step_timeout).await;
    let mut outcome = match &end {
        None => Some(Step::Spawn.outcome()),
        Some(SessionEnd::Completed { .. }) => None,
        Some(SessionEnd::Failed { step, error }) => {
            tracing::debug!(user = %name, step = step.as_str(), %error, "journey step failed");
            Some(step.outcome())
        }
        Some(SessionEnd::Cancelled) => Some("cancelled"),
    };
    // Whatever happened, a server that may be running is stopped: no leak.
    if spawned != Spawned::Failed {
        let asked = Instant::now();
        let c = &run.servers;
        c.moved(Some(&c.running), Some(&c.stopping));
        let result = run
            .client
            .stop_and_wait(name, server, asked + s.stop_timeout)
            .await;
        c.moved(Some(&c.stopping), None);
        match result {
            Ok(()) => run.record().success("stop", Some(asked.elapsed())),
            Err(e) => {
                run.failed("stop", super::stop_reason(&e), name, &e);
                outcome = outcome.or(Some(Step::Stop.outcome()));
            }
        }
    }
    outcome
}
