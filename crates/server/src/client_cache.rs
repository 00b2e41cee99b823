//! Registered clients kept in memory for the endpoints that authenticate them on every
//! request (token, introspection, revocation, authorization).
//!
//! An entry lives at most [`TTL`]: a change made by this instance (admin API, RFC 7592)
//! evicts it at once, and a change made elsewhere (another instance on the database,
//! the `tessera` command) is seen within the TTL. Absent clients are not cached, so a
//! new client works at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::store::{Client, Store, StoreResult};

/// How long a client stays cached.
pub const TTL: Duration = Duration::from_secs(1);

/// Most clients cached; past it the cache starts over.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, (Arc<Client>, Instant)>>,
}

impl ClientCache {
    /// The client `id`, from memory if it was read less than [`TTL`] ago.
    pub async fn get(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Arc<Client>>> {
        if let Some((client, at)) = self.entries.read().expect("client cache").get(id) {
            if at.elapsed() < TTL {
                return Ok(Some(client.clone()));
            }
        }
        let Some(client) = store.get_client(id).await? else {
            self.invalidate(id);
            return Ok(None);
        };
        let client = Arc::new(client);
        let mut entries = self.entries.write().expect("client cache");
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(id.to_owned(), (client.clone(), Instant::now()));
        Ok(Some(client))
    }

    /// Forget client `id` (after this instance changed or deleted it).
    pub fn invalidate(&self, id: &str) {
        self.entries.write().expect("client cache").remove(id);
    }
}
