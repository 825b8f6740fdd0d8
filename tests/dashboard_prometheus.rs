//! The dashboard and alerts against a real Prometheus: it scrapes `hubsoak demo` (and the
//! demo's simulated hub) on loopback, and every query of every panel must return data;
//! with half the simulated spawns failing, the spawn-failure alert's expression holds.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::prometheus::{repo, Prometheus};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts the demo; returns it with its metrics and hub addresses (from its stdout).
async fn demo() -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubsoak"))
        .args([
            "demo",
            "--metrics-listen",
            "127.0.0.1:0",
            "--hub-listen",
            "127.0.0.1:0",
            "--target",
            "6",
            "--spawn-failure-rate",
            "0.5",
            "--session-min",
            "3s",
            "--session-max",
            "6s",
            "--duration",
            "4m",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("hubsoak demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut metrics, mut hub) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics.is_none() || hub.is_none() {
        assert!(Instant::now() < deadline, "the demo printed its addresses");
        let Ok(Some(line)) = lines.next_line().await else {
            panic!("the demo's stdout ended")
        };
        let addr = |marker: &str| {
            line.split_once(marker)
                .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_string())
        };
        if line.contains("hubsoak demo: metrics at http://") {
            metrics = addr("hubsoak demo: metrics at http://");
        }
        if line.contains("the hub's own metrics at http://") {
            hub = addr("the hub's own metrics at http://");
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, metrics.unwrap(), hub.unwrap())
}

async fn prometheus(hubsoak: &str, hub: &str) -> Prometheus {
    let rules = repo().join("deploy/overlays/plain-prometheus/hubsoak-rules.yaml");
    Prometheus::start(
        &[
            ("hubsoak", hubsoak, "/metrics"),
            ("jupyterhub", hub, "/hub/metrics"),
        ],
        &[&rules],
    )
    .await
}

/// Every panel query of the dashboard, with its variables as "All" and a 30 s rate window.
fn dashboard_queries() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("grafana/hubsoak-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$namespace", ".*")
                .replace("$instance", ".*")
                .replace("$__rate_interval", "30s")
                // A week ago is before this Prometheus began: compare with 30 s ago.
                .replace("$compare", "30s");
            queries.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_data_and_the_spawn_failure_alert_holds() {
    let (_demo, metrics, hub) = demo().await;
    let prom = prometheus(&metrics, &hub).await;
    let queries = dashboard_queries();
    assert!(queries.len() >= 25, "{} queries", queries.len());

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing: Vec<(String, String)> = queries.clone();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for (title, expr) in missing {
            if !prom.has_data(&expr).await {
                still.push((title, expr));
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "panels without data after 120 s: {missing:#?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The alert's own expression, from the rules file, is true with half the spawns failing.
    let rules: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            repo().join("deploy/overlays/plain-prometheus/hubsoak-rules.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let expr = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .find(|r| r["alert"] == "HubsoakSpawnFailureRatioHigh")
        .and_then(|r| r["expr"].as_str())
        .expect("the spawn-failure alert")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !prom.has_data(&expr).await {
        assert!(
            Instant::now() < deadline,
            "the spawn-failure alert's expression never held: {expr}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // And the rules loaded into this Prometheus without error.
    assert_eq!(prom.rule_groups().await, 2);

    // The annotations' queries run; the demo's hub version appeared within the last two
    // minutes, so "Hub upgrades" marks it (a restart has no data: none happened).
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("grafana/hubsoak-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut upgrades = None;
    for a in dash["annotations"]["list"].as_array().unwrap() {
        let Some(expr) = a["expr"].as_str() else {
            continue;
        };
        let expr = expr.replace("$namespace", ".*").replace("$instance", ".*");
        assert!(prom.query(&expr).await.is_some(), "{expr}");
        if a["name"] == "Hub upgrades" {
            upgrades = Some(expr);
        }
    }
    let upgrades = upgrades.expect("a Hub upgrades annotation");
    let version = prom.query(&upgrades).await.unwrap_or_default();
    assert!(
        version.iter().any(|s| s["metric"]["version"]
            .as_str()
            .is_some_and(|v| v != "unknown")),
        "the hub's version is marked: {version:?}"
    );
}
