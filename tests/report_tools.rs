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
    stress_report_on(
        MockConfig {
            spawn_delay: Duration::from_millis(spawn_ms),
            ..fast()
        },
        dir,
        name,
        count,
        &[],
    )
    .await
}

/// A stress-test report of `count` users on a simulator set up as `cfg`.
async fn stress_report_on(
    cfg: MockConfig,
    dir: &Path,
    name: &str,
    count: &str,
    extra: &[&str],
) -> PathBuf {
    stress_report_ending(cfg, dir, name, count, extra, 0).await
}

/// As [`stress_report_on`], the run exiting with `code`.
async fn stress_report_ending(
    cfg: MockConfig,
    dir: &Path,
    name: &str,
    count: &str,
    extra: &[&str],
    code: i32,
) -> PathBuf {
    let (_hub, server) = start_mock(cfg).await;
    let path = dir.join(name);
    let mut args = vec![
        "stress-test",
        "-c",
        count,
        "-b",
        count,
        "--report-json",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = against(&server, &args).await;
    assert_eq!(out.code, code, "{}", out.all());
    path
}

/// Headless Chromium on a local `page` with `args` (its own profile, no network of its
/// own); its output, after it finished.
async fn chromium(page: &Path, args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args(args)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .kill_on_drop(true)
        .output();
    let done = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium runs (tests/run-all.sh installs it)");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    done
}

/// The page's DOM after headless Chromium loaded it, and Chromium's log.
async fn chromium_dom(page: &Path) -> (String, String) {
    let done = chromium(page, &["--dump-dom".into()]).await;
    (
        String::from_utf8_lossy(&done.stdout).into_owned(),
        String::from_utf8_lossy(&done.stderr).into_owned(),
    )
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
async fn diff_judges_requests_refuses_other_commands_and_names_changed_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let base = stress_report(dir.path(), "base.json", "6", 100).await;
    // The same run on a hub that throttles: two spawns at once, the rest told to retry
    // in a second (and then let through).
    let throttled = stress_report_on(
        MockConfig {
            spawn_delay: Duration::from_millis(100),
            concurrent_spawn_limit: Some(2),
            retry_after: 1..=1,
            ..fast()
        },
        dir.path(),
        "throttled.json",
        "6",
        &[],
    )
    .await;
    let (b, t) = (base.to_str().unwrap(), throttled.to_str().unwrap());
    let out = hubsoak(&["report", "diff", b, t], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let row = |op: &str, figure: &str| {
        out.stdout
            .lines()
            .find(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(op) && words.next() == Some(figure)
            })
            .unwrap_or_default()
            .to_string()
    };
    for figure in ["failed:throttled", "retry_ratio", "failure_ratio"] {
        let line = row("start_server", figure);
        assert!(line.contains("REGRESSION"), "{figure}: {}", out.stdout);
    }
    assert!(
        !row("create_users", "failure_ratio").contains("REGRESSION"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.is_empty(), "same parameters: {}", out.stderr);

    // Other parameters: compared, with each difference named.
    let bigger = stress_report(dir.path(), "bigger.json", "8", 100).await;
    let out = hubsoak(&["report", "diff", b, bigger.to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let warning = out.stderr.trim();
    assert!(
        warning.starts_with("hubsoak: warning: the runs' parameters differ"),
        "{warning}"
    );
    assert!(warning.contains("count: 6 -> 8"), "{warning}");
    assert!(warning.contains("batch_size: 6 -> 8"), "{warning}");

    // Another command: refused in one line, unless forced.
    let (_hub, server) = start_mock(fast()).await;
    let activity = dir.path().join("activity.json");
    let out = against(
        &server,
        &[
            "activity-stress-test",
            "-c",
            "2",
            "--rounds",
            "1",
            "--report-json",
            activity.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let a = activity.to_str().unwrap();
    let out = hubsoak(&["report", "diff", b, a], &[]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("BASE is a stress-test report and NEW a activity-stress-test report"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = hubsoak(&["--force", "report", "diff", b, a], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("figure"), "{}", out.stdout);
}

/// The part of `dom` from the element with `id` to the end of its figure, section,
/// header or table.
fn part<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("the page has #{id}"));
    let rest = &dom[start..];
    let end = ["</figure>", "</section>", "</header>", "</table>"]
        .iter()
        .filter_map(|t| rest.find(t))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The texts of a chart (its labels), trimmed.
fn texts(figure: &str) -> Vec<String> {
    figure
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            let t = &t[t.find('>')? + 1..];
            Some(t[..t.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Whether a chart has a data line: a 2 px polyline longer than a legend's sample.
fn has_drawn_line(figure: &str) -> bool {
    figure.split("<polyline").skip(1).any(|p| {
        let attrs = &p[..p.find('>').unwrap_or(p.len())];
        if !attrs.contains(r#"stroke-width="2""#) {
            return false;
        }
        let points = attrs
            .split(r#"points=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let xs: Vec<f64> = points
            .split_whitespace()
            .filter_map(|xy| xy.split(',').next()?.parse().ok())
            .collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        xs.len() >= 3 || hi - lo > 30.0
    })
}

/// A screenshot of `page` in headless Chromium, `height` pixels tall.
async fn screenshot(page: &Path, png: &Path, height: u32) {
    chromium(
        page,
        &[
            "--hide-scrollbars".into(),
            format!("--window-size=1280,{height}"),
            format!("--screenshot={}", png.display()),
        ],
    )
    .await;
    assert!(std::fs::metadata(png).map(|m| m.len()).unwrap_or(0) > 10_000);
}

/// What every report page must show, checked in the DOM Chromium built.
fn assert_sections(dom: &str, charts: &[&str]) {
    assert!(!dom.contains("<script"), "no script in the page");
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!dom.contains(external), "the page loads {external}");
    }
    let summary = part(dom, "summary");
    for fact in ["JupyterHub", "6.1.1", "started", "ended", "took", "hubsoak"] {
        assert!(summary.contains(fact), "summary shows {fact}: {summary}");
    }
    assert!(summary.contains(r#"class="verdict"#), "{summary}");
    let requests = part(dom, "requests");
    let start = requests
        .split("<tr>")
        .find(|r| r.contains("<td>start_server</td>"))
        .expect("a start_server row");
    assert!(start.matches("<td>").count() >= 9, "{start}");
    assert!(
        start.contains("ms</td>") || start.contains("s</td>"),
        "latency: {start}"
    );
    for id in charts {
        assert!(has_drawn_line(part(dom, id)), "#{id} has a line drawn");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stress_test_report_shows_every_section_with_data_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    // A hub that throttles and fails a fifth of its spawns, and a threshold that misses.
    let report = stress_report_ending(
        MockConfig {
            spawn_delay: Duration::from_millis(600),
            spawn_jitter: Duration::from_millis(900),
            spawn_failure_rate: 0.2,
            concurrent_spawn_limit: Some(6),
            retry_after: 1..=1,
            ..fast()
        },
        dir.path(),
        "r.json",
        "24",
        &[
            "--threshold",
            "spawn_p95<100ms",
            "--threshold",
            "failure_ratio<0.9",
        ],
        3,
    )
    .await;
    let page = dir.path().join("r.html");
    render_html(&report, &page).await;
    let (dom, _) = chromium_dom(&page).await;
    assert_sections(
        &dom,
        &[
            "latency-over-time",
            "servers-over-time",
            "requests-over-time",
            "completions",
            "latency-by-percentile",
            "cpu-over-time",
            "memory-over-time",
        ],
    );
    assert!(part(&dom, "summary").contains("THRESHOLDS MISSED"));
    let params = part(&dom, "parameters");
    assert!(
        params.contains("count") && params.contains("24"),
        "{params}"
    );
    let thresholds = part(&dom, "thresholds");
    assert!(thresholds.contains("spawn_p95&lt;100ms"), "{thresholds}");
    assert!(
        thresholds.contains("100ms</td>"),
        "the limit with its unit: {thresholds}"
    );
    assert!(
        thresholds.contains("FAIL") && thresholds.contains("pass"),
        "{thresholds}"
    );
    assert!(
        thresholds.contains("%</td>"),
        "a ratio in percent: {thresholds}"
    );
    let start = part(&dom, "requests")
        .split("<tr>")
        .find(|r| r.contains("<td>start_server</td>"))
        .unwrap()
        .to_string();
    assert!(start.contains("throttled="), "throttling shown: {start}");
    let errors = part(&dom, "errors");
    assert!(errors.contains("spawn_failed"), "{errors}");
    assert!(errors.contains("simulated spawner failure"), "{errors}");
    // The percentile axis stops where 24 spawns' samples do: no 99.99 % tick.
    let percentiles = texts(part(&dom, "latency-by-percentile"));
    assert!(percentiles.iter().any(|l| l == "90%"), "{percentiles:?}");
    assert!(
        !percentiles.iter().any(|l| l.starts_with("99.9")),
        "{percentiles:?}"
    );
    // The README's screenshot is taken here.
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    screenshot(&page, &shots.join("stress-test-report.png"), 2400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_soak_report_shows_every_section_with_data_in_headless_chromium() {
    let (_hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(300),
        stop_delay: Duration::from_millis(100),
        ..fast()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("soak.json");
    let out = against(
        &server,
        &[
            "soak",
            "--metrics-listen",
            "127.0.0.1:0",
            "--target",
            "4",
            "--duration",
            "17s",
            "--on-exit",
            "purge",
            "--report-json",
            report.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let r = load(&report);
    assert!(
        r["series"]["samples"].as_array().unwrap().len() >= 3,
        "{}",
        r["series"]
    );
    let page = dir.path().join("soak.html");
    render_html(&report, &page).await;
    let (dom, _) = chromium_dom(&page).await;
    assert_sections(
        &dom,
        &[
            "servers-over-time",
            "requests-over-time",
            "completions",
            "latency-by-percentile",
            "cpu-over-time",
            "memory-over-time",
        ],
    );
    assert!(part(&dom, "summary").contains("hubsoak soak"));
    let servers = part(&dom, "servers-over-time");
    assert!(servers.contains("running"), "{servers}");
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
    let (dom, _) = chromium_dom(&page).await;
    let cycles = part(&dom, "cycles");
    assert!(cycles.contains("Spawn latency by cycle size"), "{cycles}");
    assert!(has_drawn_line(cycles), "{cycles}");
    // The x axis is the cycle's size: its labels run from 2 to 6 users.
    let labels = texts(cycles);
    for users in ["2", "6"] {
        assert!(labels.iter().any(|l| l == users), "{users}: {labels:?}");
    }
}
