//! A real JupyterHub for the end-to-end tests, started from the venvs that
//! tests/realhub/install.sh makes (tests/run-all.sh runs it). Every port is picked free on
//! 127.0.0.1; the hub, its proxy and its servers run in their own process group, which
//! is killed when the `RealHub` is dropped — also when a test fails.
#![allow(dead_code)]

/// Runs each scenario once per JupyterHub major version (a test module per scenario,
/// with `jupyterhub_5` and `jupyterhub_6` in it).
#[macro_export]
macro_rules! on_both_hubs {
    ($($scenario:ident),* $(,)?) => {
        $(mod $scenario {
            #[tokio::test(flavor = "multi_thread")]
            async fn jupyterhub_5() {
                super::$scenario(5).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn jupyterhub_6() {
                super::$scenario(6).await
            }
        })*
    };
}

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::contract::Contract;
use super::soak::{start_soak, SoakProcess};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spawner {
    /// One shared fake single-user server; a start takes `delay`.
    Cheap { delay: f64 },
    /// Real jupyterhub-singleuser processes.
    Local,
    /// The cheap server, started as KubeSpawner starts a pod (scheduled, the image
    /// pulled in `image_pull` seconds, the container started), each step reported on the
    /// progress stream as KubeSpawner does; every start answers 202.
    KubeLike { image_pull: f64 },
}

#[derive(Debug, Clone)]
pub struct HubOptions {
    /// 5 or 6.
    pub major: u8,
    pub spawner: Spawner,
    pub concurrent_spawn_limit: Option<u32>,
    /// JupyterHub's allow_named_servers.
    pub named_servers: bool,
    /// SharedPasswordAuthenticator with this password instead of DummyAuthenticator.
    pub shared_password: Option<&'static str>,
    /// JupyterHub's base_url without its trailing slash (`/jhub`), or `None` for `/`.
    pub base_url: Option<&'static str>,
}

impl HubOptions {
    pub fn cheap(major: u8) -> Self {
        HubOptions {
            major,
            spawner: Spawner::Cheap { delay: 0.0 },
            concurrent_spawn_limit: None,
            named_servers: false,
            shared_password: None,
            base_url: None,
        }
    }
}

pub struct RealHub {
    child: Child,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    venv: PathBuf,
    pub port: u16,
    /// The base_url's path without its trailing slash ("" for `/`).
    pub base: String,
    pub token: String,
    pub admin_token: String,
    pub version: String,
    pub admin: Contract,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn root() -> PathBuf {
    std::env::var_os("HUBSOAK_REAL_HUB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/real-hub"))
}

fn random_token() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// Whether a start failed because another socket took one of its ports first.
fn lost_a_port(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("eaddrinuse")
}

impl RealHub {
    /// Starts a hub on free ports. A port is free when it is picked and taken by the hub
    /// a moment later, so another socket may take it first: a start that loses that
    /// race ("Address already in use") is tried again on other ports.
    pub async fn start(opts: HubOptions) -> RealHub {
        for attempt in 1..=3 {
            match RealHub::start_once(&opts).await {
                Ok(hub) => return hub,
                Err(log) if attempt < 3 && lost_a_port(&log) => continue,
                Err(log) => {
                    // The proxy's complaints about a hub that is gone would bury why.
                    let lines: Vec<&str> = log
                        .lines()
                        .filter(|l| {
                            !l.contains("[ConfigProxy]") && !l.trim_start().starts_with("at ")
                        })
                        .collect();
                    panic!(
                        "the hub exited:\n{}",
                        lines[lines.len().saturating_sub(60)..].join("\n")
                    )
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn start_once(opts: &HubOptions) -> Result<RealHub, String> {
        let root = root();
        let venv = root.join(format!("jh{}", opts.major));
        let chp = root.join("node_modules/.bin/configurable-http-proxy");
        assert!(
            venv.join("bin/jupyterhub").exists() && chp.exists(),
            "JupyterHub {}.x or the proxy is not installed under {}: run tests/realhub/install.sh \
             (tests/run-all.sh does)",
            opts.major,
            root.display()
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let (token, admin_token) = (random_token(), random_token());
        let mut env: Vec<(String, String)> = vec![
            ("HUBSOAK_TEST_DIR".into(), dir.path().display().to_string()),
            ("HUBSOAK_TEST_PORT".into(), port.to_string()),
            ("HUBSOAK_TEST_HUB_PORT".into(), free_port().to_string()),
            (
                "HUBSOAK_TEST_PROXY_API_PORT".into(),
                free_port().to_string(),
            ),
            ("HUBSOAK_TEST_FAKE_PORT".into(), free_port().to_string()),
            ("HUBSOAK_TEST_CHP".into(), chp.display().to_string()),
            ("HUBSOAK_TEST_TOKEN".into(), token.clone()),
            ("HUBSOAK_TEST_ADMIN_TOKEN".into(), admin_token.clone()),
        ];
        match opts.spawner {
            Spawner::Cheap { delay } => {
                env.push(("HUBSOAK_TEST_SPAWNER".into(), "cheap".into()));
                env.push(("HUBSOAK_TEST_SPAWN_DELAY".into(), delay.to_string()));
            }
            Spawner::Local => env.push(("HUBSOAK_TEST_SPAWNER".into(), "local".into())),
            Spawner::KubeLike { image_pull } => {
                env.push(("HUBSOAK_TEST_SPAWNER".into(), "kubelike".into()));
                env.push(("HUBSOAK_TEST_IMAGE_PULL".into(), image_pull.to_string()));
            }
        }
        if let Some(limit) = opts.concurrent_spawn_limit {
            env.push((
                "HUBSOAK_TEST_CONCURRENT_SPAWN_LIMIT".into(),
                limit.to_string(),
            ));
        }
        if opts.named_servers {
            env.push(("HUBSOAK_TEST_NAMED_SERVERS".into(), "1".into()));
        }
        if let Some(password) = opts.shared_password {
            env.push(("HUBSOAK_TEST_SHARED_PASSWORD".into(), password.into()));
        }
        if let Some(base) = opts.base_url {
            env.push(("HUBSOAK_TEST_BASE_URL".into(), format!("{base}/")));
        }
        let base = opts.base_url.unwrap_or("").to_string();
        let api = format!("http://127.0.0.1:{port}{base}/hub/api");
        let child = launch(&venv, &env, dir.path());
        let mut hub = RealHub {
            child,
            admin: Contract::new(&api, &admin_token, ""),
            dir,
            env,
            venv,
            port,
            base,
            token,
            admin_token,
            version: String::new(),
        };
        hub.until_healthy().await?;
        hub.version = hub.admin.call(Method::GET, "/", None, None).await.json()["version"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            hub.version.starts_with(&format!("{}.", opts.major)),
            "expected JupyterHub {}.x, got {}",
            opts.major,
            hub.version
        );
        Ok(hub)
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}{}/hub/api", self.port, self.base)
    }

    async fn wait_healthy(&mut self) {
        if let Err(log) = self.until_healthy().await {
            panic!("the hub exited:\n{log}");
        }
    }

    /// Waits until the hub answers its health check; `Err(its log)` if it exited.
    async fn until_healthy(&mut self) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{}{}/hub/health", self.port, self.base);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default();
                return Err(format!("({status})\n{log}"));
            }
            assert!(
                Instant::now() < deadline,
                "the hub was not healthy in 60 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL the hub process alone (its proxy lives on, as in a crashed pod).
    pub async fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the hub again on the same ports and database.
    pub async fn restart(&mut self) {
        self.child = launch(&self.venv, &self.env, self.dir.path());
        self.wait_healthy().await;
    }

    /// `jupyterhub_server_spawn_duration_seconds_count{status="success"}`, summed over
    /// 6.x's `reason` label; and `jupyterhub_server_stop_seconds_count{status="success"}`.
    pub async fn truth(&self) -> (f64, f64) {
        let text = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}{}/hub/metrics",
                self.port, self.base
            ))
            .header("Authorization", format!("token {}", self.admin_token))
            .send()
            .await
            .expect("hub metrics")
            .text()
            .await
            .unwrap_or_default();
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains("status=\"success\""))
                .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
                .sum()
        };
        (
            sum("jupyterhub_server_spawn_duration_seconds_count{"),
            sum("jupyterhub_server_stop_seconds_count{"),
        )
    }

    /// Every user's name and whether its default server is ready.
    pub async fn users(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let page: Value = reqwest::Client::new()
                .get(format!(
                    "{}/users?offset={offset}&limit=200",
                    self.api_url()
                ))
                .header("Authorization", format!("token {}", self.admin_token))
                .header("Accept", "application/jupyterhub-pagination+json")
                .send()
                .await
                .expect("list users")
                .json()
                .await
                .expect("a page");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            for u in &items {
                let ready = u["servers"][""]["ready"] == true;
                out.push((u["name"].as_str().unwrap_or("").to_string(), ready));
            }
            match page["_pagination"]["next"]["offset"].as_u64() {
                Some(next) if !items.is_empty() => offset = next,
                _ => return out,
            }
        }
    }

    /// The user's model's `servers` (every server, named ones included), as the hub says.
    pub async fn servers_of(&self, name: &str) -> Value {
        let r = self
            .admin
            .authed(Method::GET, &format!("/users/{name}"), None)
            .await;
        assert_eq!(r.status, 200, "GET /users/{name}: {}", r.body);
        r.json()["servers"].clone()
    }

    pub async fn ours(&self, prefix: &str) -> Vec<String> {
        let stem = format!("{prefix}-");
        self.users()
            .await
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&stem))
            .collect()
    }

    /// Creates `names` and starts the servers of every `running_every`-th.
    pub async fn seed(&self, names: &[String], running_every: usize) {
        for chunk in names.chunks(100) {
            let r = self
                .admin
                .authed(Method::POST, "/users", Some(json!({ "usernames": chunk })))
                .await;
            assert_eq!(r.status, 201, "seeding users: {}", r.body);
        }
        for (i, name) in names.iter().enumerate() {
            if running_every > 0 && i % running_every == 0 {
                let r = self
                    .admin
                    .authed(
                        Method::POST,
                        &format!("/users/{name}/server"),
                        Some(json!({})),
                    )
                    .await;
                assert!(
                    r.status == 201 || r.status == 202,
                    "starting {name}: {} {}",
                    r.status,
                    r.body
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let users = self.users().await;
            let ready = names
                .iter()
                .enumerate()
                .filter(|(i, _)| running_every > 0 && i % running_every == 0)
                .all(|(_, n)| users.iter().any(|(u, r)| u == n && *r));
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "seeded servers ready in 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// 30 users that are not ours — names that a substring filter for `prefix-` would
    /// match among them — every third with a running server.
    pub async fn seed_others(&self, prefix: &str) -> Others {
        self.seed_others_running(prefix, 3).await
    }

    /// The same, with every `running_every`-th one running (real servers are costly).
    pub async fn seed_others_running(&self, prefix: &str, running_every: usize) -> Others {
        let mut names: Vec<String> = (1..=24).map(|i| format!("student{i}")).collect();
        names.extend([
            format!("{prefix}x-1"),
            format!("x{prefix}-1"),
            format!("alice-{prefix}-2"),
            prefix.to_string(),
            format!("{prefix}ers-{prefix}-3"),
            format!("{prefix}_4"),
        ]);
        self.seed(&names, running_every).await;
        Others {
            names,
            running_every,
        }
    }
}

/// Users that are not ours, some with their server running.
pub struct Others {
    pub names: Vec<String>,
    running_every: usize,
}

impl Others {
    /// All still exist, and exactly the ones that ran still run.
    pub async fn assert_untouched(&self, hub: &RealHub) {
        let users = hub.users().await;
        for (i, name) in self.names.iter().enumerate() {
            let state = users
                .iter()
                .find(|(u, _)| u == name)
                .map(|(_, ready)| *ready);
            let running = i % self.running_every == 0;
            assert_eq!(
                state,
                Some(running),
                "{name}: a user that is not ours was touched"
            );
        }
    }
}

fn launch(venv: &std::path::Path, env: &[(String, String)], dir: &std::path::Path) -> Child {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("hub.log"))
        .expect("hub log");
    let config =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/realhub/jupyterhub_config.py");
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(venv.join("bin/jupyterhub"))
        .arg("-f")
        .arg(config)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("hub log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("jupyterhub starts")
}

impl Drop for RealHub {
    fn drop(&mut self) {
        // The whole group: the hub, its proxy, its single-user servers.
        let group = format!("-{}", self.child.id());
        let quiet = |sig: &str| {
            let _ = Command::new("kill")
                .args(["-s", sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        quiet("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        quiet("KILL");
        let _ = self.child.wait();
    }
}

/// A soak of `soak-N` users against `hub`, quick to react (short backoffs and probes),
/// purging on exit; `extra` overrides or adds environment variables.
pub async fn soak_on(hub: &RealHub, extra: &[(&str, &str)]) -> SoakProcess {
    let url = hub.api_url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("JUPYTERHUB_ENDPOINT", url.as_str()),
        ("JUPYTERHUB_API_TOKEN", hub.token.as_str()),
        ("HUBSOAK__USERS__PREFIX", "soak"),
        ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
        ("HUBSOAK__POPULATION__MAX_SPAWNS_IN_FLIGHT", "10"),
        ("HUBSOAK__POPULATION__BACKOFF_MIN", "500ms"),
        ("HUBSOAK__POPULATION__BACKOFF_MAX", "2s"),
        ("HUBSOAK__ACTIVITY__INTERVAL", "2s"),
        ("HUBSOAK__PING__INTERVAL", "500ms"),
        ("HUBSOAK__HUB__REQUEST_TIMEOUT", "5s"),
        ("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"),
        ("HUBSOAK__SHUTDOWN__GRACE", "30s"),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push((k, v));
    }
    start_soak(&[], &vars).await
}
