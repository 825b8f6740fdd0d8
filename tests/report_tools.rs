//! `hubsoak report merge|diff|html` on reports of real runs against the simulator; the
//! HTML page opened in headless Chromium (tests/run-all.sh installs it from apt).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use hubsoak::mockhub::MockConfig;
use serde_json::Value;

/// A stress-test of `count` against a simulator whose spawns take `spawn_ms`; the report.
async fn stress_report(dir: &Path, name: &str, count: &str, spawn_ms: u64) -> PathBuf {
    let (_hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(spawn_ms),
        ..fast()
    })
    .await;
    let path = dir.join(name);
    let out = against(
        &server,
        &[
            "stress-test",
            "-c",
            count,
            "-b",
            count,
            "--report-json",
            path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    path
}

/// The page's DOM after headless Chromium loaded it and ran its script, and Chromium's log.
async fn chromium_dom(page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let chromium = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .kill_on_drop(true)
        .output();
    let done = tokio::time::timeout(Duration::from_secs(60), chromium)
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium runs (tests/run-all.sh installs it)");
    let dom = String::from_utf8_lossy(&done.stdout).into_owned();
    let log = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "{log}");
    (dom, log)
}

/// `hubsoak report html REPORT -o PAGE`, which must succeed.
async fn render_html(report: &Path, page: &Path) {
    let out = hubsoak(
        &[
            "report",
            "html",
            report.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("written")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_reports_add_up_and_keep_the_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let a = stress_report(dir.path(), "a.json", "5", 100).await;
    let b = stress_report(dir.path(), "b.json", "7", 400).await;
    let all = dir.path().join("all.json");
    let out = hubsoak(
        &[
            "report",
            "merge",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "-o",
            all.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let (ra, rb, m) = (load(&a), load(&b), load(&all));
    assert_eq!(m["schema"], "hubsoak.run-report/v1");
    for action in ["create_user", "spawn", "stop", "delete_user"] {
        assert_eq!(
            successes(&m, action),
            successes(&ra, action) + successes(&rb, action),
            "{action}"
        );
    }
    assert_eq!(m["latency"]["spawn"]["count"], 12);
    // The 5 fast spawns are below the 7 slow ones: the merged median is a slow one.
    let p50 = m["latency"]["spawn"]["p50_s"].as_f64().unwrap();
    assert!((0.39..0.6).contains(&p50), "merged p50 {p50}");
    assert_eq!(
        m["latency"]["spawn"]["min_s"],
        ra["latency"]["spawn"]["min_s"]
    );
    assert_eq!(
        m["latency"]["spawn"]["max_s"],
        rb["latency"]["spawn"]["max_s"]
    );
    assert!(out.stdout.contains("merged 2 reports"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_of_different_commands_or_bad_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = stress_report(dir.path(), "a.json", "2", 100).await;
    let not_a_report = dir.path().join("x.json");
    std::fs::write(&not_a_report, "{\"hello\": 1}").unwrap();
    let out = hubsoak(
        &[
            "report",
            "merge",
            a.to_str().unwrap(),
            not_a_report.to_str().unwrap(),
            "-o",
            "/tmp/hubsoak-never.json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a hubsoak run report"),
        "{}",
        out.stderr
    );
    let out = hubsoak(
        &["report", "html", "/nonexistent/r.json", "-o", "x.html"],
        &[],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_flags_an_injected_regression_and_gates_on_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let base = stress_report(dir.path(), "base.json", "6", 200).await;
    let same = stress_report(dir.path(), "same.json", "6", 200).await;
    let slow = stress_report(dir.path(), "slow.json", "6", 800).await;
    let (b, s, n) = (
        base.to_str().unwrap(),
        same.to_str().unwrap(),
        slow.to_str().unwrap(),
    );
    // Two runs of the same spawns differ by scheduling noise, which a loaded machine
    // makes tens of percent; the injected slowdown below is +300 %.
    let out = hubsoak(&["report", "diff", b, s, "--tolerance", "50%"], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.starts_with("spawn ") && l.contains("REGRESSION")),
        "no spawn regression between equal runs:\n{}",
        out.stdout
    );
    let out = hubsoak(&["report", "diff", b, n], &[]).await;
    assert_eq!(out.code, 0, "flagging alone does not fail: {}", out.all());
    let p50 = out
        .stdout
        .lines()
        .find(|l| l.starts_with("spawn") && l.contains(" p50 "))
        .unwrap_or_default();
    assert!(p50.contains("REGRESSION"), "{}", out.stdout);
    let out = hubsoak(
        &["report", "diff", b, n, "--threshold", "spawn_p50<+20%"],
        &[],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout.contains("threshold: spawn_p50<+20% MISSED"),
        "{}",
        out.stdout
    );
    let out = hubsoak(
        &[
            "report",
            "diff",
            b,
            n,
            "--threshold",
            "spawn_p50<+2s",
            "--threshold",
            "failure_ratio<=0",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_page_loads_in_headless_chromium_and_draws_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let report = stress_report(dir.path(), "r.json", "8", 300).await;
    let page = dir.path().join("r.html");
    render_html(&report, &page).await;
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}");
    }
    let (dom, log) = chromium_dom(&page).await;
    // The page's own script ran (no error stopped it) and found both charts laid out
    // with every line drawn.
    assert!(dom.contains(r#"data-charts="2""#), "{dom}");
    assert!(dom.contains(r#"data-charts-drawn="2""#), "{dom}\n{log}");
    assert!(!log.contains("Uncaught"), "{log}");
    assert!(dom.contains("Latency by percentile") && dom.contains("Completions per"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cycles_report_gets_a_chart_of_latency_by_cycle_size() {
    let dir = tempfile::tempdir().unwrap();
    let (_hub, server) = start_mock(fast()).await;
    let report = dir.path().join("cycles.json");
    let out = against(
        &server,
        &[
            "stress-test",
            "--cycles",
            "2:4:6",
            "--report-json",
            report.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let page = dir.path().join("cycles.html");
    render_html(&report, &page).await;
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(r#"data-charts="3""#), "three charts");
    let (dom, log) = chromium_dom(&page).await;
    assert!(dom.contains(r#"data-charts-drawn="3""#), "{dom}\n{log}");
    assert!(html.contains("Spawn latency by cycle size"));
    for users in ["2 users", "4 users", "6 users"] {
        assert!(html.contains(users), "{users}");
    }
}
