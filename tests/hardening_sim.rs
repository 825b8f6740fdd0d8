//! Hardening, on the simulator: a hub (or a proxy in front of it) that echoes the token
//! back never gets it shown, log files are private, a closed pipe is no panic, and a
//! hub's long localized error is cut on a character boundary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::soak::{start_soak, until};
use common::*;
use hubsoak::mockhub::Faults;

fn echo(status: u16, only: &str) -> Faults {
    Faults {
        echo_credentials: Some(status),
        only_paths_containing: Some(only.into()),
        ..Faults::default()
    }
}

/// Everything a user could see of a run: stdout, stderr, the log file and the report.
fn everything(out: &Out, dir: &std::path::Path) -> String {
    let mut all = out.all();
    for name in ["run.log", "report.json"] {
        all.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_that_echoes_the_token_never_gets_it_shown() {
    let (hub, server) = start_mock(fast()).await;
    let commands: [&[&str]; 4] = [
        &["stress-test", "-c", "2"],
        &["activity-stress-test", "--count", "2"],
        &["purge"],
        &["simulate", "1"],
    ];
    for status in [400, 403, 500] {
        // The access check passes; every users call echoes the credentials.
        hub.set_faults(echo(status, "/users"));
        for cmd in commands {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("run.log");
            let report = dir.path().join("report.json");
            let mut args = vec!["-vv", "--log-to-file"];
            let log_arg = format!("--log-to-file={}", log.display());
            args[1] = &log_arg;
            args.extend(cmd);
            args.extend(["--report-json", report.to_str().unwrap()]);
            let out = against(&server, &args).await;
            assert_ne!(out.code, 0, "{cmd:?} against an echoing hub: {}", out.all());
            let seen = everything(&out, dir.path());
            assert!(
                seen.contains("Invalid credentials"),
                "{cmd:?} {status}: the hub's words are shown: {}",
                out.all()
            );
            assert!(
                !seen.contains(TOKEN),
                "{cmd:?} {status}: the token leaked:\n{seen}"
            );
            assert!(seen.contains("[redacted]"), "{cmd:?} {status}");
            let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{cmd:?}: the log file is private");
        }
    }
    // Also when the access check itself is answered that way: one line, exit 1.
    hub.set_faults(echo(403, "/hub/api"));
    let out = against(&server, &["stress-test", "-c", "2"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.all().contains(TOKEN));
    assert_eq!(
        out.stderr.matches("hubsoak: error:").count(),
        1,
        "printed once: {}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_at_vv_against_an_echoing_hub_shows_the_token_nowhere() {
    let (hub, server) = start_mock(fast()).await;
    hub.set_faults(echo(500, "/users"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("soak.log");
    let url = server.api_url();
    let log_arg = format!("--log-to-file={}", log.display());
    let mut p = start_soak(
        &["-vv", &log_arg, "--target", "3"],
        &[
            ("JUPYTERHUB_ENDPOINT", url.as_str()),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__PING__INTERVAL", "200ms"),
            ("HUBSOAK__POPULATION__BACKOFF_MIN", "200ms"),
            ("HUBSOAK__POPULATION__BACKOFF_MAX", "1s"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(15), "failures counted", |m| {
        m.sum(
            "hubsoak_request_failures_total",
            &["reason=\"server_error\""],
        ) >= 5.0
    })
    .await;
    let metrics = p.metrics().await.text;
    let readyz = p.get("/readyz").await.1;
    p.signal("TERM");
    let _ = p.exit_within(Duration::from_secs(20)).await;
    let logs = p.log.lock().unwrap().join("\n");
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("Invalid credentials"),
        "the hub's words reach the log"
    );
    assert!(file.contains("Invalid credentials"), "and the log file");
    for (what, text) in [
        ("metrics", &metrics),
        ("log", &logs),
        ("log file", &file),
        ("readyz", &readyz),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Runs hubsoak with its stdout a pipe whose reader is already gone.
async fn into_a_closed_pipe(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hubsoak"));
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Close the read end before hubsoak has parsed its arguments.
    drop(child.stdout.take());
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_output_quietly() {
    let (_hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = against(
        &server,
        &[
            "stress-test",
            "-c",
            "2",
            "--report-json",
            report.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    let r = report.to_str().unwrap();
    let url = server.api_url();
    let env = [
        ("JUPYTERHUB_ENDPOINT", url.as_str()),
        ("JUPYTERHUB_API_TOKEN", TOKEN),
    ];
    for args in [
        vec!["report", "diff", r, r],
        vec![
            "report",
            "merge",
            r,
            r,
            "-o",
            dir.path().join("m.json").to_str().unwrap(),
        ],
        vec!["validate"],
        vec!["--help"],
        vec!["stress-test", "-c", "1"],
        vec!["stress-test", "-c", "1", "--dry-run"],
        vec!["purge"],
    ] {
        let (code, stderr) = into_a_closed_pipe(&args, &env).await;
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(code, 101, "{args:?}: {stderr}");
        if args[0] != "--help" {
            assert_eq!(code, 0, "{args:?}: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_localized_error_is_cut_on_a_character_boundary() {
    let (hub, server) = start_mock(fast()).await;
    // 199 bytes, then a two-byte character across byte 200.
    let message = format!("{}é{}", "a".repeat(199), "ü".repeat(200));
    hub.set_faults(Faults {
        answer: Some((500, message)),
        only_paths_containing: Some("/users".into()),
        ..Faults::default()
    });
    let out = against(&server, &["stress-test", "-c", "1"]).await;
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_ne!(out.code, 101);
    assert!(
        out.all().contains(&format!("{}…", "a".repeat(199))),
        "{}",
        out.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_before_the_first_request() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "this is no certificate\n").unwrap();
    let inside = format!("{}/../login", server.api_url());
    let dir_path = dir.path().to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["stress-test", "--threshold", "spwan_p95<60s"],
            "--threshold",
        ),
        (
            vec!["stress-test", "--threshold", "spawn_p95<soon"],
            "--threshold",
        ),
        (
            vec!["stress-test", "--spawn-timeout", "0s"],
            "--spawn-timeout",
        ),
        (
            vec!["stress-test", "--stop-timeout", "0s"],
            "--stop-timeout",
        ),
        (vec!["purge", "--stop-timeout", "0s"], "--stop-timeout"),
        (
            vec!["--request-timeout", "0s", "stress-test"],
            "--request-timeout",
        ),
        (
            vec!["stress-test", "--report-json", &dir_path],
            "--report-json",
        ),
        (
            vec!["stress-test", "--report-json", "/nonexistent/r.json"],
            "--report-json",
        ),
        (
            vec!["--ca-file", not_pem.to_str().unwrap(), "stress-test"],
            "--ca-file",
        ),
        (
            vec!["stress-test", "-c", "99999999999999999999999"],
            "--count: must be from 1 to",
        ),
        (
            vec!["stress-test", "-c", "-5"],
            "--count: must be from 1 to",
        ),
        (vec!["activity-stress-test", "--workers", "-1"], "--workers"),
        (vec!["soak", "--target", "-5"], "population.target"),
        (
            vec!["demo", "--target", "200000"],
            "--target: must be from 1 to 100000",
        ),
        (vec!["-e", &inside, "stress-test"], "--endpoint"),
    ];
    for (args, key) in cases {
        let out = against(&server, &args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {}", out.stderr);
        assert!(
            lines[0].starts_with("hubsoak: error: "),
            "{args:?}: {}",
            lines[0]
        );
        assert!(lines[0].contains(key), "{args:?} names {key}: {}", lines[0]);
    }
    assert_eq!(hub.stats().requests, 0, "nothing was sent");
    // A settings file with a table twice names it and its line.
    let file = dir.path().join("dup.toml");
    std::fs::write(
        &file,
        "[population]\ntarget = 3\n[population]\ntarget = 4\n",
    )
    .unwrap();
    let out = against(&server, &["validate", "--config", file.to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("duplicate key `population`") && out.stderr.contains("(line 3)"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_and_base_url_endpoints_work() {
    let (_hub, server) = start_mock(fast()).await;
    let root = format!("http://{}", server.addr);
    for endpoint in [
        format!("{root}/hub"),
        format!("{root}/hub/"),
        format!("{root}/"),
    ] {
        let out = against(&server, &["-e", &endpoint, "stress-test", "-c", "1"]).await;
        assert_eq!(out.code, 0, "{endpoint}: {}", out.all());
    }
    let (_hub, jhub) = start_mock(hubsoak::mockhub::MockConfig {
        base_url: Some("/jhub".into()),
        ..fast()
    })
    .await;
    let root = format!("http://{}", jhub.addr);
    for endpoint in [
        format!("{root}/jhub/hub"),
        format!("{root}/jhub/"),
        format!("{root}/jhub/hub/api"),
    ] {
        let out = hubsoak(
            &["-e", &endpoint, "stress-test", "-c", "1"],
            &[("JUPYTERHUB_API_TOKEN", TOKEN)],
        )
        .await;
        assert_eq!(out.code, 0, "{endpoint}: {}", out.all());
    }
    // The same hub at its root is no API: said so, exit 2.
    let out = hubsoak(
        &["-e", &format!("{root}/"), "stress-test", "-c", "1"],
        &[("JUPYTERHUB_API_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("no JupyterHub API there"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_knowable_cause_gets_its_hint() {
    let (_hub, server) = start_mock(fast()).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let html = html_server().await;
    let cases = [
        (
            format!("https://{}/hub/api", server.addr),
            "is the hub serving http?",
            1,
        ),
        (format!("http://{closed}/hub/api"), "nothing listens at", 1),
        (html, "a login page", 2),
    ];
    for (endpoint, hint, code) in cases {
        let out = hubsoak(
            &["-e", &endpoint, "stress-test", "-c", "1"],
            &[("JUPYTERHUB_API_TOKEN", TOKEN)],
        )
        .await;
        assert_eq!(out.code, code, "{endpoint}: {}", out.all());
        assert!(out.stderr.contains(hint), "{endpoint}: {}", out.stderr);
        assert_eq!(
            out.stderr.matches("hubsoak: error:").count(),
            1,
            "once: {}",
            out.stderr
        );
    }
}
