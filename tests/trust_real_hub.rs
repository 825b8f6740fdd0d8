//! A soak that tells the truth about itself, on a real JupyterHub 5.5.4 and 6.1.1: a
//! rejected token and a token without a scope are hubsoak's problems (not ready, the
//! problem gauge, one ERROR line, nothing touched), a rotated token file is picked up
//! without a restart, and two soaks on one prefix never fight (the lease on the hub).

mod common;

use std::time::Duration;

use common::realhub::{soak_on, HubOptions, RealHub};
use common::soak::{until, write_token, RUNNING};
use common::*;

on_both_hubs!(
    rejected_token_then_rotated,
    token_without_admin_groups,
    two_soaks_on_one_prefix,
);

async fn rejected_token_then_rotated(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("trust").await;
    let (spawns0, _) = hub.truth().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let wrong = "a-token-this-hub-never-issued-7f3e";
    write_token(&file, wrong);
    let mut p = soak_on(
        &hub,
        &[
            ("HUBSOAK__HUB__TOKEN_FILE", file.to_str().unwrap()),
            ("HUBSOAK__USERS__PREFIX", "trust"),
            ("HUBSOAK__POPULATION__TARGET", "3"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(10), "token_rejected", |m| {
        m.get("hubsoak_problem{problem=\"token_rejected\"}") == 1.0
    })
    .await;
    let (status, body) = p.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("token_rejected"), "{body}");
    p.until_value("hubsoak_hub_up", 1.0, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hub.truth().await.0, spawns0, "no spawn attempted");
    assert!(hub.ours("trust").await.is_empty(), "no user created");
    let errors = p.error_lines();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let everything = format!("{}\n{}", p.log.lock().unwrap().join("\n"), body);
    assert!(!everything.contains(wrong), "the token leaked");

    write_token(&file, &hub.token);
    until(
        &p,
        Duration::from_secs(30),
        "3 running after the rotation",
        |m| m.get("hubsoak_problem{problem=\"token_rejected\"}") == 0.0 && m.get(RUNNING) == 3.0,
    )
    .await;
    assert_eq!(p.get("/readyz").await.0, 200);
    assert_eq!(hub.ours("trust").await.len(), 3);
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(40)).await, Some(0));
    assert!(hub.ours("trust").await.is_empty(), "purged on exit");
    others.assert_untouched(&hub).await;
}

async fn token_without_admin_groups(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    // The harness's "no-groups" service: the README's role without admin:groups.
    let limited = format!("{}-no-groups", hub.token);
    let mut p = soak_on(
        &hub,
        &[
            ("JUPYTERHUB_API_TOKEN", limited.as_str()),
            ("HUBSOAK__USERS__PREFIX", "scoped"),
        ],
    )
    .await;
    until(&p, Duration::from_secs(10), "missing_scope", |m| {
        m.get("hubsoak_problem{problem=\"missing_scope\"}") == 1.0
    })
    .await;
    let (status, body) = p.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("admin:groups"), "{body}");
    assert!(
        body.contains("no-groups"),
        "names the token's service: {body}"
    );
    assert!(hub.ours("scoped").await.is_empty());
    p.signal("TERM");
    assert_eq!(p.exit_within(Duration::from_secs(20)).await, Some(1));

    let url = hub.api_url();
    let out = hubsoak(
        &["--prefix", "scoped", "stress-test", "-c", "2"],
        &[
            ("JUPYTERHUB_ENDPOINT", &url),
            ("JUPYTERHUB_API_TOKEN", &limited),
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("admin:groups"), "{}", out.stderr);
    assert!(hub.ours("scoped").await.is_empty(), "nothing created");
}

async fn two_soaks_on_one_prefix(major: u8) {
    let hub = RealHub::start(HubOptions::cheap(major)).await;
    let others = hub.seed_others("pair").await;
    let churn = [
        ("HUBSOAK__USERS__PREFIX", "pair"),
        ("HUBSOAK__POPULATION__TARGET", "5"),
        ("HUBSOAK__POPULATION__SESSION_MIN", "5s"),
        ("HUBSOAK__POPULATION__SESSION_MAX", "10s"),
        ("HUBSOAK__POPULATION__SPAWN_TIMEOUT", "5s"),
        ("HUBSOAK__SHUTDOWN__ON_EXIT", "leave"),
    ];
    let mut first = soak_on(&hub, &churn).await;
    first.until_running(5, Duration::from_secs(60)).await;
    let mut purge_at_end = churn.to_vec();
    purge_at_end.push(("HUBSOAK__SHUTDOWN__ON_EXIT", "purge"));
    let mut second = soak_on(&hub, &purge_at_end).await;
    until(&second, Duration::from_secs(15), "prefix_held", |m| {
        m.get("hubsoak_problem{problem=\"prefix_held\"}") == 1.0
    })
    .await;
    let (status, body) = second.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("pid"), "names the holder: {body}");

    tokio::time::sleep(Duration::from_secs(120)).await;
    let m2 = second.metrics().await;
    for op in [
        "create_users",
        "start_server",
        "stop_server",
        "delete_user",
        "activity",
    ] {
        assert_eq!(
            m2.get(&format!("hubsoak_requests_total{{operation=\"{op}\"}}")),
            0.0,
            "the second soak sent {op}"
        );
    }
    let m1 = first.metrics().await;
    assert!(
        m1.get("hubsoak_stop_duration_seconds_count{status=\"success\"}") >= 20.0,
        "the first kept churning"
    );
    assert_eq!(
        second.error_lines().len(),
        1,
        "one ERROR line while waiting"
    );

    first.signal("TERM");
    assert_eq!(first.exit_within(Duration::from_secs(30)).await, Some(0));
    until(
        &second,
        Duration::from_secs(30),
        "took over at target",
        |m| m.get("hubsoak_problem{problem=\"prefix_held\"}") == 0.0 && m.get(RUNNING) == 5.0,
    )
    .await;
    assert_eq!(second.get("/readyz").await.0, 200);
    let running = hub
        .users()
        .await
        .into_iter()
        .filter(|(n, ready)| n.starts_with("pair-") && *ready)
        .count();
    assert_eq!(running, 5, "the hub agrees");
    second.signal("TERM");
    assert_eq!(second.exit_within(Duration::from_secs(40)).await, Some(0));
    assert!(hub.ours("pair").await.is_empty(), "purged on exit");
    others.assert_untouched(&hub).await;
}
