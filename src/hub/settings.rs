//! How to reach the hub, as the settings give it: the client's configuration, plus where
//! the token came from (a soak re-reads a token file when it changes).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::token::Token;

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub api_url: Url,
    pub token: Token,
    /// Where the token came from, if a file: the soak re-reads it when it changes.
    pub token_file: Option<PathBuf>,
    pub request_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub max_in_flight: usize,
}
