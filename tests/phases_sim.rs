//! Spawn phases on the simulator, which reports each spawn's pod events as KubeSpawner
//! does: every successful spawn is split into queued, scheduling, image_pull,
//! container_start and server_startup, and the phases add up to the spawn.

mod common;

use std::time::Duration;

use common::soak::{start_soak, RUNNING};
use common::*;
use hubsoak::mockhub::MockConfig;

/// Like zero-to-jupyterhub's hub (slow_spawn_timeout 0): every start answers 202 and the
/// progress stream tells the rest. Spawns of 1 s plus a 600 ms image pull.
fn kubernetes_like() -> MockConfig {
    MockConfig {
        spawn_delay: Duration::from_secs(1),
        image_pull_delay: Duration::from_millis(600),
        slow_spawn_timeout: Duration::ZERO,
        ..fast()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stress_tests_spawns_split_into_phases_that_add_up() {
    let (_hub, server) = start_mock(kubernetes_like()).await;
    let (out, r) = against_reporting(
        &server,
        &[
            "stress-test",
            "-c",
            "6",
            "-b",
            "6",
            "--threshold",
            "spawn_image_pull_p95<5s",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_phases_add_up(&r, 6);
    // The simulator's shape: a tenth scheduling, the pull, a fifth starting the container.
    let near = |action: &str, want: f64| {
        let (_, m) = mean(&r, action);
        assert!((m - want).abs() < 0.15, "{action}: {m} (want about {want})");
    };
    near("spawn_scheduling", 0.1);
    near("spawn_image_pull", 0.6);
    near("spawn_container_start", 0.2);
    near("spawn_server_startup", 0.7);
    // The end table shows them beside the spawn.
    assert!(out.stdout.contains("spawn_image_pull"), "{}", out.stdout);
    assert!(
        out.stdout.contains("threshold: spawn_image_pull_p95<5s ok"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_soak_exports_spawn_phases() {
    let (_hub, server) = start_mock(kubernetes_like()).await;
    let url = server.api_url();
    let p = start_soak(
        &["--target", "3"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
        ],
    )
    .await;
    let m = p.until_running(3, Duration::from_secs(20)).await;
    assert_eq!(m.get(RUNNING), 3.0);
    let count = |phase: &str| {
        m.get(&format!(
            "hubsoak_spawn_phase_duration_seconds_count{{phase=\"{phase}\"}}"
        ))
    };
    let spawns = m.get("hubsoak_spawn_duration_seconds_count{status=\"success\"}");
    assert!(spawns >= 3.0);
    let mut sum = 0.0;
    for phase in [
        "queued",
        "scheduling",
        "image_pull",
        "container_start",
        "server_startup",
    ] {
        assert_eq!(count(phase), spawns, "{phase}");
        sum += m.get(&format!(
            "hubsoak_spawn_phase_duration_seconds_sum{{phase=\"{phase}\"}}"
        ));
    }
    let total = m.get("hubsoak_spawn_duration_seconds_sum{status=\"success\"}");
    assert!(
        (sum - total).abs() <= total * 0.01,
        "phases {sum} vs spawns {total}"
    );
    let pull = m.get("hubsoak_spawn_phase_duration_seconds_sum{phase=\"image_pull\"}") / spawns;
    assert!((pull - 0.6).abs() < 0.15, "image pull {pull}");
}
