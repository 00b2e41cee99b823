//! The key ring: the signing keys of the database, shared by every instance, kept in
//! memory as a ready [`Keys`] snapshot and read again every `tokens.key_rotation.reload`.
//!
//! Rotation publishes before it signs: a new key is stored with an `activates_at`
//! `publish_ahead` in the future, so every instance (and every resource server caching
//! the JWKS) has it before any token signed by it exists. Each instance switches to it
//! at that instant by its own clock, with no coordination needed. A superseded key stays
//! published until every token it signed has expired (the access token lifetime, plus
//! the reload interval and a minute of clock leeway), then is deleted; its private half
//! is wiped as soon as no instance can still sign with it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use serde::Serialize;
use tessera_protocol::metadata::Jwk;

use super::keys::{self, Generated, KeyEntry, Keys};
use crate::config::{Config, KeyRotationConfig, SigningAlg};
use crate::master::{MasterKey, Purpose};
use crate::seal::Sealer;
use crate::store::{SigningKeyRecord, Store};

/// Clock leeway added to every retention period, in seconds.
const LEEWAY: i64 = 60;

/// The signing keys in force, shared by the handlers.
pub struct KeyRing {
    current: ArcSwap<Keys>,
    /// The records `current` was built from, to skip rebuilding when nothing changed.
    loaded: std::sync::Mutex<Vec<SigningKeyRecord>>,
    store: Arc<dyn Store>,
    sealer: Sealer,
    alg: SigningAlg,
    rotation: KeyRotationConfig,
    /// Seconds a superseded key stays published.
    retain: i64,
}

/// A key as `tessera key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    /// `next` (published, not signing yet), `signing`, `retired` (published until
    /// `removed_at`, no longer signing), or `unused` (of another algorithm than the
    /// configured one).
    pub state: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
    /// When a retired key leaves the JWKS.
    pub removed_at: Option<i64>,
    /// Whether the private half is still kept.
    pub private: bool,
}

impl KeyRing {
    /// Open the keys of the database: import key files of earlier versions into an
    /// empty table, create a key of the configured algorithm if there is none, and load.
    /// Fails if the master key does not open the stored keys.
    pub async fn open(
        store: Arc<dyn Store>,
        master: &MasterKey,
        config: &Config,
        now: i64,
    ) -> anyhow::Result<Self> {
        let tokens = &config.tokens;
        let rotation = tokens.key_rotation.clone();
        let ring = Self {
            current: ArcSwap::from_pointee(Keys::new(tokens.signing_alg, Vec::new())?),
            loaded: std::sync::Mutex::new(Vec::new()),
            store,
            sealer: master.sealer(Purpose::SigningKeys)?,
            alg: tokens.signing_alg,
            retain: secs(tokens.access_token_ttl) + secs(rotation.reload) + LEEWAY,
            rotation,
        };
        let mut records = ring.store.list_signing_keys().await?;
        if records.is_empty() {
            ring.import_files(&config.data_dir.join("keys"), now)
                .await?;
            records = ring.store.list_signing_keys().await?;
        }
        let alg = ring.alg.as_str();
        if !records
            .iter()
            .any(|r| r.alg == alg && r.private_key.is_some())
        {
            // The first key of this algorithm signs at once: no token signed by it can
            // exist yet. If another instance creates one meanwhile, theirs is used.
            let newest = newest_created(&records, alg).unwrap_or(i64::MIN);
            let key = ring.new_record(now, now)?;
            if ring.store.add_signing_key(&key, Some(newest)).await? {
                tracing::info!(kid = key.kid, alg, "generated a signing key");
            }
        }
        ring.reload().await?;
        ring.current()
            .signing_kid(now)
            .with_context(|| format!("no {alg} signing key could be loaded"))?;
        Ok(ring)
    }

    /// The keys in force.
    pub fn current(&self) -> arc_swap::Guard<Arc<Keys>> {
        self.current.load()
    }

    /// The configured signing algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Read the keys from the database again.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let records = self.store.list_signing_keys().await?;
        self.load(records)
    }

    fn load(&self, records: Vec<SigningKeyRecord>) -> anyhow::Result<()> {
        if *self.loaded.lock().expect("key ring lock") == records {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(records.len());
        for r in &records {
            let Some(alg) = SigningAlg::parse(&r.alg) else {
                tracing::warn!(
                    kid = r.kid,
                    alg = r.alg,
                    "skipping a key of an unknown algorithm"
                );
                continue;
            };
            let jwk: Jwk = serde_json::from_str(&r.public_jwk)
                .with_context(|| format!("signing key {}: the stored JWK is not valid", r.kid))?;
            anyhow::ensure!(
                jwk.kid == r.kid,
                "signing key {}: the JWK names another kid",
                r.kid
            );
            // Only keys that may sign need their private half opened.
            let pkcs8 = match (&r.private_key, alg == self.alg) {
                (Some(sealed), true) => Some(self.sealer.open(r.kid.as_bytes(), sealed).with_context(|| {
                    format!(
                        "the master key does not open signing key {}: is TESSERA_MASTER_KEY the one \
                         the database was set up with?",
                        r.kid
                    )
                })?),
                _ => None,
            };
            entries.push(KeyEntry {
                alg,
                jwk,
                pkcs8,
                activates_at: r.activates_at,
            });
        }
        let keys = Keys::new(self.alg, entries)?;
        self.current.store(Arc::new(keys));
        *self.loaded.lock().expect("key ring lock") = records;
        Ok(())
    }

    /// A new key of the configured algorithm, sealed, signing from `activates_at`.
    fn new_record(&self, now: i64, activates_at: i64) -> anyhow::Result<SigningKeyRecord> {
        self.record(keys::generate(self.alg)?, self.alg, now, activates_at)
    }

    fn record(
        &self,
        generated: Generated,
        alg: SigningAlg,
        now: i64,
        activates_at: i64,
    ) -> anyhow::Result<SigningKeyRecord> {
        let kid = generated.jwk.kid.clone();
        Ok(SigningKeyRecord {
            private_key: Some(self.sealer.seal(kid.as_bytes(), &generated.pkcs8)?),
            public_jwk: serde_json::to_string(&generated.jwk)?,
            kid,
            alg: alg.as_str().to_owned(),
            created_at: now,
            activates_at,
        })
    }

    /// Import the key files of earlier versions (`<dir>/{es256,eddsa,rs256}.p8`).
    async fn import_files(&self, dir: &Path, now: i64) -> anyhow::Result<()> {
        for alg in SigningAlg::ALL {
            let path = dir.join(format!("{}.p8", alg.as_str().to_ascii_lowercase()));
            if !path.exists() {
                continue;
            }
            let der =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let generated = keys::from_pkcs8(alg, &der)
                .with_context(|| format!("loading {}", path.display()))?;
            let record = self.record(generated, alg, now, now)?;
            if self.store.add_signing_key(&record, Some(i64::MIN)).await? {
                tracing::info!(
                    kid = record.kid,
                    path = %path.display(),
                    "imported a signing key file into the database (the file is no longer read)"
                );
            }
        }
        Ok(())
    }

    /// Store a new key that signs `publish_ahead` from `now`, and load it.
    pub async fn rotate(&self, now: i64, publish_ahead: Duration) -> anyhow::Result<KeyInfo> {
        let record = self.new_record(now, now + secs(publish_ahead))?;
        self.store.add_signing_key(&record, None).await?;
        tracing::info!(
            kid = record.kid,
            activates_at = record.activates_at,
            "rotated the signing key"
        );
        self.reload().await?;
        let records = self.store.list_signing_keys().await?;
        self.describe(&records, now)
            .into_iter()
            .find(|k| k.kid == record.kid)
            .context("the new key is not in the database")
    }

    /// Read the keys again; start the next key if the newest is `interval` old; wipe
    /// and delete superseded keys whose time has come.
    pub async fn maintain(&self, now: i64) -> anyhow::Result<()> {
        let mut records = self.store.list_signing_keys().await?;
        let interval = secs(self.rotation.interval);
        let alg = self.alg.as_str();
        if interval > 0 && newest_created(&records, alg).is_some_and(|t| t <= now - interval) {
            let key = self.new_record(now, now + secs(self.rotation.publish_ahead))?;
            // Several instances may find the key due at once; one of them adds the next.
            if self
                .store
                .add_signing_key(&key, Some(now - interval))
                .await?
            {
                tracing::info!(
                    kid = key.kid,
                    activates_at = key.activates_at,
                    "started the next signing key"
                );
            }
            records = self.store.list_signing_keys().await?;
        }
        let wipe_before = now - secs(self.rotation.reload) - LEEWAY;
        let delete_before = now - self.retain;
        let superseded = superseded_at(&records);
        let due = records.iter().any(|r| {
            superseded.get(r.kid.as_str()).is_some_and(|&at| {
                at <= delete_before || (r.private_key.is_some() && at <= wipe_before)
            })
        });
        if due {
            let (wiped, deleted) = self
                .store
                .retire_signing_keys(wipe_before, delete_before)
                .await?;
            tracing::info!(wiped, deleted, "retired superseded signing keys");
            records = self.store.list_signing_keys().await?;
        }
        self.load(records)
    }

    /// Every key in the database with its state at `now`.
    pub async fn list(&self, now: i64) -> anyhow::Result<Vec<KeyInfo>> {
        Ok(self.describe(&self.store.list_signing_keys().await?, now))
    }

    fn describe(&self, records: &[SigningKeyRecord], now: i64) -> Vec<KeyInfo> {
        let superseded = superseded_at(records);
        records
            .iter()
            .map(|r| {
                let until = superseded.get(r.kid.as_str()).copied();
                let state = if r.alg != self.alg.as_str() {
                    "unused"
                } else if now < r.activates_at {
                    "next"
                } else if until.is_some_and(|t| t <= now) {
                    "retired"
                } else {
                    "signing"
                };
                KeyInfo {
                    kid: r.kid.clone(),
                    alg: r.alg.clone(),
                    state,
                    created_at: r.created_at,
                    activates_at: r.activates_at,
                    removed_at: until.map(|t| t + self.retain),
                    private: r.private_key.is_some(),
                }
            })
            .collect()
    }
}

/// Read the keys again, rotate and retire every `tokens.key_rotation.reload` until the
/// server stops.
pub async fn run_periodically(state: crate::AppState) {
    let every = state.config.tokens.key_rotation.reload;
    let mut stopping = state.stopping.subscribe();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        if let Err(e) = state.keys.maintain(state.clock.now()).await {
            tracing::error!(error = format!("{e:#}"), "signing key maintenance failed");
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn newest_created(records: &[SigningKeyRecord], alg: &str) -> Option<i64> {
    records
        .iter()
        .filter(|r| r.alg == alg)
        .map(|r| r.created_at)
        .max()
}

/// For each superseded key, when the next key of its algorithm activated.
fn superseded_at(records: &[SigningKeyRecord]) -> HashMap<&str, i64> {
    records
        .iter()
        .filter_map(|r| {
            records
                .iter()
                .filter(|n| n.alg == r.alg && n.activates_at > r.activates_at)
                .map(|n| n.activates_at)
                .min()
                .map(|at| (r.kid.as_str(), at))
        })
        .collect()
}
