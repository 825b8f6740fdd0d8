//! The API token: a secret that never reaches a log line, a report, `/metrics` or an error.

use std::fmt;
use std::sync::{Arc, RwLock};

use reqwest::header::HeaderValue;

/// A JupyterHub API token. `Debug` and `Display` print `[redacted]`; only
/// [`Token::expose`] yields the value, and only the HTTP layer calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

/// Why a string cannot be a token. Carries no part of the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidToken {
    #[error("the token is empty")]
    Empty,
    #[error("the token contains whitespace, control or non-ASCII characters")]
    BadCharacters,
}

impl Token {
    /// Accepts a token with surrounding whitespace (as read from a file) trimmed.
    pub fn new(raw: &str) -> Result<Self, InvalidToken> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(InvalidToken::BadCharacters);
        }
        Ok(Token(Arc::from(value)))
    }

    /// The secret itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The `Authorization` header every hub request carries, shared by the API client and
/// the journeys so that a rotated token (a rewritten `hub.token_file`) reaches them all
/// at once. Built here only: the one place that turns a token into a header.
#[derive(Clone)]
pub struct AuthHeader(Arc<RwLock<HeaderValue>>);

impl AuthHeader {
    pub fn new(token: &Token) -> Self {
        AuthHeader(Arc::new(RwLock::new(header_for(token))))
    }

    /// The current header (marked sensitive, so never printed by the HTTP stack).
    pub fn get(&self) -> HeaderValue {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Uses `token` from now on.
    pub fn set(&self, token: &Token) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = header_for(token);
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthHeader([redacted])")
    }
}

/// `token T`, sensitive. A `Token` holds no whitespace or control characters, so it is
/// always a valid header value.
fn header_for(token: &Token) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("token {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("token invalid"));
    value.set_sensitive(true);
    value
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let t = Token::new("  s3cr3t-value\n").unwrap();
        assert_eq!(t.expose(), "s3cr3t-value");
        assert!(!format!("{t:?} {t}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&t).unwrap().contains("s3cr3t"));
    }

    #[test]
    fn rejects_empty_and_inner_space() {
        assert_eq!(Token::new(" \n"), Err(InvalidToken::Empty));
        assert_eq!(Token::new("a b"), Err(InvalidToken::BadCharacters));
    }
}
