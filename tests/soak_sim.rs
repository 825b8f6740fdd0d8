//! `hubsoak soak` as a process against the simulator: convergence, churn, ground truth,
//! adoption after a restart, a hub outage, shutdown policies, /metrics, validate.

mod common;

use std::time::{Duration, Instant};

use common::soak::{start_soak, until, Metrics, SoakProcess, RUNNING};
use common::*;
use hubsoak::mockhub::{MockConfig, MockHub, MockServer, Phase};

/// A soak environment: fast timings, prefix `soak`, plus `extra` (which wins).
fn env(server: &MockServer, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("JUPYTERHUB_ENDPOINT", server.api_url().as_str()),
        ("JUPYTERHUB_API_TOKEN", TOKEN),
        ("HUBSOAK__USERS__PREFIX", "soak"),
        ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
        ("HUBSOAK__POPULATION__BACKOFF_MIN", "200ms"),
        ("HUBSOAK__POPULATION__BACKOFF_MAX", "1s"),
        ("HUBSOAK__POPULATION__SESSION_MIN", "60s"),
        ("HUBSOAK__POPULATION__SESSION_MAX", "60s"),
        ("HUBSOAK__ACTIVITY__INTERVAL", "500ms"),
        ("HUBSOAK__PING__INTERVAL", "200ms"),
        ("HUBSOAK__SHUTDOWN__GRACE", "5s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

async fn soak(server: &MockServer, extra: &[(&str, &str)]) -> SoakProcess {
    let vars = env(server, extra);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    start_soak(&[], &pairs).await
}

fn ours(hub: &MockHub) -> Vec<String> {
    hub.user_names()
        .into_iter()
        .filter(|n| n.starts_with("soak-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn converges_churns_at_the_configured_rate_and_matches_the_hubs_counts() {
    let (hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(300),
        stop_delay: Duration::from_millis(100),
        // Slower than this: 202 and the progress stream.
        slow_spawn_timeout: Duration::from_millis(100),
        ..fast()
    })
    .await;
    let mut p = soak(
        &server,
        &[
            ("HUBSOAK__POPULATION__TARGET", "6"),
            ("HUBSOAK__POPULATION__MAX_SPAWNS_IN_FLIGHT", "6"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "1s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "2s"),
        ],
    )
    .await;
    p.until_running(6, Duration::from_secs(10)).await;

    // Churn: each slot cycles through a session (1.5 s on average), a spawn and a stop.
    let stops = |m: &Metrics| m.get("hubsoak_stop_duration_seconds_count{status=\"success\"}");
    let before = stops(&p.metrics().await);
    let window = Duration::from_secs(8);
    tokio::time::sleep(window).await;
    let observed = stops(&p.metrics().await) - before;
    let expected = 6.0 * window.as_secs_f64() / (1.5 + 0.3 + 0.1);
    assert!(
        observed > 0.6 * expected && observed < 1.4 * expected,
        "{observed} stops in {window:?}, expected about {expected:.0}"
    );

    // Ground truth: our counts equal the hub's own, at a moment when nothing is in flight.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = p.metrics().await;
        let ours = (
            m.get("hubsoak_spawn_duration_seconds_count{status=\"success\"}"),
            stops(&m),
        );
        let truth = (
            hub.spawn_count("success", "") as f64,
            hub.stop_count("success") as f64,
        );
        if ours == truth {
            assert!(truth.0 > 10.0, "{truth:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ours {ours:?} never equalled the hub's {truth:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = p.metrics().await;
    assert_eq!(
        m.sum("hubsoak_spawn_duration_seconds_count", &["failure"]),
        0.0
    );
    assert!(m.get("hubsoak_requests_total{operation=\"progress\"}") > 0.0);
    assert!(m.get("hubsoak_requests_total{operation=\"activity\"}") > 0.0);
    assert!(m.get("hubsoak_ping_duration_seconds_count{target=\"user\"}") > 0.0);
    assert_eq!(m.get("hubsoak_population_target"), 6.0);
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_soak_adopts_its_users_without_duplicates_or_orphans() {
    let (hub, server) = start_mock(fast()).await;
    let mut a = soak(&server, &[("HUBSOAK__POPULATION__TARGET", "5")]).await;
    a.until_running(5, Duration::from_secs(10)).await;
    a.signal("TERM");
    assert_eq!(a.exit_within(Duration::from_secs(10)).await, Some(0));
    assert_eq!(hub.stats().spawns_started, 5);
    assert_eq!(hub.server_counts().1, 5, "leave keeps them running");

    // Same target: all five adopted as running, nothing spawned, nothing created.
    let mut b = soak(&server, &[("HUBSOAK__POPULATION__TARGET", "5")]).await;
    b.until_running(5, Duration::from_secs(10)).await;
    assert!(
        b.log_contains("\"adopted\":5"),
        "{:?}",
        b.log.lock().unwrap()
    );
    assert_eq!(hub.stats().spawns_started, 5, "no duplicate spawns");
    assert_eq!(hub.stats().users_created, 5, "no duplicate users");
    b.signal("TERM");
    assert_eq!(b.exit_within(Duration::from_secs(10)).await, Some(0));

    // A smaller target: the surplus users are stopped and deleted, none orphaned.
    let mut c = soak(&server, &[("HUBSOAK__POPULATION__TARGET", "3")]).await;
    c.until_running(3, Duration::from_secs(10)).await;
    assert!(
        wait_for(Duration::from_secs(10), || ours(&hub).len() == 3).await,
        "{:?}",
        ours(&hub)
    );
    assert_eq!(ours(&hub), vec!["soak-1", "soak-2", "soak-3"]);
    assert_eq!(hub.server_counts(), (0, 3, 0));
    assert_eq!(hub.stats().spawns_started, 5);
    c.signal("TERM");
    assert_eq!(c.exit_within(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn rides_through_a_hub_outage_and_recovers() {
    let (hub, server) = start_mock(fast()).await;
    let addr = server.addr;
    let mut p = soak(
        &server,
        &[
            ("HUBSOAK__POPULATION__TARGET", "4"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "1s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "2s"),
            ("HUBSOAK__HUB__REQUEST_TIMEOUT", "1s"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(10), "4 running, hub up", |m| {
        m.get(RUNNING) == 4.0 && m.get("hubsoak_hub_up") == 1.0
    })
    .await;

    server.stop().await;
    let down = Instant::now();
    p.until_value("hubsoak_hub_up", 0.0, Duration::from_secs(5))
        .await;
    assert_eq!(
        p.get("/livez").await.0,
        200,
        "liveness never depends on the hub"
    );
    assert_eq!(p.get("/readyz").await.0, 200);
    // Down for 10 s, then back on the same address with its state.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down.elapsed())).await;
    let server = hub.start(addr).await.expect("rebind the same port");

    let m = until(
        &p,
        Duration::from_secs(30),
        "back at target with hub_up 1",
        |m| m.get(RUNNING) == 4.0 && m.get("hubsoak_hub_up") == 1.0,
    )
    .await;
    assert!(m.get("hubsoak_ping_failures_total{target=\"health\"}") > 0.0);
    assert!(
        m.sum("hubsoak_request_failures_total", &["reason=\"connection\""]) > 0.0,
        "connection failures counted:\n{}",
        m.text
    );
    assert!(
        m.sum(
            "hubsoak_stop_duration_seconds_count",
            &["status=\"failure\""]
        ) + m.sum(
            "hubsoak_spawn_duration_seconds_count",
            &["status=\"failure\""]
        ) > 0.0
    );
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(10)).await, Some(0));
    server.stop().await;
}

/// Users that are not ours, some running: no policy may touch them.
const OTHERS: [&str; 5] = ["alice", "soakers-1", "x-soak-1", "soak", "bob"];

async fn shutdown_with(policy: &str) -> MockHub {
    let (hub, server) = start_mock(MockConfig {
        stop_delay: Duration::from_millis(300),
        ..fast()
    })
    .await;
    for (i, name) in OTHERS.iter().enumerate() {
        hub.add_user(name);
        if i % 2 == 0 {
            hub.seed_running(name, "");
        }
    }
    let mut p = soak(
        &server,
        &[
            ("HUBSOAK__POPULATION__TARGET", "4"),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", policy),
        ],
    )
    .await;
    p.until_running(4, Duration::from_secs(10)).await;
    let signalled = Instant::now();
    p.signal("TERM");
    assert_eq!(
        p.exit_within(Duration::from_secs(7)).await,
        Some(0),
        "{policy}: exit 0 within grace"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{policy}: within the 5 s grace"
    );
    for (i, name) in OTHERS.iter().enumerate() {
        let expect = if i % 2 == 0 {
            Phase::Running
        } else {
            Phase::Stopped
        };
        assert_eq!(hub.phase(name, ""), Some(expect), "{policy} touched {name}");
    }
    hub
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leave_keeps_our_servers_running() {
    let hub = shutdown_with("leave").await;
    assert_eq!(ours(&hub).len(), 4);
    for name in ours(&hub) {
        assert_eq!(hub.phase(&name, ""), Some(Phase::Running), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stop_stops_our_servers_and_keeps_the_users() {
    let hub = shutdown_with("stop").await;
    assert_eq!(ours(&hub).len(), 4);
    for name in ours(&hub) {
        assert_eq!(hub.phase(&name, ""), Some(Phase::Stopped), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_purge_removes_our_users_and_only_ours() {
    let hub = shutdown_with("purge").await;
    assert!(ours(&hub).is_empty(), "{:?}", ours(&hub));
    let mut left = hub.user_names();
    left.sort();
    let mut others: Vec<String> = OTHERS.iter().map(|s| s.to_string()).collect();
    others.sort();
    assert_eq!(left, others);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once() {
    // Stops that hang: the first signal's on_exit cannot finish.
    let (_hub, server) = start_mock(MockConfig {
        stop_delay: Duration::from_secs(60),
        slow_stop_timeout: Duration::from_secs(60),
        ..fast()
    })
    .await;
    let mut p = soak(
        &server,
        &[
            ("HUBSOAK__POPULATION__TARGET", "2"),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "stop"),
            ("HUBSOAK__SHUTDOWN__GRACE", "60s"),
        ],
    )
    .await;
    p.until_running(2, Duration::from_secs(10)).await;
    p.signal("TERM");
    assert!(wait_for(Duration::from_secs(5), || p.log_contains("shutting down")).await);
    assert_eq!(
        p.exit_within(Duration::from_millis(500)).await,
        None,
        "still stopping"
    );
    p.signal("INT");
    assert_eq!(p.exit_within(Duration::from_secs(3)).await, Some(130));
}

/// The catalog of ../shared/DESIGN.md: every series a dashboard may query.
const CATALOG: &[&str] = &[
    "hubsoak_build_info{version=\"",
    "hubsoak_hub_info{version=\"",
    "hubsoak_hub_up ",
    "hubsoak_population_target ",
    "hubsoak_servers{state=\"starting\"}",
    "hubsoak_servers{state=\"running\"}",
    "hubsoak_servers{state=\"stopping\"}",
    "hubsoak_servers{state=\"failed\"}",
    "hubsoak_spawn_duration_seconds_bucket{status=\"success\",le=\"600\"}",
    "hubsoak_spawn_duration_seconds_count{status=\"failure\"}",
    "hubsoak_spawn_duration_seconds_count{status=\"timeout\"}",
    "hubsoak_stop_duration_seconds_count{status=\"success\"}",
    "hubsoak_stop_duration_seconds_count{status=\"failure\"}",
    "hubsoak_stop_duration_seconds_count{status=\"timeout\"}",
    "hubsoak_requests_total{operation=\"create_users\"}",
    "hubsoak_requests_total{operation=\"delete_user\"}",
    "hubsoak_requests_total{operation=\"start_server\"}",
    "hubsoak_requests_total{operation=\"stop_server\"}",
    "hubsoak_requests_total{operation=\"get_user\"}",
    "hubsoak_requests_total{operation=\"list_users\"}",
    "hubsoak_requests_total{operation=\"activity\"}",
    "hubsoak_requests_total{operation=\"progress\"}",
    "hubsoak_request_failures_total{operation=\"start_server\",reason=\"throttled\"}",
    "hubsoak_request_failures_total{operation=\"activity\",reason=\"client_error\"}",
    "hubsoak_request_failures_total{operation=\"get_user\",reason=\"server_error\"}",
    "hubsoak_request_failures_total{operation=\"stop_server\",reason=\"timeout\"}",
    "hubsoak_request_failures_total{operation=\"list_users\",reason=\"connection\"}",
    "hubsoak_request_failures_total{operation=\"progress\",reason=\"invalid_response\"}",
    "hubsoak_request_duration_seconds_count{operation=\"activity\"}",
    "hubsoak_retries_total{operation=\"start_server\"}",
    "hubsoak_ping_duration_seconds_count{target=\"health\"}",
    "hubsoak_ping_duration_seconds_count{target=\"api\"}",
    "hubsoak_ping_duration_seconds_count{target=\"user\"}",
    "hubsoak_schedule_lag_seconds_count{action=\"spawn\"}",
    "hubsoak_schedule_lag_seconds_count{action=\"activity\"}",
    "hubsoak_actions_dropped_total{action=\"activity\"}",
    "hubsoak_actions_dropped_total{action=\"ping\"}",
    "process_resident_memory_bytes ",
];

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_valid_complete_from_the_first_scrape_and_name_no_user() {
    let (hub, server) = start_mock(fast()).await;
    let mut p = soak(&server, &[("HUBSOAK__POPULATION__TARGET", "3")]).await;
    let first = p.get("/metrics").await.1;
    for series in CATALOG {
        assert!(
            first.contains(series),
            "{series} missing from the first scrape:\n{first}"
        );
    }
    let promtool = |text: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool is installed (tests/run-all.sh installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, why) = promtool(&first);
    assert!(ok, "promtool check metrics: {why}");

    let m = p.until_running(3, Duration::from_secs(10)).await;
    let (ok, why) = promtool(&m.text);
    assert!(ok, "promtool check metrics: {why}");
    let users = hub.user_names();
    for line in m.text.lines().filter(|l| !l.starts_with('#')) {
        let labels = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(l, _)| l);
        for pair in labels.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
            let value = pair
                .split_once('=')
                .map(|(_, v)| v.trim_matches('"'))
                .unwrap_or("");
            assert!(
                !users.iter().any(|u| u == value),
                "a user name as a label value: {line}"
            );
            assert!(!value.starts_with("soak-"), "{line}");
        }
    }
    assert!(m.series.len() < 350, "{} series", m.series.len());
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_reports_every_error_naming_its_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ok_env = [
        ("JUPYTERHUB_ENDPOINT", "http://127.0.0.1:9/hub/api"),
        ("JUPYTERHUB_API_TOKEN", "s3cret-tok"),
    ];
    // (the TOML file, the environment, the keys its errors must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "[population]\ntagret = 5\n",
            &ok_env,
            &["population.tagret"],
        ),
        ("[populaton]\ntarget = 5\n", &ok_env, &["populaton.target"]),
        (
            "[population]\ntarget = -5\n",
            &ok_env,
            &["population.target"],
        ),
        (
            "[population]\nsession_min = \"10m\"\nsession_max = \"1m\"\n",
            &ok_env,
            &["population.session_min"],
        ),
        (
            "[population]\nspawn_timeout = \"five minutes\"\n",
            &ok_env,
            &["population.spawn_timeout"],
        ),
        (
            "[hub]\nendpoint = \"ftp://hub/hub/api\"\n",
            &[("JUPYTERHUB_API_TOKEN", "t")],
            &["hub.endpoint"],
        ),
        (
            "",
            &[("JUPYTERHUB_ENDPOINT", "http://h/hub/api")],
            &["hub.token"],
        ),
        (
            "[hub]\ntoken_file = \"/nonexistent/token\"\n",
            &[("JUPYTERHUB_ENDPOINT", "http://h/hub/api")],
            &["hub.token_file"],
        ),
        (
            "[metrics]\nlisten = \"localhost:port\"\n",
            &ok_env,
            &["metrics.listen"],
        ),
        (
            "[shutdown]\non_exit = \"explode\"\n",
            &ok_env,
            &["shutdown.on_exit"],
        ),
        (
            "[population]\narrivals = \"whenever\"\nstages = [{ duration = \"0s\", target = 5 }, { duration = \"1m\", target = -1, ramp = 2 }]\n",
            &ok_env,
            &[
                "population.arrivals",
                "population.stages[0].duration",
                "population.stages[1].target",
                "population.stages[1].ramp",
            ],
        ),
        (
            "[users]\nshards = 3\nshard = \"7\"\n",
            &ok_env,
            &["users.shard"],
        ),
        (
            "[population]\nspawn_rate = 0\n",
            &ok_env,
            &["population.spawn_rate"],
        ),
        (
            "[population]\nmax_spawns_in_flight = 0\n",
            &ok_env,
            &["population.max_spawns_in_flight"],
        ),
        (
            "[population]\nuser_options = \"small\"\n",
            &ok_env,
            &["population.user_options"],
        ),
        ("[ping]\ninterval = \"0s\"\n", &ok_env, &["ping.interval"]),
        ("[population\ntarget = 1\n", &ok_env, &["--config"]),
        (
            "[population]\ntarget = -1\nserver_name = \"Bad Name\"\n[activity]\ninterval = 60\n",
            &ok_env,
            &[
                "population.target",
                "population.server_name",
                "activity.interval",
            ],
        ),
    ];
    for (i, (toml, env, keys)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let out = hubsoak(&["validate", "--config", file.to_str().unwrap()], env).await;
        assert_eq!(out.code, 2, "{toml:?}: {}", out.all());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            keys.len(),
            "{toml:?}: one line per error: {lines:?}"
        );
        for key in *keys {
            assert!(
                lines.iter().any(|l| l.contains(key)),
                "{toml:?}: {key} not named in {lines:?}"
            );
        }
        assert!(!out.all().contains("s3cret-tok"));
    }
    // A good configuration prints the effective settings, token redacted.
    let file = dir.path().join("good.toml");
    std::fs::write(
        &file,
        "[population]\ntarget = 42\n[population.user_options]\nprofile = \"small\"\n",
    )
    .unwrap();
    let out = hubsoak(&["validate", "--config", file.to_str().unwrap()], &ok_env).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("target = 42"), "{}", out.stdout);
    assert!(out.stdout.contains("profile = \"small\""), "{}", out.stdout);
    assert!(out.stdout.contains("[redacted]"));
    assert!(!out.all().contains("s3cret-tok"));
    // Flags override the file and the environment.
    let out = hubsoak(
        &[
            "--prefix",
            "flagged",
            "validate",
            "--config",
            file.to_str().unwrap(),
        ],
        &ok_env,
    )
    .await;
    assert!(
        out.stdout.contains("prefix = \"flagged\""),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_soak_runs_the_named_server_with_its_user_options() {
    let (hub, server) = start_mock(MockConfig {
        allow_named_servers: true,
        ..fast()
    })
    .await;
    let p = soak(
        &server,
        &[
            ("HUBSOAK__POPULATION__TARGET", "3"),
            ("HUBSOAK__POPULATION__SERVER_NAME", "lab2"),
            ("HUBSOAK__POPULATION__USER_OPTIONS__PROFILE", "small"),
        ],
    )
    .await;
    p.until_running(3, Duration::from_secs(20)).await;
    let names: Vec<String> = (1..=3).map(|i| format!("soak-{i}")).collect();
    assert_named_servers(
        &hub,
        &names,
        "lab2",
        serde_json::json!({"profile": "small"}),
    );
}

/// One scrape: seconds since the soak started, the target gauge, servers running.
type Sample = (f64, f64, f64);

#[tokio::test(flavor = "multi_thread")]
async fn the_population_follows_its_stages() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stages.toml");
    // Ramp to 4, hold, spike to 10, hold, down to 2, hold.
    std::fs::write(
        &config,
        "[population]\narrivals = \"poisson\"\nspawn_rate = 3000\nmax_spawns_in_flight = 20\n\
         stages = [{ duration = \"2s\", target = 4 }, { duration = \"4s\", target = 4 },\n\
         { duration = \"1s\", target = 10 }, { duration = \"5s\", target = 10 },\n\
         { duration = \"1s\", target = 2 }, { duration = \"60s\", target = 2 }]\n",
    )
    .unwrap();
    let vars = env(&server, &[]);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = start_soak(&["--config", config.to_str().unwrap()], &pairs).await;
    let started = std::time::Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    while started.elapsed() < Duration::from_secs(17) {
        let m = p.metrics().await;
        samples.push((
            started.elapsed().as_secs_f64(),
            m.get("hubsoak_population_target"),
            m.get(RUNNING),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let targets: Vec<f64> = samples.iter().map(|s| s.1).collect();
    for level in [4.0, 10.0, 2.0] {
        assert!(
            targets.contains(&level),
            "the target reaches {level}: {targets:?}"
        );
    }
    assert!(
        samples.iter().all(|s| s.2 <= 10.0),
        "never above the peak: {samples:?}"
    );
    // Wherever the target has held for 1.5 s, the running servers match it (±1).
    let mut held = 0;
    for (i, &(t, target, running)) in samples.iter().enumerate() {
        let steady = samples[..i]
            .iter()
            .rev()
            .take_while(|s| s.1 == target)
            .last()
            .is_some_and(|first| t - first.0 >= 1.5);
        if steady {
            held += 1;
            assert!(
                (running - target).abs() <= 1.0,
                "at {t:.1}s: {running} running for a target of {target}: {samples:?}"
            );
        }
    }
    assert!(held >= 40, "enough steady samples: {held}");
    // Coming down stops servers and keeps the users for the next climb.
    assert_eq!(hub.server_counts().1, 2);
    assert_eq!(ours(&hub).len(), 10);
}
