//! The hub and its token, checked one way for every command (soak, validate, the
//! one-shots, mock-hub's token): the endpoint's forms, the token from its file or its
//! value, the CA file. Only the keys named in messages differ: flags or file keys.

use std::path::PathBuf;
use std::time::Duration;

use super::parse::{check_ca_file, parse_endpoint, SettingsError};
use crate::hub::{HubSettings, Token};

/// The hub's settings as given, before any check.
pub struct RawHub {
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
}

/// What each hub setting is called where it was given, and how to give what is missing.
pub struct HubKeys {
    pub endpoint: &'static str,
    pub token: &'static str,
    pub token_file: &'static str,
    pub ca_file: &'static str,
    pub no_endpoint: &'static str,
    pub no_token: &'static str,
}

/// The one-shots' (and mock-hub's) flags.
pub const FLAGS: HubKeys = HubKeys {
    endpoint: "--endpoint",
    token: "--token",
    token_file: "--token-file",
    ca_file: "--ca-file",
    no_endpoint:
        "no hub URL: pass -e/--endpoint or set JUPYTERHUB_ENDPOINT (or JUPYTERHUB_API_URL)",
    no_token: "no API token: pass -t/--token or --token-file, or set JUPYTERHUB_API_TOKEN",
};

/// The soak's settings file keys.
pub const FILE_KEYS: HubKeys = HubKeys {
    endpoint: "hub.endpoint",
    token: "hub.token",
    token_file: "hub.token_file",
    ca_file: "hub.ca_file",
    no_endpoint: "is required: set it, or JUPYTERHUB_ENDPOINT, or pass -e",
    no_token: "no API token: set hub.token_file or hub.token, or JUPYTERHUB_API_TOKEN",
};

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// The token from its file (which wins) or its value; `Ok(None)` when neither is given.
pub fn read_token(
    value: Option<&str>,
    file: Option<&std::path::Path>,
    keys: &HubKeys,
) -> Result<Option<Token>, SettingsError> {
    match (file, value.filter(|v| !v.trim().is_empty())) {
        (Some(path), _) => Token::read_file(path)
            .map(Some)
            .map_err(|e| SettingsError::new(keys.token_file, e.to_string())),
        (None, Some(v)) => Token::new(v)
            .map(Some)
            .map_err(|e| SettingsError::new(keys.token, e.to_string())),
        (None, None) => Ok(None),
    }
}

/// The checked hub settings, or `None` with every problem recorded.
pub fn check(
    raw: RawHub,
    keys: &HubKeys,
    problems: &mut Vec<SettingsError>,
) -> Option<HubSettings> {
    let api_url = match given(&raw.endpoint) {
        Some(e) => parse_endpoint(keys.endpoint, e)
            .map_err(|e| problems.push(e))
            .ok(),
        None => {
            problems.push(SettingsError::new(keys.endpoint, keys.no_endpoint));
            None
        }
    };
    let token = match read_token(given(&raw.token), raw.token_file.as_deref(), keys) {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            problems.push(SettingsError::new(keys.token, keys.no_token));
            None
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    if let Some(ca) = &raw.ca_file {
        if let Err(e) = check_ca_file(keys.ca_file, ca) {
            problems.push(e);
        }
    }
    Some(HubSettings {
        api_url: api_url?,
        token: token?,
        token_file: raw.token_file,
        request_timeout: raw.request_timeout,
        ca_file: raw.ca_file,
        max_in_flight: raw.max_in_flight,
    })
}
