//! Login sessions and CSRF tokens, both carried in cookies.
//!
//! The session cookie is `HttpOnly; SameSite=Lax` (it must come along when a client
//! sends the browser to `/authorize`) and `Secure` when the issuer is https; the
//! server keeps only its SHA-256. Forms carry a CSRF token that must equal the
//! `SameSite=Strict` CSRF cookie (double submit), compared in constant time.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::crypto::{constant_time_eq, hash_secret, ordered_token, random_token};
use crate::error::Result;
use crate::state::AppState;
use crate::store::{Session, User};

pub const SESSION_COOKIE: &str = "tessera_session";
pub const CSRF_COOKIE: &str = "tessera_csrf";

/// The value of a cookie in the request, if sent once.
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

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.config.is_https() {
        c.push_str("; Secure");
    }
    // Cookie values are BASE64URL, always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The logged-in user, if the request carries a live session.
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(User, Session)>> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state
        .store
        .get_session(&hash_secret(token), state.clock.now())
        .await?
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_user(&session.user_id)
        .await?
        .map(|u| (u, session)))
}

/// Start a session for `user`; returns the session and its `Set-Cookie` header.
pub async fn start_session(state: &AppState, user: &User) -> Result<(Session, HeaderValue)> {
    let now = state.clock.now();
    let ttl = state.config.sessions.ttl.as_secs();
    let token = ordered_token();
    let session = Session {
        user_id: user.id.clone(),
        auth_time: now,
        expires_at: now + ttl as i64,
    };
    state
        .store
        .create_session(&hash_secret(&token), &session)
        .await?;
    Ok((
        session,
        set_cookie(state, SESSION_COOKIE, &token, "Lax", Some(ttl)),
    ))
}

/// The CSRF token for a form, and the cookie to set if the browser has none yet.
pub struct Csrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn csrf(state: &AppState, headers: &HeaderMap) -> Csrf {
    match cookie(headers, CSRF_COOKIE) {
        Some(token) if token.len() >= 43 => Csrf {
            token: token.to_owned(),
            set_cookie: None,
        },
        _ => {
            let token = random_token();
            let set = set_cookie(state, CSRF_COOKIE, &token, "Strict", None);
            Csrf {
                token,
                set_cookie: Some(set),
            }
        }
    }
}

/// Whether a posted form's CSRF token matches the cookie.
pub fn csrf_ok(headers: &HeaderMap, posted: Option<&str>) -> bool {
    match (cookie(headers, CSRF_COOKIE), posted) {
        (Some(c), Some(p)) => c.len() >= 43 && constant_time_eq(c.as_bytes(), p.as_bytes()),
        _ => false,
    }
}
