//! A client's JWK Set by reference (`jwks_uri`, RFC 7591 §2): fetched over HTTP with a
//! 5 s timeout, at most 64 KiB, no redirects; cached per client for 5 minutes, and
//! fetched again on an unknown `kid` at most once every 30 seconds (OpenID Connect
//! Core §10.1.1: a client rotates keys by publishing the new one first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};

use super::jwk::{parse_set, ClientKey};

/// How long fetched keys are used before they are fetched again (seconds).
pub const TTL: i64 = 300;
/// The least time between two fetches forced by an unknown `kid` (seconds).
pub const REFETCH_INTERVAL: i64 = 30;
/// The whole request, body included, must complete within this time.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWK Set document accepted.
pub const MAX_BYTES: usize = 64 * 1024;

/// The keys of one client and when they were fetched.
struct Entry {
    uri: String,
    keys: Arc<Vec<ClientKey>>,
    fetched_at: i64,
    /// The last fetch forced by an unknown `kid` (successful or not).
    forced_at: i64,
}

/// Keys fetched from clients' `jwks_uri`, per client. Times are the app clock's.
pub struct JwksUriCache {
    http: reqwest::Client,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for JwksUriCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksUriCache")
    }
}

impl JwksUriCache {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for jwks_uri")?;
        Ok(Self {
            http,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client's keys: cached if fetched from the same `uri` less than [`TTL`] ago.
    pub async fn keys(
        &self,
        client_id: &str,
        uri: &str,
        now: i64,
    ) -> anyhow::Result<Arc<Vec<ClientKey>>> {
        if let Some(e) = self.entries().get(client_id) {
            if e.uri == uri && now - e.fetched_at < TTL {
                return Ok(e.keys.clone());
            }
        }
        let keys = Arc::new(self.fetch(uri).await?);
        self.entries().insert(
            client_id.to_owned(),
            Entry {
                uri: uri.to_owned(),
                keys: keys.clone(),
                fetched_at: now,
                forced_at: i64::MIN,
            },
        );
        Ok(keys)
    }

    /// Fetch again after an unknown `kid`, unless the keys were fetched less than
    /// [`REFETCH_INTERVAL`] ago: then `None`, and the caller refuses the assertion.
    pub async fn refetch(
        &self,
        client_id: &str,
        uri: &str,
        now: i64,
    ) -> anyhow::Result<Option<Arc<Vec<ClientKey>>>> {
        {
            let mut entries = self.entries();
            if let Some(e) = entries.get_mut(client_id) {
                if e.uri == uri {
                    if now - e.fetched_at.max(e.forced_at) < REFETCH_INTERVAL {
                        return Ok(None);
                    }
                    // Claimed before fetching, so concurrent requests fetch once.
                    e.forced_at = now;
                }
            }
        }
        let keys = Arc::new(self.fetch(uri).await?);
        let mut entries = self.entries();
        let forced_at = entries.get(client_id).map_or(now, |e| e.forced_at);
        entries.insert(
            client_id.to_owned(),
            Entry {
                uri: uri.to_owned(),
                keys: keys.clone(),
                fetched_at: now,
                forced_at,
            },
        );
        Ok(Some(keys))
    }

    async fn fetch(&self, uri: &str) -> anyhow::Result<Vec<ClientKey>> {
        let mut response = self
            .http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .with_context(|| format!("fetching {uri}"))?;
        if response.status() != reqwest::StatusCode::OK {
            bail!("{uri} answered {}", response.status());
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BYTES as u64)
        {
            bail!("{uri}: the JWK Set is larger than {MAX_BYTES} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("reading {uri}"))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                bail!("{uri}: the JWK Set is larger than {MAX_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let set: serde_json::Value =
            serde_json::from_slice(&body).with_context(|| format!("{uri}: not JSON"))?;
        parse_set(&set).with_context(|| format!("{uri}: not a usable JWK Set"))
    }
}
