//! `activity-stress-test`: make sure `count` of our users exist (no servers), then
//! `workers` tasks post activity shaped like a single-user server's, every answer's
//! status checked, while a ping task times `GET /users/{first}`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::settings::ActivitySettings;
use super::{create_users, delete_users, print_plan, progress_bar, Outcome, Run, RunError};
use crate::hub::{ACTIVITY, CREATE_USERS, LEASE, LIST_USERS, READ_USERS};
use crate::names::OurName;
use crate::report::RunReport;

pub async fn run(
    s: &ActivitySettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    let params = json!({
        "count": s.count, "workers": s.workers, "rounds": s.rounds,
        "ping_interval_s": s.ping_interval.as_secs_f64(), "keep": s.keep,
    });
    let run = Run::connect(
        &s.scope,
        "activity-stress-test",
        params,
        cancel,
        &[CREATE_USERS, LIST_USERS, READ_USERS, ACTIVITY, LEASE],
    )
    .await?;
    let prefix = &s.scope.prefix;
    for action in ["activity", "ping"] {
        run.record().expect(action);
    }
    let mut existing: Vec<(u64, OurName)> = run
        .list_ours()
        .await?
        .into_iter()
        .filter_map(|(n, _)| prefix.index_of(n.as_str()).map(|i| (i, n)))
        .collect();
    existing.sort();
    let next = existing.last().map_or(1, |(i, _)| i + 1);
    let mut users: Vec<OurName> = existing
        .into_iter()
        .take(s.count as usize)
        .map(|(_, n)| n)
        .collect();
    let missing = s.count as usize - users.len();
    let to_create: Vec<OurName> = (next..next + missing as u64)
        .map(|i| prefix.name(i))
        .collect();

    if s.scope.dry_run {
        print_plan(&[
            format!(
                "use {} of our existing users and create {} more",
                users.len(),
                to_create.len()
            ),
            format!(
                "post activity {} per user ({}), {} at a time, while pinging GET /users/{{first}} every {}",
                crate::out::count(s.rounds, "time"),
                crate::out::count(s.count * s.rounds, "post"),
                s.workers,
                humantime::format_duration(s.ping_interval)
            ),
            if s.keep || to_create.is_empty() {
                "leave the users in place".to_string()
            } else {
                format!(
                    "then delete the {} this run created",
                    crate::out::count(to_create.len() as u64, "user")
                )
            },
        ]);
        return run.finish(&s.report).await;
    }

    let t = Instant::now();
    let created = if to_create.is_empty() {
        Vec::new()
    } else {
        run.record().expect("create_user");
        create_users(&run, &to_create, 100).await
    };
    users.extend(created.iter().cloned());
    run.phase_done("create", t);

    if !users.is_empty() {
        let t = Instant::now();
        let total = users.len() * s.rounds as usize;
        let next_post = AtomicUsize::new(0);
        let bar = progress_bar(total as u64, "activity");
        let done = CancellationToken::new();
        let workers = futures::future::join_all((0..(s.workers as usize).min(total)).map(|_| {
            let (run, users, next_post, bar) = (&run, &users, &next_post, bar.clone());
            async move {
                loop {
                    let i = next_post.fetch_add(1, Ordering::Relaxed);
                    if i >= total || run.cancel.is_cancelled() {
                        break;
                    }
                    let name = &users[i % users.len()];
                    let sent = Instant::now();
                    match run
                        .client
                        .post_activity(name.as_str(), "", Utc::now())
                        .await
                    {
                        Ok(()) => run.record().success("activity", Some(sent.elapsed())),
                        Err(e) => run.failed("activity", e.reason().as_str(), &name, &e),
                    }
                    bar.inc(1);
                }
            }
        }));
        let pinger = ping(&run, users[0].as_str(), s.ping_interval, done.clone());
        let stop_ping = async {
            workers.await;
            done.cancel();
        };
        tokio::join!(stop_ping, pinger);
        bar.finish_and_clear();
        run.phase_done("activity", t);
        let tally = run.record().tally("activity");
        tracing::info!(ok = tally.success, failed = tally.failed(), "activity done");
    }

    if !s.keep && !created.is_empty() {
        let t = Instant::now();
        run.record().expect("delete_user");
        delete_users(&run, created, 10, std::time::Duration::from_secs(60)).await;
        run.phase_done("delete", t);
    }
    run.finish(&s.report).await
}

/// Times `GET /users/{name}` every `interval` until `done`.
async fn ping(run: &Run, name: &str, interval: std::time::Duration, done: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sent = Instant::now();
        match run.client.get_user(name).await {
            Ok(Some(_)) => run.record().success("ping", Some(sent.elapsed())),
            Ok(None) => run.failed("ping", "client_error", &name, &"the user is gone"),
            Err(e) => run.failed("ping", e.reason().as_str(), &name, &e),
        }
    }
}
