//! Spawn phases on real JupyterHub 5.x and 6.x, through their real progress stream: a
//! test spawner reports its start as KubeSpawner reports a pod, and every spawn is split
//! into phases that add up to it.

mod common;

use common::realhub::{HubOptions, RealHub, Spawner};
use common::*;

on_both_hubs!(phases_from_kubespawner_shaped_events);

async fn phases_from_kubespawner_shaped_events(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: Spawner::KubeLike { image_pull: 0.8 },
        ..HubOptions::cheap(major)
    })
    .await;
    let url = hub.api_url();
    let (out, r) = hubsoak_reporting(
        &["stress-test", "-c", "4", "-b", "4"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &hub.token),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_phases_add_up(&r, 4);
    let (_, pull) = mean(&r, "spawn_image_pull");
    assert!((0.6..1.2).contains(&pull), "the 0.8 s pull: {pull}");
    let (_, container) = mean(&r, "spawn_container_start");
    assert!(
        (0.25..0.8).contains(&container),
        "the 0.4 s container start: {container}"
    );
    assert!(hub.ours("hubsoak").await.is_empty(), "no user of ours left");
}
