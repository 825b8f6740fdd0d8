//! The shipped alert rules do their job end to end: a real Prometheus loads them (every
//! window and `for` scaled from hours to seconds, 1/60, and the 60 s latency objective to
//! 1 s), scrapes a soak against `hubsoak mock-hub`, and when the simulator's spawns are
//! made to fail and slow down through its fault endpoint, the spawn burn-rate alerts go
//! firing; when the faults are lifted, they resolve.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::prometheus::{repo, Prometheus};
use common::soak::start_soak;
use common::TOKEN;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const FAST_ERRORS: &str = "HubsoakSpawnErrorBudgetBurnFast";
const FAST_LATENCY: &str = "HubsoakSpawnLatencyBudgetBurnFast";

/// `hubsoak mock-hub` on a free port; returns it with its API URL (from its stdout).
async fn mock_hub() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubsoak"))
        .args([
            "-t",
            TOKEN,
            "mock-hub",
            "--listen",
            "127.0.0.1:0",
            "--spawn-delay",
            "100ms",
            "--stop-delay",
            "50ms",
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("hubsoak mock-hub starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("export JUPYTERHUB_ENDPOINT=") {
                return url.to_string();
            }
        }
        panic!("mock-hub's stdout ended before its address")
    })
    .await
    .expect("mock-hub prints its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// A duration like `5m`, `1h`, `3d` in seconds.
fn seconds(d: &str) -> Option<u64> {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}

/// The shipped rules with every range window and `for` divided by 60 (an hour becomes a
/// minute) and the spawn latency objective's 60 s bucket moved to 1 s.
fn short_windows(rules: &str) -> String {
    let scale = |d: &str| seconds(d).map(|s| format!("{}s", (s / 60).max(1)));
    let mut out = String::new();
    let mut rest = rules;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(']').unwrap();
        out.push_str(&scale(&rest[..end]).unwrap_or_else(|| rest[..end].to_string()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(d) => format!(
                "{}for: {}",
                &l[..l.len() - l.trim_start().len()],
                scale(d).unwrap()
            ),
            None => l.replace(r#"le="60""#, r#"le="1""#),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets the simulator's faults through its endpoint.
async fn set_faults(api: &str, faults: serde_json::Value) {
    let root = api.trim_end_matches('/').trim_end_matches("/hub/api");
    let r = reqwest::Client::new()
        .put(format!("{root}/hubsoak/faults"))
        .header("Authorization", format!("token {TOKEN}"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn until_alerts(
    prom: &Prometheus,
    limit: Duration,
    what: &str,
    cond: impl Fn(&[(String, String)]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let alerts = prom.alerts().await;
        if cond(&alerts) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; alerts: {alerts:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn firing(alerts: &[(String, String)], name: &str) -> bool {
    alerts.iter().any(|(n, s)| n == name && s == "firing")
}

#[test]
fn windows_scale_from_hours_to_seconds() {
    let r = "rate(x[5m]) / rate(y[1d]) {le=\"60\"}\n        for: 15m\n";
    assert_eq!(
        short_windows(r),
        "rate(x[5s]) / rate(y[1440s]) {le=\"1\"}\n        for: 15s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_spawn_regression_fires_the_spawn_alerts_and_lifting_it_resolves_them() {
    let (_hub, api) = mock_hub().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let shipped =
        std::fs::read_to_string(repo().join("deploy/overlays/plain-prometheus/hubsoak-rules.yaml"))
            .unwrap();
    std::fs::write(&rules, short_windows(&shipped)).unwrap();
    // Short sessions, so spawns go on all the time.
    let soak = start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &api),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__POPULATION__TARGET", "8"),
            ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
            ("HUBSOAK__POPULATION__MAX_SPAWNS_IN_FLIGHT", "8"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "2s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "4s"),
            ("HUBSOAK__POPULATION__BACKOFF_MIN", "500ms"),
            ("HUBSOAK__POPULATION__BACKOFF_MAX", "1s"),
            ("HUBSOAK__POPULATION__SPAWN_TIMEOUT", "30s"),
        ],
    )
    .await;
    let target = soak.admin.to_string();
    let prom = Prometheus::start(&[("hubsoak", &target, "/metrics")], &[&rules]).await;
    // Healthy first: spawns succeed, fast, and no spawn alert is even pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !prom
        .has_data("sum(hubsoak:spawn_error_ratio:rate5m) == 0")
        .await
    {
        assert!(Instant::now() < deadline, "healthy spawns scraped");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(prom.rule_groups().await, 2);
    let spawn_alerts = |a: &[(String, String)]| {
        a.iter()
            .filter(|(n, _)| n.starts_with("HubsoakSpawn"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(spawn_alerts(&prom.alerts().await).is_empty());

    // The regression: most spawns fail, and those that succeed take over 2 s.
    set_faults(
        &api,
        serde_json::json!({"spawn_failure_rate": 0.8, "spawn_slowdown_s": 2.0}),
    )
    .await;
    until_alerts(
        &prom,
        Duration::from_secs(150),
        "both spawn burn alerts firing",
        |a| firing(a, FAST_ERRORS) && firing(a, FAST_LATENCY),
    )
    .await;

    // Lifted: both resolve.
    set_faults(
        &api,
        serde_json::json!({"spawn_failure_rate": 0.0, "spawn_slowdown_s": 0.0}),
    )
    .await;
    until_alerts(
        &prom,
        Duration::from_secs(150),
        "the spawn burn alerts resolved",
        |a| !a.iter().any(|(n, _)| n == FAST_ERRORS || n == FAST_LATENCY),
    )
    .await;
    drop(soak);
}
