//! Validated newtypes: a value of one of these types has passed its RFC's syntax rules.

use std::fmt;

/// A registered client's identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// RFC 6749 §A.1: `client-id = *VSCHAR`; Tessera also refuses the empty string and
    /// anything over 255 characters.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err("client_id is malformed");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client secret as presented by a client. Its `Debug` output never shows the value.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself: hash it, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// A redirection endpoint URI (RFC 6749 §3.1.2): absolute, without a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: url::Url,
}

impl RedirectUri {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let url = url::Url::parse(s).map_err(|_| "redirect_uri is not an absolute URI")?;
        // RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
        if url.fragment().is_some() || s.contains('#') {
            return Err("redirect_uri must not contain a fragment");
        }
        if url.cannot_be_a_base() && url.scheme() != "urn" {
            return Err("redirect_uri is not a hierarchical URI");
        }
        Ok(Self {
            raw: s.to_owned(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Whether this is an `http` URI on a loopback IP literal (RFC 8252 §7.3).
    pub fn is_loopback(&self) -> bool {
        self.url.scheme() == "http"
            && match self.url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    }

    /// Whether a requested redirect URI matches this registered one.
    ///
    /// OAuth 2.1 §2.3.1 / RFC 9700 §4.1.3: exact string comparison, with the one
    /// exception of RFC 8252 §7.3: for loopback IP redirect URIs any port is allowed.
    /// The comparison stays textual (apart from the port) so that normalisation by a
    /// URL parser can never widen a match.
    pub fn matches(&self, requested: &RedirectUri) -> bool {
        self.raw == requested.raw
            || (self.is_loopback()
                && requested.is_loopback()
                && strip_port(&self.raw) == strip_port(&requested.raw))
    }
}

/// The URI text with the `:port` after the authority's host removed.
fn strip_port(raw: &str) -> String {
    let Some(rest) = raw.strip_prefix("http://") else {
        return raw.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("http://{host}{tail}")
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// RFC 7636 §4.1: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`, 43 to 128 of them.
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A PKCE code verifier (RFC 7636 §4.1).
#[derive(Clone)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !is_pkce_string(s) {
            return Err("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

/// An S256 PKCE code challenge (RFC 7636 §4.2): BASE64URL(SHA256(verifier)), 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.len() != 43 || !is_pkce_string(s) {
            return Err("code_challenge must be the 43-character BASE64URL of a SHA-256 digest (RFC 7636 section 4.2)");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> RedirectUri {
        RedirectUri::parse(s).unwrap()
    }

    #[test]
    fn exact_match_required_for_https() {
        let reg = uri("https://app.example/cb");
        assert!(reg.matches(&uri("https://app.example/cb")));
        assert!(!reg.matches(&uri("https://app.example/cb/")));
        assert!(!reg.matches(&uri("https://app.example/cb?x=1")));
        assert!(!reg.matches(&uri("https://app.example:443/cb")));
        assert!(!reg.matches(&uri("https://APP.example/cb")));
    }

    #[test]
    fn loopback_port_may_vary() {
        let reg = uri("http://127.0.0.1/cb");
        assert!(reg.matches(&uri("http://127.0.0.1:51234/cb")));
        assert!(uri("http://127.0.0.1:8000/cb").matches(&uri("http://127.0.0.1:9/cb")));
        assert!(uri("http://[::1]/cb").matches(&uri("http://[::1]:4000/cb")));
        assert!(!reg.matches(&uri("http://127.0.0.1:51234/other")));
        assert!(!reg.matches(&uri("http://127.0.0.2:51234/cb")));
        assert!(!uri("http://localhost/cb").matches(&uri("http://localhost:3000/cb")));
    }

    #[test]
    fn fragments_refused() {
        assert!(RedirectUri::parse("https://a.example/cb#x").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
    }

    #[test]
    fn pkce_syntax() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
        assert!(CodeChallenge::parse(&"a".repeat(44)).is_err());
    }
}
