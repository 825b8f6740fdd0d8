//! Journeys (kernel start, execute over the websocket, kernel stop; form login) against
//! the simulator: `simulate` as the binary, and a soak with journeys. Whatever fails, no
//! server and no kernel may be left behind.

mod common;

use std::time::Duration;

use common::soak::{start_soak, until, Metrics, SoakProcess};
use common::*;
use hubsoak::mockhub::{Faults, MockConfig, MockHub};

/// A simulate run that is over in a few seconds.
const QUICK: [&str; 8] = [
    "--session-min",
    "1s",
    "--session-max",
    "2s",
    "--start-delay-max",
    "500ms",
    "--think-time",
    "200ms",
];

fn simulate<'a>(users: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["simulate", users];
    args.extend(QUICK);
    args.extend(extra);
    args
}

/// The fast simulator whose kernels take execute requests and never answer.
fn silent_kernels() -> MockConfig {
    MockConfig {
        faults: Faults {
            kernel_silent: true,
            ..Faults::default()
        },
        ..fast()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_users_complete_their_journeys() {
    let (hub, server) = start_mock(fast()).await;
    let (out, r) = against_reporting(&server, &simulate("3", &[])).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "journey"), 3, "{}", out.stdout);
    for step in ["spawn", "kernel_start", "kernel_stop", "stop"] {
        assert_eq!(successes(&r, step), 3, "{step}: {}", out.stdout);
        assert_eq!(r["latency"][step]["count"], 3, "{step}");
    }
    // At least one execution each, each one checked against the expected "20".
    assert!(successes(&r, "execute") >= 3, "{}", out.stdout);
    assert_eq!(failures(&r, "execute"), 0);
    assert_eq!(hub.kernel_counts().0, 3, "one kernel per user");
    assert!(out.stdout.contains("kernel_start") && out.stdout.contains("p99"));
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kernel_that_never_answers_is_an_execute_timeout_and_the_server_is_stopped() {
    let (hub, server) = start_mock(silent_kernels()).await;
    let (out, r) = against_reporting(&server, &simulate("2", &["--step-timeout", "1s"])).await;
    assert_eq!(
        out.code,
        1,
        "a failed journey is a failed run: {}",
        out.all()
    );
    assert_eq!(
        r["outcomes"]["execute"]["failures"]["timeout"], 2,
        "{}",
        out.stdout
    );
    assert_eq!(r["outcomes"]["journey"]["failures"]["run-code"], 2);
    assert_eq!(
        successes(&r, "kernel_stop"),
        2,
        "the kernel is stopped after a failure"
    );
    assert_eq!(successes(&r, "stop"), 2, "and so is the server");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kernel_start_answering_500_is_counted_and_the_server_is_stopped() {
    let (hub, server) = start_mock(MockConfig {
        faults: Faults {
            kernel_start_status: Some(500),
            ..Faults::default()
        },
        ..fast()
    })
    .await;
    let (out, r) = against_reporting(&server, &simulate("2", &[])).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        r["outcomes"]["kernel_start"]["failures"]["http_5xx"], 2,
        "{}",
        out.stdout
    );
    assert_eq!(r["outcomes"]["journey"]["failures"]["start-kernel"], 2);
    assert_eq!(successes(&r, "execute"), 0);
    assert_eq!(successes(&r, "stop"), 2, "no leaked server");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_output_is_a_failed_run_code() {
    let (hub, server) = start_mock(fast()).await;
    let (out, r) = against_reporting(&server, &simulate("1", &["--expect", "21"])).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(r["outcomes"]["execute"]["failures"]["unexpected_output"], 1);
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn form_login_then_the_servers_own_xsrf() {
    let (hub, server) = start_mock(fast()).await;
    let (out, r) = against_reporting(&server, &simulate("2", &["--auth", "form"])).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "login"), 2, "{}", out.stdout);
    assert_eq!(successes(&r, "journey"), 2);
    assert!(successes(&r, "execute") >= 2);
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_tokens_are_made_per_user_and_revoked() {
    let (hub, server) = start_mock(fast()).await;
    let (out, r) = against_reporting(&server, &simulate("2", &["--auth", "user-token"])).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        successes(&r, "login"),
        2,
        "a token made per user: {}",
        out.stdout
    );
    assert_eq!(successes(&r, "journey"), 2);
    assert_eq!(hub.user_token_count(), 0, "every user token revoked");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_starts_no_server() {
    let (hub, server) = start_mock(MockConfig {
        login_password: Some("the-right-one".into()),
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a-wrong-one\n").unwrap();
    let pw = pw.to_str().unwrap();
    let (out, r) = against_reporting(
        &server,
        &simulate("2", &["--auth", "form", "--password-file", pw]),
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(
        r["outcomes"]["login"]["failures"]["login_rejected"], 2,
        "{}",
        out.stdout
    );
    assert_eq!(r["outcomes"]["journey"]["failures"]["login"], 2);
    assert_eq!(hub.stats().spawns_started, 0);
    assert!(!out.all().contains("a-wrong-one"), "the password leaked");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn named_servers_run_journeys() {
    let (hub, server) = start_mock(MockConfig {
        allow_named_servers: true,
        ..fast()
    })
    .await;
    let (out, r) = against_reporting(&server, &simulate("2", &["--server-name", "lab2"])).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "journey"), 2, "{}", out.stdout);
    assert_eq!(r["parameters"]["server_name"], "lab2");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_journey_flags_are_one_line_errors() {
    let (_hub, server) = start_mock(fast()).await;
    let out = against(
        &server,
        &["simulate", "3", "--auth", "oauth", "--step-timeout", "0s"],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("--auth") && out.stderr.contains("--step-timeout"),
        "{}",
        out.stderr
    );
}

/// A soak with journeys on the simulator: 3 users, short sessions, short steps.
async fn journey_soak(server: &hubsoak::mockhub::MockServer) -> SoakProcess {
    let url = server.api_url();
    start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__POPULATION__TARGET", "3"),
            ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "1s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "2s"),
            ("HUBSOAK__POPULATION__BACKOFF_MIN", "200ms"),
            ("HUBSOAK__POPULATION__BACKOFF_MAX", "1s"),
            ("HUBSOAK__JOURNEY__ENABLED", "true"),
            ("HUBSOAK__JOURNEY__THINK_TIME", "200ms"),
            ("HUBSOAK__JOURNEY__STEP_TIMEOUT", "1s"),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
            ("HUBSOAK__SHUTDOWN__GRACE", "10s"),
        ],
    )
    .await
}

fn step(m: &Metrics, name: &str, step: &str) -> f64 {
    m.get(&format!("{name}{{step=\"{step}\"}}"))
}

const STEP_COUNT: &str = "hubsoak_journey_step_duration_seconds_count";
const STEP_FAILURES: &str = "hubsoak_journey_failures_total";

/// SIGTERM, the exit, and nothing of ours left (on_exit = purge).
async fn stop_and_check(mut soak: SoakProcess, hub: &MockHub) {
    soak.signal("TERM");
    assert_eq!(soak.exit_within(Duration::from_secs(30)).await, Some(0));
    nothing_left(hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_with_journeys_runs_code_and_churns() {
    let (hub, server) = start_mock(fast()).await;
    let soak = journey_soak(&server).await;
    let m = until(&soak, Duration::from_secs(30), "journeys complete", |m| {
        step(m, STEP_COUNT, "kernel_stop") >= 4.0 && step(m, STEP_COUNT, "stop") >= 4.0
    })
    .await;
    assert!(step(&m, STEP_COUNT, "kernel_start") >= 4.0);
    assert!(step(&m, STEP_COUNT, "execute") >= 4.0);
    assert!(step(&m, STEP_COUNT, "spawn") >= 4.0);
    assert_eq!(step(&m, STEP_FAILURES, "execute"), 0.0);
    assert_eq!(step(&m, STEP_FAILURES, "kernel_start"), 0.0);
    assert!(hub.kernel_counts().0 >= 4);
    stop_and_check(soak, &hub).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_whose_kernels_hang_counts_timeouts_and_stops_the_servers() {
    let (hub, server) = start_mock(silent_kernels()).await;
    let soak = journey_soak(&server).await;
    let m = until(
        &soak,
        Duration::from_secs(30),
        "execute timeouts counted",
        |m| step(m, STEP_FAILURES, "execute") >= 3.0 && step(m, STEP_COUNT, "stop") >= 3.0,
    )
    .await;
    // Each hung session ended early: its kernel deleted, its server stopped.
    assert!(step(&m, STEP_COUNT, "kernel_stop") >= 3.0);
    assert_eq!(step(&m, STEP_COUNT, "execute"), 0.0);
    assert!(hub.stop_count("success") >= 3);
    stop_and_check(soak, &hub).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retired_by_a_falling_target_a_journey_stops_its_kernel_then_its_server() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stages.toml");
    std::fs::write(
        &config,
        "[population]\nspawn_rate = 3000\nsession_min = \"60s\"\nsession_max = \"60s\"\n\
         stages = [{ duration = \"1s\", target = 4 }, { duration = \"3s\", target = 4 },\n\
         { duration = \"1s\", target = 1 }, { duration = \"60s\", target = 1 }]\n\
         [journey]\nenabled = true\nthink_time = \"200ms\"\n",
    )
    .unwrap();
    let url = server.api_url();
    let soak = start_soak(
        &["--config", config.to_str().unwrap()],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await;
    // Running drops as each stop is asked; the stop step counts when it is done.
    let m = until(&soak, Duration::from_secs(20), "down to 1 after 4", |m| {
        step(m, STEP_COUNT, "kernel_stop") >= 3.0
            && step(m, STEP_COUNT, "stop") >= 3.0
            && m.get("hubsoak_servers{state=\"running\"}") == 1.0
            && m.get("hubsoak_population_target") == 1.0
    })
    .await;
    // The three retired sessions ended cleanly: kernels deleted, servers stopped.
    assert_eq!(step(&m, STEP_FAILURES, "execute"), 0.0, "{}", m.text);
    assert_eq!(step(&m, STEP_FAILURES, "kernel_stop"), 0.0, "{}", m.text);
    let (started, deleted) = hub.kernel_counts();
    assert_eq!(
        started - deleted,
        1,
        "only the remaining user's kernel is open"
    );
    assert_eq!(hub.server_counts().1, 1);
}
