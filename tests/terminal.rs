//! What people read on the terminal: each command's help shows its own examples and only
//! the flags it reads, counts agree with their nouns, and latencies keep their precision.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn each_commands_help_shows_its_own_examples() {
    for (command, own, foreign) in [
        ("purge", "stop_p95<30s", "spawn_p95"),
        ("activity-stress-test", "activity_p95<500ms", "spawn_p95"),
        ("simulate", "execute_p95<2s", "activity_p95"),
        ("stress-test", "spawn_p95<60s", "activity_p95"),
    ] {
        let out = hubsoak(&[command, "--help"], &[]).await;
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.contains(own), "{command}: {}", out.stdout);
        assert!(!out.stdout.contains(foreign), "{command}: {}", out.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_hub_lists_and_takes_only_its_own_flags() {
    let out = hubsoak(&["mock-hub", "--help"], &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    for own in ["--spawn-delay", "--listen", "--token", "--log-format"] {
        assert!(out.stdout.contains(own), "{own}: {}", out.stdout);
    }
    for foreign in [
        "--endpoint",
        "--prefix",
        "--dry-run",
        "--shards",
        "--request-timeout",
    ] {
        assert!(!out.stdout.contains(foreign), "{foreign}: {}", out.stdout);
    }
    let out = hubsoak(&["-e", "http://127.0.0.1:9/hub/api", "mock-hub"], &[]).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--endpoint"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_agree_with_their_nouns_and_latencies_keep_their_precision() {
    let (_hub, server) = start_mock(fast()).await;
    let out = against(&server, &["stress-test", "--dry-run", "-c", "1", "-b", "1"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("create 1 user,"), "{}", out.stdout);
    assert!(out.stdout.contains("in 1 request of"), "{}", out.stdout);
    assert!(!out.stdout.contains("1 users") && !out.stdout.contains("1 requests"));
    // A fast simulator stops servers in a few milliseconds: shown as such, never "0ms".
    let out = against(&server, &["stress-test", "-c", "3", "-b", "3"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let stop = out
        .stdout
        .lines()
        .find(|l| l.starts_with("stop ") && l.split_whitespace().count() >= 6)
        .unwrap_or_default()
        .to_string();
    assert!(!stop.contains(" 0ms"), "{}", out.stdout);
    assert!(stop.contains("ms") || stop.contains("µs"), "{}", out.stdout);
}
