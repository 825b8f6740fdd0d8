//! A soak that tells the truth about itself, on the simulator: its own faults told apart
//! from the hub's (a rejected token, a missing scope), one owner per prefix (the lease),
//! a voice (WARN lines for failures, a status line, an end-of-run table and report),
//! and settings that cannot work caught before anything runs.

mod common;

use std::time::Duration;

use common::soak::{start_soak, until, write_token, SoakProcess, RUNNING};
use common::*;
use hubsoak::mockhub::{MockConfig, MockHub, MockServer};

const PROBLEM_TOKEN: &str = "hubsoak_problem{problem=\"token_rejected\"}";
const PROBLEM_SCOPE: &str = "hubsoak_problem{problem=\"missing_scope\"}";
const PROBLEM_HELD: &str = "hubsoak_problem{problem=\"prefix_held\"}";
/// A token the simulator accepts without admin:groups (the README's role before the lease).
const NO_GROUPS: &str = "token-without-admin-groups-51c2";

fn limited() -> MockConfig {
    MockConfig {
        limited_tokens: vec![(
            NO_GROUPS.into(),
            [
                "admin:users",
                "list:users",
                "read:users",
                "servers",
                "users:activity",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        )],
        ..fast()
    }
}

/// A soak with short sessions against `server`, the token from `token_file`.
async fn soak_with_file(
    server: &MockServer,
    token_file: &str,
    extra: &[(&str, &str)],
) -> SoakProcess {
    let url = server.api_url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("JUPYTERHUB_ENDPOINT", url.as_str()),
        ("HUBSOAK__HUB__TOKEN_FILE", token_file),
        ("HUBSOAK__POPULATION__TARGET", "3"),
        ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
        ("HUBSOAK__POPULATION__SESSION_MIN", "2s"),
        ("HUBSOAK__POPULATION__SESSION_MAX", "4s"),
        ("HUBSOAK__POPULATION__SPAWN_TIMEOUT", "1s"),
        ("HUBSOAK__POPULATION__BACKOFF_MIN", "200ms"),
        ("HUBSOAK__POPULATION__BACKOFF_MAX", "1s"),
        ("HUBSOAK__PING__INTERVAL", "200ms"),
        ("HUBSOAK__ACTIVITY__INTERVAL", "1s"),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push((k, v));
    }
    start_soak(&[], &vars).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_is_hubsoaks_problem_until_the_token_file_is_rewritten() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let wrong = "rejected-token-0d9c8b7a";
    write_token(&file, wrong);
    let mut p = soak_with_file(&server, file.to_str().unwrap(), &[]).await;

    let m = p
        .until_value(PROBLEM_TOKEN, 1.0, Duration::from_secs(10))
        .await;
    let (status, body) = p.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("token_rejected"), "{body}");
    assert_eq!(p.get("/livez").await.0, 200);
    // The hub answers: the hub is fine, hubsoak is not.
    p.until_value("hubsoak_hub_up", 1.0, Duration::from_secs(5))
        .await;
    assert_eq!(m.get(PROBLEM_SCOPE), 0.0);
    assert_eq!(m.get(PROBLEM_HELD), 0.0);
    // Held for a while: no spawn, no user, nothing changed; one ERROR line.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = hub.stats();
    assert_eq!(stats.spawns_started, 0);
    assert_eq!(stats.users_created, 0);
    assert_eq!(
        stats.mutating_requests, 0,
        "nothing sent that changes state"
    );
    let errors = p.error_lines();
    assert_eq!(errors.len(), 1, "one ERROR line: {errors:#?}");
    assert!(errors[0].contains("rejected the token"), "{}", errors[0]);
    let m = p.metrics().await;
    for text in [&m.text, &body, &p.log.lock().unwrap().join("\n")] {
        assert!(!text.contains(wrong), "the token leaked");
    }

    // The Secret is rotated: ready again without a restart, and to work.
    write_token(&file, TOKEN);
    until(&p, Duration::from_secs(15), "3 running", |m| {
        m.get(PROBLEM_TOKEN) == 0.0 && m.get(RUNNING) == 3.0
    })
    .await;
    assert_eq!(p.get("/readyz").await.0, 200);
    assert!(p.log_contains("problem cleared"));
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(20)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_that_never_could_work_exits_1() {
    let (hub, server) = start_mock(fast()).await;
    let url = server.api_url();
    let out = hubsoak(
        &[
            "soak",
            "--metrics-listen",
            "127.0.0.1:0",
            "--duration",
            "3s",
        ],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", "not-the-token-4a5b"),
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("could not work"), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("result: COULD NOT WORK (token_rejected"),
        "{}",
        out.stdout
    );
    assert!(!out.all().contains("not-the-token-4a5b"));
    assert_eq!(hub.stats().mutating_requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_a_scope_is_missing_scope_naming_it() {
    let (hub, server) = start_mock(limited()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, NO_GROUPS);
    let mut p = soak_with_file(&server, file.to_str().unwrap(), &[]).await;
    p.until_value(PROBLEM_SCOPE, 1.0, Duration::from_secs(10))
        .await;
    let (status, body) = p.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("admin:groups"), "{body}");
    assert!(p.error_lines()[0].contains("admin:groups"));
    assert_eq!(hub.stats().mutating_requests, 0);
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(20)).await, Some(1));

    // A one-shot finds it before its first state-changing request: exit 2, one line.
    let url = server.api_url();
    let out = hubsoak(
        &["stress-test", "-c", "2"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", NO_GROUPS),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("admin:groups"), "{}", out.stderr);
    assert_eq!(hub.stats().mutating_requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_with_a_rejected_token_creates_nothing_and_exits_2() {
    let (hub, server) = start_mock(fast()).await;
    let url = server.api_url();
    for cmd in [
        vec!["stress-test", "-c", "2"],
        vec!["activity-stress-test", "--count", "2"],
        vec!["purge"],
        vec!["simulate", "2"],
    ] {
        let out = hubsoak(
            &cmd,
            &[
                ("JUPYTERHUB_ENDPOINT", &url),
                ("JUPYTERHUB_API_TOKEN", "wrong-token-77aa"),
            ],
        )
        .await;
        assert_eq!(out.code, 2, "{cmd:?}: {}", out.all());
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("rejected the token"), "{}", out.stderr);
        assert!(!out.all().contains("wrong-token-77aa"));
    }
    assert_eq!(hub.stats().mutating_requests, 0);
}

/// Two soaks on one prefix for two minutes: the second touches nothing, waits not
/// ready, and takes over when the first exits.
#[tokio::test(flavor = "multi_thread")]
async fn two_soaks_on_one_prefix_never_fight() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, TOKEN);
    let path = file.to_str().unwrap();
    let churn = [
        ("HUBSOAK__POPULATION__TARGET", "5"),
        ("HUBSOAK__POPULATION__SPAWN_TIMEOUT", "5s"),
    ];
    let mut first = soak_with_file(&server, path, &churn).await;
    first.until_running(5, Duration::from_secs(15)).await;
    let mut second = soak_with_file(&server, path, &churn).await;
    second
        .until_value(PROBLEM_HELD, 1.0, Duration::from_secs(10))
        .await;
    let (status, body) = second.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("prefix_held") && body.contains("pid"),
        "{body}"
    );
    assert!(second.log_contains("is held by"));

    tokio::time::sleep(Duration::from_secs(120)).await;
    let m2 = second.metrics().await;
    for op in [
        "create_users",
        "start_server",
        "stop_server",
        "delete_user",
        "activity",
    ] {
        assert_eq!(
            m2.get(&format!("hubsoak_requests_total{{operation=\"{op}\"}}")),
            0.0,
            "the second soak sent {op}"
        );
    }
    assert_eq!(m2.get(PROBLEM_HELD), 1.0);
    let m1 = first.metrics().await;
    assert!(
        m1.get("hubsoak_stop_duration_seconds_count{status=\"success\"}") >= 20.0,
        "the first kept churning"
    );
    assert_eq!(
        m1.sum(
            "hubsoak_spawn_duration_seconds_count",
            &["status=\"failure\""]
        ),
        0.0,
        "nobody stopped the first's servers under it"
    );
    assert_eq!(
        second.error_lines().len(),
        1,
        "one ERROR line while it waits"
    );

    first.signal("TERM");
    assert_eq!(first.exit_within(Duration::from_secs(20)).await, Some(0));
    until(
        &second,
        Duration::from_secs(20),
        "took over at target",
        |m| m.get(PROBLEM_HELD) == 0.0 && m.get(RUNNING) == 5.0,
    )
    .await;
    assert_eq!(second.get("/readyz").await.0, 200);
    second.signal("TERM");
    assert_eq!(second.exit_within(Duration::from_secs(20)).await, Some(0));
    assert!(hub.user_names().iter().all(|n| n.starts_with("hubsoak-")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_on_a_held_prefix_refuses_unless_forced() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, TOKEN);
    let holder = soak_with_file(
        &server,
        file.to_str().unwrap(),
        &[
            ("HUBSOAK__USERS__PREFIX", "held"),
            ("HUBSOAK__POPULATION__TARGET", "0"),
        ],
    )
    .await;
    holder
        .until_value(PROBLEM_HELD, 0.0, Duration::from_secs(10))
        .await;
    wait_for(Duration::from_secs(10), || hub.stats().spawns_started == 0).await;
    let created = hub.stats().users_created;
    for extra in [vec![], vec!["--dry-run"]] {
        let mut args = vec!["--prefix", "held", "stress-test", "-c", "2"];
        args.extend(extra);
        let out = against(&server, &args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert!(
            out.stderr.contains("is held by") && out.stderr.contains("pid"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--force"), "{}", out.stderr);
    }
    assert_eq!(hub.stats().users_created, created, "nothing created");
    let out = against(
        &server,
        &["--prefix", "held", "--force", "stress-test", "-c", "2"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("--force"),
        "a WARN names the override: {}",
        out.stderr
    );
    // Another prefix is free.
    let out = against(&server, &["--prefix", "free", "stress-test", "-c", "2"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_threshold_is_refused_before_anything_is_sent() {
    let (hub, server) = start_mock(fast()).await;
    let out = against(
        &server,
        &["stress-test", "-c", "2", "--threshold", "spwan_p95<60s"],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("did you mean \"spawn\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "create_user, spawn, spawn_queued, spawn_scheduling, spawn_image_pull, \
             spawn_container_start, spawn_server_startup, stop, delete_user"
        ),
        "{}",
        out.stderr
    );
    // A threshold on an action that command does not have.
    let out = against(&server, &["purge", "--threshold", "spawn_p95<60s"]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(hub.stats().requests, 0, "nothing sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_warned_once_per_reason_and_counted_in_status_lines() {
    let (hub, server) = start_mock(MockConfig {
        spawn_failure_rate: 1.0,
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, TOKEN);
    let p = soak_with_file(
        &server,
        file.to_str().unwrap(),
        &[
            ("HUBSOAK__LOG__STATUS_INTERVAL", "2s"),
            ("HUBSOAK__POPULATION__TARGET", "5"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(20), "many failed spawns", |m| {
        m.get("hubsoak_spawn_duration_seconds_count{status=\"failure\"}") >= 30.0
    })
    .await;
    // Let a window close so its count is printed.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let log = p.log.lock().unwrap().clone();
    let warns: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") && l.contains("\"action\":\"spawn\""))
        .collect();
    assert!(!warns.is_empty(), "spawn failures reach WARN");
    assert!(
        warns[0].contains("\"reason\":\"spawn_failed\""),
        "{}",
        warns[0]
    );
    assert!(
        warns.len() <= 6,
        "no flood: {} lines for {} failures",
        warns.len(),
        30
    );
    assert!(
        warns.iter().any(|l| l.contains("more time")),
        "a count of the rest: {warns:#?}"
    );
    let status: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("\"message\":\"status\""))
        .collect();
    assert!(status.len() >= 2, "status lines every 2s");
    assert!(
        status.iter().any(|l| l.contains("spawn/spawn_failed=")),
        "failures by reason in the status line: {status:#?}"
    );
    assert!(status[0].contains("\"target\":5"), "{}", status[0]);
    drop(hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_ends_with_the_one_shots_table_and_a_report() {
    let (_hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("soak.json");
    let url = server.api_url();
    let out = hubsoak(
        &[
            "soak",
            "--metrics-listen",
            "127.0.0.1:0",
            "--duration",
            "6s",
            "--status-interval",
            "2s",
            "--target",
            "3",
            "--report-json",
            report.to_str().unwrap(),
        ],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
            ("HUBSOAK__ACTIVITY__INTERVAL", "1s"),
            ("HUBSOAK__PING__INTERVAL", "200ms"),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains(" status running="), "{}", out.stderr);
    assert!(
        out.stdout.contains("hubsoak soak against"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("spawn "), "{}", out.stdout);
    assert!(out.stdout.contains("result: ok"), "{}", out.stdout);
    let r = read_report(&report);
    assert_eq!(r["command"], "soak");
    assert_eq!(successes(&r, "spawn"), 3);
    assert!(successes(&r, "activity") > 0);
    // Two soak reports compare.
    let diff = hubsoak(
        &[
            "report",
            "diff",
            report.to_str().unwrap(),
            report.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(diff.code, 0, "{}", diff.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_warns_of_settings_that_cannot_reach_their_target() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("big.toml");
    std::fs::write(
        &cfg,
        "[hub]\nendpoint = \"http://127.0.0.1:9/hub/api\"\ntoken = \"t\"\n\
         [population]\ntarget = 1000\nspawn_rate = 30\nsession_min = \"1m\"\nsession_max = \"3m\"\n\
         spawn_timeout = \"5m\"\nmax_spawns_in_flight = 2\n",
    )
    .unwrap();
    let out = hubsoak(&["validate", "--config", cfg.to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning:"))
        .collect();
    assert_eq!(warnings.len(), 3, "{}", out.stderr);
    assert!(warnings[0].contains("population.spawn_rate") && warnings[0].contains("500.0/min"));
    assert!(warnings[1].contains("population.session_min"));
    assert!(warnings[2].contains("population.max_spawns_in_flight"));
    // The defaults draw no warning.
    let out = hubsoak(
        &["validate"],
        &[
            ("JUPYTERHUB_ENDPOINT", "http://127.0.0.1:9/hub/api"),
            ("JUPYTERHUB_API_TOKEN", "t"),
        ],
    )
    .await;
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[allow(dead_code)]
fn _uses(_: &MockHub) {}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_is_no_hub_is_not_a_hub() {
    let url = html_server().await;
    let mut p = start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await;
    until(&p, Duration::from_secs(10), "not_a_hub", |m| {
        m.get("hubsoak_problem{problem=\"not_a_hub\"}") == 1.0
    })
    .await;
    let (status, body) = p.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("an HTML page"), "{body}");
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(20)).await, Some(1));
    let out = hubsoak(
        &["stress-test", "-c", "2"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("does not answer as a JupyterHub API"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holders_lease_expires_and_is_taken_over() {
    let (_hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, TOKEN);
    let short = [
        ("HUBSOAK__USERS__LEASE_TTL", "5s"),
        ("HUBSOAK__POPULATION__TARGET", "2"),
    ];
    let mut first = soak_with_file(&server, file.to_str().unwrap(), &short).await;
    first.until_running(2, Duration::from_secs(15)).await;
    let second = soak_with_file(&server, file.to_str().unwrap(), &short).await;
    second
        .until_value(PROBLEM_HELD, 1.0, Duration::from_secs(10))
        .await;
    // Killed: no release. The lease lapses after 5 s and the second takes over.
    first.child.kill().await.unwrap();
    until(&second, Duration::from_secs(20), "took over", |m| {
        m.get(PROBLEM_HELD) == 0.0 && m.get(RUNNING) == 2.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shots_warn_of_failures_and_show_each_request_at_v() {
    let (hub, server) = start_mock(fast()).await;
    let out = against(&server, &["-v", "stress-test", "-c", "1"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("request ok") && out.stderr.contains("operation=start_server"),
        "{}",
        out.stderr
    );
    // Every activity post fails: WARN lines with action and reason, and a count.
    hub.set_faults(hubsoak::mockhub::Faults {
        server_error_rate: 1.0,
        only_paths_containing: Some("/activity".into()),
        ..Default::default()
    });
    let out = against(&server, &["activity-stress-test", "--count", "20"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    let warns: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("action=\"activity\""))
        .collect();
    assert!(!warns.is_empty(), "{}", out.stderr);
    assert!(warns[0].contains("reason=\"server_error\""), "{}", warns[0]);
    assert!(warns.len() <= 2, "a count, not a flood: {warns:#?}");
    assert!(
        warns.iter().any(|l| l.contains("19 more times")),
        "{warns:#?}"
    );
}
