//! JWTs whose signature and claims were verified, kept by their exact text, so that a
//! client presenting the same token again (the usual case: a token serves many
//! requests until it expires) costs a hash lookup instead of a signature verification
//! (an ES256 verification costs tens of microseconds).
//!
//! Only a byte-identical token is served from here; `exp` and `nbf` are checked again
//! on every use, and revocation is checked by the caller on every use as configured.
//! The keys are the whole token text under the standard library's keyed hash (SipHash
//! with a random key), so hostile tokens cannot be built to collide.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::Claims;

pub(crate) struct VerifiedJwts {
    capacity: usize,
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

struct Entry {
    claims: Claims,
    nbf: Option<i64>,
}

impl VerifiedJwts {
    /// A cache of at most `capacity` tokens (0: nothing is cached).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified before and is still within its
    /// validity at `now` (with `leeway`, as at the first verification).
    pub(crate) fn get(&self, token: &str, now: i64, leeway: i64) -> Option<Claims> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        let current =
            entry.claims.exp + leeway > now && entry.nbf.is_none_or(|nbf| nbf - leeway <= now);
        current.then(|| entry.claims.clone())
    }

    /// Remember that `token` verified to `claims`. When full, tokens that have
    /// expired are dropped first, and everything if that frees nothing.
    pub(crate) fn put(&self, token: &str, claims: &Claims, now: i64, leeway: i64) {
        if self.capacity == 0 {
            return;
        }
        let nbf = claims.extra.get("nbf").and_then(serde_json::Value::as_i64);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.claims.exp + leeway > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                nbf,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn claims(exp: i64, nbf: Option<i64>) -> Claims {
        let mut json = serde_json::json!({"sub": "alice", "exp": exp, "iss": "https://as"});
        if let Some(nbf) = nbf {
            json["nbf"] = nbf.into();
        }
        let serde_json::Value::Object(map) = json else {
            unreachable!()
        };
        Claims::from_json(map, Arc::from("realm")).unwrap()
    }

    #[test]
    fn serves_only_the_same_token_within_its_validity() {
        let cache = VerifiedJwts::new(10);
        cache.put("a.b.c", &claims(100, Some(50)), 60, 5);
        assert_eq!(cache.get("a.b.c", 60, 5).unwrap().sub, "alice");
        assert!(cache.get("a.b.d", 60, 5).is_none(), "another signature");
        assert!(
            cache.get("a.b.c", 105, 5).is_none(),
            "expired (with leeway)"
        );
        assert!(cache.get("a.b.c", 104, 5).is_some());
        assert!(cache.get("a.b.c", 44, 5).is_none(), "not valid yet");
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = VerifiedJwts::new(3);
        cache.put("t1", &claims(10, None), 0, 0);
        cache.put("t2", &claims(100, None), 0, 0);
        cache.put("t3", &claims(100, None), 0, 0);
        // Full: the expired t1 goes, the others stay.
        cache.put("t4", &claims(100, None), 20, 0);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("t2", 20, 0).is_some());
        // Full of current tokens: start over.
        cache.put("t5", &claims(100, None), 20, 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("t5", 20, 0).is_some());
        let off = VerifiedJwts::new(0);
        off.put("t1", &claims(100, None), 0, 0);
        assert!(off.get("t1", 0, 0).is_none());
    }
}
