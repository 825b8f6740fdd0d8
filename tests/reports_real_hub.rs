//! Run reports against real JupyterHub 5.x and 6.x: what the report's series reads from
//! a real hub.

mod common;

use common::realhub::{HubOptions, RealHub, Spawner};
use common::*;

on_both_hubs!(report_series_and_the_hubs_usage);

/// The report's series on a real hub: hubsoak's own usage always; the hub's CPU and
/// memory, read from its prometheus_client `/hub/metrics`, when the token holds
/// `read:metrics` — and without it, no hub usage and no harm done.
async fn report_series_and_the_hubs_usage(major: u8) {
    let hub = RealHub::start(HubOptions {
        spawner: Spawner::Cheap { delay: 1.0 },
        ..HubOptions::cheap(major)
    })
    .await;
    let url = hub.api_url();
    let run = |token: String| {
        let url = url.clone();
        async move {
            hubsoak_reporting(
                &["stress-test", "-c", "9", "-b", "3"],
                &[
                    ("JUPYTERHUB_ENDPOINT", &url),
                    ("JUPYTERHUB_API_TOKEN", &token),
                ],
            )
            .await
        }
    };
    let usage = |r: &serde_json::Value, who: &str| -> Vec<f64> {
        r["series"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s[who]["rss_bytes"].as_f64())
            .collect()
    };
    let (out, r) = run(hub.token.clone()).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        r["series"]["samples"].as_array().unwrap().len() >= 2,
        "{}",
        r["series"]
    );
    assert!(!usage(&r, "hubsoak").is_empty(), "hubsoak's own usage");
    assert!(usage(&r, "hub").is_empty(), "no read:metrics, no hub usage");
    let (out, r) = run(format!("{}-metrics", hub.token)).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let hub_rss = usage(&r, "hub");
    assert!(!hub_rss.is_empty(), "{}", r["series"]);
    // A JupyterHub process holds tens of megabytes.
    assert!(hub_rss.iter().all(|b| *b > 20e6), "{hub_rss:?}");
}
