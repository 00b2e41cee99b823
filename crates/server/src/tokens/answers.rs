//! Introspection answers for active access tokens, kept in memory so that a resource
//! server introspecting the same token on every request (RFC 7662 §4 expects it to)
//! is answered without a database read.
//!
//! The rules that keep an answer true:
//! - Only `active` answers for **access tokens** (opaque and JWT) are kept; never one
//!   for a refresh token (a rotation, which is not a revocation, ends it) and never an
//!   inactive one (a stranger could fill the cache with made-up tokens).
//! - An answer is served only before the token's `exp`, at the server's clock: an
//!   access token never outlives its grant (`exp` is capped by the grant's end when it
//!   is minted), so a lapsed grant needs no other check.
//! - Every revocation made by this instance (a grant, a token, a user or a client
//!   deleted) calls [`Answers::forget_all`] once the store has committed it, so the
//!   next introspection reads the store again: it takes effect at once.
//! - A revocation made elsewhere (another instance on the database, the `tessera`
//!   command) is seen within the answers' lifetime (`tokens.introspection_cache`,
//!   500 ms by default: the revocation feed's polling of the table for such
//!   revocations). A lifetime of zero keeps nothing.
//!
//! An answer read from the store carries the generation read *before* the read, so an
//! answer read while a revocation commits is stale from the start and never served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::store::TokenHash;

/// Most answers kept; past it the cache starts over.
const CAPACITY: usize = 10_000;

struct Entry {
    /// The answer's JSON body.
    body: Bytes,
    /// The token's `exp` (seconds since the epoch).
    exp: i64,
    generation: u64,
    read_at: Instant,
}

pub struct Answers {
    /// How long an answer is served after it was read from the store.
    ttl: Duration,
    generation: AtomicU64,
    entries: RwLock<HashMap<TokenHash, Entry>>,
}

impl Answers {
    /// Answers kept for `ttl` at most; none with a `ttl` of zero.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: RwLock::default(),
        }
    }

    /// The generation to pass to [`Answers::keep`]: read it before reading the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The JSON body of the kept answer for the token with this hash, if it is still
    /// true at `now`.
    pub fn get(&self, key: &TokenHash, now: i64) -> Option<Bytes> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        (entry.exp > now
            && entry.generation == self.generation()
            && entry.read_at.elapsed() < self.ttl)
            .then(|| entry.body.clone())
    }

    /// Keep the `active` answer `body` for an access token expiring at `exp`, read
    /// from the store after [`Answers::generation`] returned `generation`.
    pub fn keep(&self, key: TokenHash, body: Bytes, exp: i64, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            body,
            exp,
            generation,
            read_at: Instant::now(),
        };
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    /// Forget every answer: called after this instance committed a revocation.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: TokenHash = [7; 32];

    #[test]
    fn nothing_is_kept_with_a_lifetime_of_zero() {
        let answers = Answers::new(Duration::ZERO);
        answers.keep(KEY, Bytes::from_static(b"{}"), 100, answers.generation());
        assert_eq!(answers.get(&KEY, 0), None);
    }

    #[test]
    fn an_answer_is_served_until_the_token_expires() {
        let answers = Answers::new(Duration::from_secs(60));
        answers.keep(KEY, Bytes::from_static(b"{}"), 100, answers.generation());
        assert_eq!(answers.get(&KEY, 99).as_deref(), Some(&b"{}"[..]));
        assert_eq!(answers.get(&KEY, 100), None);
        assert_eq!(answers.get(&[8; 32], 99), None);
    }

    #[test]
    fn a_revocation_forgets_every_answer_even_one_read_while_it_committed() {
        let answers = Answers::new(Duration::from_secs(60));
        answers.keep(KEY, Bytes::from_static(b"{}"), 100, answers.generation());
        let before = answers.generation();
        answers.forget_all();
        assert_eq!(answers.get(&KEY, 0), None);
        // Read before the revocation committed, kept after it: never served.
        answers.keep(KEY, Bytes::from_static(b"{}"), 100, before);
        assert_eq!(answers.get(&KEY, 0), None);
        answers.keep(KEY, Bytes::from_static(b"{}"), 100, answers.generation());
        assert!(answers.get(&KEY, 0).is_some());
    }
}
