//! Notebook journeys on real JupyterHub 5.x and 6.x with real `jupyterhub-singleuser`
//! servers and ipykernel: a notebook of several cells for three users with figures per
//! cell; a raising cell named with IPython's own error (form login, named servers); a
//! sleeping cell cut at its timeout (user tokens); a soak exporting the notebook metrics.
//! No server of ours is left running.

mod common;

use std::time::Duration;

use common::notebooks::{ANALYSIS, BROKEN, SLOW};
use common::realhub::{HubOptions, RealHub, Spawner};
use common::soak::{start_soak, until};
use common::*;

on_both_hubs!(
    a_notebook_for_three_users,
    a_raising_cell_is_named,
    a_sleeping_cell_times_out,
    a_kernel_the_server_lacks_is_named,
    a_soak_runs_notebooks,
);

async fn real_servers(major: u8, named_servers: bool) -> RealHub {
    RealHub::start(HubOptions {
        spawner: Spawner::Local,
        named_servers,
        ..HubOptions::cheap(major)
    })
    .await
}

async fn simulate_on(hub: &RealHub, users: &str, extra: &[&str]) -> (Out, serde_json::Value) {
    let mut args = vec![
        "simulate",
        users,
        "--session-min",
        "0s",
        "--session-max",
        "0s",
        "--start-delay-max",
        "1s",
        "--think-time",
        "0s",
    ];
    args.extend(extra);
    let url = hub.api_url();
    hubsoak_reporting(
        &args,
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
        ],
    )
    .await
}

/// The cells of a report's notebook that ran: (position, runs that got through it).
fn cells_run(r: &serde_json::Value, name: &str) -> Vec<(u64, u64)> {
    notebook(r, name)["by_cell"]
        .as_array()
        .map(|cells| {
            cells
                .iter()
                .map(|c| (c["cell"].as_u64().unwrap(), c["ok"].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_notebook_for_three_users(major: u8) {
    let hub = real_servers(major, false).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook(dir.path(), "analysis", &ANALYSIS);
    let (spawns_before, stops_before) = hub.truth().await;
    // ipykernel really sleeps 0.3 s in cell 3: a gate on the notebook's slowest cell.
    let args = [
        "--notebook",
        path.to_str().unwrap(),
        "--threshold",
        "notebook:analysis:cell_max>=300ms",
    ];
    let (out, r) = simulate_on(&hub, "3", &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(r["thresholds"][0]["passed"], true);
    assert_eq!(
        successes(&r, "journey"),
        3,
        "{}\n{}",
        out.all(),
        hub.log_tail()
    );
    assert_eq!(notebook(&r, "analysis")["runs"]["success"], 3);
    assert_eq!(cells_run(&r, "analysis"), [(2, 3), (3, 3), (4, 3)]);
    let slow = &notebook(&r, "analysis")["by_cell"][1];
    assert!(slow["max_s"].as_f64().unwrap() >= 0.3, "{slow}");
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("analysis "))
        .expect("a notebook row in the end table");
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        ["analysis", "3", "0", "9"],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("slowest (mean): cell 3 (id c3)"),
        "{}",
        out.stdout
    );
    let (spawns_after, stops_after) = hub.truth().await;
    assert_eq!(
        spawns_after - spawns_before,
        3.0,
        "the hub counted our spawns"
    );
    assert_eq!(stops_after - stops_before, 3.0, "and our stops");
    assert!(hub.ours("hubsoak").await.is_empty());
}

/// Form login on named servers; at -v, so the traceback shows too (IPython colours it).
async fn a_raising_cell_is_named(major: u8) {
    let hub = real_servers(major, true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook(dir.path(), "broken", &BROKEN);
    let args = [
        "--notebook",
        path.to_str().unwrap(),
        "--auth",
        "form",
        "--server-name",
        "lab2",
        "--keep",
        "-v",
    ];
    let (out, r) = simulate_on(&hub, "2", &args).await;
    assert_eq!(out.code, 1, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(successes(&r, "login"), 2, "{}", out.stdout);
    assert_eq!(r["outcomes"]["journey"]["failures"]["run-code"], 2);
    assert_eq!(
        notebook(&r, "broken")["runs"]["failures"]["kernel_error"],
        2
    );
    assert_eq!(
        cells_run(&r, "broken"),
        [(1, 2), (2, 0)],
        "cell 3 never ran"
    );
    let named =
        "notebook broken cell 2 (id c2): the kernel reported ZeroDivisionError: division by zero";
    assert!(out.stderr.contains(named), "{}", out.stderr);
    assert!(
        out.stderr.contains("Traceback") && out.stderr.contains("1 / 0"),
        "IPython's traceback at -v: {}",
        out.stderr
    );
    assert!(
        !out.all().contains('\u{1b}'),
        "colour codes: {}",
        out.stderr
    );
    // --keep keeps the users; no server of theirs is left.
    let ours = hub.ours("hubsoak").await;
    assert_eq!(ours.len(), 2, "{ours:?}");
    for name in &ours {
        assert_eq!(hub.servers_of(name).await, serde_json::json!({}), "{name}");
    }
}

async fn a_sleeping_cell_times_out(major: u8) {
    let hub = real_servers(major, false).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook(dir.path(), "slow", &SLOW);
    let (spawns_before, stops_before) = hub.truth().await;
    let args = [
        "--notebook",
        path.to_str().unwrap(),
        "--auth",
        "user-token",
        "--step-timeout",
        "8s",
    ];
    let (out, r) = simulate_on(&hub, "1", &args).await;
    assert_eq!(out.code, 1, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(notebook(&r, "slow")["runs"]["failures"]["timeout"], 1);
    assert!(
        out.stderr
            .contains("notebook slow cell 2 (id c2): no answer within the step timeout"),
        "{}",
        out.stderr
    );
    let (spawns_after, stops_after) = hub.truth().await;
    assert_eq!(spawns_after - spawns_before, 1.0);
    assert_eq!(stops_after - stops_before, 1.0, "the server was stopped");
    assert!(hub.ours("hubsoak").await.is_empty());
}

/// A notebook written for a kernel the image does not have: the kernel start fails,
/// named by notebook and kernel; `--kernel-name` runs it on the one it has.
async fn a_kernel_the_server_lacks_is_named(major: u8) {
    let hub = real_servers(major, false).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook_for(dir.path(), "needs-r", "ir", &["1 + 1"]);
    let (out, r) = simulate_on(&hub, "1", &["--notebook", path.to_str().unwrap()]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(r["outcomes"]["journey"]["failures"]["start-kernel"], 1);
    assert_eq!(notebook(&r, "needs-r")["runs"]["failures"]["http_5xx"], 1);
    assert!(
        out.stderr
            .contains("notebook needs-r (kernel ir): HTTP 500"),
        "{}",
        out.stderr
    );
    let args = [
        "--notebook",
        path.to_str().unwrap(),
        "--kernel-name",
        "python3",
    ];
    let (out, r) = simulate_on(&hub, "1", &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(notebook(&r, "needs-r")["runs"]["success"], 1);
    assert!(hub.ours("hubsoak").await.is_empty());
}

async fn a_soak_runs_notebooks(major: u8) {
    let hub = real_servers(major, false).await;
    let dir = tempfile::tempdir().unwrap();
    write_notebook(dir.path(), "analysis", &ANALYSIS);
    write_notebook(dir.path(), "broken", &BROKEN);
    let url = hub.api_url();
    let mut soak = start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
            ("HUBSOAK__USERS__PREFIX", "soaknb"),
            ("HUBSOAK__POPULATION__TARGET", "2"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "3s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "3s"),
            ("HUBSOAK__JOURNEY__ENABLED", "true"),
            ("HUBSOAK__JOURNEY__THINK_TIME", "500ms"),
            ("HUBSOAK__JOURNEY__NOTEBOOKS", dir.path().to_str().unwrap()),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
            ("HUBSOAK__SHUTDOWN__GRACE", "60s"),
        ],
    )
    .await;
    let cells = |m: &common::soak::Metrics| {
        m.get("hubsoak_notebook_cell_duration_seconds_count{notebook=\"analysis\"}")
    };
    let raised = |m: &common::soak::Metrics| {
        m.get("hubsoak_notebook_failures_total{notebook=\"broken\",reason=\"kernel_error\"}")
    };
    let m = until(&soak, Duration::from_secs(150), "both notebooks ran", |m| {
        cells(m) >= 3.0 && raised(m) >= 1.0
    })
    .await;
    assert_eq!(
        m.get("hubsoak_notebook_failures_total{notebook=\"analysis\",reason=\"kernel_error\"}"),
        0.0
    );
    soak.signal("TERM");
    assert_eq!(soak.exit_within(Duration::from_secs(90)).await, Some(0));
    assert!(hub.ours("soaknb").await.is_empty(), "purged");
}
