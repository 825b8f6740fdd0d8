//! The `hubsoak` binary: parse, validate, set up logs, run, and map how it ended to an
//! exit code, in one place (`Exit::code`): 0 all good, 1 the run finished but something
//! failed (or could not run), 2 bad input (one line each, nothing sent), 3 a threshold
//! missed, and 130 on a second signal (signals.rs).

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::error::ErrorKind;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use hubsoak::cli::Cli;
use hubsoak::config::{CommandSettings, Settings};
use hubsoak::hub::Token;
use hubsoak::mockhub::{MockHub, MockHubSettings};
use hubsoak::oneshot::{self, Outcome};
use hubsoak::out;
use hubsoak::soak::settings::SoakSettings;
use hubsoak::soak::SoakEnd;

/// How a run of hubsoak ended.
enum Exit {
    Clean,
    Failures,
    BadInput,
    ThresholdsMissed,
}

impl Exit {
    /// The one map from how hubsoak ended to its exit code.
    fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Exit::Clean => 0,
            Exit::Failures => 1,
            Exit::BadInput => 2,
            Exit::ThresholdsMissed => 3,
        })
    }

    /// Prints `error` once, as the run's one `hubsoak: error:` line.
    fn error(error: impl Display, bad_input: bool) -> Exit {
        out::error(error);
        if bad_input {
            Exit::BadInput
        } else {
            Exit::Failures
        }
    }
}

impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Exit {
        match o {
            Outcome::Clean => Exit::Clean,
            Outcome::Failures => Exit::Failures,
            Outcome::ThresholdsMissed => Exit::ThresholdsMissed,
        }
    }
}

impl From<SoakEnd> for Exit {
    fn from(end: SoakEnd) -> Exit {
        match end {
            SoakEnd::Clean => Exit::Clean,
            SoakEnd::Incomplete | SoakEnd::Unable => Exit::Failures,
        }
    }
}

fn main() -> ExitCode {
    start().code()
}

fn start() -> Exit {
    let cli = match Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = match Settings::from_cli(cli, &env) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                out::error(&e);
            }
            return Exit::BadInput;
        }
    };
    match hubsoak::logging::init(&settings.log) {
        Ok(Some(path)) => eprintln!("hubsoak: logging to {}", path.display()),
        Ok(None) => {}
        Err(e) => return Exit::error(format_args!("--log-to-file: {e}"), true),
    }
    // One thread: hubsoak waits on the network, and cross-thread wake-ups cost more CPU
    // than they save (measured: 6.4 % → 5.1 % of a core at 200 requests/s).
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(settings)),
        Err(e) => Exit::error(format_args!("cannot start the runtime: {e}"), false),
    }
}

/// clap's help and version go to stdout as usual; its errors become one line.
fn clap_exit(e: clap::Error) -> Exit {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            Exit::Clean
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Exit::BadInput
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            Exit::error(format_args!("{first} (see hubsoak --help)"), true)
        }
    }
}

async fn run(settings: Settings) -> Exit {
    let cancel = CancellationToken::new();
    if let Err(e) = hubsoak::signals::install(cancel.clone()) {
        tracing::warn!(error = %e, "cannot install signal handlers");
    }
    let oneshot = match &settings.command {
        CommandSettings::Validate(s) => {
            for w in &s.warnings {
                out::warning(w);
            }
            out::print(&s.to_toml());
            return Exit::Clean;
        }
        CommandSettings::Soak(s) => return soak((**s).clone(), cancel).await,
        CommandSettings::Demo(s) => {
            return match hubsoak::demo::run(s, cancel).await {
                Ok(end) => end.into(),
                Err(e) => {
                    let bad_input = e.is_bad_input();
                    Exit::error(e, bad_input)
                }
            };
        }
        CommandSettings::MockHub(s) => return mock_hub(s, cancel).await,
        CommandSettings::Report(job) => {
            return match hubsoak::report::command::run(job) {
                Ok(outcome) => outcome.into(),
                Err(e) => {
                    let bad_input = e.is_bad_input();
                    Exit::error(e, bad_input)
                }
            };
        }
        CommandSettings::StressTest(s) => oneshot::stress::run(s, cancel).await,
        CommandSettings::Simulate(s) => oneshot::simulate::run(s, cancel).await,
        CommandSettings::ActivityStressTest(s) => oneshot::activity::run(s, cancel).await,
        CommandSettings::Purge(s) => oneshot::purge::run(s, cancel).await,
    };
    oneshot::release_leases().await;
    match oneshot {
        Ok((outcome, _)) => outcome.into(),
        Err(e) => {
            let bad_input = e.is_bad_input();
            Exit::error(e, bad_input)
        }
    }
}

/// Binds an address the user gave: a port that cannot be bound is bad input, and bad
/// settings have exited before any port was bound.
async fn bind(key: &str, addr: SocketAddr) -> Result<TcpListener, Exit> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::error(format_args!("{key}: cannot bind {addr}: {e}"), true))
}

async fn soak(settings: SoakSettings, cancel: CancellationToken) -> Exit {
    let listener = match bind("metrics.listen", settings.metrics_listen).await {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let addr = listener.local_addr().unwrap_or(settings.metrics_listen);
    tracing::info!(%addr, "admin server listening");
    match hubsoak::soak::run(settings, listener, cancel).await {
        Ok(end) => end.into(),
        Err(e) => Exit::error(e, false),
    }
}

async fn mock_hub(s: &MockHubSettings, cancel: CancellationToken) -> Exit {
    let mut config = s.config.clone();
    let token = match &s.token {
        Some(t) => t.clone(),
        None => {
            let made = Token::random();
            // A made-up token for our own simulator: safe, and necessary, to print.
            out::unredacted_line(&format!("export JUPYTERHUB_API_TOKEN={}", made.expose()));
            made
        }
    };
    config.token = token.expose().to_string();
    let hub = MockHub::new(config);
    let listener = match bind("--listen", s.listen).await {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let addr = listener.local_addr().unwrap_or(s.listen);
    out::line(format_args!(
        "export JUPYTERHUB_ENDPOINT=http://{addr}/hub/api"
    ));
    tracing::info!(%addr, "simulated JupyterHub serving; Ctrl-C to stop");
    match hub.serve(listener, cancel).await {
        Ok(()) => Exit::Clean,
        Err(e) => Exit::error(e, false),
    }
}
