//! Configuration in layers: built-in defaults, then a TOML file (`--config` or
//! `TESSERA_CONFIG`), then `TESSERA_*` environment variables (`__` nests:
//! `TESSERA_TOKENS__ACCESS_TOKEN_TTL=5m`), then command-line flags. Unknown keys are
//! refused. Every option is documented here, next to its default, and in `docs/config.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The longest `tokens.introspection_cache`: a revocation made at another instance
/// must not stay unseen by this one's introspection for longer.
const MOST_INTROSPECTION_CACHE: Duration = Duration::from_secs(5);

/// The default of `database_sqlite_mmap_size`: the most SQLite maps as this workspace
/// builds it (`SQLITE_MAX_MMAP_SIZE` in `.cargo/config.toml`, 1 TiB); a larger setting
/// is cut to it, and to SQLite's own 2 GiB less 64 KiB in a build without that flag.
pub const SQLITE_MMAP_SIZE: u64 = 1 << 40;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The issuer identifier (RFC 8414 §2): the https (or loopback http) URL at which
    /// clients reach Tessera, without a trailing slash. Default `http://127.0.0.1:8080`.
    pub issuer: String,
    /// Directory holding the SQLite database and signing keys. Default `./tessera-data`.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB` (`postgresql://`
    /// too). Default: `sqlite://<data_dir>/tessera.db`.
    pub database_url: Option<String>,
    /// Most connections in the PostgreSQL pool. Default 10.
    pub database_max_connections: u32,
    /// How long a request waits for a PostgreSQL connection before it fails (503).
    /// Default 5 s.
    #[serde(with = "humantime_serde")]
    pub database_acquire_timeout: Duration,
    /// How long an idle PostgreSQL connection stays open. Default 10 minutes; `0s` keeps
    /// them.
    #[serde(with = "humantime_serde")]
    pub database_idle_timeout: Duration,
    /// SQLite: how many bytes of the database file the request path's point reads
    /// map into memory (`PRAGMA mmap_size`) instead of copying each page with a read
    /// call. Default [`SQLITE_MMAP_SIZE`], the most SQLite maps; `0` reads every page
    /// with `pread`.
    pub database_sqlite_mmap_size: u64,
    /// The master key: 32 random bytes in base64 (`tessera key new-master-key` prints
    /// one), usually given as `TESSERA_MASTER_KEY`. It encrypts the signing keys kept in
    /// the database and the sealed secrets of `client_secret_jwt` clients
    /// (AES-256-GCM). Required with PostgreSQL, where several instances share the
    /// keys; with SQLite, when unset, one is generated at `<data_dir>/keys/master.key`.
    pub master_key: Option<MasterKey>,
    /// Token lifetimes and formats.
    pub tokens: TokenConfig,
    /// Login sessions.
    pub sessions: SessionConfig,
    /// Scopes to create (or update) at start, with the descriptions shown on the consent page.
    pub scopes: Vec<ScopeConfig>,
    /// Dynamic client registration (RFC 7591).
    pub registration: RegistrationConfig,
    /// Periodic deletion of expired rows.
    pub housekeeping: HousekeepingConfig,
    /// What the audit trail records, and how long it keeps it.
    pub audit: AuditConfig,
    /// Log filter in `tracing` syntax. Default `info`. With `tower_http` at `debug`,
    /// every HTTP request also gets a span and two events.
    pub log: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access token lifetime. Default 10 minutes.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (each rotation starts a new one). Default 30 days.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Authorization code lifetime. Default 60 seconds.
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// How long after a refresh token was rotated a second use is treated as a race
    /// between the client's own requests (answered with fresh tokens) rather than as
    /// reuse (which revokes the family). Default 0: off.
    #[serde(with = "humantime_serde")]
    pub refresh_grace_period: Duration,
    /// JWT access token signature algorithm: `ES256` (default), `EdDSA` or `RS256`.
    pub signing_alg: SigningAlg,
    /// The `aud` of access tokens. Default: the issuer.
    pub audience: Option<String>,
    /// How long an introspection answer for an active access token is kept in memory
    /// (see [`crate::tokens::answers`]): a revocation made elsewhere (another instance,
    /// the `tessera` command) reaches this instance's introspection within it. Default
    /// 500 ms; `0s` reads the store for every introspection; at most 5 s.
    #[serde(with = "humantime_serde")]
    pub introspection_cache: Duration,
    /// Signing key rotation.
    pub key_rotation: KeyRotationConfig,
}

/// Signing keys live in the database, shared by every instance. A new key is published
/// in the JWKS `publish_ahead` before it signs; an old key stays published until every
/// token it signed has expired, then goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyRotationConfig {
    /// Start a new key when the newest is this old (`tessera key rotate` does it at
    /// once). Default 30 days; `0s` turns automatic rotation off.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long a new key is published before it signs, so that resource servers and
    /// clients caching the JWKS (Tessera serves it with `max-age=300`) know it first.
    /// Default 1 hour.
    #[serde(with = "humantime_serde")]
    pub publish_ahead: Duration,
    /// How often each instance reads the keys again from the database. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub reload: Duration,
}

impl Default for KeyRotationConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30 * 24 * 3600),
            publish_ahead: Duration::from_secs(3600),
            reload: Duration::from_secs(10),
        }
    }
}

/// The master key as configured (base64 text); never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MasterKey(pub String);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlg {
    /// Every algorithm, in the order keys of earlier versions were looked for.
    pub const ALL: [SigningAlg; 3] = [Self::ES256, Self::EdDSA, Self::RS256];

    /// The algorithm named `name` (its JOSE name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How long a login session lasts. Default 12 hours.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Who may register clients at the registration endpoint: `closed` (administrators
    /// only, through the CLI or admin API), `initial_access_token` (the default: a token
    /// from `tessera initial-access-token create` is required), or `open`.
    pub policy: RegistrationPolicy,
    /// With the `open` policy, the scopes a dynamically registered client may get.
    /// Default: none.
    pub open_scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    /// How often the server deletes expired codes, sessions, tokens, revoked JWT ids,
    /// client assertion ids, revocation feed entries, and revoked or lapsed grants
    /// with nothing left that needs them (`tessera gc` does it once). Default 10 minutes.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Most rows deleted by one statement. Statements are sized to take about 10 ms
    /// (between a quarter of this and all of it), with as long a pause after each (at
    /// most 100 ms), so that housekeeping leaves the database to the token endpoint
    /// about half the time. Default 1000.
    pub batch: u32,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(600),
            batch: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long audit events are kept: housekeeping deletes older ones. Default 90
    /// days; `0s` keeps them for ever.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Refresh token rotations are recorded at most once per grant in each period of
    /// this length (counted from the Unix epoch: with the default, `1d`, once per UTC
    /// day), the first rotation of the period; `0s` records every rotation. A client
    /// refreshing every ten minutes would otherwise add 144 events a day per grant.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 86400),
            refresh_interval: Duration::from_secs(86400),
        }
    }
}

impl AuditConfig {
    /// Audit events recorded before this time are to be deleted at `now`; `None`
    /// when they are kept for ever.
    pub fn purge_before(&self, now: i64) -> Option<i64> {
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        (retention > 0).then(|| now.saturating_sub(retention))
    }

    /// Whether a rotation at `now` of a refresh token issued at `issued_at` (the
    /// grant's previous refresh, or the code's redemption) is the first of its grant
    /// in the current period of [`Self::refresh_interval`], and so is recorded.
    pub fn records_refresh(&self, issued_at: i64, now: i64) -> bool {
        let period = i64::try_from(self.refresh_interval.as_secs()).unwrap_or(i64::MAX);
        period == 0 || issued_at.div_euclid(period) != now.div_euclid(period)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationPolicy {
    Closed,
    InitialAccessToken,
    Open,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            policy: RegistrationPolicy::InitialAccessToken,
            open_scope: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    pub name: String,
    pub description: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            database_max_connections: 10,
            database_acquire_timeout: Duration::from_secs(5),
            database_idle_timeout: Duration::from_secs(600),
            database_sqlite_mmap_size: SQLITE_MMAP_SIZE,
            master_key: None,
            tokens: TokenConfig::default(),
            sessions: SessionConfig::default(),
            scopes: Vec::new(),
            registration: RegistrationConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            audit: AuditConfig::default(),
            log: "info".into(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            code_ttl: Duration::from_secs(60),
            refresh_grace_period: Duration::ZERO,
            signing_alg: SigningAlg::ES256,
            audience: None,
            introspection_cache: Duration::from_millis(500),
            key_rotation: KeyRotationConfig::default(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Load the layers: defaults, the TOML file, `TESSERA_*` variables, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("TESSERA_").split("__").ignore(&["config"]))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let issuer = url::Url::parse(&self.issuer).context("issuer is not a URL")?;
        let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        // RFC 8414 §2: https, no query or fragment. Plain http is allowed on loopback
        // so that Tessera starts with no setup.
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            anyhow::bail!("issuer must be an https URL (http is allowed only on loopback)");
        }
        if issuer.query().is_some() || issuer.fragment().is_some() || self.issuer.ends_with('/') {
            anyhow::bail!("issuer must have no query, no fragment and no trailing slash");
        }
        for s in &self.scopes {
            if !tessera_protocol::Scope::is_valid_token(&s.name) {
                anyhow::bail!(
                    "scope name {:?} is not a valid RFC 6749 scope token",
                    s.name
                );
            }
        }
        if tessera_protocol::Scope::parse(&self.registration.open_scope).is_err() {
            anyhow::bail!("registration.open_scope is not a valid scope list");
        }
        if self.tokens.access_token_ttl.is_zero() || self.tokens.code_ttl.is_zero() {
            anyhow::bail!("token lifetimes must be positive");
        }
        if self.tokens.introspection_cache > MOST_INTROSPECTION_CACHE {
            anyhow::bail!("tokens.introspection_cache must be 5s at most");
        }
        if self.tokens.key_rotation.reload.is_zero() {
            anyhow::bail!("tokens.key_rotation.reload must be positive");
        }
        if self.housekeeping.interval.is_zero() || self.housekeeping.batch == 0 {
            anyhow::bail!("housekeeping.interval and housekeeping.batch must be positive");
        }
        Ok(())
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tessera.db").display()))
    }

    /// Whether the issuer is served over https (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The `aud` of access tokens.
    pub fn audience(&self) -> &str {
        self.tokens.audience.as_deref().unwrap_or(&self.issuer)
    }

    /// An endpoint URL under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

#[cfg(test)]
mod audit_tests {
    use super::*;

    #[test]
    fn retention_gives_the_cutoff_and_zero_keeps_everything() {
        let mut audit = AuditConfig::default();
        assert_eq!(audit.purge_before(100 * 86400), Some(10 * 86400));
        audit.retention = Duration::ZERO;
        assert_eq!(audit.purge_before(100 * 86400), None);
    }

    #[test]
    fn a_refresh_is_recorded_once_per_period() {
        let mut audit = AuditConfig::default();
        let day = 86_400;
        // Same UTC day: not recorded, however far apart.
        assert!(!audit.records_refresh(10 * day, 10 * day + day - 1));
        // The first of the next day is, even a second later.
        assert!(audit.records_refresh(11 * day - 1, 11 * day));
        assert!(audit.records_refresh(3 * day, 10 * day));
        audit.refresh_interval = Duration::ZERO;
        assert!(audit.records_refresh(10 * day, 10 * day));
    }
}
