//! Which shard of our users this replica owns. With `shards` > 1, replicas split the user
//! namespace with no coordinator: replica `k` names its users `{prefix}-{k}-{n}` and
//! manages, stops and purges only those. `k` comes from the settings, else from
//! `HUBSOAK_SHARD`, else from a StatefulSet pod's ordinal (its hostname ends in `-k`).

use std::collections::HashMap;

use super::SettingsError;
use crate::names::Prefix;

/// The shard index from a StatefulSet pod's hostname, e.g. `hubsoak-2` → 2.
pub fn ordinal_of(hostname: &str) -> Option<u64> {
    let (_, n) = hostname.trim().rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The prefix this replica's users carry: `prefix` itself when not sharded, else
/// `{prefix}-{shard}`. `shard` is the explicit setting (flag or key), if any; `key`
/// names it in errors.
pub fn sharded_prefix(
    prefix: &Prefix,
    shard: Option<&str>,
    shards: u64,
    env: &HashMap<String, String>,
    key: &str,
) -> Result<Prefix, SettingsError> {
    let given = shard.map(str::trim).filter(|s| !s.is_empty());
    if shards <= 1 {
        return match given {
            Some(s) if s != "0" => Err(SettingsError::new(
                key,
                format!("{s:?} given, but there is only one shard (set the number of shards)"),
            )),
            _ => Ok(prefix.clone()),
        };
    }
    let from_env = env
        .get("HUBSOAK_SHARD")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty());
    let index = match given.or(from_env) {
        Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
            SettingsError::new(key, format!("{raw:?} is not a shard number (0, 1, …)"))
        })?,
        None => env
            .get("HOSTNAME")
            .and_then(|h| ordinal_of(h))
            .ok_or_else(|| {
                SettingsError::new(
                    key,
                    format!(
                        "{shards} shards, but which is this one? Set it, or HUBSOAK_SHARD, or run as a StatefulSet pod (hostname NAME-ORDINAL)"
                    ),
                )
            })?,
    };
    if index >= shards {
        return Err(SettingsError::new(
            key,
            format!(
                "shard {index} does not exist: shards are 0 to {}",
                shards - 1
            ),
        ));
    }
    Prefix::new(&format!("{}-{index}", prefix.as_str()))
        .map_err(|e| SettingsError::new(key, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_shard_comes_from_the_setting_then_the_env_then_the_pod_ordinal() {
        let p = Prefix::new("hubsoak").unwrap();
        let e = env(&[("HUBSOAK_SHARD", "1"), ("HOSTNAME", "hubsoak-2")]);
        let k = "users.shard";
        assert_eq!(
            sharded_prefix(&p, Some("0"), 3, &e, k).unwrap().as_str(),
            "hubsoak-0"
        );
        assert_eq!(
            sharded_prefix(&p, None, 3, &e, k).unwrap().as_str(),
            "hubsoak-1"
        );
        let e = env(&[("HOSTNAME", "hubsoak-2")]);
        assert_eq!(
            sharded_prefix(&p, Some(""), 3, &e, k).unwrap().as_str(),
            "hubsoak-2"
        );
        assert_eq!(
            sharded_prefix(&p, None, 1, &e, k).unwrap().as_str(),
            "hubsoak"
        );
        let none = env(&[("HOSTNAME", "laptop")]);
        assert!(sharded_prefix(&p, None, 3, &none, k).is_err());
        assert!(sharded_prefix(&p, Some("3"), 3, &none, k).is_err());
        assert!(sharded_prefix(&p, Some("2"), 1, &none, k).is_err());
        assert!(sharded_prefix(&p, Some("x"), 3, &none, k).is_err());
    }

    #[test]
    fn shards_do_not_claim_each_others_users() {
        let p = Prefix::new("hubsoak").unwrap();
        let one = sharded_prefix(&p, Some("1"), 12, &HashMap::new(), "k").unwrap();
        assert!(one.claim("hubsoak-1-5").is_some());
        assert!(one.claim("hubsoak-10-5").is_none());
        assert!(one.claim("hubsoak-1").is_none());
        assert_eq!(one.index_of("hubsoak-1-5"), Some(5));
    }
}
