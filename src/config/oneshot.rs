//! The one-shot commands' settings from flags and the environment: the scope they work
//! in (hub and prefix), then each command's own flags.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::hub::{RawHub, FLAGS};
use super::parse::{
    flag_or_env, parse_count, parse_duration, parse_positive_duration, Problems, SettingsError,
};
use super::report::report_settings;
use super::{defaults, journey, shard};
use crate::cli::{ActivityArgs, Cli, PurgeArgs, ServerArgs, SimulateArgs, StressTestArgs};
use crate::names::Prefix;
use crate::oneshot::settings::{
    ActivitySettings, PurgeSettings, Scope, ServerChoice, SimulateSettings, StressSettings,
};
use crate::report::threshold::actions;

/// The hub and the users a one-shot may touch: flags, else JupyterHub's environment
/// variables, else the defaults.
pub fn scope(cli: &Cli, env: &HashMap<String, String>, problems: &mut Problems) -> Option<Scope> {
    let request_timeout = problems.take(
        parse_positive_duration(
            "--request-timeout",
            &cli.request_timeout
                .clone()
                .unwrap_or_else(|| defaults::text("hub.request_timeout")),
        ),
        Duration::ZERO,
    );
    let raw = RawHub {
        endpoint: flag_or_env(
            &cli.endpoint,
            env,
            &["JUPYTERHUB_ENDPOINT", "JUPYTERHUB_API_URL"],
        ),
        token: flag_or_env(&cli.token, env, &["JUPYTERHUB_API_TOKEN"]),
        token_file: cli.token_file.clone(),
        ca_file: cli.ca_file.clone(),
        request_timeout,
        max_in_flight: defaults::text("hub.max_in_flight").parse().unwrap_or(64),
    };
    let hub = super::hub::check(raw, &FLAGS, &mut problems.0);
    let prefix = problems.take(
        Prefix::new(
            &cli.prefix
                .clone()
                .unwrap_or_else(|| defaults::text("users.prefix")),
        )
        .map(Some)
        .map_err(|e| SettingsError::new("--prefix", e.to_string())),
        None,
    );
    let shards = match &cli.shards {
        Some(raw) => problems.take(parse_count("--shards", raw, 1), 1),
        None => 1,
    };
    let prefix = prefix.and_then(|p| {
        problems.take(
            shard::sharded_prefix(&p, cli.shard.as_deref(), shards, env, "--shard").map(Some),
            None,
        )
    });
    Some(Scope {
        hub: hub?,
        prefix: prefix?,
        dry_run: cli.dry_run,
        force: cli.force,
    })
}

pub fn stress(
    args: &StressTestArgs,
    scope: Option<Scope>,
    p: &mut Problems,
) -> Option<StressSettings> {
    let count = p.take(parse_count("--count", &args.count, 1), 1);
    let batch_size = p.take(parse_count("--batch-size", &args.batch_size, 1), 1);
    let cycles = match &args.cycles {
        None => Vec::new(),
        Some(raw) => raw
            .split(':')
            .filter_map(|n| p.take(parse_count("--cycles", n, 1).map(Some), None))
            .collect(),
    };
    let spawn_timeout = p.take(
        parse_positive_duration("--spawn-timeout", &args.spawn_timeout),
        Duration::ZERO,
    );
    let stop_timeout = p.take(
        parse_positive_duration("--stop-timeout", &args.stop_timeout),
        Duration::ZERO,
    );
    let server = server_choice(&args.server, p);
    let report = report_settings(&args.report, actions::STRESS_TEST, p);
    Some(StressSettings {
        scope: scope?,
        count,
        batch_size,
        cycles,
        server,
        keep: args.keep,
        report,
        spawn_timeout,
        stop_timeout,
    })
}

fn server_choice(args: &ServerArgs, p: &mut Problems) -> ServerChoice {
    let mut options = match &args.user_options {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => Some(map),
            _ => {
                p.push(
                    "--user-options",
                    "must be a JSON object, like '{\"profile\": \"small\"}'",
                );
                None
            }
        },
    };
    if let Some(profile) = &args.profile {
        if profile.trim().is_empty() {
            p.push("--profile", "must not be empty");
        }
        options
            .get_or_insert_with(Default::default)
            .insert("profile".into(), Value::String(profile.clone()));
    }
    let server_name = args.server_name.clone().unwrap_or_default();
    if args.server_name.is_some() && !crate::names::valid_server_name(&server_name) {
        p.push(
            "--server-name",
            "must be 1-30 of a-z, 0-9 and '-', starting with a letter",
        );
    }
    ServerChoice {
        server_name,
        user_options: options.map(Value::Object),
    }
}

pub fn simulate(
    args: &SimulateArgs,
    scope: Option<Scope>,
    env: &HashMap<String, String>,
    p: &mut Problems,
) -> Option<SimulateSettings> {
    let users = p.take(parse_count("USERS", &args.users, 1), 1);
    let d =
        |p: &mut Problems, key: &str, raw: &str| p.take(parse_duration(key, raw), Duration::ZERO);
    let session_min = d(p, "--session-min", &args.session_min);
    let session_max = d(p, "--session-max", &args.session_max);
    if session_min > session_max {
        p.push("--session-min", "must not be longer than --session-max");
    }
    let start_delay_max = d(p, "--start-delay-max", &args.start_delay_max);
    let spawn_timeout = d(p, "--spawn-timeout", &args.spawn_timeout);
    let stop_timeout = d(p, "--stop-timeout", &args.stop_timeout);
    let server = server_choice(&args.server, p);
    let j = &args.journey;
    let raw = journey::RawJourney {
        auth: j.auth.clone(),
        password: env.get("HUBSOAK__JOURNEY__PASSWORD").cloned(),
        password_file: j.password_file.clone(),
        code: j.code.clone(),
        expect: j.expect.clone(),
        think_time: j.think_time.clone(),
        step_timeout: j.step_timeout.clone(),
        kernel_name: j.kernel_name.clone().unwrap_or_default(),
        public_url: j.public_url.clone().unwrap_or_default(),
        notebooks: j.notebook.clone(),
    };
    let api_url = scope.as_ref().map(|s| s.hub.api_url.clone());
    let flag = |field: &str| match field {
        "notebooks" => "--notebook".to_string(),
        _ => format!("--{}", field.replace('_', "-")),
    };
    let journey = journey::journey(&raw, api_url.as_ref(), &flag, &mut p.0);
    let report = report_settings(&args.report, actions::SIMULATE, p);
    if let Some(j) = &journey {
        let names: Vec<&str> = j.notebooks.iter().map(|n| n.name.as_str()).collect();
        for t in &report.thresholds {
            match t.notebook() {
                Some(name) if !names.contains(&name) => p.push(
                    "--threshold",
                    format!(
                        "{:?}: no notebook {name:?} in this run (notebooks: {})",
                        t.expr,
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ),
                _ => {}
            }
        }
    }
    Some(SimulateSettings {
        scope: scope?,
        users,
        session_min,
        session_max,
        start_delay_max,
        journey: journey?,
        server,
        spawn_timeout,
        stop_timeout,
        keep: args.keep,
        report,
    })
}

pub fn activity(
    args: &ActivityArgs,
    scope: Option<Scope>,
    p: &mut Problems,
) -> Option<ActivitySettings> {
    let count = p.take(parse_count("--count", &args.count, 1), 1);
    let workers = p.take(parse_count("--workers", &args.workers, 1), 1);
    let rounds = p.take(parse_count("--rounds", &args.rounds, 1), 1);
    let ping_interval = p.take(
        parse_duration("--ping-interval", &args.ping_interval),
        Duration::ZERO,
    );
    if ping_interval < Duration::from_millis(10) {
        p.push("--ping-interval", "must be at least 10ms");
    }
    let report = report_settings(&args.report, actions::ACTIVITY, p);
    Some(ActivitySettings {
        scope: scope?,
        count,
        workers,
        rounds,
        ping_interval,
        keep: args.keep,
        report,
    })
}

pub fn purge(args: &PurgeArgs, scope: Option<Scope>, p: &mut Problems) -> Option<PurgeSettings> {
    let batch_size = p.take(parse_count("--batch-size", &args.batch_size, 1), 1);
    let stop_timeout = p.take(
        parse_positive_duration("--stop-timeout", &args.stop_timeout),
        Duration::ZERO,
    );
    let report = report_settings(&args.report, actions::PURGE, p);
    Some(PurgeSettings {
        scope: scope?,
        batch_size,
        stop_timeout,
        report,
    })
}
