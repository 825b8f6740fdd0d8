//! Journey settings, from `simulate`'s flags or the soak's `[journey]` table: the same
//! checks for both, each problem named by the caller's key for it.

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::{parse_duration, SettingsError};
use crate::hub::Token;
use crate::journey::{public_url_from_api, AuthMode, JourneySettings};

/// Journey settings as given, before any check.
#[derive(Debug, Clone, Default)]
pub struct RawJourney {
    pub auth: String,
    pub password: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    pub code: String,
    pub expect: String,
    pub think_time: String,
    pub step_timeout: String,
    pub kernel_name: String,
    pub public_url: String,
    /// Notebook files or directories of them.
    pub notebooks: Vec<std::path::PathBuf>,
}

/// Checks `raw`; `key` names each field as the user wrote it (e.g. "auth" →
/// "--auth" or "journey.auth"). `api_url` is None when the endpoint was itself bad.
pub fn journey(
    raw: &RawJourney,
    api_url: Option<&Url>,
    key: &dyn Fn(&str) -> String,
    problems: &mut Vec<SettingsError>,
) -> Option<JourneySettings> {
    let mut fail =
        |field: &str, message: String| problems.push(SettingsError::new(key(field), message));
    let duration = |field: &str, raw: &str, fail: &mut dyn FnMut(&str, String)| match parse_duration(
        &key(field),
        raw,
    ) {
        Ok(d) if !d.is_zero() || field == "think_time" => d,
        Ok(_) => {
            fail(field, "must be more than 0s".into());
            Duration::ZERO
        }
        Err(e) => {
            fail(field, e.message);
            Duration::ZERO
        }
    };
    let think_time = duration("think_time", &raw.think_time, &mut fail);
    let step_timeout = duration("step_timeout", &raw.step_timeout, &mut fail);
    if raw.code.trim().is_empty() {
        fail("code", "must not be empty".into());
    }
    let auth = match raw.auth.as_str() {
        "token" => Some(AuthMode::Token),
        "user-token" => Some(AuthMode::UserToken),
        "form" => {
            let password = match (&raw.password_file, &raw.password) {
                (Some(path), _) => read_password(path)
                    .map_err(|e| fail("password_file", e))
                    .ok(),
                (None, Some(p)) if !p.is_empty() => Token::new(p)
                    .map_err(|e| fail("password", e.to_string()))
                    .ok(),
                // DummyAuthenticator takes any password, an empty one included.
                _ => None,
            };
            Some(AuthMode::Form { password })
        }
        other => {
            fail(
                "auth",
                format!("{other:?} must be \"token\", \"user-token\" or \"form\""),
            );
            None
        }
    };
    let public_url = if raw.public_url.trim().is_empty() {
        api_url.map(public_url_from_api)
    } else {
        match Url::parse(raw.public_url.trim()) {
            Ok(mut u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                Some(u)
            }
            _ => {
                fail(
                    "public_url",
                    format!("{:?} is not an http(s) URL", raw.public_url),
                );
                None
            }
        }
    };
    let notebooks = match crate::journey::load_notebooks(&raw.notebooks) {
        Ok(notebooks) => notebooks,
        Err(found) => {
            for problem in found {
                fail("notebooks", problem);
            }
            Vec::new()
        }
    };
    Some(JourneySettings {
        notebooks,
        public_url: public_url?,
        auth: auth?,
        code: raw.code.clone(),
        expect: raw.expect.clone(),
        think_time,
        step_timeout,
        kernel_name: raw.kernel_name.trim().to_string(),
    })
}

fn read_password(path: &Path) -> Result<Token, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // A file's trailing newline is not part of the password.
    Token::new(raw.trim_end_matches(['\n', '\r'])).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawJourney {
        RawJourney {
            auth: "token".into(),
            code: "5 * 4".into(),
            expect: "20".into(),
            think_time: "5s".into(),
            step_timeout: "60s".into(),
            ..RawJourney::default()
        }
    }

    #[test]
    fn the_public_url_comes_from_the_endpoint() {
        let api = Url::parse("https://h.example.org/jupyter/hub/api/").unwrap();
        assert_eq!(
            public_url_from_api(&api).as_str(),
            "https://h.example.org/jupyter/"
        );
        let mut problems = Vec::new();
        let j = journey(&raw(), Some(&api), &|f| format!("--{f}"), &mut problems).unwrap();
        assert!(problems.is_empty());
        assert_eq!(j.public_url.as_str(), "https://h.example.org/jupyter/");
        assert_eq!(j.auth, AuthMode::Token);
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let bad = RawJourney {
            auth: "oauth".into(),
            code: " ".into(),
            step_timeout: "0s".into(),
            public_url: "ftp://x".into(),
            ..raw()
        };
        let mut problems = Vec::new();
        let api = Url::parse("http://h/hub/api/").unwrap();
        assert!(journey(&bad, Some(&api), &|f| format!("journey.{f}"), &mut problems).is_none());
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "journey.step_timeout",
                "journey.code",
                "journey.auth",
                "journey.public_url"
            ]
        );
    }

    #[test]
    fn form_mode_reads_the_password_file_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let r = RawJourney {
            auth: "form".into(),
            password_file: Some(file),
            ..raw()
        };
        let api = Url::parse("http://h/hub/api/").unwrap();
        let j = journey(&r, Some(&api), &|f| f.to_string(), &mut Vec::new()).unwrap();
        match j.auth {
            AuthMode::Form { password: Some(p) } => assert_eq!(p.expose(), "s3cret"),
            other => panic!("{other:?}"),
        }
    }
}
