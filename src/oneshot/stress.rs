//! `stress-test`: create `count` users in batches, start their servers a batch at a
//! time, time each spawn from when it was planned to ready, then (unless --keep)
//! stop each server and delete each user this run created. With `--cycles`, one such
//! run per round of rising size, FunkLoad's way.

use std::time::Instant;

use serde_json::json;

use super::settings::{ReportSettings, StressSettings};
use super::{
    create_users, delete_users, print_plan, progress_bar, spawn_server, stop_servers, write_report,
    Outcome, Run, RunError, Spawned,
};
use crate::hub::{CREATE_USERS, LEASE, LIST_USERS, READ_USERS, SERVERS};
use crate::names::OurName;
use crate::out::count;
use crate::report::merge::merge;
use crate::report::ThresholdResult;
use crate::report::{fmt_secs, Latency, RunReport};
use tokio_util::sync::CancellationToken;

pub async fn run(
    s: &StressSettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    if s.cycles.is_empty() {
        run_once(s, cancel).await
    } else {
        run_cycles(s, cancel).await
    }
}

/// `--cycles`: one round per value, each a whole stress-test of that many users started
/// at once, reported on its own; then a summary, and one JSON report (the rounds merged,
/// each round inside it).
async fn run_cycles(
    s: &StressSettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    let mut rounds = Vec::new();
    let mut outcome = Outcome::Clean;
    for (i, &users) in s.cycles.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        crate::out::line(format_args!(
            "== cycle {} of {}: {users} users",
            i + 1,
            s.cycles.len()
        ));
        let round = StressSettings {
            count: users,
            batch_size: users,
            cycles: Vec::new(),
            report: ReportSettings {
                json: None,
                thresholds: s.report.thresholds.clone(),
            },
            ..s.clone()
        };
        let (o, report) = run_once(&round, cancel.clone()).await?;
        outcome = outcome.max(o);
        rounds.push(report);
        crate::out::line("");
    }
    crate::out::print(&cycles_table(&rounds));
    let mut all = merge(&rounds).map_err(|e| RunError::Merge(e.to_string()))?;
    all.parameters = json!({ "cycles": s.cycles, "rounds": all.parameters["runs"] });
    all.thresholds = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.thresholds.iter().map(move |t| ThresholdResult {
                threshold: format!(
                    "cycle {} ({}): {}",
                    i + 1,
                    count(s.cycles[i], "user"),
                    t.threshold
                ),
                ..t.clone()
            })
        })
        .collect();
    all.cycles = rounds;
    if let Some(path) = &s.report.json {
        write_report(path, &all)?;
    }
    Ok((outcome, all))
}

/// One line per round: FunkLoad's view of how the hub copes as concurrency rises.
fn cycles_table(rounds: &[RunReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}  result",
        "cycle", "users", "spawned", "failed", "p50", "p95", "p99", "max"
    );
    for (i, r) in rounds.iter().enumerate() {
        let spawn = r.outcomes.get("spawn").cloned().unwrap_or_default();
        let l = r.latency.get("spawn");
        let q = |q: f64| {
            l.and_then(Latency::from_summary)
                .filter(|l| l.count() > 0)
                .map_or("-".to_string(), |l| fmt_secs(l.quantile(q).as_secs_f64()))
        };
        let missed = r.thresholds.iter().any(|t| !t.passed);
        let _ = writeln!(
            out,
            "{:<6} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}  {}",
            i + 1,
            // A JSON value ignores the column width: pad its text.
            r.parameters["count"].to_string(),
            spawn.success,
            spawn.failed(),
            q(0.5),
            q(0.95),
            q(0.99),
            q(1.0),
            if missed {
                "THRESHOLDS MISSED"
            } else if r.failed {
                "FAILURES"
            } else {
                "ok"
            }
        );
    }
    out
}

async fn run_once(
    s: &StressSettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    let params = json!({
        "count": s.count,
        "batch_size": s.batch_size,
        "keep": s.keep,
        "server_name": s.server.server_name,
        "user_options": s.server.user_options,
        "spawn_timeout_s": s.spawn_timeout.as_secs_f64(),
        "stop_timeout_s": s.stop_timeout.as_secs_f64(),
    });
    let run = Run::connect(
        &s.scope,
        "stress-test",
        params,
        cancel,
        &[CREATE_USERS, LIST_USERS, READ_USERS, SERVERS, LEASE],
    )
    .await?;
    for action in ["create_user", "spawn"] {
        run.record().expect(action);
    }
    if !s.keep {
        run.record().expect("stop");
        run.record().expect("delete_user");
    }

    let existing = run.list_ours().await?;
    let names = run.next_names(&existing, s.count);
    let batch = s.batch_size as usize;
    let batches = names.len().div_ceil(batch);
    tracing::info!(existing = existing.len(), first = %names[0], last = %names[names.len() - 1], batches, "plan");

    if s.scope.dry_run {
        print_plan(&[
            format!(
                "{} of ours {} already",
                count(existing.len() as u64, "user"),
                if existing.len() == 1 {
                    "exists"
                } else {
                    "exist"
                }
            ),
            format!(
                "create {}, {} to {}, in {} of at most {}",
                count(names.len() as u64, "user"),
                names[0],
                names[names.len() - 1],
                count(batches as u64, "request"),
                batch
            ),
            format!(
                "start their servers {batch} at a time, waiting up to {} for each",
                humantime::format_duration(s.spawn_timeout)
            ),
            if s.keep {
                "keep the users and servers running (--keep)".to_string()
            } else {
                "then stop every server and delete every user this run created".to_string()
            },
        ]);
        return run.finish(&s.report).await;
    }

    let t = Instant::now();
    let created = create_users(&run, &names, batch).await;
    run.phase_done("create", t);

    let t = Instant::now();
    let mut spawned: Vec<(OurName, Spawned)> = Vec::with_capacity(created.len());
    let bar = progress_bar(created.len() as u64, "spawn");
    for (i, chunk) in created.chunks(batch).enumerate() {
        if run.cancel.is_cancelled() {
            break;
        }
        // Every spawn in a batch is planned now; latency counts from here.
        let planned = Instant::now();
        let results = futures::future::join_all(chunk.iter().map(|name| {
            let run = &run;
            let bar = bar.clone();
            async move {
                let result = spawn_server(run, name, &s.server, planned, s.spawn_timeout).await;
                bar.inc(1);
                (name.clone(), result)
            }
        }))
        .await;
        let ready = results.iter().filter(|(_, r)| *r == Spawned::Ready).count();
        tracing::info!(
            batch = i + 1,
            of = created.len().div_ceil(batch),
            ready,
            failed = results.len() - ready,
            seconds = format!("{:.2}", planned.elapsed().as_secs_f64()),
            "batch done"
        );
        spawned.extend(results);
    }
    bar.finish_and_clear();
    run.phase_done("spawn", t);

    if s.keep {
        tracing::info!(users = created.len(), "keeping users and servers (--keep)");
    } else {
        let t = Instant::now();
        let to_stop = spawned
            .iter()
            .filter(|(_, r)| *r != Spawned::Failed)
            .map(|(n, _)| (n.clone(), s.server.server_name.clone()))
            .collect();
        stop_servers(&run, to_stop, batch, s.stop_timeout).await;
        run.phase_done("stop", t);
        let t = Instant::now();
        delete_users(&run, created, batch, s.stop_timeout).await;
        run.phase_done("delete", t);
    }
    run.finish(&s.report).await
}
