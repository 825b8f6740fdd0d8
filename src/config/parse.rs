//! The small parsers every command's settings use: one problem type naming its key, a
//! collector that keeps every problem, and durations, counts, rates, URLs and paths. A
//! leaf: it knows no command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

/// One problem with the input, naming where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError {
            key: key.into(),
            message: one_line(&message.into()),
        }
    }

    /// Adds where in the file it is.
    pub fn at(mut self, line: Option<usize>) -> Self {
        if let Some(line) = line {
            self.message = format!("{} (line {line})", self.message);
        }
        self
    }
}

/// Folds a parser's multi-line message (a source snippet with carets) into one line,
/// keeping what it says and dropping the drawing.
fn one_line(message: &str) -> String {
    if !message.contains('\n') {
        return message.to_string();
    }
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with('|') && !l.starts_with('^'))
        .filter(|l| {
            !l.split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// Collects every error instead of stopping at the first.
#[derive(Default)]
pub struct Problems(pub Vec<SettingsError>);

impl Problems {
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(SettingsError::new(key, message));
    }

    /// The value, or `fallback` with the error recorded.
    pub fn take<T>(&mut self, result: Result<T, SettingsError>, fallback: T) -> T {
        result.unwrap_or_else(|e| {
            self.0.push(e);
            fallback
        })
    }
}

/// Parses "90s", "5m", "1h 30m", "250ms".
pub fn parse_duration(key: &str, raw: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        SettingsError::new(
            key,
            format!("{raw:?} is not a duration like \"90s\" or \"5m\" ({e})"),
        )
    })
}

/// A duration where zero makes no sense (a timeout, a run's length).
pub fn parse_positive_duration(key: &str, raw: &str) -> Result<Duration, SettingsError> {
    match parse_duration(key, raw)? {
        d if d.is_zero() => Err(SettingsError::new(key, "must be more than 0s")),
        d => Ok(d),
    }
}

/// The most of anything hubsoak counts (users, batch sizes, workers, rounds).
pub const COUNT_MAX: u64 = u32::MAX as u64;

pub fn parse_count(key: &str, raw: &str, min: u64) -> Result<u64, SettingsError> {
    let out_of_range = |got: &str| {
        SettingsError::new(
            key,
            format!("must be from {min} to {COUNT_MAX} (got {got})"),
        )
    };
    let trimmed = raw.trim();
    if !trimmed.is_empty()
        && trimmed
            .strip_prefix('-')
            .unwrap_or(trimmed)
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        // A whole number, perhaps too big for any integer type.
        return match trimmed.parse::<i128>() {
            Ok(n) if n >= min as i128 && n <= COUNT_MAX as i128 => Ok(n as u64),
            _ => Err(out_of_range(trimmed)),
        };
    }
    Err(SettingsError::new(
        key,
        format!("{raw:?} is not a whole number (from {min} to {COUNT_MAX})"),
    ))
}

pub fn parse_rate(key: &str, raw: &str) -> Result<f64, SettingsError> {
    match raw.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(SettingsError::new(
            key,
            format!("{raw:?} is not a probability between 0.0 and 1.0"),
        )),
    }
}

/// The hub API base from what operators pass: `https://hub/hub/api`, with or without a
/// trailing slash, or just the hub's root URL (`/hub/api/` is then added).
pub fn parse_endpoint(key: &str, raw: &str) -> Result<Url, SettingsError> {
    let bad =
        |why: &str| SettingsError::new(key, format!("{raw:?} is not a usable hub URL: {why}"));
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in the token, not the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let path = match segments.as_slice() {
        [.., "hub", "api"] => format!("{path}/"),
        // The hub's own URL, e.g. https://host/hub or https://host/jhub/hub.
        [.., "hub"] => format!("{path}/api/"),
        s if s.contains(&"hub") || s.contains(&"user") => {
            return Err(bad(
                "it is a page or API call inside the hub; give the hub's API \
                 (https://host/hub/api), the hub (https://host/hub) or its root \
                 (https://host/, https://host/BASE_URL/)",
            ))
        }
        // The root, or a base_url.
        _ => format!("{path}/hub/api/"),
    };
    url.set_path(&path);
    Ok(url)
}

/// A CA file must hold at least one PEM certificate: checked before the first request.
pub fn check_ca_file(key: &str, path: &Path) -> Result<(), SettingsError> {
    let pem = std::fs::read(path)
        .map_err(|e| SettingsError::new(key, format!("cannot read {}: {e}", path.display())))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(SettingsError::new(
            key,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        )),
        Err(e) => Err(SettingsError::new(
            key,
            format!("{} is not a PEM certificate bundle: {e}", path.display()),
        )),
    }
}

/// The report path must be writable where it points, checked before the run.
pub fn check_output_path(key: &str, path: &Option<PathBuf>, problems: &mut Problems) {
    let Some(path) = path else {
        return;
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if path.is_dir() {
        problems.push(
            key,
            format!("{} is a directory; give a file's path", path.display()),
        );
    } else if !parent.is_dir() {
        problems.push(
            key,
            format!("directory {} does not exist", parent.display()),
        );
    } else if let Err(e) = probe_writable(path) {
        problems.push(key, format!("cannot write {}: {e}", path.display()));
    }
}

/// Opens `path` for writing without changing it (an empty file made for the probe is
/// removed again).
fn probe_writable(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::fs::remove_file(path)
}

/// The first non-empty of the flag and the environment variables, in order.
pub fn flag_or_env(
    flag: &Option<String>,
    env: &HashMap<String, String>,
    vars: &[&str],
) -> Option<String> {
    flag.clone()
        .into_iter()
        .chain(vars.iter().filter_map(|v| env.get(*v).cloned()))
        .find(|v| !v.trim().is_empty())
}

pub fn parse_range(key: &str, raw: &str) -> Result<std::ops::RangeInclusive<u64>, SettingsError> {
    let bad = || {
        SettingsError::new(
            key,
            format!("{raw:?} is not a range of seconds like \"30-60\""),
        )
    };
    let (lo, hi) = raw.split_once('-').unwrap_or((raw, raw));
    let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_become_one_line() {
        let e = SettingsError::new(
            "--config",
            "TOML parse error at line 1, column 12\n  |\n1 | [population\n  |            ^\nunclosed table, expected `]`\n",
        );
        assert_eq!(
            e.to_string(),
            "--config: TOML parse error at line 1, column 12: unclosed table, expected `]`"
        );
    }

    #[test]
    fn endpoint_forms() {
        let ok = |raw: &str| parse_endpoint("e", raw).unwrap().to_string();
        assert_eq!(ok("http://h:8000/hub/api"), "http://h:8000/hub/api/");
        assert_eq!(ok("http://h:8000/hub/api/"), "http://h:8000/hub/api/");
        assert_eq!(ok("https://h/"), "https://h/hub/api/");
        assert_eq!(ok("https://h/prefix"), "https://h/prefix/hub/api/");
        for bad in [
            "h:8000",
            "ftp://h/hub/api",
            "http://",
            "not a url",
            "http://u:p@h/hub/api",
        ] {
            assert!(parse_endpoint("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(parse_count("c", "15", 1), Ok(15));
        assert_eq!(
            parse_count("c", "0", 1).unwrap_err().message,
            "must be from 1 to 4294967295 (got 0)"
        );
        assert_eq!(
            parse_count("c", "99999999999999999999999", 1)
                .unwrap_err()
                .message,
            "must be from 1 to 4294967295 (got 99999999999999999999999)"
        );
        assert!(parse_count("c", "-3", 1).is_err());
        assert!(parse_count("c", "x", 1).is_err());
        assert_eq!(parse_duration("d", "90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("d", "5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("d", "soon").is_err());
        assert_eq!(parse_range("r", "1-2"), Ok(1..=2));
        assert!(parse_range("r", "5-1").is_err());
    }
}
