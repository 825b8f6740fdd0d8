//! The API token: a secret that never reaches a log line, a report, `/metrics` or an error.
//! One reader of its value (the HTTP layer), one header builder, and one redactor that
//! every text from a hub or a server passes before it is shown: it replaces each secret
//! hubsoak holds — its token (and any rotated in), passwords, and the tokens it minted
//! for its users while they live.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

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

/// Why a token file gives no token. Carries no part of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        source: InvalidToken,
    },
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
        remember(value);
        Ok(Token(Arc::from(value)))
    }

    /// A new random token (32 alphanumerics), for a simulator hubsoak runs itself.
    pub fn random() -> Token {
        use rand::Rng;
        let value: String = rand::thread_rng()
            .sample_iter(rand::distributions::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        remember(&value);
        Token(Arc::from(value.as_str()))
    }

    /// The token in a file (a mounted Secret): the one reader of token files, for the
    /// settings and for the soak's watch of a rotated file.
    pub fn read_file(path: &std::path::Path) -> Result<Token, TokenFileError> {
        let raw = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Token::new(&raw).map_err(|source| TokenFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
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

/// What replaces a secret in any text shown.
pub const REDACTED: &str = "[redacted]";
/// Shorter values are not searched for: they would blank out ordinary words.
const MIN_SECRET: usize = 6;

/// The secrets held now, each with how many holders it has.
static SECRETS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

fn secrets() -> std::sync::MutexGuard<'static, Vec<(String, usize)>> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner())
}

fn remember(secret: &str) {
    if secret.len() < MIN_SECRET {
        return;
    }
    let mut all = secrets();
    match all.iter_mut().find(|(s, _)| s == secret) {
        Some((_, n)) => *n += 1,
        None => all.push((secret.to_string(), 1)),
    }
}

fn forget(secret: &str) {
    let mut all = secrets();
    if let Some(i) = all.iter().position(|(s, _)| s == secret) {
        all[i].1 -= 1;
        if all[i].1 == 0 {
            all.swap_remove(i);
        }
    }
}

/// `text` with every secret hubsoak holds replaced by `[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = secrets();
    if !all.iter().any(|(s, _)| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for (s, _) in all.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    Cow::Owned(out)
}

/// A secret hubsoak minted (a user's token): redacted while this lives.
pub struct Minted(String);

impl Minted {
    pub fn new(secret: &str) -> Minted {
        remember(secret);
        Minted(secret.to_string())
    }
}

impl Drop for Minted {
    fn drop(&mut self) {
        forget(&self.0);
    }
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Minted([redacted])")
    }
}

/// At most `max` bytes of `text`, cut on a character boundary, with `…` if cut.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
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
    fn redacts_every_secret_held_and_minted_ones_only_while_they_live() {
        let _t = Token::new("tok-0123456789abcdef").unwrap();
        let text =
            "hub answered 403: Invalid credentials in Authorization: token tok-0123456789abcdef";
        assert_eq!(
            redact(text),
            "hub answered 403: Invalid credentials in Authorization: token [redacted]"
        );
        let minted = Minted::new("user-secret-42424242");
        assert!(!redact("x user-secret-42424242 y").contains("42424242"));
        drop(minted);
        assert!(redact("x user-secret-42424242 y").contains("42424242"));
        assert_eq!(redact("nothing secret"), "nothing secret");
    }

    #[test]
    fn cuts_on_character_boundaries() {
        let text = format!("{}é and more", "a".repeat(199));
        assert_eq!(cut(&text, 200), format!("{}…", "a".repeat(199)));
        assert_eq!(cut("short", 200), "short");
    }

    #[test]
    fn rejects_empty_and_inner_space() {
        assert_eq!(Token::new(" \n"), Err(InvalidToken::Empty));
        assert_eq!(Token::new("a b"), Err(InvalidToken::BadCharacters));
    }
}
