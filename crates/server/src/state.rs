//! The application state every handler receives.

use std::sync::Arc;

use anyhow::Context;

use crate::client_auth::jwks_uri::JwksUriCache;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::seal::Sealer;
use crate::store::{PostgresStore, ScopeEntry, SqliteStore, Store};
use crate::tokens::Keys;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keys>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// Bumped after every revocation, waking the revocation feed's subscribers.
    pub feed: Arc<tokio::sync::watch::Sender<()>>,
    /// Set when the server is shutting down, so that endless responses (the feed) end.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Seals the secrets of `client_secret_jwt` clients (see [`crate::seal`]).
    pub sealer: Arc<Sealer>,
    /// Keys fetched from clients' `jwks_uri`, for `private_key_jwt`.
    pub client_jwks: Arc<JwksUriCache>,
}

impl AppState {
    /// Open everything the server needs: the database (running migrations), the
    /// configured scopes, and the signing and secret-sealing keys under `<data_dir>/keys`.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        let keys =
            Keys::load_or_generate(&config.data_dir.join("keys"), config.tokens.signing_alg)?;
        let sealer = open_sealer(&config)?;
        Ok(Self {
            store,
            keys: Arc::new(keys),
            clock: Arc::new(SystemClock),
            config: Arc::new(config),
            feed: Arc::new(tokio::sync::watch::Sender::new(())),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            sealer: Arc::new(sealer),
            client_jwks: Arc::new(JwksUriCache::new()?),
        })
    }

    /// Replace the clock (tests pin time with [`crate::clock::FixedClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Load (or generate on first use) the key sealing `client_secret_jwt` secrets,
/// `<data_dir>/keys/secrets.key`.
pub fn open_sealer(config: &Config) -> anyhow::Result<Sealer> {
    Sealer::load_or_generate(&config.data_dir.join("keys"))
}

/// Open the configured database, run its migrations and apply the config's scopes.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        }
        Arc::new(SqliteStore::connect(&url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresStore::connect(&url, config.database_max_connections).await?)
    } else {
        anyhow::bail!(
            "unsupported database URL {url:?}: this build supports sqlite:// and postgres:// URLs"
        );
    };
    for scope in &config.scopes {
        store
            .upsert_scope(&ScopeEntry {
                name: scope.name.clone(),
                description: scope.description.clone(),
            })
            .await?;
    }
    Ok(store)
}
