//! Notebook journeys against the simulator: `simulate --notebook` cell by cell (figures in
//! the end table, the JSON and the HTML report), a raising cell and a sleeping cell named
//! in the log and leaving nothing behind, every auth mode and named servers, the soak's
//! notebook metrics, and the 50-notebook cap.

mod common;

use std::time::Duration;

use common::notebooks::{ANALYSIS, BROKEN, SLOW};
use common::soak::{start_soak, until};
use common::*;
use hubsoak::mockhub::MockConfig;

/// Everyone arrives within 300 ms and runs one notebook.
const ONE_ROUND: [&str; 8] = [
    "--session-min",
    "0s",
    "--session-max",
    "0s",
    "--start-delay-max",
    "300ms",
    "--think-time",
    "0s",
];

fn simulate<'a>(users: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["simulate", users];
    args.extend(ONE_ROUND);
    args.extend(extra);
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn notebooks_run_cell_by_cell_with_figures_per_cell() {
    let dir = tempfile::tempdir().unwrap();
    write_notebook(dir.path(), "analysis", &ANALYSIS);
    write_notebook(dir.path(), "second", &["print(1 + 1)", "3 * 3"]);
    let (hub, server) = start_mock(fast()).await;
    let nb_dir = dir.path().to_str().unwrap();
    let gates = [
        "--threshold",
        "notebook:analysis:cell_p95<5s",
        "--threshold",
        "notebook:second:failures<1",
    ];
    let mut args = simulate("4", &["--notebook", nb_dir]);
    args.extend(gates);
    let (out, r) = against_reporting(&server, &args).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(r["thresholds"][0]["passed"], true, "{}", out.stdout);
    assert_eq!(successes(&r, "journey"), 4, "{}", out.stdout);
    // In turn: two users each.
    let analysis = notebook(&r, "analysis");
    assert_eq!(analysis["runs"]["success"], 2, "{}", out.stdout);
    assert_eq!(notebook(&r, "second")["runs"]["success"], 2);
    assert_eq!(analysis["cells"]["count"], 6, "three code cells, twice");
    let cells: Vec<(u64, &str, u64)> = analysis["by_cell"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cell"].as_u64().unwrap(),
                c["id"].as_str().unwrap(),
                c["ok"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cells, [(2, "c2", 2), (3, "c3", 2), (4, "c4", 2)]);
    // The cell that sleeps 300 ms is the slowest, and the p95 shows it.
    let slow = &analysis["by_cell"][1];
    assert!(slow["max_s"].as_f64().unwrap() >= 0.3, "{slow}");
    assert!(analysis["cell_p95_s"].as_f64().unwrap() >= 0.3);
    // Each cell is one execution; one kernel per notebook run.
    assert_eq!(successes(&r, "execute"), 10);
    assert_eq!(hub.kernel_counts().0, 4);
    let table = &out.stdout;
    assert!(
        table.contains("cell p50") && table.contains("cell p95"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("analysis "))
        .expect("a row for analysis");
    let figures: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&figures[..4], ["analysis", "2", "0", "6"], "{row}");
    assert!(
        table.contains("slowest (mean): cell 3 (id c3) 30"),
        "{table}"
    );
    nothing_left(&hub);

    // The HTML report has the notebook table.
    let json = dir.path().join("r.json");
    std::fs::write(&json, r.to_string()).unwrap();
    let html = dir.path().join("r.html");
    let out = hubsoak(
        &[
            "report",
            "html",
            json.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let page = std::fs::read_to_string(&html).unwrap();
    let section = page
        .split(r#"<section id="notebooks">"#)
        .nth(1)
        .expect("a notebooks section");
    assert!(section.contains("<td>analysis</td>"), "{section}");
    assert!(section.contains("cell 3 (id c3)"), "{section}");

    // A notebook gate that misses: exit 3, named with its value.
    let mut args = simulate("1", &["--notebook", nb_dir]);
    args.extend(["--threshold", "notebook:analysis:cell_max<10ms"]);
    let out = against(&server, &args).await;
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout
            .contains("threshold: notebook:analysis:cell_max<10ms"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raising_cell_fails_the_journey_by_name_on_named_servers_with_form_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook(dir.path(), "broken", &BROKEN);
    let (hub, server) = start_mock(MockConfig {
        allow_named_servers: true,
        ..fast()
    })
    .await;
    let args = simulate(
        "2",
        &[
            "--notebook",
            path.to_str().unwrap(),
            "--auth",
            "form",
            "--server-name",
            "lab2",
        ],
    );
    let (out, r) = against_reporting(&server, &args).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(successes(&r, "login"), 2, "{}", out.stdout);
    assert_eq!(r["outcomes"]["journey"]["failures"]["run-code"], 2);
    let broken = notebook(&r, "broken");
    assert_eq!(broken["runs"]["failures"]["kernel_error"], 2, "{broken}");
    // The third cell never ran.
    let ran: Vec<u64> = broken["by_cell"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cell"].as_u64().unwrap())
        .collect();
    assert_eq!(ran, [1, 2]);
    // Named at the default log level: notebook, cell, error; no colour codes.
    let named =
        "notebook broken cell 2 (id c2): the kernel reported ZeroDivisionError: division by zero";
    assert!(out.stderr.contains(named), "{}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
    assert!(!out.stderr.contains("Traceback"), "the traceback is for -v");
    assert_eq!(r["errors"][0]["messages"][0][0], named);
    nothing_left(&hub);

    // At -v the traceback follows, without its colours.
    let mut verbose = args.clone();
    verbose.push("-v");
    let (out, _) = against_reporting(&server, &verbose).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("Traceback (most recent call last)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_cell_times_out_with_user_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook(dir.path(), "slow", &SLOW);
    let (hub, server) = start_mock(fast()).await;
    let args = simulate(
        "2",
        &[
            "--notebook",
            path.to_str().unwrap(),
            "--auth",
            "user-token",
            "--step-timeout",
            "1s",
        ],
    );
    let started = std::time::Instant::now();
    let (out, r) = against_reporting(&server, &args).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s cell was cut"
    );
    assert_eq!(notebook(&r, "slow")["runs"]["failures"]["timeout"], 2);
    assert_eq!(r["outcomes"]["execute"]["failures"]["timeout"], 2);
    assert!(
        out.stderr
            .contains("notebook slow cell 2 (id c2): no answer within the step timeout"),
        "{}",
        out.stderr
    );
    assert_eq!(hub.user_token_count(), 0, "the users' tokens were revoked");
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kernel_the_server_lacks_is_named_and_kernel_name_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_notebook_for(dir.path(), "needs-r", "ir", &["1 + 1"]);
    let (hub, server) = start_mock(fast()).await;
    let (out, r) = against_reporting(
        &server,
        &simulate("1", &["--notebook", path.to_str().unwrap()]),
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(r["outcomes"]["journey"]["failures"]["start-kernel"], 1);
    assert_eq!(notebook(&r, "needs-r")["runs"]["failures"]["http_5xx"], 1);
    assert!(
        out.stderr
            .contains("notebook needs-r (kernel ir): HTTP 500"),
        "{}",
        out.stderr
    );
    nothing_left(&hub);
    let (out, r) = against_reporting(
        &server,
        &simulate(
            "1",
            &[
                "--notebook",
                path.to_str().unwrap(),
                "--kernel-name",
                "python3",
            ],
        ),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(notebook(&r, "needs-r")["runs"]["success"], 1);
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_exports_each_notebooks_cells_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    write_notebook(dir.path(), "analysis", &ANALYSIS);
    write_notebook(dir.path(), "broken", &BROKEN);
    let (hub, server) = start_mock(fast()).await;
    let url = server.api_url();
    let notebooks = dir.path().to_str().unwrap();
    let mut soak = start_soak(
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
            ("HUBSOAK__JOURNEY__THINK_TIME", "100ms"),
            ("HUBSOAK__JOURNEY__STEP_TIMEOUT", "2s"),
            ("HUBSOAK__JOURNEY__NOTEBOOKS", notebooks),
            ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
            ("HUBSOAK__SHUTDOWN__GRACE", "10s"),
        ],
    )
    .await;
    let cells = |m: &common::soak::Metrics, nb: &str| {
        m.get(&format!(
            "hubsoak_notebook_cell_duration_seconds_count{{notebook=\"{nb}\"}}"
        ))
    };
    let failed = |m: &common::soak::Metrics, nb: &str, reason: &str| {
        m.get(&format!(
            "hubsoak_notebook_failures_total{{notebook=\"{nb}\",reason=\"{reason}\"}}"
        ))
    };
    let m = until(&soak, Duration::from_secs(30), "both notebooks ran", |m| {
        cells(m, "analysis") >= 6.0 && failed(m, "broken", "kernel_error") >= 2.0
    })
    .await;
    assert_eq!(failed(&m, "analysis", "kernel_error"), 0.0);
    assert_eq!(failed(&m, "analysis", "timeout"), 0.0);
    // broken's first cell runs, its second raises, its third never runs.
    assert!(cells(&m, "broken") >= 2.0);
    assert!(
        m.get("hubsoak_notebook_cell_duration_seconds_bucket{notebook=\"analysis\",le=\"0.5\"}")
            >= 6.0
    );
    // Failing sessions are logged at the default level with the cell.
    assert!(
        soak.log_contains("notebook broken cell 2 (id c2)"),
        "{}",
        soak.log_text()
    );
    soak.signal("TERM");
    assert_eq!(soak.exit_within(Duration::from_secs(30)).await, Some(0));
    nothing_left(&hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_fifty_notebooks_and_unreadable_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..51 {
        write_notebook(dir.path(), &format!("n{i:02}"), &["1 + 1"]);
    }
    let (_hub, server) = start_mock(fast()).await;
    let out = against(
        &server,
        &["simulate", "2", "--notebook", dir.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(
        out.stderr.trim(),
        "hubsoak: error: --notebook: 51 notebooks; at most 50 (each is a label value of the notebook metrics)"
    );
    // A threshold on a notebook the run does not have.
    let one = write_notebook(dir.path(), "n00", &["1 + 1"]);
    let out = against(
        &server,
        &[
            "simulate",
            "1",
            "--notebook",
            one.to_str().unwrap(),
            "--threshold",
            "notebook:n01:failures<1",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(
        out.stderr.trim(),
        "hubsoak: error: --threshold: \"notebook:n01:failures<1\": no notebook \"n01\" in this run (notebooks: n00)"
    );
    // The soak checks the same before it binds a port.
    let bad = dir.path().join("bad.ipynb");
    std::fs::write(&bad, "{ not json").unwrap();
    let url = server.api_url();
    let out = hubsoak(
        &["validate"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__JOURNEY__NOTEBOOKS", bad.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("journey.notebooks:")
            && out.stderr.contains("bad.ipynb is not a notebook"),
        "{}",
        out.stderr
    );
}
