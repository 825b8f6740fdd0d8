//! What a soak runs on: its settings, validated and complete (`config/` builds them from
//! the layers of input), and their view as TOML for `hubsoak validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::hub::HubSettings;
use crate::journey::{AuthMode, JourneySettings};
use crate::logging::LogFormat;
use crate::names::Prefix;
use crate::soak::schedule::{Arrivals, Stage};

/// What to do with our servers on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    Leave,
    Stop,
    Purge,
}

impl OnExit {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExit::Leave => "leave",
            OnExit::Stop => "stop",
            OnExit::Purge => "purge",
        }
    }
}

fn human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn human_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human(d, s),
        None => s.serialize_str("until stopped"),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PopulationSettings {
    pub target: usize,
    pub max_spawns_in_flight: usize,
    pub spawn_rate: f64,
    #[serde(serialize_with = "human")]
    pub session_min: Duration,
    #[serde(serialize_with = "human")]
    pub session_max: Duration,
    #[serde(serialize_with = "human")]
    pub spawn_timeout: Duration,
    #[serde(serialize_with = "human")]
    pub stop_timeout: Duration,
    #[serde(serialize_with = "human")]
    pub backoff_min: Duration,
    #[serde(serialize_with = "human")]
    pub backoff_max: Duration,
    pub server_name: String,
    pub user_options: Map<String, Value>,
    pub arrivals: Arrivals,
    pub batch_size: usize,
    /// Empty: `target` throughout.
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakSettings {
    #[serde(serialize_with = "hub_view")]
    pub hub: HubSettings,
    #[serde(serialize_with = "prefix_view")]
    pub prefix: Prefix,
    /// With shards: (this shard, how many); `prefix` is then `{users.prefix}-{shard}`.
    #[serde(skip)]
    pub shard: Option<(u64, u64)>,
    pub population: PopulationSettings,
    #[serde(serialize_with = "human")]
    pub activity_interval: Duration,
    pub activity_jitter: f64,
    #[serde(serialize_with = "human")]
    pub ping_interval: Duration,
    pub metrics_listen: SocketAddr,
    pub on_exit: OnExit,
    #[serde(serialize_with = "human")]
    pub grace: Duration,
    pub log_format: LogFormat,
    /// `None` when journeys are not enabled.
    #[serde(skip)]
    pub journey: Option<JourneySettings>,
    /// Stop by itself after this long (`--duration`); `None` runs until signalled.
    #[serde(serialize_with = "human_opt")]
    pub duration: Option<Duration>,
    /// A status line this often; zero: none.
    #[serde(serialize_with = "human")]
    pub status_interval: Duration,
    /// How long the prefix lease lasts unless renewed.
    #[serde(serialize_with = "human")]
    pub lease_ttl: Duration,
    /// `--report-json`: the run report written on exit.
    #[serde(skip)]
    pub report_json: Option<PathBuf>,
    /// Settings that are valid but cannot reach what they ask (one line each; see
    /// `config::warnings`).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn hub_view<S: serde::Serializer>(h: &HubSettings, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("hub", 5)?;
    st.serialize_field("endpoint", h.api_url.as_str())?;
    st.serialize_field("token", &h.token)?;
    st.serialize_field(
        "request_timeout",
        &humantime::format_duration(h.request_timeout).to_string(),
    )?;
    st.serialize_field("max_in_flight", &h.max_in_flight)?;
    st.serialize_field(
        "ca_file",
        &h.ca_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    )?;
    st.end()
}

fn prefix_view<S: serde::Serializer>(p: &Prefix, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

impl SoakSettings {
    /// The effective settings as TOML, token redacted (`hubsoak validate`).
    pub fn to_toml(&self) -> String {
        let mut users = match self.shard {
            None => serde_json::json!({ "prefix": self.prefix.as_str() }),
            Some((shard, shards)) => serde_json::json!({
                "prefix": self.prefix.as_str().rsplit_once('-').map_or("", |(base, _)| base),
                "shards": shards,
                "shard": shard.to_string(),
            }),
        };
        users["lease_ttl"] = humantime::format_duration(self.lease_ttl)
            .to_string()
            .into();
        let view = serde_json::json!({
            "hub": serde_json::to_value(self).ok().and_then(|v| v.get("hub").cloned()),
            "users": users,
            "population": self.population,
            "activity": {
                "interval": humantime::format_duration(self.activity_interval).to_string(),
                "jitter": self.activity_jitter,
            },
            "ping": { "interval": humantime::format_duration(self.ping_interval).to_string() },
            "metrics": { "listen": self.metrics_listen.to_string() },
            "shutdown": {
                "on_exit": self.on_exit,
                "grace": humantime::format_duration(self.grace).to_string(),
            },
            "log": {
                "format": self.log_format,
                "status_interval": humantime::format_duration(self.status_interval).to_string(),
            },
            "journey": self.journey_view(),
        });
        toml::to_string(&view).unwrap_or_default()
    }
}

impl SoakSettings {
    fn journey_view(&self) -> Value {
        let Some(j) = &self.journey else {
            return serde_json::json!({ "enabled": false });
        };
        let h = |d: Duration| humantime::format_duration(d).to_string();
        let mut view = serde_json::json!({
            "enabled": true,
            "auth": j.auth.name(),
            "code": j.code,
            "expect": j.expect,
            "think_time": h(j.think_time),
            "step_timeout": h(j.step_timeout),
            "kernel_name": j.kernel_name,
            "public_url": j.public_url.as_str(),
            // Each notebook found, so `validate` shows what a directory held.
            "notebooks": j.notebooks.iter().map(|n| n.path.display().to_string()).collect::<Vec<_>>(),
        });
        if let AuthMode::Form { password: Some(p) } = &j.auth {
            view["password"] = serde_json::to_value(p).unwrap_or(Value::Null);
        }
        view
    }
}

/// The most servers one soak keeps (the demo's soak included).
pub const TARGET_MAX: u64 = 100_000;
