//! Where a spawn's time went, from the hub's progress events: `queued` (planned → the
//! hub took the start request that succeeded: our queue, throttling, retries),
//! `scheduling` (→ the pod was assigned a node), `image_pull` (pulling → pulled; zero
//! when the image was present), `container_start` (→ the container started) and
//! `server_startup` (→ the server answered, ready). The phases add up to the spawn's
//! whole time.
//!
//! KubeSpawner forwards each Kubernetes event of the pod as a progress event whose
//! `raw_event` carries the event's `reason` (`Scheduled`, `Pulling`, `Pulled`,
//! `Created`, `Started`, …) and time, and whose message reads `TIME [TYPE] MESSAGE`
//! (kubespawner/spawner.py, `progress()`). Events it replays on connect arrive late, so a
//! boundary is the event's own time when it has one, else its arrival, kept within the
//! spawn and in order. Unknown events are ignored; a spawner that reports none puts all
//! of the hub's part into `server_startup`.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A part of a spawn's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpawnPhase {
    Queued,
    Scheduling,
    ImagePull,
    ContainerStart,
    ServerStartup,
}

impl SpawnPhase {
    pub const ALL: [SpawnPhase; 5] = [
        SpawnPhase::Queued,
        SpawnPhase::Scheduling,
        SpawnPhase::ImagePull,
        SpawnPhase::ContainerStart,
        SpawnPhase::ServerStartup,
    ];

    /// The report's action for this phase's latency (`spawn_image_pull`): thresholds
    /// and `report diff` work on it as on any action.
    pub fn action(self) -> &'static str {
        match self {
            SpawnPhase::Queued => "spawn_queued",
            SpawnPhase::Scheduling => "spawn_scheduling",
            SpawnPhase::ImagePull => "spawn_image_pull",
            SpawnPhase::ContainerStart => "spawn_container_start",
            SpawnPhase::ServerStartup => "spawn_server_startup",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SpawnPhase::Queued => "queued",
            SpawnPhase::Scheduling => "scheduling",
            SpawnPhase::ImagePull => "image_pull",
            SpawnPhase::ContainerStart => "container_start",
            SpawnPhase::ServerStartup => "server_startup",
        }
    }
}

/// What one progress event says about the pod, if anything hubsoak knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Scheduled,
    Pulling,
    /// Pulled, or the image was already present.
    Pulled,
    Started,
}

/// A progress event as it arrived.
#[derive(Debug, Clone)]
pub struct SeenEvent {
    pub arrived: SystemTime,
    pub raw: Value,
}

fn mark_of(raw: &Value) -> Option<Mark> {
    let reason = raw
        .get("raw_event")
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str);
    let message = raw.get("message").and_then(Value::as_str).unwrap_or("");
    match reason {
        Some("Scheduled") => Some(Mark::Scheduled),
        Some("Pulling") => Some(Mark::Pulling),
        Some("Pulled") => Some(Mark::Pulled),
        Some("Started") => Some(Mark::Started),
        Some(_) => None,
        // Without raw_event (older KubeSpawner): the message's words.
        None if message.contains("Successfully assigned") => Some(Mark::Scheduled),
        None if message.contains("Pulling image") => Some(Mark::Pulling),
        None if message.contains("Successfully pulled image")
            || message.contains("already present on machine") =>
        {
            Some(Mark::Pulled)
        }
        None if message.contains("Started container") => Some(Mark::Started),
        None => None,
    }
}

/// When the event happened: Kubernetes' own time if it gives one, else its arrival.
fn time_of(event: &SeenEvent) -> SystemTime {
    let raw = event.raw.get("raw_event");
    let stamp = raw
        .and_then(|e| {
            ["lastTimestamp", "eventTime", "firstTimestamp"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str))
        })
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| SystemTime::from(t.with_timezone(&Utc)));
    stamp.unwrap_or(event.arrived)
}

/// The phases of a spawn planned at `planned`, whose successful start request was sent
/// at `accepted`, that was ready at `ready`, given its progress events.
pub fn split(
    planned: SystemTime,
    accepted: SystemTime,
    ready: SystemTime,
    events: &[SeenEvent],
) -> Vec<(SpawnPhase, Duration)> {
    let within = |t: SystemTime, from: SystemTime| t.clamp(from, ready.max(from));
    let accepted = within(accepted, planned);
    let first = |mark: Mark| {
        events
            .iter()
            .filter(|e| mark_of(&e.raw) == Some(mark))
            .map(time_of)
            .min()
    };
    let last = |mark: Mark| {
        events
            .iter()
            .filter(|e| mark_of(&e.raw) == Some(mark))
            .map(time_of)
            .max()
    };
    // Each boundary no earlier than the one before it, none later than ready.
    let scheduled = within(first(Mark::Scheduled).unwrap_or(accepted), accepted);
    let pulled = match (first(Mark::Pulling), last(Mark::Pulled)) {
        (Some(_), Some(done)) => within(done, scheduled),
        // Present already, or no pull reported: no time in image_pull.
        _ => scheduled,
    };
    let started = within(last(Mark::Started).unwrap_or(pulled), pulled);
    let span = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    vec![
        (SpawnPhase::Queued, span(planned, accepted)),
        (SpawnPhase::Scheduling, span(accepted, scheduled)),
        (SpawnPhase::ImagePull, span(scheduled, pulled)),
        (SpawnPhase::ContainerStart, span(pulled, started)),
        (SpawnPhase::ServerStartup, span(started, ready.max(started))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(t0: SystemTime, s: f64) -> SystemTime {
        t0 + Duration::from_secs_f64(s)
    }

    fn k8s(t0: SystemTime, s: f64, reason: &str, message: &str) -> SeenEvent {
        let stamp: DateTime<Utc> = at(t0, s).into();
        let stamp = stamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        SeenEvent {
            // Replayed: every event arrives at once, at 9 s.
            arrived: at(t0, 9.0),
            raw: json!({
                "progress": 50,
                "message": format!("{stamp} [Normal] {message}"),
                "raw_event": {"reason": reason, "message": message, "lastTimestamp": stamp, "type": "Normal"},
            }),
        }
    }

    #[test]
    fn kubespawner_events_split_a_spawn_into_phases_that_add_up() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let events = vec![
            SeenEvent {
                arrived: at(t0, 2.0),
                raw: json!({"progress": 0, "message": "Server requested"}),
            },
            k8s(
                t0,
                3.0,
                "Scheduled",
                "Successfully assigned jhub/jupyter-a to node-1",
            ),
            k8s(
                t0,
                4.0,
                "Pulling",
                "Pulling image \"quay.io/jupyter/base-notebook\"",
            ),
            k8s(t0, 14.0, "Pulled", "Successfully pulled image in 10s"),
            k8s(t0, 15.0, "Created", "Created container notebook"),
            k8s(t0, 16.0, "Started", "Started container notebook"),
            SeenEvent {
                arrived: at(t0, 9.5),
                raw: json!({"message": "a note no one knows", "raw_event": {"reason": "TriggeredScaleUp"}}),
            },
        ];
        let phases = split(t0, at(t0, 1.0), at(t0, 20.0), &events);
        let get = |p: SpawnPhase| {
            phases
                .iter()
                .find(|(q, _)| *q == p)
                .unwrap()
                .1
                .as_secs_f64()
        };
        assert_eq!(get(SpawnPhase::Queued), 1.0);
        assert_eq!(get(SpawnPhase::Scheduling), 2.0);
        assert_eq!(get(SpawnPhase::ImagePull), 11.0);
        assert_eq!(get(SpawnPhase::ContainerStart), 2.0);
        assert_eq!(get(SpawnPhase::ServerStartup), 4.0);
        let total: f64 = phases.iter().map(|(_, d)| d.as_secs_f64()).sum();
        assert!((total - 20.0).abs() < 1e-9);
    }

    #[test]
    fn without_pod_events_the_hubs_part_is_server_startup() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let events = vec![SeenEvent {
            arrived: at(t0, 2.0),
            raw: json!({"progress": 50, "message": "Spawning server..."}),
        }];
        let phases = split(t0, at(t0, 0.5), at(t0, 3.0), &events);
        assert_eq!(phases[0], (SpawnPhase::Queued, Duration::from_millis(500)));
        assert_eq!(
            phases[4],
            (SpawnPhase::ServerStartup, Duration::from_millis(2500))
        );
        assert!(phases[1..4].iter().all(|(_, d)| d.is_zero()));
    }

    #[test]
    fn clocks_that_disagree_never_make_a_phase_negative_or_the_sum_wrong() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // The cluster's clock runs 30 s ahead, and an image that was present.
        let events = vec![
            k8s(t0, 33.0, "Scheduled", "Successfully assigned"),
            k8s(
                t0,
                34.0,
                "Pulled",
                "Container image \"x\" already present on machine",
            ),
            k8s(t0, 35.0, "Started", "Started container notebook"),
        ];
        let phases = split(t0, at(t0, 1.0), at(t0, 6.0), &events);
        let total: f64 = phases.iter().map(|(_, d)| d.as_secs_f64()).sum();
        assert!((total - 6.0).abs() < 1e-9, "{phases:?}");
        assert_eq!(phases[2].1, Duration::ZERO, "no pull: {phases:?}");
    }
}
