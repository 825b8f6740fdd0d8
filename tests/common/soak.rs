//! Running `hubsoak soak` as a child process, finding its admin port, scraping it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct SoakProcess {
    pub child: Child,
    pub admin: SocketAddr,
    /// Every line it wrote to stderr (JSON logs).
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts `hubsoak --log-format json soak --metrics-listen 127.0.0.1:0 …` with exactly
/// the given environment (plus PATH), and waits until its admin server listens.
pub async fn start_soak(args: &[&str], env: &[(&str, &str)]) -> SoakProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubsoak"));
    cmd.args([
        "--log-format",
        "json",
        "soak",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .args(args)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("hubsoak starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["fields"]["message"] == "admin server listening" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_string());
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("admin address logged; log: {:?}", log.lock().unwrap()))
        .expect("admin address");
    SoakProcess {
        child,
        admin: addr.parse().expect("admin address parses"),
        log,
    }
}

/// The running-servers gauge.
pub const RUNNING: &str = "hubsoak_servers{state=\"running\"}";

impl SoakProcess {
    /// Waits until `n` servers run, up to `limit`; returns the last scrape.
    pub async fn until_running(&self, n: u32, limit: Duration) -> Metrics {
        until(self, limit, &format!("{n} running"), |m| {
            m.get(RUNNING) == f64::from(n)
        })
        .await
    }

    /// Waits until `series` reads `value`, up to `limit`; returns the last scrape.
    pub async fn until_value(&self, series: &str, value: f64, limit: Duration) -> Metrics {
        until(self, limit, &format!("{series} = {value}"), |m| {
            m.get(series) == value
        })
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        match reqwest::get(format!("http://{}{}", self.admin, path)).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    pub async fn metrics(&self) -> Metrics {
        Metrics::parse(&self.get("/metrics").await.1)
    }

    /// Sends a signal ("TERM", "INT").
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("still running");
        let ok = std::process::Command::new("kill")
            .args(["-s", sig, &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -s {sig} {pid}");
    }

    /// Waits for the exit, up to `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => Some(status.code().unwrap_or(-1)),
            _ => None,
        }
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Its whole log so far, for failure messages.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Its log lines at ERROR.
    pub fn error_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .cloned()
            .collect()
    }
}

/// Replaces the token file as a Kubernetes Secret update does (a new file moved into place).
pub fn write_token(path: &std::path::Path, token: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{token}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A parsed Prometheus text exposition: series (name with labels) → value.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub series: HashMap<String, f64>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        Metrics {
            series,
            text: text.to_string(),
        }
    }

    /// The value of an exact series, e.g. `hubsoak_servers{state="running"}`.
    pub fn get(&self, series: &str) -> f64 {
        self.series.get(series).copied().unwrap_or(f64::NAN)
    }

    /// The sum over every series of `name` whose labels contain all of `labels`.
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| {
                let base = k.split('{').next().unwrap_or("");
                base == name && labels.iter().all(|l| k.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Polls /metrics until `cond` holds, up to `limit`; returns the last scrape.
pub async fn until(
    p: &SoakProcess,
    limit: Duration,
    what: &str,
    cond: impl Fn(&Metrics) -> bool,
) -> Metrics {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let m = p.metrics().await;
        if cond(&m) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {limit:?}; last scrape:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
