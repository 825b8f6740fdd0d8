//! Shared test helpers: a simulator on 127.0.0.1:0 and the hubsoak binary run against it.
#![allow(dead_code)]

pub mod contract;
pub mod prometheus;
pub mod realhub;
pub mod soak;

use std::path::Path;
use std::time::Duration;

use hubsoak::mockhub::{MockConfig, MockHub, MockServer};

pub const TOKEN: &str = "test-token-9f8e7d";

pub async fn start_mock(cfg: MockConfig) -> (MockHub, MockServer) {
    let hub = MockHub::new(MockConfig {
        token: TOKEN.into(),
        ..cfg
    });
    let server = hub
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind 127.0.0.1:0");
    (hub, server)
}

/// A fast simulator: short spawns, throttling answered in 1-2 s.
pub fn fast() -> MockConfig {
    MockConfig {
        spawn_delay: Duration::from_millis(200),
        retry_after: 1..=2,
        ..MockConfig::default()
    }
}

/// Nothing of ours left on the simulator: no server, no user, and every kernel we started
/// deleted by us.
pub fn nothing_left(hub: &MockHub) {
    assert_eq!(hub.server_counts(), (0, 0, 0), "servers left behind");
    let (started, deleted) = hub.kernel_counts();
    assert_eq!(started, deleted, "kernels left behind");
    assert!(hub.user_names().is_empty(), "{:?}", hub.user_names());
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `hubsoak args…` with none of the JUPYTERHUB_* variables of this process.
pub async fn hubsoak(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hubsoak"));
    cmd.args(args)
        .env_remove("JUPYTERHUB_API_TOKEN")
        .env_remove("JUPYTERHUB_ENDPOINT")
        .env_remove("JUPYTERHUB_API_URL")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("hubsoak finished within 180 s")
        .expect("hubsoak ran");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs hubsoak against `server` with the test token in the environment.
pub async fn against(server: &MockServer, args: &[&str]) -> Out {
    let url = server.api_url();
    hubsoak(
        args,
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await
}

/// Runs `hubsoak args… --report-json TMP` with `env`; the output and the parsed report
/// (null if none was written).
pub async fn hubsoak_reporting(args: &[&str], env: &[(&str, &str)]) -> (Out, serde_json::Value) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("report.json");
    let mut all = args.to_vec();
    all.extend(["--report-json", path.to_str().expect("a UTF-8 temp path")]);
    let out = hubsoak(&all, env).await;
    let report = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, report)
}

/// [`hubsoak_reporting`] against the simulator, with the test token.
pub async fn against_reporting(server: &MockServer, args: &[&str]) -> (Out, serde_json::Value) {
    let url = server.api_url();
    hubsoak_reporting(
        args,
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await
}

pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// `report.outcomes[action].success`
pub fn successes(report: &serde_json::Value, action: &str) -> u64 {
    report["outcomes"][action]["success"].as_u64().unwrap_or(0)
}

/// Sum of `report.outcomes[action].failures`.
pub fn failures(report: &serde_json::Value, action: &str) -> u64 {
    report["outcomes"][action]["failures"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
}

/// Waits for `cond` to hold, polling, up to `limit`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Each of `names` runs server `server` (started with `options`), its default server not.
pub fn assert_named_servers(
    hub: &MockHub,
    names: &[String],
    server: &str,
    options: serde_json::Value,
) {
    use hubsoak::mockhub::Phase;
    for name in names {
        assert_eq!(hub.phase(name, server), Some(Phase::Running), "{name}");
        assert_eq!(
            hub.phase(name, ""),
            Some(Phase::Stopped),
            "{name}'s default server"
        );
        assert_eq!(
            hub.user_options(name, server),
            Some(options.clone()),
            "{name}"
        );
    }
}

/// Something that is not a hub: a login page answering 200 to everything.
pub async fn html_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "<html><body><form>Sign in</form></body></html>";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/hub/api")
}

/// An action's latency sample count and mean, in seconds, from a JSON run report.
pub fn mean(report: &serde_json::Value, action: &str) -> (u64, f64) {
    let l = &report["latency"][action];
    (
        l["count"].as_u64().unwrap_or(0),
        l["mean_s"].as_f64().unwrap_or(0.0),
    )
}

/// Every one of `spawns` successful spawns has its five phases, and on average they add
/// up to the spawn's time within 1 %.
pub fn assert_phases_add_up(report: &serde_json::Value, spawns: u64) {
    let (n, total) = mean(report, "spawn");
    assert_eq!(n, spawns, "{}", report["latency"]);
    let mut sum = 0.0;
    for phase in [
        "spawn_queued",
        "spawn_scheduling",
        "spawn_image_pull",
        "spawn_container_start",
        "spawn_server_startup",
    ] {
        let (n, m) = mean(report, phase);
        assert_eq!(n, spawns, "{phase} for every spawn: {}", report["latency"]);
        sum += m;
    }
    assert!(
        (sum - total).abs() <= total * 0.01,
        "phases {sum} vs spawn {total}"
    );
}

/// Writes `dir/name.ipynb` (nbformat 4.5) of `cells`, each code unless it starts with
/// "# " (markdown); ids `c1`, `c2`, … by position.
pub fn write_notebook(dir: &Path, name: &str, cells: &[&str]) -> std::path::PathBuf {
    write_notebook_for(dir, name, "python3", cells)
}

/// [`write_notebook`] for kernel `kernel`.
pub fn write_notebook_for(
    dir: &Path,
    name: &str,
    kernel: &str,
    cells: &[&str],
) -> std::path::PathBuf {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let id = format!("c{}", i + 1);
            if source.starts_with("# ") {
                serde_json::json!({"cell_type": "markdown", "id": id, "metadata": {}, "source": source})
            } else {
                serde_json::json!({
                    "cell_type": "code", "id": id, "metadata": {},
                    "execution_count": null, "outputs": [], "source": source,
                })
            }
        })
        .collect();
    let notebook = serde_json::json!({
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": kernel, "language": "python", "name": kernel}},
        "nbformat": 4, "nbformat_minor": 5,
    });
    let path = dir.join(format!("{name}.ipynb"));
    std::fs::write(&path, notebook.to_string()).expect("notebook written");
    path
}

/// Notebooks that are valid Python and within the simulated kernel's language alike.
pub mod notebooks {
    /// A title, then three code cells (cells 2-4); cell 3 is the slow one.
    pub const ANALYSIS: [&str; 4] = [
        "# Analysis",
        "import time\nprint('loading')",
        "time.sleep(0.3)\n6 * 7",
        "2 + 2",
    ];
    /// Its second cell raises ZeroDivisionError; the third never runs.
    pub const BROKEN: [&str; 3] = ["print('one')", "1 / 0", "print('never')"];
    /// Its second cell sleeps for a minute.
    pub const SLOW: [&str; 2] = ["import time", "time.sleep(60)"];
}

/// The report's notebook `name`.
pub fn notebook<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["notebooks"]
        .as_array()
        .and_then(|all| all.iter().find(|n| n["name"] == name))
        .unwrap_or(&serde_json::Value::Null)
}
