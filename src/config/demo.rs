//! `hubsoak demo`'s settings: the soak's own loader over the compiled-in defaults, with
//! the demo's shape (short sessions, journeys running the notebooks of
//! `config/notebooks/`, purge on exit) as one more layer, so the demo runs on exactly the
//! rules and limits a soak does.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::parse::{parse_count, parse_rate, Problems, SettingsError};
use super::soak::{load, SoakOverrides};
use crate::cli::DemoArgs;
use crate::demo::DemoSettings;
use crate::hub::Token;
use crate::soak::settings::TARGET_MAX;

/// The demo's layer over the defaults: fixed values.
const SHAPE: [(&str, &str); 16] = [
    ("hub.request_timeout", "10s"),
    ("users.prefix", "demo"),
    ("population.max_spawns_in_flight", "10"),
    ("population.spawn_rate", "60"),
    ("population.spawn_timeout", "60s"),
    ("population.stop_timeout", "30s"),
    ("population.backoff_min", "2s"),
    ("population.backoff_max", "20s"),
    ("activity.interval", "10s"),
    // The simulated servers run kernels too: every user runs notebooks through its session.
    ("journey.enabled", "true"),
    ("journey.think_time", "5s"),
    ("journey.step_timeout", "30s"),
    ("shutdown.on_exit", "purge"),
    ("shutdown.grace", "30s"),
    ("log.status_interval", "30s"),
    ("log.format", "text"),
];

/// The notebooks every demo journey runs (in turn), compiled in: `config/notebooks/`.
const NOTEBOOKS: [(&str, &str); 2] = [
    (
        "config/notebooks/warm-up.ipynb",
        include_str!("../../config/notebooks/warm-up.ipynb"),
    ),
    (
        "config/notebooks/analysis.ipynb",
        include_str!("../../config/notebooks/analysis.ipynb"),
    ),
];

/// The demo's flags and the soak keys they set, for messages that name the flag.
const FLAG_KEYS: [(&str, &str); 4] = [
    ("--target", "population.target"),
    ("--session-min", "population.session_min"),
    ("--session-max", "population.session_max"),
    ("--metrics-listen", "metrics.listen"),
];

fn as_flag(e: SettingsError) -> SettingsError {
    let mut e = e;
    for (flag, key) in FLAG_KEYS {
        if e.key == key {
            e.key = flag.to_string();
        }
        e.message = e.message.replace(key, flag);
    }
    e
}

pub fn demo(args: &DemoArgs, p: &mut Problems) -> Option<DemoSettings> {
    let hub_listen = args
        .hub_listen
        .parse::<SocketAddr>()
        .map_err(|_| {
            p.push(
                "--hub-listen",
                format!("{:?} is not an address like 127.0.0.1:0", args.hub_listen),
            )
        })
        .ok();
    let spawn_failure_rate = p.take(
        parse_rate("--spawn-failure-rate", &args.spawn_failure_rate),
        0.0,
    );
    // The demo keeps at least one server (a soak may keep none), at most as many as a soak.
    let target_ok = p.take(
        parse_count("--target", &args.target, 1).and_then(|t| match t {
            t if t > TARGET_MAX => Err(SettingsError::new(
                "--target",
                format!("must be from 1 to {TARGET_MAX} (got {t})"),
            )),
            _ => Ok(true),
        }),
        false,
    );
    let token = Token::random();
    // The hub's real address is known once it listens; the demo sets it then.
    let endpoint = format!(
        "http://{}/hub/api",
        hub_listen.unwrap_or(([127, 0, 0, 1], 0).into())
    );
    let mut pairs: Vec<(&'static str, String)> =
        SHAPE.iter().map(|(k, v)| (*k, v.to_string())).collect();
    pairs.extend([
        ("hub.endpoint", endpoint),
        ("hub.token", token.expose().to_string()),
        ("population.session_min", args.session_min.clone()),
        ("population.session_max", args.session_max.clone()),
        ("metrics.listen", args.metrics_listen.clone()),
    ]);
    if target_ok {
        pairs.push(("population.target", args.target.clone()));
    }
    let overrides = SoakOverrides {
        config_file: None,
        pairs,
        duration: Some(args.duration.clone()),
        report_json: None,
    };
    // The demo's own layer only: a soak's environment variables are not the demo's.
    let mut soak = load(&overrides, &HashMap::new())
        .map_err(|errors| p.0.extend(errors.into_iter().map(as_flag)))
        .ok();
    if let Some(journey) = soak.as_mut().and_then(|s| s.journey.as_mut()) {
        for (path, text) in NOTEBOOKS {
            match crate::journey::parse_notebook(std::path::Path::new(path), text) {
                Ok(notebook) => journey.notebooks.push(notebook),
                Err(e) => p.push("demo", e),
            }
        }
    }
    Some(DemoSettings {
        soak: soak?,
        hub_listen: hub_listen?,
        spawn_failure_rate,
    })
}
