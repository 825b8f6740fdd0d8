//! The hub client against the simulator: pagination, progress, retries and how every
//! failure is classified and counted.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hubsoak::hub::{
    ClientConfig, FailureReason, HubClient, HubSettings, Operation, RequestTally, SpawnWaitError,
    StartOutcome, StopOutcome, Token,
};
use hubsoak::mockhub::{Faults, MockConfig, MockServer};
use hubsoak::names::Prefix;

/// The defaults a soak would use (config/hubsoak.toml), against `server`.
fn hub_settings(server: &MockServer, token: &str) -> HubSettings {
    HubSettings {
        api_url: format!("{}/", server.api_url()).parse().unwrap(),
        token: Token::new(token).unwrap(),
        token_file: None,
        request_timeout: Duration::from_secs(30),
        ca_file: None,
        max_in_flight: 64,
    }
}

fn client(
    server: &MockServer,
    tweak: impl FnOnce(&mut ClientConfig),
) -> (HubClient, Arc<RequestTally>) {
    let tally = Arc::new(RequestTally::default());
    let mut cfg = ClientConfig::new(&hub_settings(server, TOKEN));
    cfg.poll_interval = Duration::from_millis(50);
    tweak(&mut cfg);
    (HubClient::new(cfg, tally.clone()).unwrap(), tally)
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_every_page_and_only_our_names() {
    let (hub, server) = start_mock(fast()).await;
    for i in 1..=450 {
        hub.add_user(&format!("hubsoak-{i}"));
    }
    hub.add_user("alice-hubsoak-1");
    let (c, tally) = client(&server, |_| {});
    let ours = c
        .list_our_users(&Prefix::new("hubsoak").unwrap())
        .await
        .unwrap();
    assert_eq!(ours.len(), 450);
    assert_eq!(tally.requests(Operation::ListUsers), 3, "pages of 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_ready_through_the_progress_stream() {
    let (_hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(600),
        slow_spawn_timeout: Duration::from_millis(50),
        ..fast()
    })
    .await;
    let (c, tally) = client(&server, |_| {});
    let p = Prefix::new("w").unwrap();
    c.create_users(&[p.name(1)]).await.unwrap();
    let t = Instant::now();
    assert_eq!(
        c.start_server(&p.name(1), "", None).await.unwrap(),
        StartOutcome::Pending
    );
    c.wait_until_ready("w-1", "", Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert_eq!(tally.requests(Operation::Progress), 1);
    assert_eq!(tally.requests(Operation::GetUser), 0, "no polling needed");
    assert_eq!(
        c.stop_server(&p.name(1), "").await.unwrap(),
        StopOutcome::Stopped
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_spawn_and_a_deadline_are_told_apart() {
    let (_hub, server) = start_mock(MockConfig {
        spawn_delay: Duration::from_millis(300),
        slow_spawn_timeout: Duration::from_millis(50),
        spawn_failure_rate: 1.0,
        ..fast()
    })
    .await;
    let (c, _) = client(&server, |_| {});
    let p = Prefix::new("w").unwrap();
    c.create_users(&[p.name(1), p.name(2)]).await.unwrap();
    c.start_server(&p.name(1), "", None).await.unwrap();
    let err = c
        .wait_until_ready("w-1", "", Instant::now() + Duration::from_secs(5))
        .await;
    assert!(matches!(err, Err(SpawnWaitError::Failed(_))), "{err:?}");
    c.start_server(&p.name(2), "", None).await.unwrap();
    let err = c
        .wait_until_ready("w-2", "", Instant::now() + Duration::from_millis(100))
        .await;
    assert!(matches!(err, Err(SpawnWaitError::TimedOut)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_classified_retried_and_counted() {
    let (hub, server) = start_mock(fast()).await;
    let (c, tally) = client(&server, |cfg| {
        cfg.request_timeout = Duration::from_millis(300)
    });

    hub.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let err = c.get_user("x").await.unwrap_err();
    assert_eq!(err.reason(), FailureReason::ServerError);
    assert_eq!(
        tally.requests(Operation::GetUser),
        4,
        "tried once, retried 3 times"
    );
    assert_eq!(tally.retries(Operation::GetUser), 3);
    assert_eq!(
        tally.failures(Operation::GetUser, FailureReason::ServerError),
        4
    );

    hub.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let err = c.version().await.unwrap_err();
    assert_eq!(err.reason(), FailureReason::Connection);
    assert_eq!(
        tally.failures(Operation::Version, FailureReason::Connection),
        4
    );

    hub.set_faults(Faults {
        malformed_json_rate: 1.0,
        ..Faults::default()
    });
    let err = c.version().await.unwrap_err();
    assert_eq!(err.reason(), FailureReason::InvalidResponse);
    assert_eq!(
        tally.retries(Operation::Version),
        3,
        "invalid JSON is not retried"
    );

    hub.set_faults(Faults {
        added_latency: Duration::from_secs(1),
        ..Faults::default()
    });
    let err = c.health().await.unwrap_err();
    assert_eq!(err.reason(), FailureReason::Timeout);
    assert_eq!(
        tally.requests(Operation::Health),
        1,
        "a probe is not retried"
    );

    hub.set_faults(Faults::default());
    let bad = HubClient::new(
        ClientConfig::new(&hub_settings(&server, "wrong")),
        tally.clone(),
    )
    .unwrap();
    let err = bad.get_user("x").await.unwrap_err();
    assert_eq!(
        (err.status(), err.reason()),
        (Some(403), FailureReason::ClientError)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_hub_is_a_connection_failure() {
    let (_hub, server) = start_mock(fast()).await;
    let (c, tally) = client(&server, |cfg| {
        cfg.retry.base_backoff = Duration::from_millis(10);
    });
    server.stop().await;
    let err = c.health().await.unwrap_err();
    assert_eq!(err.reason(), FailureReason::Connection);
    assert_eq!(
        tally.failures(Operation::Health, FailureReason::Connection),
        1
    );
}
