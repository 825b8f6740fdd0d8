//! Three replicas sharing one hub with no coordinator (users.shards = 3), on the
//! simulator: no name collides, the totals add up, and purging one shard touches only it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::soak::{start_soak, until, SoakProcess, RUNNING};
use common::*;
use hubsoak::mockhub::{MockHub, MockServer};

async fn replica(server: &MockServer, shard: &str) -> SoakProcess {
    let url = server.api_url();
    start_soak(
        &[],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HUBSOAK__USERS__PREFIX", "shard"),
            ("HUBSOAK__USERS__SHARDS", "3"),
            ("HUBSOAK_SHARD", shard),
            ("HUBSOAK__POPULATION__TARGET", "4"),
            ("HUBSOAK__POPULATION__SPAWN_RATE", "600"),
            ("HUBSOAK__POPULATION__SESSION_MIN", "60s"),
            ("HUBSOAK__POPULATION__SESSION_MAX", "60s"),
            ("HUBSOAK__SHUTDOWN__GRACE", "5s"),
        ],
    )
    .await
}

fn names(hub: &MockHub) -> BTreeSet<String> {
    hub.user_names().into_iter().collect()
}

fn expected(shards: &[u32]) -> BTreeSet<String> {
    shards
        .iter()
        .flat_map(|k| (1..=4).map(move |n| format!("shard-{k}-{n}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_split_the_users_and_purge_only_their_own() {
    let (hub, server) = start_mock(fast()).await;
    let replicas = [
        replica(&server, "0").await,
        replica(&server, "1").await,
        replica(&server, "2").await,
    ];
    for r in &replicas {
        until(
            r,
            Duration::from_secs(20),
            "each replica at its target",
            |m| m.get(RUNNING) == 4.0,
        )
        .await;
    }
    assert_eq!(names(&hub), expected(&[0, 1, 2]), "12 users, none shared");
    assert_eq!(hub.server_counts().1, 12, "the totals add up");
    assert_eq!(hub.stats().users_created, 12);

    // Replica 1 leaves (its servers stay); a purge of shard 1 removes exactly its users.
    let [r0, mut r1, r2] = replicas;
    r1.signal("TERM");
    assert_eq!(r1.exit_within(Duration::from_secs(10)).await, Some(0));
    let out = against(
        &server,
        &[
            "--prefix", "shard", "--shards", "3", "--shard", "1", "purge",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(names(&hub), expected(&[0, 2]), "shards 0 and 2 untouched");
    assert_eq!(hub.server_counts().1, 8);
    assert_eq!(r0.metrics().await.get(RUNNING), 4.0);
    assert_eq!(r2.metrics().await.get(RUNNING), 4.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_runs_shard_too_and_a_replica_must_know_its_shard() {
    let (hub, server) = start_mock(fast()).await;
    for shard in ["0", "1"] {
        let out = against(
            &server,
            &[
                "--shards",
                "2",
                "--shard",
                shard,
                "stress-test",
                "-c",
                "3",
                "--keep",
            ],
        )
        .await;
        assert_eq!(out.code, 0, "{}", out.all());
    }
    let made: BTreeSet<String> = names(&hub);
    let want: BTreeSet<String> = ["0", "1"]
        .iter()
        .flat_map(|k| (1..=3).map(move |n| format!("hubsoak-{k}-{n}")))
        .collect();
    assert_eq!(made, want);
    // Sharded, but no shard given and no StatefulSet hostname: bad input, nothing sent.
    let before = hub.stats().requests;
    let out = hubsoak(
        &["--shards", "2", "stress-test", "-c", "1"],
        &[
            ("JUPYTERHUB_ENDPOINT", &server.api_url()),
            ("JUPYTERHUB_API_TOKEN", TOKEN),
            ("HOSTNAME", "laptop"),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("--shard"), "{}", out.stderr);
    assert_eq!(hub.stats().requests, before);
}
