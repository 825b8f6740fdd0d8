//! The simulator against the API contract, and its timing, throttling, ground-truth
//! metrics and fault switches.

mod common;

use std::time::Duration;

use common::contract::Contract;
use common::*;
use hubsoak::mockhub::{Faults, MockConfig, Phase};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn simulator_keeps_the_contract() {
    // A second token with the expanded scopes a real hub gives the README's role
    // without admin:groups (as the real-hub harness's "no-groups" service has).
    let no_groups = format!("{TOKEN}-no-groups");
    let scopes = [
        "access:servers",
        "admin:auth_state",
        "admin:users",
        "delete:servers",
        "delete:users",
        "list:users",
        "read:servers",
        "read:tokens",
        "read:users",
        "read:users:activity",
        "servers",
        "tokens",
        "users",
        "users:activity",
    ];
    let (_hub, server) = start_mock(MockConfig {
        limited_tokens: vec![(
            no_groups.clone(),
            scopes.iter().map(|s| s.to_string()).collect(),
        )],
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "contract-");
    c.users_and_activity().await;
    c.server_lifecycle().await;
    c.errors_groups_and_scopes(TOKEN, &no_groups).await;
    c.health_metrics_and_user_tokens(TOKEN).await;
    c.single_user_routes().await;
    let (_hub, named) = start_mock(MockConfig {
        allow_named_servers: true,
        ..fast()
    })
    .await;
    Contract::new(&named.api_url(), TOKEN, "named-")
        .named_servers_and_login()
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_spawn_answers_202_and_streams_progress_to_ready() {
    let (hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(800),
        slow_spawn_timeout: Duration::from_millis(100),
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "s-");
    c.authed(Method::POST, "/users", Some(json!({"usernames": ["s-1"]})))
        .await;
    let r = c.authed(Method::POST, "/users/s-1/server", None).await;
    assert_eq!(r.status, 202);
    // A second start while pending: 202 again, nothing new begun.
    let r = c.authed(Method::POST, "/users/s-1/server", None).await;
    assert_eq!(r.status, 202);
    assert_eq!(hub.stats().spawns_started, 1);
    let r = c
        .authed(Method::GET, "/users/s-1/server/progress", None)
        .await;
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events: Vec<serde_json::Value> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() >= 2, "progress then ready: {}", r.body);
    assert!(events[0]["progress"].as_u64().unwrap() < 100);
    assert_eq!(events.last().unwrap()["ready"], true);
    assert_eq!(events.last().unwrap()["url"], "/user/s-1/");
    assert_eq!(hub.spawn_count("success", ""), 1);
    assert_eq!(hub.spawn_count("failure", "already-pending"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_spawn_answers_500_fast_or_a_failed_event_slow() {
    let (hub, server) = start_mock(MockConfig {
        spawn_failure_rate: 1.0,
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "f-");
    c.authed(Method::POST, "/users", Some(json!({"usernames": ["f-1"]})))
        .await;
    let r = c.authed(Method::POST, "/users/f-1/server", None).await;
    assert_eq!(r.status, 500, "{}", r.body);
    // The progress stream still reports the failure, as JupyterHub's does.
    let r = c
        .authed(Method::GET, "/users/f-1/server/progress", None)
        .await;
    assert!(r.body.contains("\"failed\":true"), "{}", r.body);
    assert_eq!(hub.spawn_count("error", ""), 1);
    let u = c.authed(Method::GET, "/users/f-1", None).await.json();
    assert_eq!(u["servers"], json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_stop_answers_202_and_delete_is_refused_while_stopping() {
    let (hub, server) = start_mock(MockConfig {
        stop_delay: Duration::from_millis(800),
        slow_stop_timeout: Duration::from_millis(100),
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "d-");
    c.authed(Method::POST, "/users", Some(json!({"usernames": ["d-1"]})))
        .await;
    assert_eq!(
        c.authed(Method::POST, "/users/d-1/server", None)
            .await
            .status,
        201
    );
    assert_eq!(
        c.authed(Method::DELETE, "/users/d-1/server", None)
            .await
            .status,
        202
    );
    assert_eq!(hub.phase("d-1", ""), Some(Phase::Stopping));
    let u = c.authed(Method::GET, "/users/d-1", None).await.json();
    assert_eq!(u["servers"][""]["pending"], "stop");
    let r = c.authed(Method::DELETE, "/users/d-1", None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("stopping"));
    assert_eq!(
        c.authed(Method::DELETE, "/users/d-1/server", None)
            .await
            .status,
        202
    );
    assert!(
        wait_for(Duration::from_secs(5), || hub.phase("d-1", "")
            == Some(Phase::Stopped))
        .await
    );
    assert_eq!(
        c.authed(Method::DELETE, "/users/d-1", None).await.status,
        204
    );
    assert_eq!(hub.stop_count("success"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_answer_429_with_and_without_retry_after() {
    let (hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_secs(5),
        slow_spawn_timeout: Duration::from_millis(50),
        concurrent_spawn_limit: Some(1),
        retry_after: 7..=9,
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "l-");
    c.authed(
        Method::POST,
        "/users",
        Some(json!({"usernames": ["l-1", "l-2"]})),
    )
    .await;
    assert_eq!(
        c.authed(Method::POST, "/users/l-1/server", None)
            .await
            .status,
        202
    );
    let r = c.authed(Method::POST, "/users/l-2/server", None).await;
    assert_eq!(r.status, 429);
    let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((7..=9).contains(&after));
    assert!(r.body.contains("Too many users"));
    assert_eq!(hub.spawn_count("failure", "throttled"), 1);
    // Coming back before Retry-After is noticed.
    c.authed(Method::POST, "/users/l-2/server", None).await;
    assert_eq!(hub.stats().early_retries, 1);

    let (_hub, server) = start_mock(MockConfig {
        active_server_limit: Some(1),
        ..fast()
    })
    .await;
    let c = Contract::new(&server.api_url(), TOKEN, "m-");
    c.authed(
        Method::POST,
        "/users",
        Some(json!({"usernames": ["m-1", "m-2"]})),
    )
    .await;
    assert_eq!(
        c.authed(Method::POST, "/users/m-1/server", None)
            .await
            .status,
        201
    );
    let r = c.authed(Method::POST, "/users/m-2/server", None).await;
    assert_eq!(r.status, 429);
    assert!(!r.headers.contains_key("retry-after"));
    assert!(r.body.contains("Active user limit"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unpaginated_listing_is_cut_at_200() {
    let (hub, server) = start_mock(fast()).await;
    for i in 0..250 {
        hub.add_user(&format!("p-{i}"));
    }
    let c = Contract::new(&server.api_url(), TOKEN, "p-");
    let r = c.authed(Method::GET, "/users", None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_metrics_are_ground_truth_and_need_the_token() {
    let (_hub, server) = start_mock(fast()).await;
    let c = Contract::new(&server.api_url(), TOKEN, "g-");
    c.authed(Method::POST, "/users", Some(json!({"usernames": ["g-1"]})))
        .await;
    c.authed(Method::POST, "/users/g-1/server", None).await;
    let url = format!("http://{}/hub/metrics", server.addr);
    let anon = reqwest::get(&url).await.unwrap();
    assert_eq!(anon.status(), 403);
    let text = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("token {TOKEN}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "jupyterhub_server_spawn_duration_seconds_count{reason=\"\",status=\"success\"} 1",
        "jupyterhub_running_servers 1",
        "jupyterhub_total_users 1",
        "jupyterhub_server_stop_seconds_count{status=\"success\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_switches_fail_requests_as_configured() {
    let (hub, server) = start_mock(fast()).await;
    let c = Contract::new(&server.api_url(), TOKEN, "x-");
    hub.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(c.authed(Method::GET, "/users", None).await.status, 503);
    hub.set_faults(Faults {
        malformed_json_rate: 1.0,
        ..Faults::default()
    });
    let r = c.authed(Method::GET, "/users", None).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&r.body).is_err());
    hub.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let err = reqwest::Client::new()
        .get(format!("{}/users", server.api_url()))
        .send()
        .await;
    assert!(err.is_err(), "connection dropped");
    hub.set_faults(Faults {
        added_latency: Duration::from_millis(300),
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    assert_eq!(c.authed(Method::GET, "/users", None).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}
