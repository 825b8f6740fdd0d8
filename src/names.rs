//! Which users are ours. Every user hubsoak creates is `{prefix}-{n}`; the only way to get
//! an [`OurName`] — which every stop, delete and purge requires — is through a [`Prefix`]
//! that checks the name, so a user that is not ours cannot be acted on, whatever the input.

use std::fmt;

/// A validated user-name prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Prefix(String);

/// A user name that carries our prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct OurName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "prefix {0:?} must be 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
)]
pub struct InvalidPrefix(pub String);

impl Prefix {
    pub fn new(raw: &str) -> Result<Self, InvalidPrefix> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            && raw
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Prefix(raw.to_string()))
        } else {
            Err(InvalidPrefix(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{prefix}-`: what every one of our names starts with (and the `name_filter`).
    pub fn stem(&self) -> String {
        format!("{}-", self.0)
    }

    /// The n-th user of ours.
    pub fn name(&self, n: u64) -> OurName {
        OurName(format!("{}-{}", self.0, n))
    }

    /// `Some` only if `name` starts with `{prefix}-`.
    pub fn claim(&self, name: &str) -> Option<OurName> {
        name.strip_prefix(self.0.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .map(|_| OurName(name.to_string()))
    }

    /// `n` for a name of exactly the form `{prefix}-{n}`.
    pub fn index_of(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(self.0.as_str())?.strip_prefix('-')?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }
}

/// JupyterHub 6.x's rule for a named server: 1-30 of a-z, 0-9 and '-', starting with
/// a letter.
pub fn valid_server_name(name: &str) -> bool {
    (1..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl OurName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OurName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OurName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_only_our_names() {
        let p = Prefix::new("hubsoak").unwrap();
        assert!(p.claim("hubsoak-1").is_some());
        assert!(p.claim("hubsoak-a-b").is_some());
        assert!(p.claim("hubsoak").is_none());
        assert!(p.claim("hubsoakx-1").is_none());
        assert!(p.claim("xhubsoak-1").is_none());
        assert!(p.claim("alice").is_none());
    }

    #[test]
    fn index_only_for_exact_form() {
        let p = Prefix::new("hs").unwrap();
        assert_eq!(p.index_of("hs-12"), Some(12));
        assert_eq!(p.index_of("hs-"), None);
        assert_eq!(p.index_of("hs-1x"), None);
        assert_eq!(p.index_of("hs-0-3"), None);
        assert_eq!(p.name(7).as_str(), "hs-7");
    }

    #[test]
    fn rejects_bad_prefixes() {
        for bad in ["", "Hub", "-x", "a b", "a/b", &"x".repeat(33)] {
            assert!(Prefix::new(bad).is_err(), "{bad}");
        }
    }
}
