//! `purge`: stop and delete every user whose name starts with `{prefix}-` — through
//! every page of the user list — and nothing else.

use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::settings::PurgeSettings;
use super::{delete_users, print_plan, stop_servers, Outcome, Run, RunError};
use crate::hub::{CREATE_USERS, LEASE, LIST_USERS, SERVERS};
use crate::report::RunReport;

pub async fn run(
    s: &PurgeSettings,
    cancel: CancellationToken,
) -> Result<(Outcome, RunReport), RunError> {
    let params =
        json!({ "batch_size": s.batch_size, "stop_timeout_s": s.stop_timeout.as_secs_f64() });
    let run = Run::connect(
        &s.scope,
        "purge",
        params,
        cancel,
        &[CREATE_USERS, LIST_USERS, SERVERS, LEASE],
    )
    .await?;
    run.record().expect("stop");
    run.record().expect("delete_user");
    let ours = run.list_ours().await?;
    let servers: Vec<_> = ours
        .iter()
        .flat_map(|(name, user)| {
            user.servers
                .keys()
                .map(move |server| (name.clone(), server.clone()))
        })
        .collect();
    tracing::info!(users = ours.len(), servers = servers.len(), "purging");
    if s.scope.dry_run {
        let sample: Vec<&str> = ours.iter().take(5).map(|(n, _)| n.as_str()).collect();
        print_plan(&[
            format!(
                "stop {} and delete {} named {}* (e.g. {})",
                crate::out::count(servers.len() as u64, "server"),
                crate::out::count(ours.len() as u64, "user"),
                s.scope.prefix.stem(),
                if sample.is_empty() {
                    "none".to_string()
                } else {
                    sample.join(", ")
                }
            ),
            "no other user is touched".to_string(),
        ]);
        return run.finish(&s.report).await;
    }
    let batch = s.batch_size as usize;
    let t = Instant::now();
    stop_servers(&run, servers, batch, s.stop_timeout).await;
    run.phase_done("stop", t);
    let t = Instant::now();
    delete_users(
        &run,
        ours.into_iter().map(|(n, _)| n).collect(),
        batch,
        s.stop_timeout,
    )
    .await;
    run.phase_done("delete", t);
    run.finish(&s.report).await
}
