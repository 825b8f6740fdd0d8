//! The one set of defaults: config/hubsoak.toml, compiled in. The soak reads it as its
//! lowest layer; the demo layers its own shape on top of it; the one-shots take their hub
//! and user defaults (request timeout, requests in flight, prefix) from it too.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

/// The documented defaults; every key the soak knows is in this file.
pub const DEFAULTS_TOML: &str = include_str!("../../config/hubsoak.toml");

/// Keys that have no default and so appear in the file only as comments.
const OPTIONAL_KEYS: [&str; 5] = [
    "hub.endpoint",
    "hub.token",
    "hub.token_file",
    "journey.password",
    "journey.password_file",
];

/// The defaults as a tree (`{section: {key: value}}`).
fn tree() -> &'static Value {
    static TREE: OnceLock<Value> = OnceLock::new();
    TREE.get_or_init(|| {
        DEFAULTS_TOML
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or(Value::Null)
    })
}

/// Every key a settings file may set, as `section.key`.
pub fn known_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let Value::Object(root) = tree() {
        for (section, table) in root {
            if let Value::Object(table) = table {
                for key in table.keys() {
                    keys.insert(format!("{section}.{key}"));
                }
            }
        }
    }
    keys.extend(OPTIONAL_KEYS.iter().map(|k| k.to_string()));
    keys
}

/// The default of `section.key` as text ("30s", "64", "hubsoak").
pub fn text(key: &str) -> String {
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    match tree().get(section).and_then(|t| t.get(name)) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_file_is_read() {
        assert_eq!(text("hub.request_timeout"), "30s");
        assert_eq!(text("hub.max_in_flight"), "64");
        assert_eq!(text("users.prefix"), "hubsoak");
        assert!(known_keys().contains("hub.token_file"));
        assert!(known_keys().contains("population.target"));
    }
}
