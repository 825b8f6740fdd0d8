//! Raw input (flags, env, files) → one validated `Settings`. Nothing past this module
//! sees raw input. Every problem is reported, each on one line naming the flag, and
//! no request is sent before all input is known good.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::cli::{
    ActivityArgs, Cli, Command, DemoArgs, MockHubArgs, PurgeArgs, ServerArgs, SimulateArgs,
    StressTestArgs,
};
use crate::hub::{HubSettings, Token};
use crate::logging::{LogFormat, LogSettings};
use crate::mockhub::{Faults, MockConfig};

use crate::demo::DemoSettings;
use crate::mockhub::MockHubSettings;
use crate::names::Prefix;
use crate::oneshot::settings::{
    ActivitySettings, PurgeSettings, ReportSettings, ServerChoice, SimulateSettings,
    StressSettings, Target,
};
use crate::report::threshold::actions;
use crate::soak::settings::{SoakSettings, TARGET_MAX};

pub mod journey;
pub mod shard;
pub mod soak;
pub mod warnings;

/// One problem with the input, naming where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError {
            key: key.into(),
            message: one_line(&message.into()),
        }
    }

    /// Adds where in the file it is.
    pub fn at(mut self, line: Option<usize>) -> Self {
        if let Some(line) = line {
            self.message = format!("{} (line {line})", self.message);
        }
        self
    }
}

/// Folds a parser's multi-line message (a source snippet with carets) into one line,
/// keeping what it says and dropping the drawing.
fn one_line(message: &str) -> String {
    if !message.contains('\n') {
        return message.to_string();
    }
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with('|') && !l.starts_with('^'))
        .filter(|l| {
            !l.split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// Collects every error instead of stopping at the first.
#[derive(Default)]
pub struct Problems(pub Vec<SettingsError>);

impl Problems {
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(SettingsError::new(key, message));
    }

    /// The value, or `fallback` with the error recorded.
    pub fn take<T>(&mut self, result: Result<T, SettingsError>, fallback: T) -> T {
        result.unwrap_or_else(|e| {
            self.0.push(e);
            fallback
        })
    }
}

/// `--report-json` and `--threshold`s, checked against the actions of the command's
/// report (`known`).
fn report_settings(
    args: &crate::cli::ReportArgs,
    known: &[&str],
    p: &mut Problems,
) -> ReportSettings {
    check_output_path("--report-json", &args.report_json, p);
    let thresholds = args
        .thresholds
        .iter()
        .filter_map(|t| {
            crate::report::threshold::Threshold::parse_for(t, known)
                .map_err(|e| p.push("--threshold", e))
                .ok()
        })
        .collect();
    ReportSettings {
        json: args.report_json.clone(),
        thresholds,
    }
}

#[derive(Debug, Clone)]
pub enum CommandSettings {
    Soak(Box<SoakSettings>),
    Validate(Box<SoakSettings>),
    Demo(DemoSettings),
    StressTest(StressSettings),
    Simulate(Box<SimulateSettings>),
    ActivityStressTest(ActivitySettings),
    Purge(PurgeSettings),
    MockHub(MockHubSettings),
    Report(ReportJob),
}

/// A `report` subcommand, its inputs checked to exist.
#[derive(Debug, Clone)]
pub enum ReportJob {
    Merge {
        reports: Vec<PathBuf>,
        output: PathBuf,
    },
    Diff {
        base: PathBuf,
        new: PathBuf,
        /// 0.1 = 10 %.
        tolerance: f64,
        thresholds: Vec<crate::report::threshold::DeltaThreshold>,
    },
    Html {
        report: PathBuf,
        output: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub log: LogSettings,
    pub command: CommandSettings,
}

/// Parses "90s", "5m", "1h 30m", "250ms".
pub fn parse_duration(key: &str, raw: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        SettingsError::new(
            key,
            format!("{raw:?} is not a duration like \"90s\" or \"5m\" ({e})"),
        )
    })
}

/// A duration where zero makes no sense (a timeout, a run's length).
fn parse_positive_duration(key: &str, raw: &str) -> Result<Duration, SettingsError> {
    match parse_duration(key, raw)? {
        d if d.is_zero() => Err(SettingsError::new(key, "must be more than 0s")),
        d => Ok(d),
    }
}

/// The most of anything hubsoak counts (users, batch sizes, workers, rounds).
const COUNT_MAX: u64 = u32::MAX as u64;

fn parse_count(key: &str, raw: &str, min: u64) -> Result<u64, SettingsError> {
    let out_of_range = |got: &str| {
        SettingsError::new(
            key,
            format!("must be from {min} to {COUNT_MAX} (got {got})"),
        )
    };
    let trimmed = raw.trim();
    if !trimmed.is_empty()
        && trimmed
            .strip_prefix('-')
            .unwrap_or(trimmed)
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        // A whole number, perhaps too big for any integer type.
        return match trimmed.parse::<i128>() {
            Ok(n) if n >= min as i128 && n <= COUNT_MAX as i128 => Ok(n as u64),
            _ => Err(out_of_range(trimmed)),
        };
    }
    Err(SettingsError::new(
        key,
        format!("{raw:?} is not a whole number (from {min} to {COUNT_MAX})"),
    ))
}

fn parse_rate(key: &str, raw: &str) -> Result<f64, SettingsError> {
    match raw.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(SettingsError::new(
            key,
            format!("{raw:?} is not a probability between 0.0 and 1.0"),
        )),
    }
}

/// The hub API base from what operators pass: `https://hub/hub/api`, with or without a
/// trailing slash, or just the hub's root URL (`/hub/api/` is then added).
pub fn parse_endpoint(key: &str, raw: &str) -> Result<Url, SettingsError> {
    let bad =
        |why: &str| SettingsError::new(key, format!("{raw:?} is not a usable hub URL: {why}"));
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in the token, not the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let path = match segments.as_slice() {
        [.., "hub", "api"] => format!("{path}/"),
        // The hub's own URL, e.g. https://host/hub or https://host/jhub/hub.
        [.., "hub"] => format!("{path}/api/"),
        s if s.contains(&"hub") || s.contains(&"user") => {
            return Err(bad(
                "it is a page or API call inside the hub; give the hub's API \
                 (https://host/hub/api), the hub (https://host/hub) or its root \
                 (https://host/, https://host/BASE_URL/)",
            ))
        }
        // The root, or a base_url.
        _ => format!("{path}/hub/api/"),
    };
    url.set_path(&path);
    Ok(url)
}

/// A CA file must hold at least one PEM certificate: checked before the first request.
pub fn check_ca_file(key: &str, path: &Path) -> Result<(), SettingsError> {
    let pem = std::fs::read(path)
        .map_err(|e| SettingsError::new(key, format!("cannot read {}: {e}", path.display())))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(SettingsError::new(
            key,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        )),
        Err(e) => Err(SettingsError::new(
            key,
            format!("{} is not a PEM certificate bundle: {e}", path.display()),
        )),
    }
}

/// The token from a file (if given) or the flag/env value.
pub fn resolve_token(
    key: &str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Token, SettingsError> {
    if let Some(path) = file {
        let raw = std::fs::read_to_string(path).map_err(|e| {
            SettingsError::new(
                "--token-file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        return Token::new(&raw)
            .map_err(|e| SettingsError::new("--token-file", format!("{}: {e}", path.display())));
    }
    match value {
        Some(v) => Token::new(v).map_err(|e| SettingsError::new(key, e.to_string())),
        None => Err(SettingsError::new(
            key,
            "no API token: pass -t/--token or --token-file, or set JUPYTERHUB_API_TOKEN",
        )),
    }
}

/// The report path must be writable where it points, checked before the run.
fn check_output_path(key: &str, path: &Option<PathBuf>, problems: &mut Problems) {
    let Some(path) = path else {
        return;
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if path.is_dir() {
        problems.push(
            key,
            format!("{} is a directory; give a file's path", path.display()),
        );
    } else if !parent.is_dir() {
        problems.push(
            key,
            format!("directory {} does not exist", parent.display()),
        );
    } else if let Err(e) = probe_writable(path) {
        problems.push(key, format!("cannot write {}: {e}", path.display()));
    }
}

/// Opens `path` for writing without changing it (an empty file made for the probe is
/// removed again).
fn probe_writable(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::fs::remove_file(path)
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
            Command::Demo(args) => demo(args, &mut problems).map(CommandSettings::Demo),
            Command::StressTest(args) => {
                let target = target(&cli, env, &mut problems);
                stress(args, target, &mut problems).map(CommandSettings::StressTest)
            }
            Command::Simulate(args) => {
                let target = target(&cli, env, &mut problems);
                simulate(args, target, env, &mut problems)
                    .map(|s| CommandSettings::Simulate(Box::new(s)))
            }
            Command::ActivityStressTest(args) => {
                let target = target(&cli, env, &mut problems);
                activity(args, target, &mut problems).map(CommandSettings::ActivityStressTest)
            }
            Command::Purge(args) => {
                let target = target(&cli, env, &mut problems);
                purge(args, target, &mut problems).map(CommandSettings::Purge)
            }
            Command::Report(args) => {
                report_job(&args.command, &mut problems).map(CommandSettings::Report)
            }
            Command::MockHub(args) => {
                mock_hub(args, &cli, env, &mut problems).map(CommandSettings::MockHub)
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

fn demo(args: &DemoArgs, p: &mut Problems) -> Option<DemoSettings> {
    let addr = |p: &mut Problems, key: &str, raw: &str| {
        raw.parse::<SocketAddr>()
            .map_err(|_| {
                p.push(
                    key,
                    format!("{raw:?} is not an address like 127.0.0.1:9095"),
                )
            })
            .ok()
    };
    let metrics_listen = addr(p, "--metrics-listen", &args.metrics_listen);
    let hub_listen = addr(p, "--hub-listen", &args.hub_listen);
    let target = p.take(
        parse_count("--target", &args.target, 1).and_then(|t| {
            if t > TARGET_MAX {
                Err(SettingsError::new(
                    "--target",
                    format!("must be from 1 to {} (got {t})", TARGET_MAX),
                ))
            } else {
                Ok(t)
            }
        }),
        1,
    ) as usize;
    let spawn_failure_rate = p.take(
        parse_rate("--spawn-failure-rate", &args.spawn_failure_rate),
        0.0,
    );
    let duration = p.take(
        parse_positive_duration("--duration", &args.duration),
        Duration::ZERO,
    );
    if duration.is_zero() {
        p.push("--duration", "must be more than 0s");
    }
    let session_min = p.take(
        parse_duration("--session-min", &args.session_min),
        Duration::ZERO,
    );
    let session_max = p.take(
        parse_duration("--session-max", &args.session_max),
        Duration::ZERO,
    );
    if session_min.is_zero() || session_min > session_max {
        p.push(
            "--session-min",
            "must be more than 0s and not longer than --session-max",
        );
    }
    Some(DemoSettings {
        session_min,
        session_max,
        metrics_listen: metrics_listen?,
        hub_listen: hub_listen?,
        target,
        spawn_failure_rate,
        duration,
    })
}

/// The first non-empty of the flag and the environment variables, in order.
fn flag_or_env(
    flag: &Option<String>,
    env: &HashMap<String, String>,
    vars: &[&str],
) -> Option<String> {
    flag.clone()
        .into_iter()
        .chain(vars.iter().filter_map(|v| env.get(*v).cloned()))
        .find(|v| !v.trim().is_empty())
}

fn target(cli: &Cli, env: &HashMap<String, String>, problems: &mut Problems) -> Option<Target> {
    let endpoint = flag_or_env(
        &cli.endpoint,
        env,
        &["JUPYTERHUB_ENDPOINT", "JUPYTERHUB_API_URL"],
    );
    let api_url = match endpoint {
        Some(raw) => problems.take(parse_endpoint("--endpoint", &raw).map(Some), None),
        None => {
            problems.push(
                "--endpoint",
                "no hub URL: pass -e/--endpoint or set JUPYTERHUB_ENDPOINT (or JUPYTERHUB_API_URL)",
            );
            None
        }
    };
    let token_value = flag_or_env(&cli.token, env, &["JUPYTERHUB_API_TOKEN"]);
    let token = problems.take(
        resolve_token("--token", token_value.as_deref(), cli.token_file.as_deref()).map(Some),
        None,
    );
    let request_timeout = problems.take(
        parse_duration(
            "--request-timeout",
            cli.request_timeout.as_deref().unwrap_or("30s"),
        )
        .and_then(|d| {
            if d.is_zero() {
                Err(SettingsError::new(
                    "--request-timeout",
                    "must be more than 0s",
                ))
            } else {
                Ok(d)
            }
        }),
        Duration::from_secs(30),
    );
    let prefix = problems.take(
        Prefix::new(cli.prefix.as_deref().unwrap_or("hubsoak"))
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
    if let Some(ca) = &cli.ca_file {
        if let Err(e) = check_ca_file("--ca-file", ca) {
            problems.0.push(e);
        }
    }
    Some(Target {
        hub: HubSettings {
            api_url: api_url?,
            token: token?,
            token_file: cli.token_file.clone(),
            request_timeout,
            ca_file: cli.ca_file.clone(),
            max_in_flight: 64,
        },
        prefix: prefix?,
        dry_run: cli.dry_run,
        force: cli.force,
    })
}

fn stress(
    args: &StressTestArgs,
    target: Option<Target>,
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
        target: target?,
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

fn report_job(cmd: &crate::cli::ReportCommand, p: &mut Problems) -> Option<ReportJob> {
    use crate::cli::ReportCommand;
    let input = |p: &mut Problems, key: &str, path: &PathBuf| {
        if !path.is_file() {
            p.push(key, format!("{} is not a readable file", path.display()));
        }
    };
    Some(match cmd {
        ReportCommand::Merge { reports, output } => {
            for r in reports {
                input(p, "REPORT", r);
            }
            check_output_path("--output", &Some(output.clone()), p);
            ReportJob::Merge {
                reports: reports.clone(),
                output: output.clone(),
            }
        }
        ReportCommand::Diff {
            base,
            new,
            tolerance,
            thresholds,
        } => {
            input(p, "BASE", base);
            input(p, "NEW", new);
            let raw = tolerance.trim();
            let tolerance = match raw.strip_suffix('%').unwrap_or(raw).trim().parse::<f64>() {
                Ok(t) if (0.0..=1000.0).contains(&t) => t / 100.0,
                _ => {
                    p.push(
                        "--tolerance",
                        format!("{raw:?} is not a percentage like 10%"),
                    );
                    0.1
                }
            };
            let thresholds = thresholds
                .iter()
                .filter_map(|t| {
                    crate::report::threshold::DeltaThreshold::parse_for(t, actions::ANY)
                        .map_err(|e| p.push("--threshold", e))
                        .ok()
                })
                .collect();
            ReportJob::Diff {
                base: base.clone(),
                new: new.clone(),
                tolerance,
                thresholds,
            }
        }
        ReportCommand::Html { report, output } => {
            input(p, "REPORT", report);
            check_output_path("--output", &Some(output.clone()), p);
            ReportJob::Html {
                report: report.clone(),
                output: output.clone(),
            }
        }
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

fn simulate(
    args: &SimulateArgs,
    target: Option<Target>,
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
    };
    let api_url = target.as_ref().map(|t| t.hub.api_url.clone());
    let flag = |field: &str| format!("--{}", field.replace('_', "-"));
    let journey = journey::journey(&raw, api_url.as_ref(), &flag, &mut p.0);
    let report = report_settings(&args.report, actions::SIMULATE, p);
    Some(SimulateSettings {
        target: target?,
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

fn activity(
    args: &ActivityArgs,
    target: Option<Target>,
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
        target: target?,
        count,
        workers,
        rounds,
        ping_interval,
        keep: args.keep,
        report,
    })
}

fn purge(args: &PurgeArgs, target: Option<Target>, p: &mut Problems) -> Option<PurgeSettings> {
    let batch_size = p.take(parse_count("--batch-size", &args.batch_size, 1), 1);
    let stop_timeout = p.take(
        parse_positive_duration("--stop-timeout", &args.stop_timeout),
        Duration::ZERO,
    );
    let report = report_settings(&args.report, actions::PURGE, p);
    Some(PurgeSettings {
        target: target?,
        batch_size,
        stop_timeout,
        report,
    })
}

fn parse_range(key: &str, raw: &str) -> Result<std::ops::RangeInclusive<u64>, SettingsError> {
    let bad = || {
        SettingsError::new(
            key,
            format!("{raw:?} is not a range of seconds like \"30-60\""),
        )
    };
    let (lo, hi) = raw.split_once('-').unwrap_or((raw, raw));
    let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

fn mock_hub(
    args: &MockHubArgs,
    cli: &Cli,
    env: &HashMap<String, String>,
    p: &mut Problems,
) -> Option<MockHubSettings> {
    let listen = p.take(
        args.listen.parse::<SocketAddr>().map(Some).map_err(|_| {
            SettingsError::new(
                "--listen",
                format!("{:?} is not an address like 127.0.0.1:8000", args.listen),
            )
        }),
        None,
    );
    let token_value = flag_or_env(&cli.token, env, &["JUPYTERHUB_API_TOKEN"]);
    let token = match (&cli.token_file, &token_value) {
        (None, None) => None,
        (file, value) => p.take(
            resolve_token("--token", value.as_deref(), file.as_deref()).map(Some),
            None,
        ),
    };
    let d =
        |p: &mut Problems, key: &str, raw: &str| p.take(parse_duration(key, raw), Duration::ZERO);
    let limit = |p: &mut Problems, key: &str, raw: &Option<String>| {
        raw.as_ref()
            .map(|r| p.take(parse_count(key, r, 1), 1) as usize)
    };
    let config = MockConfig {
        token: String::new(),
        version: args.hub_version.clone(),
        spawn_delay: d(p, "--spawn-delay", &args.spawn_delay),
        spawn_jitter: d(p, "--spawn-jitter", &args.spawn_jitter),
        stop_delay: d(p, "--stop-delay", &args.stop_delay),
        spawn_failure_rate: p.take(
            parse_rate("--spawn-failure-rate", &args.spawn_failure_rate),
            0.0,
        ),
        concurrent_spawn_limit: limit(p, "--concurrent-spawn-limit", &args.concurrent_spawn_limit),
        active_server_limit: limit(p, "--active-server-limit", &args.active_server_limit),
        retry_after: p.take(parse_range("--retry-after", &args.retry_after), 30..=60),
        slow_spawn_timeout: d(p, "--slow-spawn-timeout", &args.slow_spawn_timeout),
        slow_stop_timeout: d(p, "--slow-stop-timeout", &args.slow_stop_timeout),
        allow_named_servers: args.allow_named_servers,
        authenticate_prometheus: !args.public_metrics,
        faults: Faults {
            server_error_rate: p.take(
                parse_rate("--server-error-rate", &args.server_error_rate),
                0.0,
            ),
            added_latency: d(p, "--added-latency", &args.added_latency),
            malformed_json_rate: p.take(
                parse_rate("--malformed-json-rate", &args.malformed_json_rate),
                0.0,
            ),
            drop_rate: p.take(parse_rate("--drop-rate", &args.drop_rate), 0.0),
            ..Faults::default()
        },
        ..MockConfig::default()
    };
    Some(MockHubSettings {
        listen: listen?,
        token,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_become_one_line() {
        let e = SettingsError::new(
            "--config",
            "TOML parse error at line 1, column 12\n  |\n1 | [population\n  |            ^\nunclosed table, expected `]`\n",
        );
        assert_eq!(
            e.to_string(),
            "--config: TOML parse error at line 1, column 12: unclosed table, expected `]`"
        );
    }

    #[test]
    fn endpoint_forms() {
        let ok = |raw: &str| parse_endpoint("e", raw).unwrap().to_string();
        assert_eq!(ok("http://h:8000/hub/api"), "http://h:8000/hub/api/");
        assert_eq!(ok("http://h:8000/hub/api/"), "http://h:8000/hub/api/");
        assert_eq!(ok("https://h/"), "https://h/hub/api/");
        assert_eq!(ok("https://h/prefix"), "https://h/prefix/hub/api/");
        for bad in [
            "h:8000",
            "ftp://h/hub/api",
            "http://",
            "not a url",
            "http://u:p@h/hub/api",
        ] {
            assert!(parse_endpoint("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(parse_count("c", "15", 1), Ok(15));
        assert_eq!(
            parse_count("c", "0", 1).unwrap_err().message,
            "must be from 1 to 4294967295 (got 0)"
        );
        assert_eq!(
            parse_count("c", "99999999999999999999999", 1)
                .unwrap_err()
                .message,
            "must be from 1 to 4294967295 (got 99999999999999999999999)"
        );
        assert!(parse_count("c", "-3", 1).is_err());
        assert!(parse_count("c", "x", 1).is_err());
        assert_eq!(parse_duration("d", "90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("d", "5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("d", "soon").is_err());
        assert_eq!(parse_range("r", "1-2"), Ok(1..=2));
        assert!(parse_range("r", "5-1").is_err());
    }
}
