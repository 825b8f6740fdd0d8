//! End to end on a real JupyterHub — 5.5.4 and 6.1.1 — started by the harness on loopback.
//! Every test seeds 30 users that are not ours (some running) and checks at its end that
//! they and their servers are untouched.

mod common;

use std::time::{Duration, Instant};

use common::contract::Contract;
use common::realhub::{soak_on, HubOptions, RealHub, Spawner};
use common::soak::{start_soak, until, RUNNING};
use common::*;

on_both_hubs!(
    contract,
    stress_test_50_cheap,
    stress_test_3_real_servers,
    activity_100_users,
    throttled_by_concurrent_spawn_limit,
    purge_250,
    soak_two_minutes,
    soak_survives_a_killed_hub,
    shards_3_replicas,
    stress_test_cycles_with_thresholds,
    soak_follows_its_stages,
    journeys_token_3_users,
    journeys_form_login_on_named_servers,
    journeys_with_user_tokens,
    journeys_shared_password_login,
    soak_with_journeys,
);

async fn hubsoak_on(hub: &RealHub, args: &[&str]) -> Out {
    let url = hub.api_url();
    hubsoak(
        args,
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
        ],
    )
    .await
}

async fn hubsoak_reporting_on(hub: &RealHub, args: &[&str]) -> (Out, serde_json::Value) {
    let url = hub.api_url();
    hubsoak_reporting(
        args,
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
        ],
    )
    .await
}

async fn contract(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("contract").await;
    let c = Contract::new(&hub.api_url(), &hub.admin_token, "pact-");
    c.users_and_activity().await;
    c.server_lifecycle().await;
    c.errors_groups_and_scopes(&hub.token, &format!("{}-no-groups", hub.token))
        .await;
    c.health_metrics_and_user_tokens(&hub.token).await;
    others.assert_untouched(&hub).await;
}

/// hubsoak's successful spawns equal the increase of the hub's own count.
async fn stress_and_reconcile(hub: &RealHub, args: &[&str], count: f64, running_every: usize) {
    let others = hub.seed_others_running("hubsoak", running_every).await;
    let (spawns_before, _) = hub.truth().await;
    let (out, r) = hubsoak_reporting_on(hub, args).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "spawn") as f64, count, "{}", out.stdout);
    let (spawns_after, _) = hub.truth().await;
    assert_eq!(
        spawns_after - spawns_before,
        count,
        "the hub's own count of successful spawns"
    );
    assert_eq!(r["hub_version"], hub.version.as_str());
    assert!(hub.ours("hubsoak").await.is_empty(), "no user of ours left");
    others.assert_untouched(hub).await;
}

async fn stress_test_50_cheap(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    stress_and_reconcile(&hub, &["stress-test", "-c", "50", "-b", "10"], 50.0, 3).await;
}

/// `--cycles 2:4:6` with a threshold: three rounds, the hub counting all 12 spawns, and
/// the report gating on each round.
async fn stress_test_cycles_with_thresholds(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    stress_and_reconcile(
        &hub,
        &[
            "stress-test",
            "--cycles",
            "2:4:6",
            "--threshold",
            "spawn_p95<30s",
            "--threshold",
            "failure_ratio<=0",
        ],
        12.0,
        3,
    )
    .await;
    let (out, r) = hubsoak_reporting_on(
        &hub,
        &[
            "stress-test",
            "--cycles",
            "1:2",
            "--threshold",
            "spawn_ok>=2",
        ],
    )
    .await;
    assert_eq!(out.code, 3, "the first round has one spawn: {}", out.all());
    let rounds: Vec<u64> = r["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| successes(c, "spawn"))
        .collect();
    assert_eq!(rounds, [1, 2]);
}

/// Stages on a real hub: the soak climbs to 4 running servers, then comes down to 1; the
/// hub agrees.
async fn soak_follows_its_stages(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stages.toml");
    std::fs::write(
        &config,
        "[population]\narrivals = \"poisson\"\nsession_min = \"10m\"\nsession_max = \"10m\"\n\
         stages = [{ duration = \"2s\", target = 4 }, { duration = \"8s\", target = 4 },\n\
         { duration = \"1s\", target = 1 }, { duration = \"10m\", target = 1 }]\n",
    )
    .unwrap();
    let url = hub.api_url();
    let mut p = start_soak(
        &["--config", config.to_str().unwrap()],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
            ("HUBSOAK__USERS__PREFIX", "stage"),
            ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
        ],
    )
    .await;
    p.until_running(4, Duration::from_secs(30)).await;
    let running = |users: Vec<(String, bool)>| {
        users
            .into_iter()
            .filter(|(n, ready)| n.starts_with("stage-") && *ready)
            .count()
    };
    assert_eq!(running(hub.users().await), 4, "the hub runs the 4");
    until(&p, Duration::from_secs(30), "down to 1", |m| {
        m.get(RUNNING) == 1.0 && m.get("hubsoak_population_target") == 1.0
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(hub.users().await) != 1 {
        assert!(Instant::now() < deadline, "the hub still runs more than 1");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        hub.ours("stage").await.len(),
        4,
        "users kept for the next climb"
    );
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(30)).await, Some(0));
    assert!(hub.ours("stage").await.is_empty(), "purged");
}

async fn stress_test_3_real_servers(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: Spawner::Local,
        ..HubOptions::cheap(major)
    })
    .await;
    // Two real servers that are not ours run beside ours.
    stress_and_reconcile(&hub, &["stress-test", "-c", "3", "-b", "3"], 3.0, 15).await;
}

async fn activity_100_users(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("hubsoak").await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let (out, r) = hubsoak_reporting_on(
        &hub,
        &[
            "activity-stress-test",
            "--count",
            "100",
            "--workers",
            "10",
            "--keep",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "activity"), 100, "every post answered 200");
    assert_eq!(failures(&r, "activity"), 0);
    assert!(successes(&r, "ping") >= 1);
    let ours = hub.ours("hubsoak").await;
    assert_eq!(ours.len(), 100);
    for name in ours.iter().take(10) {
        let u = hub
            .admin
            .authed(reqwest::Method::GET, &format!("/users/{name}"), None)
            .await
            .json();
        let last: chrono::DateTime<chrono::Utc> = u["last_activity"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no last_activity: {u}"));
        assert!(last >= started, "{name}: last_activity {last} did not move");
    }
    let out = hubsoak_on(&hub, &["purge", "-b", "20"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(hub.ours("hubsoak").await.is_empty());
    others.assert_untouched(&hub).await;
}

async fn throttled_by_concurrent_spawn_limit(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: Spawner::Cheap { delay: 1.5 },
        concurrent_spawn_limit: Some(2),
        ..HubOptions::cheap(major)
    })
    .await;
    // Each seeded start takes the spawner's 1.5 s: three running others.
    let others = hub.seed_others_running("hubsoak", 10).await;
    let (out, r) = hubsoak_reporting_on(&hub, &["stress-test", "-c", "6", "-b", "6"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "spawn"), 6, "all eventually ready");
    let throttled = r["requests"]["start_server"]["failures"]["throttled"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        throttled >= 4,
        "429s with Retry-After counted as throttled: {}",
        out.stdout
    );
    assert_eq!(
        r["requests"]["start_server"]["retries"].as_u64(),
        Some(throttled)
    );
    assert!(hub.ours("hubsoak").await.is_empty());
    others.assert_untouched(&hub).await;
}

async fn purge_250(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("hubsoak").await;
    let ours: Vec<String> = (1..=250).map(|i| format!("hubsoak-{i}")).collect();
    hub.seed(&ours, 10).await;
    assert_eq!(hub.ours("hubsoak").await.len(), 250);
    let out = hubsoak_on(&hub, &["purge", "-b", "25"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(hub.ours("hubsoak").await.is_empty(), "every page purged");
    others.assert_untouched(&hub).await;
}

async fn soak_two_minutes(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("soak").await;
    let (spawns0, stops0) = hub.truth().await;
    let started = Instant::now();
    let mut p = soak_on(
        &hub,
        &[
            ("HUBSOAK__POPULATION__TARGET", "20"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "5s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "15s"),
        ],
    )
    .await;
    p.until_running(20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(110).saturating_sub(started.elapsed())).await;
    // Reconcile at a moment when nothing is in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = p.metrics().await;
        let (spawns, stops) = hub.truth().await;
        let ours = (
            m.get("hubsoak_spawn_duration_seconds_count{status=\"success\"}"),
            m.get("hubsoak_stop_duration_seconds_count{status=\"success\"}"),
        );
        if ours == (spawns - spawns0, stops - stops0) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "ours {ours:?} vs the hub's {:?}",
            (spawns - spawns0, stops - stops0)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        m.get("hubsoak_spawn_duration_seconds_count{status=\"success\"}") >= 40.0,
        "churn"
    );
    assert!(
        m.get("hubsoak_stop_duration_seconds_count{status=\"success\"}") >= 20.0,
        "churn"
    );
    assert_eq!(m.get("hubsoak_hub_up"), 1.0);
    assert!(m.text.contains(&format!(
        "hubsoak_hub_info{{version=\"{}\"}} 1",
        hub.version
    )));
    assert!(m.get("hubsoak_requests_total{operation=\"activity\"}") > 0.0);
    assert_eq!(
        m.sum(
            "hubsoak_request_failures_total",
            &["operation=\"activity\""]
        ),
        0.0
    );
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(40)).await, Some(0));
    assert!(hub.ours("soak").await.is_empty(), "purged on exit");
    others.assert_untouched(&hub).await;
}

async fn soak_survives_a_killed_hub(major: u8) {
    let mut hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("soak").await;
    let mut p = soak_on(
        &hub,
        &[
            ("HUBSOAK__POPULATION__TARGET", "10"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "10s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "20s"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(60), "10 running, hub up", |m| {
        m.get(RUNNING) == 10.0 && m.get("hubsoak_hub_up") == 1.0
    })
    .await;
    hub.kill().await;
    p.until_value("hubsoak_hub_up", 0.0, Duration::from_secs(20))
        .await;
    assert_eq!(p.get("/livez").await.0, 200, "alive while the hub is dead");
    tokio::time::sleep(Duration::from_secs(3)).await;
    hub.restart().await;
    let m = until(
        &p,
        Duration::from_secs(90),
        "hub_up 1 and 10 running",
        |m| m.get("hubsoak_hub_up") == 1.0 && m.get(RUNNING) == 10.0,
    )
    .await;
    assert!(m.get("hubsoak_ping_failures_total{target=\"health\"}") > 0.0);
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(40)).await, Some(0));
    assert!(hub.ours("soak").await.is_empty(), "purged on exit");
    others.assert_untouched(&hub).await;
}

/// Three soak replicas on one hub (users.shards = 3): 3 users each, no collision, the
/// totals add up on the hub; purging shard 1 leaves shards 0 and 2 and everyone else.
async fn shards_3_replicas(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("soak").await;
    let mut replicas = Vec::new();
    for shard in ["0", "1", "2"] {
        replicas.push(
            soak_on(
                &hub,
                &[
                    ("HUBSOAK__USERS__SHARDS", "3"),
                    ("HUBSOAK_SHARD", shard),
                    ("HUBSOAK__POPULATION__TARGET", "3"),
                    ("HUBSOAK__POPULATION__SESSION_MIN", "10m"),
                    ("HUBSOAK__POPULATION__SESSION_MAX", "10m"),
                    ("HUBSOAK__SHUTDOWN__ON_EXIT", "leave"),
                ],
            )
            .await,
        );
    }
    for r in &replicas {
        until(
            r,
            Duration::from_secs(60),
            "3 running in each replica",
            |m| m.get(RUNNING) == 3.0,
        )
        .await;
    }
    let shard_users = |k: u32| (1..=3).map(move |n| format!("soak-{k}-{n}"));
    let want: Vec<String> = (0..3).flat_map(shard_users).collect();
    let mut running: Vec<String> = hub
        .users()
        .await
        .into_iter()
        .filter(|(n, ready)| n.starts_with("soak-") && *ready)
        .map(|(n, _)| n)
        .collect();
    running.sort();
    assert_eq!(
        running, want,
        "9 servers running on the hub, 3 per shard, none shared"
    );
    let mut replica_1 = replicas.remove(1);
    replica_1.signal("TERM");
    assert_eq!(
        replica_1.exit_within(Duration::from_secs(30)).await,
        Some(0)
    );
    let out = hubsoak_on(
        &hub,
        &["--prefix", "soak", "--shards", "3", "--shard", "1", "purge"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let mut ours = hub.ours("soak").await;
    ours.sort();
    let kept: Vec<String> = [0, 2].into_iter().flat_map(shard_users).collect();
    assert_eq!(ours, kept, "only shard 1 was purged");
    for mut r in replicas {
        r.signal("TERM");
        assert_eq!(r.exit_within(Duration::from_secs(30)).await, Some(0));
    }
    others.assert_untouched(&hub).await;
}

/// A real hub with real jupyterhub-singleuser servers and ipykernel kernels.
async fn real_servers(major: u8, named_servers: bool) -> RealHub {
    RealHub::start(HubOptions {
        spawner: Spawner::Local,
        named_servers,
        ..HubOptions::cheap(major)
    })
    .await
}

/// A short `simulate`: everyone arrives within 1 s and runs code for 3 s.
const SHORT_VISIT: [&str; 8] = [
    "--session-min",
    "3s",
    "--session-max",
    "3s",
    "--start-delay-max",
    "1s",
    "--think-time",
    "1s",
];

async fn journeys_token_3_users(major: u8) {
    let hub = real_servers(major, false).await;
    let others = hub.seed_others_running("hubsoak", 15).await;
    let (spawns_before, stops_before) = hub.truth().await;
    let mut args = vec!["simulate", "3", "--code", "5 * 4", "--expect", "20"];
    args.extend(SHORT_VISIT);
    let (out, r) = hubsoak_reporting_on(&hub, &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(successes(&r, "journey"), 3, "{}", out.stdout);
    for step in ["spawn", "kernel_start", "kernel_stop", "stop"] {
        assert_eq!(successes(&r, step), 3, "{step}: {}", out.stdout);
    }
    // Every execution read "20" from a real kernel; each user ran it at least once.
    assert!(successes(&r, "execute") >= 3, "{}", out.stdout);
    assert_eq!(failures(&r, "execute"), 0, "{}", out.stdout);
    let (spawns_after, stops_after) = hub.truth().await;
    assert_eq!(
        spawns_after - spawns_before,
        3.0,
        "the hub counted our spawns"
    );
    assert_eq!(
        stops_after - stops_before,
        3.0,
        "and our stops: none left running"
    );
    assert!(
        hub.ours("hubsoak").await.is_empty(),
        "our users are deleted"
    );
    others.assert_untouched(&hub).await;
}

async fn journeys_form_login_on_named_servers(major: u8) {
    let hub = real_servers(major, true).await;
    let mut args = vec![
        "simulate",
        "2",
        "--auth",
        "form",
        "--server-name",
        "lab2",
        "--keep",
    ];
    args.extend(SHORT_VISIT);
    let (out, r) = hubsoak_reporting_on(&hub, &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(
        successes(&r, "login"),
        2,
        "DummyAuthenticator's form: {}",
        out.stdout
    );
    assert_eq!(successes(&r, "journey"), 2, "{}", out.stdout);
    assert!(successes(&r, "execute") >= 2, "{}", out.stdout);
    // --keep keeps the users; their named servers were stopped all the same.
    let ours = hub.ours("hubsoak").await;
    assert_eq!(ours.len(), 2, "{ours:?}");
    for name in &ours {
        let servers = hub.servers_of(name).await;
        assert_eq!(servers, serde_json::json!({}), "{name} still has {servers}");
    }
}

/// SharedPasswordAuthenticator: the wrong password is refused before any spawn; the right
/// one logs in and runs code.
async fn journeys_shared_password_login(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: Spawner::Local,
        shared_password: Some("correct-horse-battery"),
        ..HubOptions::cheap(major)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::write(&good, "correct-horse-battery\n").unwrap();
    std::fs::write(&bad, "wrong-horse-battery\n").unwrap();
    let (spawns_before, _) = hub.truth().await;
    let mut args = vec![
        "simulate",
        "1",
        "--auth",
        "form",
        "--password-file",
        bad.to_str().unwrap(),
    ];
    args.extend(SHORT_VISIT);
    let (out, r) = hubsoak_reporting_on(&hub, &args).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        r["outcomes"]["login"]["failures"]["login_rejected"], 1,
        "{}",
        out.stdout
    );
    assert_eq!(
        hub.truth().await.0,
        spawns_before,
        "no spawn after a refused login"
    );
    assert!(
        !out.all().contains("wrong-horse-battery"),
        "the password leaked"
    );
    let mut args = vec![
        "simulate",
        "1",
        "--auth",
        "form",
        "--password-file",
        good.to_str().unwrap(),
    ];
    args.extend(SHORT_VISIT);
    let (out, r) = hubsoak_reporting_on(&hub, &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(successes(&r, "login"), 1);
    assert_eq!(successes(&r, "journey"), 1, "{}", out.stdout);
}

async fn journeys_with_user_tokens(major: u8) {
    let hub = real_servers(major, false).await;
    let mut args = vec!["simulate", "2", "--auth", "user-token", "--keep"];
    args.extend(SHORT_VISIT);
    let (out, r) = hubsoak_reporting_on(&hub, &args).await;
    assert_eq!(out.code, 0, "{}\n{}", out.all(), hub.log_tail());
    assert_eq!(
        successes(&r, "login"),
        2,
        "a token made for each user: {}",
        out.stdout
    );
    assert_eq!(successes(&r, "journey"), 2, "{}", out.stdout);
    for name in hub.ours("hubsoak").await {
        let answer = hub
            .admin
            .authed(reqwest::Method::GET, &format!("/users/{name}/tokens"), None)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.json()["api_tokens"],
            serde_json::json!([]),
            "{name}'s journey token was revoked"
        );
        assert_eq!(hub.servers_of(&name).await, serde_json::json!({}));
    }
}

async fn soak_with_journeys(major: u8) {
    let hub = real_servers(major, false).await;
    let url = hub.api_url();
    let mut soak = start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
            ("HUBSOAK__USERS__PREFIX", "soakj"),
            ("HUBSOAK__POPULATION__TARGET", "2"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "4s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "4s"),
            ("HUBSOAK__JOURNEY__ENABLED", "true"),
            ("HUBSOAK__JOURNEY__THINK_TIME", "1s"),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
            ("HUBSOAK__SHUTDOWN__GRACE", "60s"),
        ],
    )
    .await;
    let count = |m: &common::soak::Metrics, name: &str, step: &str| {
        m.get(&format!("{name}{{step=\"{step}\"}}"))
    };
    // Both users finish a session (kernel stopped, server stopped) and spawn again.
    let m = until(&soak, Duration::from_secs(120), "two whole journeys", |m| {
        count(m, "hubsoak_journey_step_duration_seconds_count", "stop") >= 2.0
    })
    .await;
    assert!(count(&m, "hubsoak_journey_step_duration_seconds_count", "execute") >= 2.0);
    assert!(
        count(
            &m,
            "hubsoak_journey_step_duration_seconds_count",
            "kernel_stop"
        ) >= 2.0
    );
    for step in ["kernel_start", "execute", "kernel_stop"] {
        assert_eq!(
            count(&m, "hubsoak_journey_failures_total", step),
            0.0,
            "{step} failed:\n{}",
            m.text
        );
    }
    soak.signal("TERM");
    assert_eq!(soak.exit_within(Duration::from_secs(90)).await, Some(0));
    assert!(hub.ours("soakj").await.is_empty(), "purged");
    assert!(
        hub.users().await.iter().all(|(_, ready)| !ready),
        "no server left running"
    );
}
