//! The application state every handler receives.

use std::sync::Arc;

use anyhow::Context;

use crate::client_auth::jwks_uri::JwksUriCache;
use crate::client_cache::ClientCache;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::master::{MasterKey, Purpose};
use crate::seal::Sealer;
use crate::store::postgres::PoolSettings;
use crate::store::sqlite::SqliteSettings;
use crate::store::{PostgresStore, ScopeEntry, SqliteStore, Store};
use crate::tokens::answers::Answers;
use crate::tokens::KeyRing;

/// What every handler shares, behind one `Arc`: a handler's copy of the state costs
/// one reference count, whatever the number of parts (axum clones the state for
/// every request). The parts are read through `Deref` (`state.store`, `state.keys`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    /// The signing keys, shared through the database by every instance.
    pub keys: Arc<KeyRing>,
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
    /// Clients read in the last second (see [`crate::client_cache`]).
    pub clients: Arc<ClientCache>,
    /// Introspection answers for active access tokens (see [`crate::tokens::answers`]).
    pub answers: Arc<Answers>,
}

impl Shared {
    /// After this instance committed a revocation (a grant, a token, a user's or a
    /// client's deletion): kept introspection answers are forgotten and the revocation
    /// feed's subscribers woken.
    pub fn revoked(&self) {
        self.answers.forget_all();
        self.feed.send_modify(|_| {});
    }

    /// After this instance deleted client `id`: its cached copy is forgotten, and so
    /// are kept introspection answers (its client_credentials tokens went with it;
    /// they have no grant whose revocation would have ended them).
    pub fn client_deleted(&self, id: &str) {
        self.clients.invalidate(id);
        self.answers.forget_all();
    }
}

impl AppState {
    /// Open everything the server needs: the database (running migrations), the
    /// configured scopes, the master key, and the signing keys in the database.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        // The master key first: PostgreSQL without one is refused before it is touched.
        let master = MasterKey::resolve(&config)?;
        let store = open_store(&config).await?;
        let keys = KeyRing::open(store.clone(), &master, &config, SystemClock.now()).await?;
        let sealer = sealer_of(&config, &master)?;
        let answers = Arc::new(Answers::new(config.tokens.introspection_cache));
        Ok(Self(Arc::new(Shared {
            store,
            keys: Arc::new(keys),
            clock: Arc::new(SystemClock),
            config: Arc::new(config),
            feed: Arc::new(tokio::sync::watch::Sender::new(())),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            sealer: Arc::new(sealer),
            client_jwks: Arc::new(JwksUriCache::new()?),
            clients: Arc::new(ClientCache::default()),
            answers,
        })))
    }

    /// Replace the clock (tests pin time with [`crate::clock::FixedClock`]).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let mut parts = Arc::unwrap_or_clone(self.0);
        parts.clock = clock;
        Self(Arc::new(parts))
    }
}

/// The sealer of `client_secret_jwt` secrets, under the master key of `config`.
pub fn open_sealer(config: &Config) -> anyhow::Result<Sealer> {
    sealer_of(config, &MasterKey::resolve(config)?)
}

fn sealer_of(config: &Config, master: &MasterKey) -> anyhow::Result<Sealer> {
    master
        .sealer(Purpose::ClientSecrets)?
        .with_legacy_key_in(&config.data_dir.join("keys"))
}

/// Open the configured database, run its migrations and apply the config's scopes.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        if config.database_url.is_none() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        }
        let settings = SqliteSettings {
            read_mmap_size: config.database_sqlite_mmap_size,
        };
        Arc::new(SqliteStore::connect_with(&url, &settings).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let settings = PoolSettings {
            max_connections: config.database_max_connections,
            acquire_timeout: config.database_acquire_timeout,
            idle_timeout: (!config.database_idle_timeout.is_zero())
                .then_some(config.database_idle_timeout),
        };
        Arc::new(PostgresStore::connect_with(&url, &settings).await?)
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
