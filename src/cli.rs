//! The command line as the user types it (clap). Nothing here is validated beyond
//! its shape; `config.rs` turns it into `Settings`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hubsoak",
    version,
    about = "Load, stress and soak testing for JupyterHub",
    long_about = None,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The hub API URL, e.g. https://hub.example.org/hub/api [env: JUPYTERHUB_ENDPOINT,
    /// else JUPYTERHUB_API_URL]
    #[arg(
        short = 'e',
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,

    /// An API token with the scopes listed in the README [env: JUPYTERHUB_API_TOKEN]
    #[arg(short = 't', long, global = true, help_heading = "Global options")]
    pub token: Option<String>,

    /// Read the token from this file instead (takes precedence over --token)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,

    /// Our users are named PREFIX-N; no other user is ever touched [default: hubsoak]
    #[arg(long, global = true, help_heading = "Global options")]
    pub prefix: Option<String>,

    /// With --shards N: this replica's shard, 0 to N-1; its users are PREFIX-SHARD-N
    /// [env: HUBSOAK_SHARD, else a StatefulSet pod's ordinal]
    #[arg(long, global = true, help_heading = "Global options", value_name = "K")]
    pub shard: Option<String>,

    /// Replicas splitting our users between them, each owning one shard [default: 1]
    #[arg(long, global = true, help_heading = "Global options", value_name = "N")]
    pub shards: Option<String>,

    /// Send no state-changing request; print the plan
    #[arg(long, global = true, help_heading = "Global options")]
    pub dry_run: bool,

    /// Run a one-shot command on a prefix that another hubsoak holds (its lease)
    #[arg(long, global = true, help_heading = "Global options")]
    pub force: bool,

    /// Also write logs to a file: --log-to-file=PATH, or a new file in the temp dir
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        value_name = "PATH"
    )]
    pub log_to_file: Option<String>,

    /// More detail in logs (-v debug, -vv trace of hubsoak's own modules)
    #[arg(short = 'v', long, global = true,
        help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log format [default: text]
    #[arg(long, global = true, help_heading = "Global options", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Limit for one attempt of one API call [default: 30s]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DURATION"
    )]
    pub request_timeout: Option<String>,

    /// Extra CA certificates (PEM) to trust for https
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

pub use crate::logging::LogFormat;

/// Global flags that only commands talking to a hub read: `mock-hub` (which is a hub)
/// neither shows nor takes them.
pub const HUB_CLIENT_FLAGS: [(&str, &str); 8] = [
    ("endpoint", "--endpoint"),
    ("prefix", "--prefix"),
    ("shard", "--shard"),
    ("shards", "--shards"),
    ("dry_run", "--dry-run"),
    ("force", "--force"),
    ("request_timeout", "--request-timeout"),
    ("ca_file", "--ca-file"),
];

impl Cli {
    /// The process's arguments, parsed; each subcommand's help lists the flags it reads.
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        let cmd = Cli::command();
        // A subcommand that has an argument of a global's id keeps its own: mock-hub
        // gets hidden copies of the globals it does not read (refused if given).
        let hidden: Vec<clap::Arg> = cmd
            .get_arguments()
            .filter(|a| HUB_CLIENT_FLAGS.iter().any(|(id, _)| a.get_id() == *id))
            .map(|a| a.clone().hide(true))
            .collect();
        let cmd = cmd.mut_subcommand("mock-hub", |sub| sub.args(hidden));
        Cli::from_arg_matches(&cmd.try_get_matches()?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create users in batches, start their servers, time each spawn, then stop and delete
    #[command(after_help = "Examples:
  hubsoak -e https://hub.example.org/hub/api stress-test -c 100 -b 10
  hubsoak stress-test --dry-run -c 300
  hubsoak stress-test --cycles 10:50:100 --threshold 'spawn_p95<60s'
  hubsoak stress-test --threshold 'spawn_p95<90s' --threshold 'failure_ratio<0.01' --report-json run.json")]
    StressTest(StressTestArgs),
    /// Post activity for many users at once while timing the hub's answers
    #[command(after_help = "Examples:
  hubsoak activity-stress-test -c 100 --workers 20 --rounds 5
  hubsoak activity-stress-test --threshold 'activity_p95<500ms' --threshold 'ping_p99<1s'")]
    ActivityStressTest(ActivityArgs),
    /// Stop and delete every user named PREFIX-…, and no other
    #[command(after_help = "Examples:
  hubsoak purge --dry-run
  hubsoak --prefix loadtest purge -b 20
  hubsoak purge --threshold 'stop_p95<30s' --threshold 'failure_ratio<0.01'")]
    Purge(PurgeArgs),
    /// Simulated users arrive, spawn, run code in a kernel for a session, and leave
    #[command(after_help = "Examples:
  hubsoak simulate 20 --session-min 1m --session-max 3m
  hubsoak simulate 50 --auth form --password-file pw.txt
  hubsoak simulate 20 --threshold 'execute_p95<2s' --threshold 'kernel_start_p95<10s'")]
    Simulate(SimulateArgs),
    /// Keep a population of simulated users alive and export Prometheus metrics
    Soak(SoakArgs),
    /// Check soak settings: print the effective settings, or every error (exit 2)
    Validate(ValidateArgs),
    /// Run a soak against the built-in simulator, in one process
    Demo(DemoArgs),
    /// Run the JupyterHub simulator
    MockHub(MockHubArgs),
    /// Merge, compare or render run reports (the JSON of --report-json); no hub needed
    Report(ReportCommandArgs),
}

#[derive(Debug, Args)]
pub struct ReportCommandArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// One report from the reports of runs that ran side by side (replicas): counts
    /// added, latency histograms merged exactly
    Merge {
        /// The reports to merge
        #[arg(required = true, num_args = 1.., value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Where to write the merged report
        #[arg(short = 'o', long, value_name = "PATH")]
        output: PathBuf,
    },
    /// Compare two runs: latency, failure ratios, request failures by reason and retries,
    /// regressions flagged; runs of different commands need the global --force
    #[command(after_help = "Examples:
  hubsoak report diff before.json after.json
  hubsoak report diff before.json after.json --tolerance 20% --threshold 'spawn_p95<+20%'")]
    Diff {
        /// The reference run
        base: PathBuf,
        /// The run to judge
        new: PathBuf,
        /// How much worse a figure may get before it is flagged (e.g. 10%)
        #[arg(long, default_value = "10%")]
        tolerance: String,
        /// Pass only if this change holds, e.g. 'spawn_p95<+20%' or 'failure_ratio<0.01'
        /// (repeatable); a miss exits with code 3
        #[arg(long = "threshold", value_name = "EXPR")]
        thresholds: Vec<String>,
    },
    /// The report as a self-contained HTML page with charts
    Html {
        /// The report to render
        report: PathBuf,
        /// Where to write the page
        #[arg(short = 'o', long, value_name = "PATH")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// A TOML settings file (every key: config/hubsoak.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// population.target
    #[arg(long, allow_hyphen_values = true)]
    pub target: Option<String>,
    /// metrics.listen, e.g. 127.0.0.1:9095
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// shutdown.on_exit: leave, stop or purge
    #[arg(long, value_name = "POLICY")]
    pub on_exit: Option<String>,
    /// Stop by itself after this long (then apply on_exit)
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// log.status_interval: a status line this often (0s: none)
    #[arg(long, value_name = "DURATION")]
    pub status_interval: Option<String>,
    /// Write the run report (JSON, since start) here on exit, for `report diff`
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A TOML settings file (every key: config/hubsoak.toml)
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the soak's /metrics is served
    #[arg(long, default_value = "127.0.0.1:9095", value_name = "ADDR")]
    pub metrics_listen: String,
    /// Where the simulated hub listens
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub hub_listen: String,
    /// Servers to keep running
    #[arg(long, default_value = "20", allow_hyphen_values = true)]
    pub target: String,
    /// Probability that a simulated spawn fails
    #[arg(long, default_value = "0.05")]
    pub spawn_failure_rate: String,
    /// Stop by itself after this long
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub duration: String,
    /// Shortest session before a server is replaced
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub session_min: String,
    /// Longest session before a server is replaced
    #[arg(long, default_value = "90s", value_name = "DURATION")]
    pub session_max: String,
}

#[derive(Debug, Args)]
pub struct StressTestArgs {
    /// Users (and servers) to create
    #[arg(short = 'c', long, default_value = "100", allow_hyphen_values = true)]
    pub count: String,
    /// Users created per request, and servers started at once
    #[arg(short = 'b', long, default_value = "10", allow_hyphen_values = true)]
    pub batch_size: String,
    /// Rising rounds instead of one run, e.g. 10:20:30: each round starts that many
    /// servers at once (overriding -c and -b), then stops them; each reported on its own
    #[arg(long, value_name = "N:N:…")]
    pub cycles: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Keep the users and their servers running
    #[arg(short = 'k', long)]
    pub keep: bool,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Give up on a spawn this long after it was planned
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub spawn_timeout: String,
    /// Give up on a stop this long after it was asked for
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub stop_timeout: String,
}

/// Where the run report goes, and what it must show to pass.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the run report as JSON here
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Pass only if this holds (repeatable; examples below); a miss exits with code 3
    /// (see README: Thresholds)
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

/// Which server to start, and how.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// A KubeSpawner profile slug, sent as user option "profile"
    #[arg(short = 'p', long)]
    pub profile: Option<String>,
    /// User options as a JSON object, sent with every start
    #[arg(long, value_name = "JSON")]
    pub user_options: Option<String>,
    /// Start this named server instead of the default one (needs allow_named_servers)
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Simulated users
    pub users: String,
    /// Shortest session (time between a server being ready and being stopped)
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub session_min: String,
    /// Longest session
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub session_max: String,
    /// Users arrive at uniformly random times within this long from the start
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub start_delay_max: String,
    #[command(flatten)]
    pub journey: JourneyArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Give up on a spawn this long after it was asked for
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub spawn_timeout: String,
    /// Give up on a stop this long after it was asked for
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub stop_timeout: String,
    /// Keep the users this run created (their servers are stopped all the same)
    #[arg(short = 'k', long)]
    pub keep: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// What each simulated user does on their server.
#[derive(Debug, Args)]
pub struct JourneyArgs {
    /// How users reach their server: "token" (hubsoak's token, needs access:servers),
    /// "user-token" (a token made for each user, needs the tokens scope) or "form" (the
    /// hub's login form, e.g. DummyAuthenticator)
    #[arg(long, default_value = "token", value_name = "MODE")]
    pub auth: String,
    /// Form login password, read from this file [env: HUBSOAK__JOURNEY__PASSWORD]
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Code each user executes, again and again through the session
    #[arg(long, default_value = "5 * 4")]
    pub code: String,
    /// The output must contain this ("" accepts any output)
    #[arg(long, default_value = "20", allow_hyphen_values = true)]
    pub expect: String,
    /// Pause between executions
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub think_time: String,
    /// Limit for each step (login, kernel start, one execution, kernel stop)
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub step_timeout: String,
    /// The kernel to start [default: the server's default kernel]
    #[arg(long, value_name = "NAME")]
    pub kernel_name: Option<String>,
    /// The hub's public URL, where /hub/login and /user/NAME/ are [default: the
    /// endpoint without /hub/api]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Run this notebook's code cells instead of --code: an .ipynb file, or a directory
    /// searched for them (repeatable; at most 50 notebooks)
    #[arg(long, value_name = "PATH")]
    pub notebook: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// Users to post activity for
    #[arg(short = 'c', long, default_value = "100", allow_hyphen_values = true)]
    pub count: String,
    /// Activity requests in flight at once
    #[arg(short = 'w', long, default_value = "100", allow_hyphen_values = true)]
    pub workers: String,
    /// Activity posts per user
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub rounds: String,
    /// Time between pings of GET /users/{first}
    #[arg(long, default_value = "200ms", value_name = "DURATION")]
    pub ping_interval: String,
    /// Keep the users this run created
    #[arg(short = 'k', long)]
    pub keep: bool,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Users stopped and deleted at once
    #[arg(short = 'b', long, default_value = "10", allow_hyphen_values = true)]
    pub batch_size: String,
    /// Give up on a stop this long after it was asked for
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub stop_timeout: String,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct MockHubArgs {
    /// Address to serve on; the API is at http://ADDR/hub/api
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Time from start request to ready
    #[arg(long, default_value = "2s")]
    pub spawn_delay: String,
    /// A random extra 0..=JITTER per spawn
    #[arg(long, default_value = "0s")]
    pub spawn_jitter: String,
    /// Added to each spawn for pulling the image (0s: the image is present); the
    /// progress stream reports Pulling and Pulled as KubeSpawner does
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub image_pull_delay: String,
    /// Of the spawn delay, the pod's scheduling [default: a tenth]
    #[arg(long, value_name = "DURATION")]
    pub scheduling_delay: Option<String>,
    /// Of the spawn delay, the container's start [default: a fifth]
    #[arg(long, value_name = "DURATION")]
    pub container_start_delay: Option<String>,
    /// Time from stop request to stopped
    #[arg(long, default_value = "0s")]
    pub stop_delay: String,
    /// Probability that a spawn fails (0.0-1.0)
    #[arg(long, default_value = "0.0")]
    pub spawn_failure_rate: String,
    /// Pending spawns beyond which starts get 429 + Retry-After
    #[arg(long)]
    pub concurrent_spawn_limit: Option<String>,
    /// Active servers beyond which starts get 429 without Retry-After
    #[arg(long)]
    pub active_server_limit: Option<String>,
    /// Retry-After seconds sent with 429, as MIN-MAX
    #[arg(long, default_value = "30-60")]
    pub retry_after: String,
    /// A start answers 202 instead of 201 when not ready within this
    #[arg(long, default_value = "10s")]
    pub slow_spawn_timeout: String,
    /// A stop answers 202 instead of 204 when not done within this
    #[arg(long, default_value = "10s")]
    pub slow_stop_timeout: String,
    /// Allow named servers
    #[arg(long)]
    pub allow_named_servers: bool,
    /// Serve /hub/metrics without a token (JupyterHub's authenticate_prometheus = False)
    #[arg(long)]
    pub public_metrics: bool,
    /// Probability of answering 503
    #[arg(long, default_value = "0.0")]
    pub server_error_rate: String,
    /// Latency added to every answer
    #[arg(long, default_value = "0s")]
    pub added_latency: String,
    /// Probability of a cut-short JSON body
    #[arg(long, default_value = "0.0")]
    pub malformed_json_rate: String,
    /// Probability of dropping the connection without an answer
    #[arg(long, default_value = "0.0")]
    pub drop_rate: String,
    /// JupyterHub version to report
    #[arg(long, default_value = "6.1.1")]
    pub hub_version: String,
}
