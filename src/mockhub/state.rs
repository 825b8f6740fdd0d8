//! The simulated hub's state: users, their servers and each server's phase, with the
//! counters the hub's own metrics are made of. Pure data; `mod.rs` drives the clock.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Where one server is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Never started, or stopped.
    Stopped,
    Spawning,
    Running,
    Stopping,
    /// The last spawn failed; the progress stream still reports it.
    Failed(String),
}

impl Phase {
    pub fn is_active(&self) -> bool {
        matches!(self, Phase::Spawning | Phase::Running | Phase::Stopping)
    }

    fn pending(&self) -> Option<&'static str> {
        match self {
            Phase::Spawning => Some("spawn"),
            Phase::Stopping => Some("stop"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerRec {
    pub phase: Phase,
    /// Bumped by every start and stop, so a late timer cannot act on a newer phase.
    pub generation: u64,
    /// 0..100 while spawning.
    pub progress: u8,
    /// The spawn's progress events so far, as KubeSpawner sends its pod's events.
    pub events: Vec<Value>,
    pub started: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    pub user_options: Value,
    pub phase_since: Option<Instant>,
    /// Whether a start or stop has touched it. JupyterHub loads a spawner lazily, and
    /// until then the progress stream answers 404 rather than 400.
    pub touched: bool,
}

impl ServerRec {
    fn new() -> Self {
        ServerRec {
            phase: Phase::Stopped,
            generation: 0,
            progress: 0,
            events: Vec::new(),
            started: None,
            last_activity: None,
            user_options: json!({}),
            phase_since: None,
            touched: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserRec {
    pub id: u64,
    pub name: String,
    pub admin: bool,
    pub created: DateTime<Utc>,
    pub last_activity: Option<DateTime<Utc>>,
    /// Every server the hub knows (JupyterHub's orm_spawners); `""` always exists.
    pub servers: BTreeMap<String, ServerRec>,
    /// The earliest a start may come back after a 429 with Retry-After.
    pub retry_not_before: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct HubState {
    pub users: BTreeMap<String, UserRec>,
    next_id: u64,
    /// Servers in each phase, kept as phases change.
    pub spawning: usize,
    pub running: usize,
    pub stopping: usize,
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl HubState {
    pub fn add_user(&mut self, name: &str, admin: bool) {
        self.next_id += 1;
        let mut servers = BTreeMap::new();
        servers.insert(String::new(), ServerRec::new());
        self.users.insert(
            name.to_string(),
            UserRec {
                id: self.next_id,
                name: name.to_string(),
                admin,
                created: Utc::now(),
                last_activity: None,
                servers,
                retry_not_before: None,
            },
        );
    }

    /// Removes a user; their active servers leave the phase counts.
    pub fn remove_user(&mut self, name: &str) -> bool {
        let Some(user) = self.users.remove(name) else {
            return false;
        };
        for server in user.servers.values() {
            self.count(&server.phase, -1);
        }
        true
    }

    pub fn server_mut(&mut self, user: &str, server: &str) -> Option<&mut ServerRec> {
        self.users.get_mut(user)?.servers.get_mut(server)
    }

    /// The server, created on first use (as JupyterHub creates a named spawner), and
    /// marked touched.
    pub fn server_entry(&mut self, user: &str, server: &str) -> Option<&mut ServerRec> {
        let rec = self
            .users
            .get_mut(user)?
            .servers
            .entry(server.to_string())
            .or_insert_with(ServerRec::new);
        rec.touched = true;
        Some(rec)
    }

    /// Moves a server to `phase`, keeping the counts; returns the new generation.
    pub fn set_phase(
        &mut self,
        user: &str,
        server: &str,
        phase: Phase,
        new_generation: bool,
    ) -> u64 {
        let Some(rec) = self.server_mut(user, server) else {
            return 0;
        };
        let old = std::mem::replace(&mut rec.phase, phase.clone());
        rec.phase_since = Some(Instant::now());
        if new_generation {
            rec.generation += 1;
        }
        if phase == Phase::Running {
            rec.started = Some(Utc::now());
        }
        if phase == Phase::Spawning {
            rec.progress = 0;
            rec.events.clear();
        }
        let generation = rec.generation;
        self.count(&old, -1);
        self.count(&phase, 1);
        generation
    }

    fn count(&mut self, phase: &Phase, delta: isize) {
        let slot = match phase {
            Phase::Spawning => &mut self.spawning,
            Phase::Running => &mut self.running,
            Phase::Stopping => &mut self.stopping,
            _ => return,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    pub fn user_model(&self, user: &UserRec) -> Value {
        let default = user.servers.get("");
        let servers: serde_json::Map<String, Value> = user
            .servers
            .iter()
            .filter(|(_, s)| s.phase.is_active())
            .map(|(name, s)| (name.clone(), server_model(&user.name, name, s)))
            .collect();
        json!({
            "kind": "user",
            "name": user.name,
            "admin": user.admin,
            "roles": ["user"],
            "groups": [],
            "server": default
                .filter(|s| s.phase == Phase::Running)
                .map(|_| format!("/user/{}/", user.name)),
            "pending": default.and_then(|s| s.phase.pending()),
            "created": ts(user.created),
            "last_activity": user.last_activity.map(ts),
            "servers": servers,
            "auth_state": null,
            "user_info": null,
        })
    }
}

pub fn server_url(user: &str, server: &str) -> String {
    if server.is_empty() {
        format!("/user/{user}/")
    } else {
        format!("/user/{user}/{server}/")
    }
}

fn server_model(user: &str, name: &str, s: &ServerRec) -> Value {
    let progress_url = if name.is_empty() {
        format!("/hub/api/users/{user}/server/progress")
    } else {
        format!("/hub/api/users/{user}/servers/{name}/progress")
    };
    json!({
        "name": name,
        "display_name": name,
        "last_activity": s.last_activity.or(s.started).map(ts),
        "started": s.started.map(ts),
        "pending": s.phase.pending(),
        "ready": s.phase == Phase::Running,
        "stopped": false,
        "url": server_url(user, name),
        "user_options": s.user_options,
        "progress_url": progress_url,
        "full_url": null,
        "full_progress_url": null,
        "state": null,
    })
}

/// A progress event as KubeSpawner sends one for each Kubernetes event of the pod: its
/// message `TIME [TYPE] MESSAGE` and the event itself as `raw_event`.
pub fn pod_event(progress: u8, reason: &str, message: &str) -> Value {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "progress": progress,
        "message": format!("{now} [Normal] {message}"),
        "raw_event": {
            "type": "Normal",
            "reason": reason,
            "message": message,
            "eventTime": now,
            "lastTimestamp": null,
            "metadata": {"uid": uuid::Uuid::new_v4().to_string()},
        },
    })
}
