//! `stress-test`: create `count` users in batches, start their servers a batch at a
//! time, time each spawn from when it was planned to ready, then (unless --keep)
//! stop each server and delete each user this run created.

use std::time::Instant;

use serde_json::json;

use super::{
    create_users, delete_users, print_plan, progress_bar, spawn_server, stop_servers, Outcome, Run,
    RunError, Spawned,
};
use crate::config::StressSettings;
use crate::names::OurName;
use crate::report::RunReport;
use tokio_util::sync::CancellationToken;

pub async fn run(
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
    let run = Run::connect(&s.target, "stress-test", params, cancel).await?;
    let prefix = &s.target.prefix;
    for action in ["create_user", "spawn"] {
        run.record().expect(action);
    }
    if !s.keep {
        run.record().expect("stop");
        run.record().expect("delete_user");
    }

    let existing = run.list_ours().await?;
    // Continue after the highest index in use, so a --keep re-run never collides.
    let first = existing
        .iter()
        .filter_map(|(n, _)| prefix.index_of(n.as_str()))
        .max()
        .map_or(1, |m| m + 1);
    let names: Vec<OurName> = (first..first + s.count).map(|i| prefix.name(i)).collect();
    let batch = s.batch_size as usize;
    let batches = names.len().div_ceil(batch);
    tracing::info!(existing = existing.len(), first = %names[0], last = %names[names.len() - 1], batches, "plan");

    if s.target.dry_run {
        print_plan(&[
            format!("{} of our users exist already", existing.len()),
            format!(
                "create {} users, {} to {}, in {} requests of at most {}",
                names.len(),
                names[0],
                names[names.len() - 1],
                batches,
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
        return run.finish(&s.report);
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
    run.finish(&s.report)
}
