//! `hubsoak mock-hub`'s settings: where it listens, its token, and the hub it plays.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::hub::{read_token, FLAGS};
use super::parse::{
    flag_or_env, parse_count, parse_duration, parse_range, parse_rate, Problems, SettingsError,
};
use crate::cli::{Cli, MockHubArgs};
use crate::mockhub::{Faults, MockConfig, MockHubSettings};
use std::time::Duration;

pub fn mock_hub(
    args: &MockHubArgs,
    cli: &Cli,
    env: &HashMap<String, String>,
    p: &mut Problems,
) -> Option<MockHubSettings> {
    let listen = p.take(
        args.listen.parse::<SocketAddr>().map(Some).map_err(|_| {
            SettingsError::new(
                "--listen",
                format!("{:?} is not an address like 127.0.0.1:8000", args.listen),
            )
        }),
        None,
    );
    let given = [
        cli.endpoint.is_some(),
        cli.prefix.is_some(),
        cli.shard.is_some(),
        cli.shards.is_some(),
        cli.dry_run,
        cli.force,
        cli.request_timeout.is_some(),
        cli.ca_file.is_some(),
    ];
    for ((_, flag), given) in crate::cli::HUB_CLIENT_FLAGS.iter().zip(given) {
        if given {
            p.push(flag, "is for commands that talk to a hub; mock-hub is one");
        }
    }
    let token_value = flag_or_env(&cli.token, env, &["JUPYTERHUB_API_TOKEN"]);
    let token = p.take(
        read_token(token_value.as_deref(), cli.token_file.as_deref(), &FLAGS),
        None,
    );
    let d =
        |p: &mut Problems, key: &str, raw: &str| p.take(parse_duration(key, raw), Duration::ZERO);
    let limit = |p: &mut Problems, key: &str, raw: &Option<String>| {
        raw.as_ref()
            .map(|r| p.take(parse_count(key, r, 1), 1) as usize)
    };
    let config = MockConfig {
        token: String::new(),
        version: args.hub_version.clone(),
        spawn_delay: d(p, "--spawn-delay", &args.spawn_delay),
        spawn_jitter: d(p, "--spawn-jitter", &args.spawn_jitter),
        image_pull_delay: d(p, "--image-pull-delay", &args.image_pull_delay),
        scheduling_delay: args
            .scheduling_delay
            .as_ref()
            .map(|raw| d(p, "--scheduling-delay", raw)),
        container_start_delay: args
            .container_start_delay
            .as_ref()
            .map(|raw| d(p, "--container-start-delay", raw)),
        stop_delay: d(p, "--stop-delay", &args.stop_delay),
        spawn_failure_rate: p.take(
            parse_rate("--spawn-failure-rate", &args.spawn_failure_rate),
            0.0,
        ),
        concurrent_spawn_limit: limit(p, "--concurrent-spawn-limit", &args.concurrent_spawn_limit),
        active_server_limit: limit(p, "--active-server-limit", &args.active_server_limit),
        retry_after: p.take(parse_range("--retry-after", &args.retry_after), 30..=60),
        slow_spawn_timeout: d(p, "--slow-spawn-timeout", &args.slow_spawn_timeout),
        slow_stop_timeout: d(p, "--slow-stop-timeout", &args.slow_stop_timeout),
        allow_named_servers: args.allow_named_servers,
        authenticate_prometheus: !args.public_metrics,
        faults: Faults {
            server_error_rate: p.take(
                parse_rate("--server-error-rate", &args.server_error_rate),
                0.0,
            ),
            added_latency: d(p, "--added-latency", &args.added_latency),
            malformed_json_rate: p.take(
                parse_rate("--malformed-json-rate", &args.malformed_json_rate),
                0.0,
            ),
            drop_rate: p.take(parse_rate("--drop-rate", &args.drop_rate), 0.0),
            ..Faults::default()
        },
        ..MockConfig::default()
    };
    Some(MockHubSettings {
        listen: listen?,
        token,
        config,
    })
}
