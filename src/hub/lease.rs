//! One owner per prefix: a lease kept on the hub itself, so it works wherever the hub
//! runs (Kubernetes, TLJH, bare metal). The lease is a JupyterHub group named
//! `hubsoak-lease-PREFIX` whose properties say who holds it and until when; the holder
//! renews it well before it expires and clears it on exit. Groups need `admin:groups`.
//!
//! JupyterHub has no compare-and-swap, so taking a free lease is write, wait a moment,
//! read back: of two instances that wrote at once, both then read the same last
//! writer, and only that one holds it. Expiry is judged by wall clocks (UTC), so the
//! hosts' clocks must agree to well within the lease's length (NTP does).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::client::{decode, HubClient};
use super::error::status_error;
use super::error::{HubError, Operation};
use super::retry::Idempotency;
use crate::names::Prefix;

/// The key in the group's properties.
const PROPERTY: &str = "hubsoak_lease";
/// How long a written claim is left before it is read back.
const SETTLE: Duration = Duration::from_millis(750);

/// Who holds a lease, as written into the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per process.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {} since {} (lease until {})",
            self.host,
            self.pid,
            self.since.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.expires.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// What a try to take or renew the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Held,
    HeldBy(Holder),
    /// Another instance was writing at the same moment: try again shortly.
    Contended,
}

/// This process's lease on one prefix.
#[derive(Debug, Clone)]
pub struct Lease {
    client: HubClient,
    group: String,
    prefix: String,
    ttl: Duration,
    me: Holder,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
}

impl Lease {
    pub fn new(client: HubClient, prefix: &Prefix, ttl: Duration) -> Lease {
        let now = Utc::now();
        Lease {
            client,
            group: group_name(prefix),
            prefix: prefix.as_str().to_string(),
            ttl,
            me: Holder {
                id: uuid::Uuid::new_v4().to_string(),
                host: host_name(),
                pid: std::process::id(),
                since: now,
                expires: now,
            },
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease if it is free, expired or ours; else says who holds it.
    pub async fn acquire(&self) -> Result<Claim, HubError> {
        match self.lookup().await? {
            None => self.create_group().await?,
            Some(Some(h)) if h.id == self.me.id => return self.write().await.map(|_| Claim::Held),
            Some(Some(h)) if h.expires > Utc::now() => return Ok(Claim::HeldBy(h)),
            Some(_) => {}
        }
        self.write().await?;
        tokio::time::sleep(SETTLE).await;
        match self.read().await? {
            Some(h) if h.id == self.me.id => Ok(Claim::Held),
            Some(h) => Ok(Claim::HeldBy(h)),
            None => Ok(Claim::Contended),
        }
    }

    /// Extends the lease if it is still ours (or nobody took it after it lapsed).
    pub async fn renew(&self) -> Result<Claim, HubError> {
        match self.read().await? {
            Some(h) if h.id != self.me.id && h.expires > Utc::now() => Ok(Claim::HeldBy(h)),
            _ => self.write().await.map(|_| Claim::Held),
        }
    }

    /// Clears the lease if it is ours, so a waiting instance takes over at once.
    pub async fn release(&self) -> Result<(), HubError> {
        if let Some(h) = self.read().await? {
            if h.id == self.me.id {
                self.put_properties(json!({})).await?;
            }
        }
        Ok(())
    }

    /// The current holder, if the lease is held (expired or not).
    pub async fn read(&self) -> Result<Option<Holder>, HubError> {
        Ok(self.lookup().await?.flatten())
    }

    /// `None`: no group yet; `Some(None)`: a group without a holder.
    async fn lookup(&self) -> Result<Option<Option<Holder>>, HubError> {
        let op = Operation::Lease;
        let url = self.client.api_path(&["groups", &self.group]);
        let group: Option<Group> = self
            .client
            .call(
                op,
                Idempotency::Idempotent,
                || self.client.request(Method::GET, url.clone()),
                |status, headers, body| match status {
                    StatusCode::OK => decode(op, &body).map(Some),
                    StatusCode::NOT_FOUND => Ok(None),
                    _ => Err(status_error(op, status, headers, &body)),
                },
            )
            .await?;
        Ok(group.map(|g| {
            g.properties
                .get(PROPERTY)
                .cloned()
                .and_then(|v| serde_json::from_value(v).ok())
        }))
    }

    async fn write(&self) -> Result<(), HubError> {
        let now = Utc::now();
        let holder = Holder {
            expires: now
                + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::seconds(60)),
            ..self.me.clone()
        };
        let body = json!({ PROPERTY: holder });
        match self.put_properties(body.clone()).await {
            Err(e) if e.status() == Some(404) => {
                self.create_group().await?;
                self.put_properties(body).await
            }
            other => other,
        }
    }

    async fn create_group(&self) -> Result<(), HubError> {
        let op = Operation::Lease;
        let url = self.client.api_path(&["groups", &self.group]);
        self.client
            .call(
                op,
                Idempotency::Idempotent,
                || {
                    self.client
                        .request(Method::POST, url.clone())
                        .json(&json!({}))
                },
                |status, headers, body| match status {
                    StatusCode::CREATED | StatusCode::OK | StatusCode::CONFLICT => Ok(()),
                    _ => Err(status_error(op, status, headers, &body)),
                },
            )
            .await
    }

    async fn put_properties(&self, properties: Value) -> Result<(), HubError> {
        let op = Operation::Lease;
        let url = self.client.api_path(&["groups", &self.group, "properties"]);
        self.client
            .call(
                op,
                Idempotency::Idempotent,
                || {
                    self.client
                        .request(Method::PUT, url.clone())
                        .json(&properties)
                },
                |status, headers, body| match status {
                    s if s.is_success() => Ok(()),
                    _ => Err(status_error(op, status, headers, &body)),
                },
            )
            .await
    }
}

/// `hubsoak-lease-PREFIX`.
pub fn group_name(prefix: &Prefix) -> String {
    format!("hubsoak-lease-{}", prefix.as_str())
}

/// The pod's or host's name, for telling an operator who holds a lease.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}
