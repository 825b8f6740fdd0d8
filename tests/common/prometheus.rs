//! A real Prometheus on loopback for tests: started with a scrape config and rule files
//! of the test's choosing, queried over its HTTP API.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::process::{Child, Command};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Prometheus {
    _child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
}

impl Prometheus {
    /// Scrapes each `(job, target, metrics path)` every second and evaluates `rules`
    /// every second.
    pub async fn start(jobs: &[(&str, &str, &str)], rules: &[&Path]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        for r in rules {
            config.push_str(&format!("  - {}\n", r.display()));
        }
        config.push_str("scrape_configs:\n");
        for (job, target, path) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus is installed (tests/run-all.sh installs it)");
        Prometheus {
            _child: child,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .ok()?;
        let body: Value = r.json().await.ok()?;
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        Some(body["data"].clone())
    }

    /// The instant vector of `expr`; `None` if Prometheus is not answering yet.
    pub async fn query(&self, expr: &str) -> Option<Vec<Value>> {
        self.api("query", &[("query", expr)])
            .await
            .and_then(|d| d["result"].as_array().cloned())
    }

    /// Whether `expr` returns at least one sample that is a number.
    pub async fn has_data(&self, expr: &str) -> bool {
        self.query(expr).await.is_some_and(|samples| {
            samples.iter().any(|s| {
                s["value"][1]
                    .as_str()
                    .is_some_and(|v| v.parse::<f64>().is_ok_and(|x| !x.is_nan()))
            })
        })
    }

    /// The alerts now, as `(alertname, state)` (state: pending or firing).
    pub async fn alerts(&self) -> Vec<(String, String)> {
        self.api("alerts", &[])
            .await
            .and_then(|d| d["alerts"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    a["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The rule groups Prometheus loaded.
    pub async fn rule_groups(&self) -> usize {
        self.api("rules", &[])
            .await
            .and_then(|d| d["groups"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}
