//! Token introspection (RFC 7662) and a short cache of positive answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::Claims;

/// Credentials a resource server introspects with (RFC 7662 §2.1).
#[derive(Clone)]
pub(crate) struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

/// Positive answers, keyed by SHA-256 of the token, kept until `ttl` or the token's
/// expiry, whichever is sooner. Bounded: when full, expired entries go first and then
/// everything (a cache, never a source of truth).
pub(crate) struct PositiveCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Claims, i64)>>,
}

const CAPACITY: usize = 10_000;

pub(crate) fn token_key(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl PositiveCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&token_key(token))
            .filter(|(_, until)| *until > now)
            .map(|(c, _)| c.clone())
    }

    pub fn put(&self, token: &str, claims: &Claims, now: i64) {
        let until = (now + self.ttl.as_secs() as i64).min(claims.exp);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, u)| *u > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token_key(token), (claims.clone(), until));
    }
}
