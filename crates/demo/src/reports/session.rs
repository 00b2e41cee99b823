//! In-memory browser sessions behind the `reports_session` cookie (HttpOnly,
//! SameSite=Lax), each with its CSRF token, its pending authorization request and
//! its tokens. Sessions idle for 12 hours are forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

use super::oauth::{random_token, Tokens};

pub const COOKIE: &str = "reports_session";
const IDLE: Duration = Duration::from_secs(12 * 3600);
const CAPACITY: usize = 10_000;

/// An authorization request in flight: what the callback must match.
pub struct Pending {
    pub state: String,
    pub pkce_verifier: String,
}

/// One browser's session.
pub struct Session {
    /// Every form of this session carries it (checked in constant time).
    pub csrf: String,
    pub pending: Option<Pending>,
    pub tokens: Option<Tokens>,
}

/// A session, locked for the whole of a request so that two requests never refresh
/// the same refresh token (a reuse would revoke the grant).
pub type Shared = Arc<tokio::sync::Mutex<Session>>;

struct Entry {
    session: Shared,
    last_seen: Instant,
}

/// The session table, keyed by SHA-256 of the cookie value.
pub struct Sessions {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    secure: bool,
}

fn key(id: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes())
        .as_ref()
        .to_vec()
}

impl Sessions {
    /// `secure`: whether the cookie gets the `Secure` attribute (an https base URL).
    pub fn new(secure: bool) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            secure,
        }
    }

    /// The session named by the request's cookie, if it is live.
    pub fn find(&self, headers: &HeaderMap) -> Option<Shared> {
        let id = cookie(headers, COOKIE)?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let k = key(id);
        let entry = entries.get_mut(&k)?;
        if now.duration_since(entry.last_seen) > IDLE {
            entries.remove(&k);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// Start a session; returns it and the `Set-Cookie` header that names it.
    pub fn create(&self) -> anyhow::Result<(Shared, HeaderValue)> {
        let id = random_token()?;
        let session = Arc::new(tokio::sync::Mutex::new(Session {
            csrf: random_token()?,
            pending: None,
            tokens: None,
        }));
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| now.duration_since(e.last_seen) <= IDLE);
        }
        if entries.len() >= CAPACITY {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(
            key(&id),
            Entry {
                session: session.clone(),
                last_seen: now,
            },
        );
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}");
        Ok((session, HeaderValue::from_str(&cookie)?))
    }
}

/// The value of a cookie in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a posted CSRF token is the session's, compared in constant time.
pub fn csrf_ok(expected: &str, posted: Option<&str>) -> bool {
    posted.is_some_and(|p| {
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), p.as_bytes()).is_ok()
    })
}

/// The first value of `name` in a form-urlencoded body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_their_cookie_only() {
        let sessions = Sessions::new(false);
        let (_, set_cookie) = sessions.create().unwrap();
        let set_cookie = set_cookie.to_str().unwrap();
        assert!(
            set_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
            "{set_cookie}"
        );
        let pair = set_cookie.split(';').next().unwrap();
        assert_eq!(
            pair.len(),
            COOKIE.len() + 1 + 43,
            "256 random bits, base64url"
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        assert!(sessions.find(&headers).is_some());
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("reports_session=forged"),
        );
        assert!(sessions.find(&headers).is_none());
        assert!(Sessions::new(true)
            .create()
            .unwrap()
            .1
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_ok("abc", Some("abc")));
        assert!(!csrf_ok("abc", Some("abd")));
        assert!(!csrf_ok("abc", Some("abcd")));
        assert!(!csrf_ok("abc", None));
        assert_eq!(
            form_field(b"a=1&csrf=x%2By&csrf=z", "csrf").as_deref(),
            Some("x+y")
        );
    }
}
