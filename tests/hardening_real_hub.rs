//! Hardening on a real JupyterHub 5.5.4 and 6.1.1: the endpoint forms operators paste
//! (the hub's API, the hub, its root under a base_url) all reach the API, and one that
//! is not the API is refused with exit 2 before anything changes.

mod common;

use common::realhub::{HubOptions, RealHub};
use common::*;

on_both_hubs!(
    endpoint_forms_under_a_base_url,
    contract_named_servers_and_login,
    contract_single_user_routes
);

/// The contract's single-user part, with real jupyterhub-singleuser servers.
async fn contract_single_user_routes(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: common::realhub::Spawner::Local,
        ..HubOptions::cheap(major)
    })
    .await;
    common::contract::Contract::new(&hub.api_url(), &hub.token, "pact-")
        .single_user_routes()
        .await;
}

/// The API contract's named-server and login part, on a hub that allows named servers
/// (the simulator keeps the same contract in tests/mockhub_api.rs).
async fn contract_named_servers_and_login(major: u8) {
    let hub = RealHub::start(HubOptions {
        named_servers: true,
        ..HubOptions::cheap(major)
    })
    .await;
    common::contract::Contract::new(&hub.api_url(), &hub.token, "pact-")
        .named_servers_and_login()
        .await;
}

async fn endpoint_forms_under_a_base_url(major: u8) {
    let hub = RealHub::start(HubOptions {
        base_url: Some("/jhub"),
        ..HubOptions::cheap(major)
    })
    .await;
    let others = hub.seed_others("forms").await;
    let root = format!("http://127.0.0.1:{}", hub.port);
    for endpoint in [
        format!("{root}/jhub/hub/api"),
        format!("{root}/jhub/hub"),
        format!("{root}/jhub/hub/"),
        format!("{root}/jhub/"),
    ] {
        let out = hubsoak(
            &[
                "-e",
                &endpoint,
                "--prefix",
                "forms",
                "stress-test",
                "-c",
                "1",
            ],
            &[("JUPYTERHUB_API_TOKEN", &hub.token)],
        )
        .await;
        assert_eq!(out.code, 0, "{endpoint}: {}", out.all());
        assert!(
            out.stdout.contains("result: ok"),
            "{endpoint}: {}",
            out.stdout
        );
    }
    // The proxy's root is not where this hub's API is.
    let out = hubsoak(
        &[
            "-e",
            &format!("{root}/"),
            "--prefix",
            "forms",
            "stress-test",
            "-c",
            "1",
        ],
        &[("JUPYTERHUB_API_TOKEN", &hub.token)],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(hub.ours("forms").await.is_empty(), "nothing left");
    others.assert_untouched(&hub).await;
}
