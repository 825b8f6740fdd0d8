//! Raw input (flags, env, files) → one validated `Settings`. Nothing past this module
//! sees raw input, and only this module (and main.rs) reads `cli.rs`. Every problem is
//! reported, each on one line naming the flag or key, and no request is sent before all
//! input is known good. The types built here belong to their runners (`soak::settings`,
//! `oneshot::settings`, `demo`, `mockhub`, `report::command`); this module only builds them:
//! `parse` holds the small parsers, `hub` the one hub and token check, `defaults` the
//! compiled-in config/hubsoak.toml, and a file per command family.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::demo::DemoSettings;
use crate::logging::{LogFormat, LogSettings};
use crate::mockhub::MockHubSettings;
use crate::oneshot::settings::{ActivitySettings, PurgeSettings, SimulateSettings, StressSettings};
use crate::report::command::ReportJob;
use crate::soak::settings::SoakSettings;

pub mod defaults;
pub mod demo;
pub mod hub;
pub mod journey;
pub mod mockhub;
pub mod oneshot;
pub mod parse;
pub mod report;
pub mod shard;
pub mod soak;
pub mod warnings;

use parse::check_output_path;
pub use parse::{parse_duration, parse_endpoint, Problems, SettingsError};

#[derive(Debug, Clone)]
pub enum CommandSettings {
    Soak(Box<SoakSettings>),
    Validate(Box<SoakSettings>),
    Demo(Box<DemoSettings>),
    StressTest(StressSettings),
    Simulate(Box<SimulateSettings>),
    ActivityStressTest(ActivitySettings),
    Purge(PurgeSettings),
    MockHub(MockHubSettings),
    Report(ReportJob),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub log: LogSettings,
    pub command: CommandSettings,
}

impl Settings {
    /// Validates the command line; `env` is the process environment (a parameter so
    /// tests need not touch the real one).
    pub fn from_cli(
        cli: Cli,
        env: &HashMap<String, String>,
    ) -> Result<Settings, Vec<SettingsError>> {
        let mut problems = Problems::default();
        let mut log = LogSettings {
            verbose: cli.verbose,
            format: cli.log_format.unwrap_or(LogFormat::Text),
            file: cli
                .log_to_file
                .as_ref()
                .map(|p| (!p.is_empty()).then(|| PathBuf::from(p))),
        };
        if let Some(Some(path)) = &log.file {
            check_output_path("--log-to-file", &Some(path.clone()), &mut problems);
        }
        let command = match &cli.command {
            Command::Soak(args) => {
                let mut o = soak_overrides(
                    &cli,
                    args.config.clone(),
                    args.duration.clone(),
                    &mut problems,
                    &[
                        ("population.target", &args.target),
                        ("metrics.listen", &args.metrics_listen),
                        ("shutdown.on_exit", &args.on_exit),
                        ("log.status_interval", &args.status_interval),
                    ],
                );
                check_output_path("--report-json", &args.report_json, &mut problems);
                o.report_json = args.report_json.clone();
                soak_settings(&o, env, &mut problems, &mut log)
                    .map(|s| CommandSettings::Soak(Box::new(s)))
            }
            Command::Validate(args) => {
                let o = soak_overrides(&cli, args.config.clone(), None, &mut problems, &[]);
                soak_settings(&o, env, &mut problems, &mut log)
                    .map(|s| CommandSettings::Validate(Box::new(s)))
            }
            Command::Demo(args) => {
                demo::demo(args, &mut problems).map(|d| CommandSettings::Demo(Box::new(d)))
            }
            Command::StressTest(args) => {
                let scope = oneshot::scope(&cli, env, &mut problems);
                oneshot::stress(args, scope, &mut problems).map(CommandSettings::StressTest)
            }
            Command::Simulate(args) => {
                let scope = oneshot::scope(&cli, env, &mut problems);
                oneshot::simulate(args, scope, env, &mut problems)
                    .map(|s| CommandSettings::Simulate(Box::new(s)))
            }
            Command::ActivityStressTest(args) => {
                let scope = oneshot::scope(&cli, env, &mut problems);
                oneshot::activity(args, scope, &mut problems)
                    .map(CommandSettings::ActivityStressTest)
            }
            Command::Purge(args) => {
                let scope = oneshot::scope(&cli, env, &mut problems);
                oneshot::purge(args, scope, &mut problems).map(CommandSettings::Purge)
            }
            Command::Report(args) => report::report_job(&args.command, cli.force, &mut problems)
                .map(CommandSettings::Report),
            Command::MockHub(args) => {
                mockhub::mock_hub(args, &cli, env, &mut problems).map(CommandSettings::MockHub)
            }
        };
        match command {
            Some(command) if problems.0.is_empty() => Ok(Settings { log, command }),
            _ => Err(problems.0),
        }
    }
}

/// Flags the user gave, as overrides of soak setting keys.
fn soak_overrides(
    cli: &Cli,
    config_file: Option<PathBuf>,
    duration: Option<String>,
    problems: &mut Problems,
    extra: &[(&'static str, &Option<String>)],
) -> soak::SoakOverrides {
    if cli.force {
        problems.push(
            "--force",
            "only one-shot commands take --force; a soak waits for the prefix lease",
        );
    }
    if cli.dry_run {
        problems.push(
            "--dry-run",
            "the soak has no dry run; use `hubsoak validate` to check settings",
        );
    }
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let log_format = cli.log_format.map(|f| match f {
        LogFormat::Text => "text".to_string(),
        LogFormat::Json => "json".to_string(),
    });
    let mut pairs = Vec::new();
    for (key, value) in [
        ("hub.endpoint", cli.endpoint.clone()),
        ("hub.token", cli.token.clone()),
        ("hub.token_file", path(&cli.token_file)),
        ("hub.request_timeout", cli.request_timeout.clone()),
        ("hub.ca_file", path(&cli.ca_file)),
        ("users.prefix", cli.prefix.clone()),
        ("users.shard", cli.shard.clone()),
        ("users.shards", cli.shards.clone()),
        ("log.format", log_format),
    ]
    .into_iter()
    .chain(extra.iter().map(|(k, v)| (*k, (*v).clone())))
    {
        if let Some(v) = value {
            pairs.push((key, v));
        }
    }
    soak::SoakOverrides {
        config_file,
        pairs,
        duration,
        report_json: None,
    }
}

fn soak_settings(
    o: &soak::SoakOverrides,
    env: &HashMap<String, String>,
    problems: &mut Problems,
    log: &mut LogSettings,
) -> Option<SoakSettings> {
    match soak::load(o, env) {
        Ok(mut s) => {
            log.format = s.log_format;
            s.warnings = warnings::soak(&s);
            Some(s)
        }
        Err(errors) => {
            problems.0.extend(errors);
            None
        }
    }
}
