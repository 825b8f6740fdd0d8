//! The API token: a secret that never reaches a log line, a report, `/metrics` or an error.

use std::fmt;
use std::sync::Arc;

/// A JupyterHub API token. `Debug` and `Display` print `[redacted]`; only
/// [`Token::expose`] yields the value, and only the HTTP layer calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

/// Why a string cannot be a token. Carries no part of the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidToken {
    #[error("the token is empty")]
    Empty,
    #[error("the token contains whitespace or control characters")]
    BadCharacters,
}

impl Token {
    /// Accepts a token with surrounding whitespace (as read from a file) trimmed.
    pub fn new(raw: &str) -> Result<Self, InvalidToken> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidToken::BadCharacters);
        }
        Ok(Token(Arc::from(value)))
    }

    /// The secret itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
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
