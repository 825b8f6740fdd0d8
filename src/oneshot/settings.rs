//! What the one-shot commands run on: their settings, validated and complete (`config/`
//! builds them from flags and the environment).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::hub::HubSettings;
use crate::names::Prefix;

/// What every hub-facing one-shot command shares.
#[derive(Debug, Clone)]
pub struct Scope {
    pub hub: HubSettings,
    pub prefix: Prefix,
    pub dry_run: bool,
    /// Go ahead on a prefix whose lease another instance holds.
    pub force: bool,
}

/// Where a one-shot run's report goes, and the thresholds it must meet.
#[derive(Debug, Clone, Default)]
pub struct ReportSettings {
    pub json: Option<PathBuf>,
    pub thresholds: Vec<crate::report::threshold::Threshold>,
}

/// Which server a one-shot run starts, and with what options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerChoice {
    /// "" for the default server.
    pub server_name: String,
    pub user_options: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct StressSettings {
    pub scope: Scope,
    pub count: u64,
    pub batch_size: u64,
    /// `--cycles`: rounds of this many users each, started at once; empty: one run.
    pub cycles: Vec<u64>,
    pub server: ServerChoice,
    pub keep: bool,
    pub report: ReportSettings,
    pub spawn_timeout: Duration,
    pub stop_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SimulateSettings {
    pub scope: Scope,
    pub users: u64,
    pub session_min: Duration,
    pub session_max: Duration,
    pub start_delay_max: Duration,
    pub journey: crate::journey::JourneySettings,
    pub server: ServerChoice,
    pub spawn_timeout: Duration,
    pub stop_timeout: Duration,
    pub keep: bool,
    pub report: ReportSettings,
}

#[derive(Debug, Clone)]
pub struct ActivitySettings {
    pub scope: Scope,
    pub count: u64,
    pub workers: u64,
    pub rounds: u64,
    pub ping_interval: Duration,
    pub keep: bool,
    pub report: ReportSettings,
}

#[derive(Debug, Clone)]
pub struct PurgeSettings {
    pub scope: Scope,
    pub batch_size: u64,
    pub stop_timeout: Duration,
    pub report: ReportSettings,
}
