//! `hubsoak soak` settings, in layers through the `config` crate: the built-in defaults
//! (config/hubsoak.toml, compiled in) < a TOML file < the environment < flags. The merged
//! tree is then read key by key, so every problem is reported at once, naming its key.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde_json::{Map, Value};

use super::defaults::{known_keys, DEFAULTS_TOML};
use super::hub::{RawHub, FILE_KEYS};
use super::parse::{parse_duration, SettingsError};
use crate::logging::LogFormat;
use crate::names::{valid_server_name, Prefix};
use crate::soak::schedule::{Arrivals, Stage};
use crate::soak::settings::{OnExit, PopulationSettings, SoakSettings, TARGET_MAX};

/// Values from flags, which override every other layer. Only flags the user gave.
#[derive(Debug, Clone, Default)]
pub struct SoakOverrides {
    pub config_file: Option<PathBuf>,
    pub pairs: Vec<(&'static str, String)>,
    pub duration: Option<String>,
    pub report_json: Option<PathBuf>,
}

/// Merges the layers into one tree.
fn merge(o: &SoakOverrides, env: &HashMap<String, String>) -> Result<Value, SettingsError> {
    let mut b = Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
    if let Some(path) = &o.config_file {
        if let Err(e) = std::fs::metadata(path).and_then(|m| {
            if m.is_file() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a file"))
            }
        }) {
            return Err(SettingsError::new(
                "--config",
                format!("cannot read {}: {e}", path.display()),
            ));
        }
        // Parsed here first: the toml crate's message names a duplicate table or key.
        let text = std::fs::read_to_string(path).map_err(|e| {
            SettingsError::new("--config", format!("cannot read {}: {e}", path.display()))
        })?;
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(SettingsError::new(
                "--config",
                format!("{}: {}", path.display(), e.message()),
            )
            .at(e.span().map(|s| line_of(&text, s.start))));
        }
        b = b.add_source(File::from_str(&text, FileFormat::Toml));
    }
    // JupyterHub's own variables, below our HUBSOAK__ ones.
    let mut jh = Map::new();
    let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
    if let Some(e) = get("JUPYTERHUB_ENDPOINT").or_else(|| get("JUPYTERHUB_API_URL")) {
        jh.insert("endpoint".into(), Value::String(e));
    }
    if let Some(t) = get("JUPYTERHUB_API_TOKEN") {
        jh.insert("token".into(), Value::String(t));
    }
    if !jh.is_empty() {
        let json = serde_json::json!({ "hub": jh }).to_string();
        b = b.add_source(File::from_str(&json, FileFormat::Json));
    }
    let ours: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("HUBSOAK__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    b = b.add_source(
        Environment::with_prefix("HUBSOAK")
            .prefix_separator("__")
            .separator("__")
            .source(Some(ours)),
    );
    for (key, value) in &o.pairs {
        b = b
            .set_override(*key, value.clone())
            .map_err(|e| SettingsError::new(*key, e.to_string()))?;
    }
    let cfg = b.build().map_err(|e| {
        let key = if o.config_file.is_some() {
            "--config"
        } else {
            "settings"
        };
        SettingsError::new(key, e.to_string())
    })?;
    cfg.try_deserialize::<Value>()
        .map_err(|e| SettingsError::new("settings", e.to_string()))
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |t| t.matches('\n').count()) + 1
}

/// Reads typed values out of the merged tree, recording every problem.
struct Reader<'a> {
    root: &'a Value,
    problems: Vec<SettingsError>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        let mut v = self.root;
        for part in key.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(SettingsError::new(key, message));
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                self.fail(key, "must be a single value, not a table or list");
                None
            }
        }
    }

    fn duration(&mut self, key: &str, positive: bool) -> Duration {
        let Some(raw) = self.text(key) else {
            self.fail(key, "is required");
            return Duration::ZERO;
        };
        match parse_duration(key, &raw) {
            Ok(d) if positive && d.is_zero() => {
                self.fail(key, "must be more than 0s");
                d
            }
            Ok(d) => d,
            Err(e) => {
                self.problems.push(e);
                Duration::ZERO
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64, max: i64) -> i64 {
        let raw = self.text(key).unwrap_or_default();
        match raw.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                self.fail(key, format!("must be between {min} and {max} (got {n})"));
                min
            }
            Err(_) => {
                self.fail(key, format!("{raw:?} is not a whole number"));
                min
            }
        }
    }

    fn float(&mut self, key: &str, min_exclusive: f64, max: f64) -> f64 {
        let raw = self.text(key).unwrap_or_default();
        match raw.trim().parse::<f64>() {
            Ok(x) if x > min_exclusive && x <= max => x,
            Ok(x) => {
                self.fail(
                    key,
                    format!("must be more than {min_exclusive} and at most {max} (got {x})"),
                );
                max
            }
            Err(_) => {
                self.fail(key, format!("{raw:?} is not a number"));
                max
            }
        }
    }
}

/// Every leaf key of the tree, as `section.key` (user options are free-form).
fn unknown_keys(root: &Value, known: &BTreeSet<String>) -> Vec<String> {
    let mut unknown = Vec::new();
    let Value::Object(sections) = root else {
        return unknown;
    };
    for (section, table) in sections {
        match table {
            Value::Object(keys) => {
                for key in keys.keys() {
                    let full = format!("{section}.{key}");
                    if !known.contains(&full) {
                        unknown.push(full);
                    }
                }
            }
            _ => unknown.push(section.clone()),
        }
    }
    unknown
}

/// A list of paths; a single string (from the environment) is split at commas.
fn paths(r: &mut Reader, key: &str) -> Vec<PathBuf> {
    let items: Vec<String> = match r.get(key) {
        None => return Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(list)) => {
            let strings: Option<Vec<String>> = list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            match strings {
                Some(s) => s,
                None => {
                    r.fail(key, "must be a list of paths, like [\"/notebooks\"]");
                    return Vec::new();
                }
            }
        }
        Some(_) => {
            r.fail(key, "must be a list of paths, like [\"/notebooks\"]");
            return Vec::new();
        }
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// `population.stages`: a list of `{ duration, target }`, each problem named by index.
fn stages(r: &mut Reader) -> Vec<Stage> {
    let list = match r.get("population.stages") {
        None => return Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => {
            r.fail(
                "population.stages",
                "must be a list like [{ duration = \"5m\", target = 100 }]",
            );
            return Vec::new();
        }
    };
    let mut stages = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let key = |field: &str| format!("population.stages[{i}].{field}");
        let Value::Object(entry) = entry else {
            r.fail(&key("duration"), "each stage is { duration, target }");
            continue;
        };
        for k in entry
            .keys()
            .filter(|k| !["duration", "target"].contains(&k.as_str()))
        {
            r.fail(&key(k), "unknown key (a stage has duration and target)");
        }
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let duration =
            match text(entry.get("duration")).map(|d| parse_duration(&key("duration"), &d)) {
                Some(Ok(d)) if !d.is_zero() => Some(d),
                Some(Ok(_)) => {
                    r.fail(&key("duration"), "must be more than 0s");
                    None
                }
                Some(Err(e)) => {
                    r.problems.push(e);
                    None
                }
                None => {
                    r.fail(&key("duration"), "is required, like \"5m\"");
                    None
                }
            };
        let target = match text(entry.get("target")).map(|t| t.parse::<usize>()) {
            Some(Ok(t)) if t <= 100_000 => Some(t),
            _ => {
                r.fail(&key("target"), "must be a whole number from 0 to 100000");
                None
            }
        };
        if let (Some(duration), Some(target)) = (duration, target) {
            stages.push(Stage { duration, target });
        }
    }
    stages
}

/// The soak's settings from every layer, or every problem found.
pub fn load(
    o: &SoakOverrides,
    env: &HashMap<String, String>,
) -> Result<SoakSettings, Vec<SettingsError>> {
    let tree = merge(o, env).map_err(|e| vec![e])?;
    let mut r = Reader {
        root: &tree,
        problems: Vec::new(),
    };
    for key in unknown_keys(&tree, &known_keys()) {
        r.fail(&key, "unknown key (see config/hubsoak.toml for every key)");
    }

    let raw_hub = RawHub {
        endpoint: r.text("hub.endpoint"),
        token: r.text("hub.token"),
        token_file: r
            .text("hub.token_file")
            .filter(|t| !t.trim().is_empty())
            .map(PathBuf::from),
        ca_file: r
            .text("hub.ca_file")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from),
        request_timeout: r.duration("hub.request_timeout", true),
        max_in_flight: r.integer("hub.max_in_flight", 1, 10_000) as usize,
    };
    let hub = super::hub::check(raw_hub, &FILE_KEYS, &mut r.problems);
    let prefix = r.text("users.prefix").unwrap_or_default();
    let prefix = Prefix::new(&prefix)
        .map_err(|e| r.fail("users.prefix", e.to_string()))
        .ok();
    let lease_ttl = r.duration("users.lease_ttl", true);
    if !lease_ttl.is_zero() && lease_ttl < Duration::from_secs(5) {
        r.fail("users.lease_ttl", "must be at least 5s");
    }
    let shards = r.integer("users.shards", 1, 10_000) as u64;
    let shard = r.text("users.shard");
    let prefix = prefix.and_then(|p| {
        super::shard::sharded_prefix(&p, shard.as_deref(), shards, env, "users.shard")
            .map_err(|e| r.problems.push(e))
            .ok()
    });
    // The shard is the last `-N` of the sharded prefix.
    let shard = (shards > 1)
        .then(|| {
            prefix
                .as_ref()
                .and_then(|p| super::shard::ordinal_of(p.as_str()))
        })
        .flatten()
        .map(|k| (k, shards));

    let target = r.integer("population.target", 0, TARGET_MAX as i64) as usize;
    let max_spawns_in_flight = r.integer("population.max_spawns_in_flight", 1, 10_000) as usize;
    let spawn_rate = r.float("population.spawn_rate", 0.0, 100_000.0);
    let session_min = r.duration("population.session_min", true);
    let session_max = r.duration("population.session_max", true);
    if session_min > session_max {
        r.fail(
            "population.session_min",
            format!(
                "must not be longer than population.session_max ({} > {})",
                humantime::format_duration(session_min),
                humantime::format_duration(session_max)
            ),
        );
    }
    let spawn_timeout = r.duration("population.spawn_timeout", true);
    let stop_timeout = r.duration("population.stop_timeout", true);
    let backoff_min = r.duration("population.backoff_min", true);
    let backoff_max = r.duration("population.backoff_max", true);
    if backoff_min > backoff_max {
        r.fail(
            "population.backoff_min",
            "must not be longer than population.backoff_max",
        );
    }
    let server_name = r.text("population.server_name").unwrap_or_default();
    if !server_name.is_empty() && !valid_server_name(&server_name) {
        r.fail(
            "population.server_name",
            "must be 1-30 of a-z, 0-9 and '-', starting with a letter (or \"\" for the default server)",
        );
    }
    let user_options = match r.get("population.user_options") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            r.fail(
                "population.user_options",
                "must be a table, e.g. { profile = \"small\" }",
            );
            Map::new()
        }
    };
    let arrivals = match r.text("population.arrivals").as_deref() {
        Some("paced") => Arrivals::Paced,
        Some("batched") => Arrivals::Batched,
        Some("poisson") => Arrivals::Poisson,
        other => {
            r.fail(
                "population.arrivals",
                format!(
                    "{:?} must be \"paced\", \"batched\" or \"poisson\"",
                    other.unwrap_or("")
                ),
            );
            Arrivals::Paced
        }
    };
    let batch_size = r.integer("population.batch_size", 1, 100_000) as usize;
    let stages = stages(&mut r);
    let activity_interval = r.duration("activity.interval", true);
    let activity_jitter = {
        let raw = r.text("activity.jitter").unwrap_or_default();
        match raw.trim().parse::<f64>() {
            Ok(j) if (0.0..=0.5).contains(&j) => j,
            _ => {
                r.fail(
                    "activity.jitter",
                    format!("{raw:?} must be a fraction between 0.0 and 0.5"),
                );
                0.0
            }
        }
    };
    let ping_interval = r.duration("ping.interval", true);
    let listen_raw = r.text("metrics.listen").unwrap_or_default();
    let metrics_listen = listen_raw
        .parse::<SocketAddr>()
        .map_err(|_| {
            r.fail(
                "metrics.listen",
                format!("{listen_raw:?} is not an address like 0.0.0.0:9095"),
            )
        })
        .ok();
    let on_exit = match r.text("shutdown.on_exit").as_deref() {
        Some("leave") => OnExit::Leave,
        Some("stop") => OnExit::Stop,
        Some("purge") => OnExit::Purge,
        other => {
            r.fail(
                "shutdown.on_exit",
                format!(
                    "{:?} must be \"leave\", \"stop\" or \"purge\"",
                    other.unwrap_or("")
                ),
            );
            OnExit::Leave
        }
    };
    let grace = r.duration("shutdown.grace", true);
    let log_format = match r.text("log.format").as_deref() {
        Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        other => {
            r.fail(
                "log.format",
                format!("{:?} must be \"text\" or \"json\"", other.unwrap_or("")),
            );
            LogFormat::Text
        }
    };
    let status_interval = r.duration("log.status_interval", false);
    let journey_enabled = match r.text("journey.enabled").as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => {
            r.fail(
                "journey.enabled",
                format!("{:?} must be true or false", other.unwrap_or("")),
            );
            false
        }
    };
    let raw_journey = super::journey::RawJourney {
        auth: r.text("journey.auth").unwrap_or_default(),
        password: r.text("journey.password").filter(|p| !p.is_empty()),
        password_file: r
            .text("journey.password_file")
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from),
        code: r.text("journey.code").unwrap_or_default(),
        expect: r.text("journey.expect").unwrap_or_default(),
        think_time: r.text("journey.think_time").unwrap_or_default(),
        step_timeout: r.text("journey.step_timeout").unwrap_or_default(),
        kernel_name: r.text("journey.kernel_name").unwrap_or_default(),
        public_url: r.text("journey.public_url").unwrap_or_default(),
        notebooks: paths(&mut r, "journey.notebooks"),
    };
    // Checked even when disabled, so a mistake shows before it is switched on.
    let journey = super::journey::journey(
        &raw_journey,
        hub.as_ref().map(|h| &h.api_url),
        &|field| format!("journey.{field}"),
        &mut r.problems,
    )
    .filter(|_| journey_enabled);
    let duration = match &o.duration {
        None => None,
        Some(raw) => match parse_duration("--duration", raw) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                r.fail("--duration", "must be more than 0s");
                None
            }
            Err(e) => {
                r.problems.push(e);
                None
            }
        },
    };
    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    let (Some(hub), Some(prefix), Some(metrics_listen)) = (hub, prefix, metrics_listen) else {
        return Err(vec![SettingsError::new("settings", "incomplete")]);
    };
    Ok(SoakSettings {
        hub,
        prefix,
        shard,
        population: PopulationSettings {
            target,
            max_spawns_in_flight,
            spawn_rate,
            session_min,
            session_max,
            spawn_timeout,
            stop_timeout,
            backoff_min,
            backoff_max,
            server_name,
            user_options,
            arrivals,
            batch_size,
            stages,
        },
        activity_interval,
        activity_jitter,
        ping_interval,
        metrics_listen,
        on_exit,
        grace,
        log_format,
        journey,
        duration,
        status_interval,
        lease_ttl,
        report_json: o.report_json.clone(),
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_plus_endpoint_and_token_are_valid() {
        let s = load(
            &SoakOverrides::default(),
            &env(&[
                ("JUPYTERHUB_ENDPOINT", "http://h/hub/api"),
                ("JUPYTERHUB_API_TOKEN", "t0k"),
            ]),
        )
        .unwrap();
        assert_eq!(s.population.target, 10);
        assert_eq!(s.population.session_min, Duration::from_secs(600));
        assert_eq!(s.on_exit, OnExit::Leave);
        assert!(!s.to_toml().contains("t0k"));
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[population]\ntarget = 3\nspawn_rate = 10\n[hub]\nendpoint = \"http://file/hub/api\"\ntoken = \"f\"\n").unwrap();
        let o = SoakOverrides {
            config_file: Some(file),
            pairs: vec![("population.spawn_rate", "99".into())],
            duration: None,
            report_json: None,
        };
        let e = env(&[
            ("HUBSOAK__POPULATION__TARGET", "7"),
            ("JUPYTERHUB_ENDPOINT", "http://jh/hub/api"),
            ("HUBSOAK__HUB__ENDPOINT", "http://ours/hub/api"),
        ]);
        let s = load(&o, &e).unwrap();
        assert_eq!(s.population.target, 7, "env over file");
        assert_eq!(s.population.spawn_rate, 99.0, "flag over env and file");
        assert_eq!(
            s.hub.api_url.as_str(),
            "http://ours/hub/api/",
            "HUBSOAK__ over JUPYTERHUB_"
        );
    }

    #[test]
    fn journeys_are_off_by_default_and_their_password_is_redacted() {
        let base = [
            ("JUPYTERHUB_ENDPOINT", "http://h.example/hub/api"),
            ("JUPYTERHUB_API_TOKEN", "t0k"),
        ];
        let s = load(&SoakOverrides::default(), &env(&base)).unwrap();
        assert!(s.journey.is_none());
        let mut vars = base.to_vec();
        vars.extend([
            ("HUBSOAK__JOURNEY__ENABLED", "true"),
            ("HUBSOAK__JOURNEY__AUTH", "form"),
            ("HUBSOAK__JOURNEY__PASSWORD", "pa55word"),
        ]);
        let s = load(&SoakOverrides::default(), &env(&vars)).unwrap();
        let j = s.journey.as_ref().expect("enabled");
        assert_eq!(j.public_url.as_str(), "http://h.example/");
        let shown = s.to_toml();
        assert!(shown.contains("auth = \"form\""), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
    }
}
