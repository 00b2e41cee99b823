//! Scopes (RFC 6749 §3.3): a set of case-sensitive tokens, kept sorted so that the
//! same set always has the same text.

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parse a space-delimited scope string.
    ///
    /// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err("scope contains a character outside RFC 6749 section 3.3");
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    /// Whether one token is a valid scope name.
    pub fn is_valid_token(token: &str) -> bool {
        !token.is_empty() && !token.contains(' ') && Self::parse(token).is_ok()
    }

    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        Self(tokens.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    /// The tokens of this scope that `allowed` does not hold.
    pub fn difference<'a>(&'a self, allowed: &Scope) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|t| !allowed.0.contains(*t))
            .map(String::as_str)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_and_syntax() {
        let s = Scope::parse("b a  b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("transactions:read").is_ok());
    }
}
