//! Typed JupyterHub API models. Every field we do not need is ignored and every field
//! that 5.x or 6.x may omit is optional, so a hub upgrade does not break parsing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /hub/api/`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct HubVersion {
    pub version: String,
}

/// A user model (`GET /users/{name}`, items of `GET /users`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    /// Only *active* servers, and only when the token holds read:servers.
    #[serde(default)]
    pub servers: BTreeMap<String, Server>,
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default)]
    pub last_activity: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

impl User {
    /// The named server (`""` is the default one) if it is active.
    pub fn server(&self, server_name: &str) -> Option<&Server> {
        self.servers.get(server_name)
    }
}

/// A server model.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct Server {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    /// `null`, `"spawn"` or `"stop"`.
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub last_activity: Option<String>,
    #[serde(default)]
    pub stopped: bool,
    #[serde(default)]
    pub progress_url: Option<String>,
    #[serde(default)]
    pub user_options: Option<serde_json::Value>,
}

/// `GET /users` with the pagination Accept header.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UserPage {
    pub items: Vec<User>,
    #[serde(rename = "_pagination")]
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Pagination {
    pub offset: u64,
    pub limit: u64,
    pub total: u64,
    #[serde(default)]
    pub next: Option<NextPage>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NextPage {
    pub offset: u64,
    pub limit: u64,
    #[serde(default)]
    pub url: Option<String>,
}

/// One event of `GET /users/{name}/server/progress`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct ProgressEvent {
    #[serde(default)]
    pub progress: Option<f64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub failed: bool,
    #[serde(default)]
    pub url: Option<String>,
}

/// The JSON error body JupyterHub sends with every 4xx/5xx.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApiError {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_6x_user_with_unknown_fields() {
        let raw = r#"{"admin": false, "name": "t-1", "server": null, "kind": "user",
            "roles": ["user"], "groups": [], "pending": null, "created": "2026-11-22T18:47:22.280849Z",
            "last_activity": null, "user_info": null,
            "servers": {"": {"name": "", "ready": true, "pending": null, "url": "/user/t-1/",
            "display_name": "x", "stopped": false, "progress_url": "/hub/api/users/t-1/server/progress",
            "full_url": null, "user_options": {}, "state": null}}}"#;
        let user: User = serde_json::from_str(raw).unwrap();
        assert!(user.server("").unwrap().ready);
    }

    #[test]
    fn parses_a_user_without_servers_field() {
        // Without read:servers the hub omits `servers`.
        let user: User = serde_json::from_str(r#"{"name": "a"}"#).unwrap();
        assert!(user.servers.is_empty());
    }
}
