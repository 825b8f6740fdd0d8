//! Can hubsoak do its job on this hub? The endpoint must answer as a JupyterHub API, the
//! hub must accept the token, and the token must hold every scope the configured work
//! needs. These are hubsoak's own faults, told apart from the hub's: a hub that is down
//! is not a problem of hubsoak's (it is what a soak is there to measure).

use std::fmt;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::client::{decode, HubClient};
use super::error::status_error;
use super::error::{HubError, Operation};
use super::models::HubVersion;
use super::retry::Idempotency;

/// Why hubsoak cannot work: the bounded `problem` label of `hubsoak_problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    TokenRejected,
    MissingScope,
    NotAHub,
    PrefixHeld,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 4] = [
        ProblemKind::TokenRejected,
        ProblemKind::MissingScope,
        ProblemKind::NotAHub,
        ProblemKind::PrefixHeld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::TokenRejected => "token_rejected",
            ProblemKind::MissingScope => "missing_scope",
            ProblemKind::NotAHub => "not_a_hub",
            ProblemKind::PrefixHeld => "prefix_held",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with what it is and how to fix it. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{endpoint} does not answer as a JupyterHub API ({detail}); set the endpoint to the hub's API, e.g. https://hub.example.org/hub/api")]
    NotAHub { endpoint: String, detail: String },
    #[error("the hub rejected the token (HTTP {status}); check hub.token / hub.token_file / JUPYTERHUB_API_TOKEN, and that the token's service is still in the hub's config")]
    TokenRejected { status: u16 },
    #[error("the token lacks {} ({}); add {} to the role of the token's {owner}", .missing.join(", "), .purposes.join("; "), if .missing.len() == 1 { "it" } else { "them" })]
    MissingScope {
        missing: Vec<String>,
        purposes: Vec<String>,
        owner: String,
    },
    #[error("prefix {prefix:?} is held by {holder}; this instance waits (or, for a one-shot run, pass --force), and takes over when the holder exits or its lease expires")]
    PrefixHeld { prefix: String, holder: String },
}

impl Problem {
    pub fn kind(&self) -> ProblemKind {
        match self {
            Problem::NotAHub { .. } => ProblemKind::NotAHub,
            Problem::TokenRejected { .. } => ProblemKind::TokenRejected,
            Problem::MissingScope { .. } => ProblemKind::MissingScope,
            Problem::PrefixHeld { .. } => ProblemKind::PrefixHeld,
        }
    }
}

/// A scope some work needs, and what for (told to the operator when it is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub scope: &'static str,
    pub purpose: &'static str,
}

pub const CREATE_USERS: Need = Need {
    scope: "admin:users",
    purpose: "create and delete our users",
};
pub const LIST_USERS: Need = Need {
    scope: "list:users",
    purpose: "find our users",
};
pub const READ_USERS: Need = Need {
    scope: "read:users",
    purpose: "read our users' state",
};
pub const SERVERS: Need = Need {
    scope: "servers",
    purpose: "start and stop our users' servers",
};
pub const ACTIVITY: Need = Need {
    scope: "users:activity",
    purpose: "post activity",
};
pub const LEASE: Need = Need {
    scope: "admin:groups",
    purpose: "the prefix lease (a group named after the prefix)",
};
pub const ACCESS_SERVERS: Need = Need {
    scope: "access:servers",
    purpose: "journeys in token mode reach our users' servers",
};
pub const TOKENS: Need = Need {
    scope: "tokens",
    purpose: "journeys in user-token mode make our users' tokens",
};

/// `GET /hub/api/user` for a token: who it is and its (expanded) scopes.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Identity {
    /// Whether the token holds `scope`: listed as it is, or filtered (`scope!group=x`),
    /// which the hub enforces itself.
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| {
            s == scope
                || s.strip_prefix(scope)
                    .is_some_and(|rest| rest.starts_with('!'))
        })
    }

    fn owner(&self) -> String {
        match self.kind.as_str() {
            "" => "owner".into(),
            kind => format!("{kind} {:?}", self.name),
        }
    }
}

/// What the check found when hubsoak can work.
#[derive(Debug, Clone)]
pub struct Access {
    pub version: String,
    pub identity: Identity,
}

/// Why the check could not decide or found a problem.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Problem(Problem),
    /// The hub did not answer well enough to tell (down, 5xx, timeouts): the hub's
    /// fault, not hubsoak's.
    #[error(transparent)]
    Unreachable(HubError),
}

impl HubClient {
    /// Checks that this client can do work needing `needs` (duplicates allowed).
    pub async fn check_access(&self, needs: &[Need]) -> Result<Access, CheckError> {
        let version = self.api_root().await?;
        let identity = match self.identity().await {
            Ok(id) => id,
            Err(e) if matches!(e.status(), Some(401 | 403)) => {
                return Err(CheckError::Problem(Problem::TokenRejected {
                    status: e.status().unwrap_or(403),
                }))
            }
            Err(e) => return Err(CheckError::Unreachable(e)),
        };
        let mut missing: Vec<String> = Vec::new();
        let mut purposes: Vec<String> = Vec::new();
        for need in needs {
            if !identity.holds(need.scope) && !missing.iter().any(|m| m == need.scope) {
                missing.push(need.scope.to_string());
                purposes.push(format!("{}: {}", need.scope, need.purpose));
            }
        }
        if !missing.is_empty() {
            return Err(CheckError::Problem(Problem::MissingScope {
                missing,
                purposes,
                owner: identity.owner(),
            }));
        }
        Ok(Access {
            version: version.version,
            identity,
        })
    }

    /// `GET /hub/api/`, told apart: a hub's version; something that is not a hub (an
    /// answer without JupyterHub's `X-JupyterHub-Version` header that is not a version);
    /// or a hub that is down or misbehaving.
    async fn api_root(&self) -> Result<HubVersion, CheckError> {
        let op = Operation::Version;
        let url = self.api_url().clone();
        let endpoint = url.to_string();
        let answered = self
            .call(
                op,
                Idempotency::Idempotent,
                || self.request(Method::GET, url.clone()),
                |status, headers, body| {
                    let from_hub = headers.contains_key("x-jupyterhub-version");
                    let parsed = (status == StatusCode::OK)
                        .then(|| decode::<HubVersion>(op, &body).ok())
                        .flatten();
                    match parsed {
                        Some(v) => Ok(Ok(v)),
                        // Even from the hub itself: not its API's address.
                        None if status == StatusCode::NOT_FOUND => {
                            Ok(Err("HTTP 404: no JupyterHub API there".into()))
                        }
                        None if from_hub || status.is_server_error() || status == 429 => {
                            Err(match status {
                                StatusCode::OK => decode::<HubVersion>(op, &body)
                                    .err()
                                    .unwrap_or_else(|| status_error(op, status, headers, &body)),
                                _ => status_error(op, status, headers, &body),
                            })
                        }
                        None => Ok(Err(format!(
                            "HTTP {}{}",
                            status.as_u16(),
                            content_kind(headers)
                        ))),
                    }
                },
            )
            .await;
        match answered {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(detail)) => Err(CheckError::Problem(Problem::NotAHub { endpoint, detail })),
            Err(e) => Err(CheckError::Unreachable(e)),
        }
    }

    /// `GET /hub/api/user`.
    pub async fn identity(&self) -> Result<Identity, HubError> {
        let op = Operation::Identity;
        let url = self.api_path(&["user"]);
        self.call(
            op,
            Idempotency::Idempotent,
            || self.request(Method::GET, url.clone()),
            |status, headers, body| match status {
                StatusCode::OK => decode(op, &body),
                _ => Err(status_error(op, status, headers, &body)),
            },
        )
        .await
    }
}

/// What kind of body came back, for telling an operator what answered instead.
fn content_kind(headers: &reqwest::header::HeaderMap) -> &'static str {
    let ct = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("text/html") {
        ", an HTML page (a login page?)"
    } else if ct.is_empty() {
        ""
    } else {
        ", not a JupyterHub version"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scopes: &[&str]) -> Identity {
        Identity {
            kind: "service".into(),
            name: "hubsoak".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn filtered_scopes_count_and_prefixes_do_not() {
        let i = id(&["servers!group=test", "read:users", "admin:groups"]);
        assert!(i.holds("servers"));
        assert!(i.holds("read:users"));
        assert!(!i.holds("read:users:name"));
        assert!(!i.holds("admin:users"));
        assert!(!i.holds("admin"));
    }

    #[test]
    fn problems_name_what_is_missing_and_never_more() {
        let p = Problem::MissingScope {
            missing: vec!["admin:groups".into()],
            purposes: vec!["admin:groups: the prefix lease".into()],
            owner: "service \"hubsoak\"".into(),
        };
        let text = p.to_string();
        assert!(text.contains("admin:groups"), "{text}");
        assert!(text.contains("add it to the role of the token's service \"hubsoak\""));
        assert_eq!(p.kind().as_str(), "missing_scope");
    }
}
