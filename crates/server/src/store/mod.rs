//! Storage behind small traits, one per ability. Each trait's doc comments state the
//! promises every implementation keeps; `Store` combines them for the app state.
//!
//! Times are Unix seconds. Secrets, codes and tokens reach the store only as
//! SHA-256 hashes ([`TokenHash`]).

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use tessera_protocol::{GrantType, RedirectUri, Scope};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Explain a migration failure; above all, refuse a database that a newer Tessera has
/// migrated (rather than run old code against a schema it does not know).
pub(crate) fn migration_error(e: sqlx::migrate::MigrateError) -> anyhow::Error {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => anyhow::anyhow!(
            "the database was migrated by a newer Tessera (migration {v} is unknown to this version); \
             run that version, or restore a backup made before the upgrade"
        ),
        other => anyhow::Error::new(other),
    }
}

/// A storage failure. Never shown to clients: it becomes `server_error`.
pub type StoreResult<T> = Result<T, anyhow::Error>;

/// The SHA-256 of a secret value.
pub type TokenHash = [u8; 32];

/// How a client's access tokens are minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(Self::Jwt),
            "opaque" => Some(Self::Opaque),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the secret; `None` for a client without one (public, `private_key_jwt`).
    pub secret_hash: Option<TokenHash>,
    pub redirect_uris: Vec<RedirectUri>,
    /// The scopes this client may be granted.
    pub scope: Scope,
    /// The scopes it cannot work without: refusing one denies the request.
    pub required_scope: Scope,
    pub grant_types: Vec<GrantType>,
    pub token_format: TokenFormat,
    pub created_at: i64,
    /// How it authenticates at the token, revocation and introspection endpoints.
    pub auth_method: AuthMethod,
    /// RFC 7591 §2 metadata beyond the above.
    pub metadata: ClientMetadata,
    /// Registered through RFC 7591 rather than by an administrator.
    pub dynamic: bool,
    /// SHA-256 of the RFC 7592 registration access token.
    pub registration_token_hash: Option<TokenHash>,
    /// The secret before the last rotation and until when it is still accepted.
    pub previous_secret: Option<(TokenHash, i64)>,
    /// For `client_secret_jwt` only: the secret, sealed with AES-256-GCM.
    pub secret_sealed: Option<Vec<u8>>,
    pub updated_at: Option<i64>,
}

/// Client authentication methods (RFC 7591 §2, OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretJwt,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the method needs a client secret issued by Tessera.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }
}

/// Descriptive and key metadata of a client (RFC 7591 §2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMetadata {
    /// A JWK Set for `private_key_jwt` (RFC 7517), by value.
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the JWK Set, by reference.
    pub jwks_uri: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

/// An administrator's API token (stored as a hash).
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub token_hash: TokenHash,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An RFC 7591 initial access token (stored as a hash).
#[derive(Debug, Clone)]
pub struct InitialAccessToken {
    pub id: String,
    pub token_hash: TokenHash,
    /// The scopes a client registered with it may be given.
    pub scope: Scope,
    /// Registrations left; `None` for unlimited.
    pub uses_left: Option<i64>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

impl Client {
    /// A public client does not authenticate (RFC 6749 §2.1). A `private_key_jwt`
    /// client has no secret either, but is confidential.
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeEntry {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// A token family: every token that descends from one authorization.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: Scope,
    pub created_at: i64,
    /// When the person's time-limited consent lapses; `None` lasts until revoked.
    pub expires_at: Option<i64>,
    /// When a token was last issued under the grant: the later of the time recorded
    /// on the grant (at a code's redemption, and at a rotation once per
    /// `audit.refresh_interval`) and the issue times of its refresh token chains'
    /// current tokens, as the store reads it. Exact while the grant has a refresh
    /// token chain; once the chains are gone, within that interval.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Grant {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// What a person allowed a client, and until when (`None`: until revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub scope: Scope,
    pub expires_at: Option<i64>,
}

/// One entry of the revocation feed: tokens of `grant_id`, or the token `jti`, are revoked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub seq: i64,
    pub grant_id: Option<String>,
    pub jti: Option<String>,
    /// When every token the entry concerns has expired (the entry may then be forgotten).
    pub exp: Option<i64>,
    pub at: i64,
}

/// Who did something recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The resource owner, on Tessera's pages.
    Person,
    /// The client, e.g. through the revocation endpoint.
    Client,
    /// An administrator, through the CLI.
    Admin,
    /// Tessera itself, e.g. on detecting a reused code or refresh token.
    System,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Client => "client",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Person, Self::Client, Self::Admin, Self::System]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    /// `grant`, `token`, `refresh`, `revoke`, `login_failed`.
    pub kind: String,
    pub actor: Actor,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub detail: String,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub code_hash: TokenHash,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    pub scope: Scope,
    pub code_challenge: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// What happened when a code was presented.
#[derive(Debug)]
pub enum CodeConsumption {
    /// This call consumed the code; no other call ever will.
    Consumed(AuthCode),
    /// The code was consumed before: the grant it started must be revoked (RFC 6749 §4.1.2).
    AlreadyUsed { grant_id: String },
    /// No code with this hash was issued to this client.
    Unknown,
}

impl CodeConsumption {
    /// The code this call consumed, or what its redemption answers without one.
    #[allow(clippy::result_large_err)] // an answer, moved once; see PlannedRedemption
    pub fn consumed(self) -> Result<AuthCode, PlannedRedemption> {
        match self {
            Self::Consumed(code) => Ok(code),
            Self::AlreadyUsed { grant_id } => Err(PlannedRedemption::AlreadyUsed { grant_id }),
            Self::Unknown => Err(PlannedRedemption::Unknown),
        }
    }
}

/// A refresh token chain: the tokens that rotation makes, one after the other, from
/// the refresh token a grant's token request issued. The store keeps one row per chain,
/// for its current token (RFC 9700 §4.14.2: a chain's earlier tokens are refused, and
/// presenting one is reuse), so a grant refreshed every few minutes does not leave a
/// row per rotation behind. Every token of a chain has a key that starts with the
/// chain's id ([`crate::crypto::refresh_key`]), which is how an earlier token is
/// recognised without a row of its own.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// The key of the chain's current token; its first
    /// [`crate::crypto::CHAIN_LEN`] bytes are the chain's id.
    pub token_hash: TokenHash,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: Scope,
    /// When the current token was issued, and when it expires.
    pub issued_at: i64,
    pub expires_at: i64,
    /// Of the token that was presented, when read by its key: `None` if it is the
    /// chain's current token; when it was rotated if it is the one before (all that
    /// the grace period needs); `Some(0)` if it is older.
    pub used_at: Option<i64>,
}

impl RefreshToken {
    /// When the store may delete the chain's row: its current token's expiry rounded
    /// up to a whole day (UTC), so that the index of these times changes at most once
    /// a day per chain instead of at every rotation. Housekeeping deletes the row at
    /// most a day after the token expired; the token is refused from its expiry.
    pub fn purge_at(&self) -> i64 {
        const DAY: i64 = 86_400;
        (self.expires_at.saturating_add(DAY - 1)).div_euclid(DAY) * DAY
    }
}

/// What happened when a refresh token was presented for rotation.
#[derive(Debug)]
pub enum Rotation {
    /// This call rotated the token; no other call ever will. The chain as it is after.
    Rotated(RefreshToken),
    /// The token is one of the chain's earlier ones (`used_at` says which). Whether
    /// that is reuse (revoke the family) or a race within the grace period is the
    /// caller's decision.
    AlreadyUsed(RefreshToken),
    /// Unknown, issued to another client, expired or of a revoked grant.
    Invalid,
}

/// What a token request leaves in the store, written in one transaction: all of it or
/// none. Grouping them costs one commit (one disk flush) per request instead of one
/// per row.
#[derive(Debug, Clone, Default)]
pub struct Issuance {
    pub access_token: Option<OpaqueAccessToken>,
    pub refresh_token: Option<RefreshToken>,
    /// The grant whose `last_used_at` becomes the time given.
    pub grant_used: Option<(String, i64)>,
    /// An audit event; when its `username` is `None` and it has a `user_id`, the store
    /// fills in that user's name (the history must read well after the user is gone).
    pub audit: Option<AuditEvent>,
}

impl Issuance {
    pub fn is_empty(&self) -> bool {
        self.access_token.is_none()
            && self.refresh_token.is_none()
            && self.grant_used.is_none()
            && self.audit.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct OpaqueAccessToken {
    pub token_hash: TokenHash,
    pub jti: String,
    pub grant_id: Option<String>,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: Scope,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// When the token was revoked; ignored by [`AccessTokenStore::insert_access_token`].
    pub revoked_at: Option<i64>,
}

/// An opaque access token with what introspection needs besides its row, read at once.
#[derive(Debug, Clone)]
pub struct AccessTokenView {
    pub token: OpaqueAccessToken,
    /// Whether the token's grant exists, is not revoked and has not lapsed at the time
    /// asked; true for a token without a grant.
    pub grant_active: bool,
    /// The username of the token's user, if it has one that still exists.
    pub username: Option<String>,
}

#[async_trait]
pub trait ScopeStore: Send + Sync {
    /// Create the scope or replace its description.
    async fn upsert_scope(&self, scope: &ScopeEntry) -> StoreResult<()>;
    /// Every scope, ordered by name.
    async fn list_scopes(&self) -> StoreResult<Vec<ScopeEntry>>;
    /// Returns whether a scope was deleted.
    async fn delete_scope(&self, name: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Insert a new client; fails if the id exists.
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>>;
    /// Every client, ordered by creation time.
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Delete a client and, by cascade, everything issued to it. Returns whether it existed.
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;
    /// Replace the secret hash. Returns whether the client exists.
    async fn set_client_secret(&self, id: &str, secret_hash: &TokenHash) -> StoreResult<bool>;
    /// Replace every field of the client but `id` and `created_at`. Returns whether it exists.
    async fn update_client(&self, client: &Client) -> StoreResult<bool>;
    /// Clients ordered by id, after `after` (exclusive), at most `limit`.
    async fn list_clients_page(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Client>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert a new user; fails if the id or username exists.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Delete a user with their sessions, consents, grants and refresh tokens. Their
    /// grants still live at `now` get an entry in the revocation feed (forgettable
    /// after `forget_after`), so that their access tokens, which stay until they
    /// expire, are refused (by introspection, and by resource servers reading the
    /// feed). Returns whether it existed.
    async fn delete_user(&self, username: &str, now: i64, forget_after: i64) -> StoreResult<bool>;
    /// Replace the password hash and end the user's sessions. Returns whether the user exists.
    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, token_hash: &TokenHash, session: &Session) -> StoreResult<()>;
    /// The session with this hash if it has not expired at `now`.
    async fn get_session(&self, token_hash: &TokenHash, now: i64) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The consent this user gave this client, unless it lapsed by `now`.
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<Consent>>;
    /// Record consent until `expires_at` (`None`: until revoked). A live earlier consent
    /// is widened to the union of old and new scopes; the new lifetime applies.
    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<()>;
    /// Forget the consent, so that the next authorization asks again.
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    /// Whether the grant exists, is not revoked and has not lapsed at `now`.
    async fn grant_active(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// The user's grants that are not revoked (lapsed ones included), newest first.
    async fn list_user_grants(&self, user_id: &str) -> StoreResult<Vec<Grant>>;
    /// The client's grants that are not revoked, newest first.
    async fn list_client_grants(&self, client_id: &str) -> StoreResult<Vec<Grant>>;
    /// Record that a token was issued under the grant at `now`.
    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Write every part of `issuance` in one transaction: all parts or, on error, none.
    async fn issue_tokens(&self, issuance: &Issuance) -> StoreResult<()>;
    /// Revoke the grant: from then on every refresh token, opaque access token and
    /// JWT access token that carries its id is refused. In the same transaction a
    /// revocation feed entry is appended (forgettable after `forget_after`, which must
    /// be after every access token of the grant has expired: the opaque ones are not
    /// marked, [`AccessTokenStore::view_access_token`] finds their grant in the feed).
    /// Returns whether the grant was unrevoked before; revoking twice appends nothing.
    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        by: Actor,
        forget_after: i64,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait CodeStore: GrantStore + Send + Sync {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Consume a code issued to `client_id`, atomically: among concurrent calls with
    /// the same hash, exactly one gets `Consumed`; every later call gets `AlreadyUsed`.
    /// Expiry is the caller's check (the code is consumed either way).
    async fn consume_code(
        &self,
        code_hash: &TokenHash,
        client_id: &str,
        now: i64,
    ) -> StoreResult<CodeConsumption>;
    /// A redemption planned from the code it consumes: [`Self::consume_code`]; if this
    /// call consumed the code, its grant is read and `plan` refuses the redemption
    /// (the code stays consumed) or says what it issues, which is then written
    /// ([`GrantStore::issue_tokens`]). By default these are separate transactions;
    /// SQLite makes them one write on its writer's connection, so that a redemption
    /// waits for one commit instead of two. `plan` may run inside that transaction:
    /// it must be quick and must not wait.
    async fn plan_redemption(
        &self,
        code_hash: &TokenHash,
        client_id: &str,
        now: i64,
        plan: RedemptionPlan,
    ) -> StoreResult<PlannedRedemption> {
        let code = match self
            .consume_code(code_hash, client_id, now)
            .await?
            .consumed()
        {
            Ok(code) => code,
            Err(answer) => return Ok(answer),
        };
        let grant = self.get_grant(&code.grant_id).await?;
        match plan(&code, grant.as_ref()) {
            Err(refusal) => Ok(PlannedRedemption::Refused(refusal)),
            Ok(then) => {
                self.issue_tokens(&then).await?;
                Ok(PlannedRedemption::Redeemed { code, grant })
            }
        }
    }
}

/// What a code's redemption issues, decided from the code just consumed and its grant
/// (`None`: gone) ([`CodeStore::plan_redemption`]); an error refuses the redemption.
pub type RedemptionPlan =
    Box<dyn FnOnce(&AuthCode, Option<&Grant>) -> Result<Issuance, crate::error::OAuthError> + Send>;

/// The outcome of [`CodeStore::plan_redemption`].
// Made once per request and moved once: boxing the large variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PlannedRedemption {
    /// No code with this hash was issued to this client.
    Unknown,
    /// The code was consumed before: the grant it started must be revoked (RFC 6749
    /// §4.1.2).
    AlreadyUsed { grant_id: String },
    /// This call consumed the code, and the plan refused the redemption.
    Refused(crate::error::OAuthError),
    /// This call consumed the code and wrote the plan's issuance. The grant as the
    /// plan saw it.
    Redeemed {
        code: AuthCode,
        grant: Option<Grant>,
    },
}

/// Refresh tokens, one row per chain ([`RefreshToken`]). Every method takes the key
/// of the token presented ([`crate::crypto::refresh_key`]) and finds its chain by the
/// key's first [`crate::crypto::CHAIN_LEN`] bytes.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Start a chain with its first token.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// Rotate the chain of a refresh token of `client_id`, if the token is the chain's
    /// current one, atomically: among concurrent calls exactly one gets `Rotated`.
    /// Expired tokens and tokens of revoked grants are `Invalid` and stay current.
    /// The chain's earlier tokens are `AlreadyUsed`.
    ///
    /// `then` is written in the same transaction as the rotation, and only if this call
    /// rotated the token (as [`GrantStore::issue_tokens`]): the successor tokens are
    /// durable exactly when the old token is spent. The grant's use time
    /// ([`Issuance::grant_used`]) may instead be recorded right after the rotation's
    /// commit (PostgreSQL does, so that a rotation never holds its chain's row while it
    /// waits for the grant's; see its `revoke_grant`). A successor refresh token of the
    /// same chain becomes the chain's current token in place; with none, the chain is
    /// left with no current token (one of another chain starts that chain). If writing
    /// `then` fails, the token stays current and the error is returned.
    async fn rotate_refresh_token(
        &self,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        then: &Issuance,
    ) -> StoreResult<Rotation>;
    /// The chain, if the token is its current one, unexpired and of an active grant.
    async fn find_active_refresh_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<RefreshToken>>;
    /// The token's chain, whatever its state, if the token is the chain's current one
    /// or an earlier one.
    async fn find_refresh_token(&self, token_hash: &TokenHash)
        -> StoreResult<Option<RefreshToken>>;
    /// As [`Self::find_refresh_token`], with when the chain's grant lapses, in one
    /// read (what a rotation needs before it starts).
    async fn view_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenView>>;
    /// A rotation that is planned from the chain it finds: read the token's chain
    /// ([`Self::view_refresh_token`]), let `plan` refuse it (nothing changes) or say
    /// what the rotation writes, then [`Self::rotate_refresh_token`] with that. A
    /// chain's grant, user, scope and lapse time never change, so the view and the
    /// rotation need not be one transaction, and by default are not. SQLite reads the
    /// chain in the rotation's own transaction, on its writer's connection, whose page
    /// cache other connections' commits do not empty (a reader's they do, so that on a
    /// large store every separate read descended the chain's tree from disk pages).
    /// `plan` runs inside that transaction: it must be quick and must not wait.
    async fn plan_rotation(
        &self,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        plan: RotationPlan,
    ) -> StoreResult<PlannedRotation> {
        let Some(view) = self.view_refresh_token(token_hash).await? else {
            return Ok(PlannedRotation::Unknown);
        };
        let then = match plan(&view) {
            Ok(then) => then,
            Err(refusal) => return Ok(PlannedRotation::Refused(refusal)),
        };
        let rotation = self
            .rotate_refresh_token(token_hash, client_id, now, &then)
            .await?;
        Ok(PlannedRotation::Done {
            view,
            rotation,
            then,
        })
    }
}

/// What a rotation writes, decided from the chain it rotates
/// ([`RefreshTokenStore::plan_rotation`]); an error refuses the token, unspent.
pub type RotationPlan =
    Box<dyn FnOnce(&RefreshTokenView) -> Result<Issuance, crate::error::OAuthError> + Send>;

/// The outcome of [`RefreshTokenStore::plan_rotation`].
// Made once per request and moved once: boxing the large variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PlannedRotation {
    /// No chain has the token's chain id.
    Unknown,
    /// The plan refused the chain: nothing was written.
    Refused(crate::error::OAuthError),
    /// The plan's issuance (`then`), written if and only if `rotation` is `Rotated`,
    /// and the chain as the plan saw it.
    Done {
        view: RefreshTokenView,
        rotation: Rotation,
        then: Issuance,
    },
}

/// A refresh token with its grant's lapse time, read at once.
#[derive(Debug, Clone)]
pub struct RefreshTokenView {
    pub token: RefreshToken,
    /// When the token's grant lapses: `None` if it never does (or is gone, in which
    /// case the rotation refuses the token).
    pub grant_expires_at: Option<i64>,
}

#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    async fn insert_access_token(&self, token: &OpaqueAccessToken) -> StoreResult<()>;
    /// An opaque access token that is unrevoked, unexpired and (if it has one) of an
    /// active grant.
    async fn find_active_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<OpaqueAccessToken>>;
    /// Any opaque access token with this hash, whatever its state.
    async fn find_access_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<OpaqueAccessToken>>;
    /// Any opaque access token with this hash, whatever its state, with whether its
    /// grant is active at `now` and its user's name, in one read (what introspection
    /// answers with; three lookups of random keys otherwise). `grant_active` is false
    /// once [`GrantStore::revoke_grant`] has returned for the token's grant, including
    /// for a token inserted after that (a token request that raced the revocation),
    /// while the grant's feed entry is kept, and from the grant's `expires_at` on; and
    /// once its user was deleted ([`UserStore::delete_user`]). Both stores answer
    /// from the token's row, which carries copies of the user's name and the grant's
    /// state as issued (SQLite's migration 0006), and the revocation feed's index by
    /// grant (SQLite's migration 0010, PostgreSQL's 0009), not from the grant's and
    /// the user's rows.
    async fn view_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<AccessTokenView>>;
    async fn revoke_access_token(&self, token_hash: &TokenHash, now: i64) -> StoreResult<()>;
    /// Refuse the JWT access token with this `jti` until `expires_at`, appending a
    /// revocation feed entry in the same transaction.
    async fn revoke_jti(&self, jti: &str, expires_at: i64, now: i64) -> StoreResult<()>;
    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait AssertionStore: Send + Sync {
    /// Record a client assertion's `jti` until `expires_at`. Returns `false` when the
    /// same client used it before and it has not expired at `now` (a replay). Atomic.
    async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    /// The unrevoked token with this hash.
    async fn find_admin_token(&self, token_hash: &TokenHash) -> StoreResult<Option<AdminToken>>;
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// Returns whether an unrevoked token was revoked.
    async fn revoke_admin_token(&self, id: &str, now: i64) -> StoreResult<bool>;
}

#[async_trait]
pub trait InitialAccessTokenStore: Send + Sync {
    async fn create_initial_access_token(&self, token: &InitialAccessToken) -> StoreResult<()>;
    /// The token with this hash if it is unexpired with uses left (not using it).
    async fn find_initial_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<InitialAccessToken>>;
    /// Use the token once, atomically: it must be unexpired with uses left; its use
    /// count goes down by one. `None` when it cannot be used.
    async fn use_initial_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<InitialAccessToken>>;
}

#[async_trait]
pub trait RevocationFeedStore: Send + Sync {
    /// Feed entries with `seq > cursor`, oldest first, at most `limit`.
    async fn revocations_after(&self, cursor: i64, limit: u32) -> StoreResult<Vec<Revocation>>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append an event (its `id` is assigned by the store).
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Matching events, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
}

/// Rows removed by one [`HousekeepingStore::purge_expired`], per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub auth_codes: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub access_tokens: u64,
    pub revoked_jtis: u64,
    pub client_assertion_jtis: u64,
    pub revocations: u64,
    pub grants: u64,
    pub audit_events: u64,
}

impl PurgeReport {
    /// The counts of a purge's steps, in the order every backend runs them: codes,
    /// sessions, refresh tokens, access tokens, revoked JWT ids, client assertion ids,
    /// revocation feed entries, grants, audit events.
    pub(crate) fn from_counts(counts: [u64; 9]) -> Self {
        let [auth_codes, sessions, refresh_tokens, access_tokens, revoked_jtis, client_assertion_jtis, revocations, grants, audit_events] =
            counts;
        Self {
            auth_codes,
            sessions,
            refresh_tokens,
            access_tokens,
            revoked_jtis,
            client_assertion_jtis,
            revocations,
            grants,
            audit_events,
        }
    }

    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.auth_codes
            + self.sessions
            + self.refresh_tokens
            + self.access_tokens
            + self.revoked_jtis
            + self.client_assertion_jtis
            + self.revocations
            + self.grants
            + self.audit_events
    }
}

/// How long one batch of a purge should hold the database.
const PURGE_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(10);
/// How long one batch should hold SQLite's single write lock while token writes wait
/// for it: each of them waits that long, so this is what a purge adds to the token
/// endpoint's p99.
const PURGE_BATCH_TIME_CONTENDED: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest pause between two batches when no other write waited.
const PURGE_MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// A batch that waited this long for its turn had other writes ahead of it (a lone
/// write is taken up within microseconds; SQLite's busy handler first sleeps 250 µs).
const PURGE_CONTENDED: std::time::Duration = std::time::Duration::from_micros(200);
/// After a batch that waited for other writes, the pause is this many times as long as
/// the batch held the database: the purge then holds it a fifth of the time at most.
const PURGE_YIELD: u32 = 4;

/// How one batch of a purge went: how long it waited before its statement ran (other
/// writes ahead of it, or another process holding SQLite's write lock), whether
/// another connection wrote since the batch before (a server busy between two of
/// `tessera gc`'s batches), and how long it held the database (its statement and its
/// commit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchTiming {
    pub(crate) waited: std::time::Duration,
    pub(crate) others_wrote: bool,
    pub(crate) held: std::time::Duration,
}

impl BatchTiming {
    /// A batch measured from its start only (PostgreSQL: no single lock to wait for).
    pub(crate) fn since(started: std::time::Instant) -> Self {
        Self {
            waited: std::time::Duration::ZERO,
            others_wrote: false,
            held: started.elapsed(),
        }
    }
}

/// The pace of a purge, so that housekeeping does not stall the token endpoint.
///
/// Each batch aims at a time holding the database ([`PURGE_BATCH_TIME`]; on SQLite
/// [`PURGE_BATCH_TIME_CONTENDED`] after a batch that met other writes): its size
/// halves after a batch that held it longer and doubles after one that held it less
/// than half as long, between a floor and the configured `batch`. After each batch
/// the purge pauses as long as the batch held the database (at most
/// [`PURGE_MAX_PAUSE`]), or [`PURGE_YIELD`] times as long when it met other writes:
/// it waited for them ([`PURGE_CONTENDED`]), or another connection wrote since the
/// batch before. On an idle database a purge holds it about half the time; while token
/// writes wait for SQLite's single write lock, a fifth of the time at most.
///
/// The floor: a quarter of `batch` on PostgreSQL, where the time measured is the whole
/// round trip; a tenth on SQLite, where only the time holding the write lock counts,
/// not the wait for it, so that a purge under load does not shrink to statements that
/// delete next to nothing.
pub(crate) struct PurgePace {
    size: u32,
    min: u32,
    max: u32,
}

impl PurgePace {
    /// The pace on PostgreSQL.
    pub(crate) fn new(max: u32) -> Self {
        Self::with(max, 4)
    }

    /// The pace on SQLite, whose single write lock every token write needs.
    pub(crate) fn single_writer(max: u32) -> Self {
        Self::with(max, 10)
    }

    fn with(max: u32, floor_div: u32) -> Self {
        let max = max.max(1);
        let min = (max / floor_div).max(1);
        Self {
            size: min,
            min,
            max,
        }
    }

    /// Rows to delete in the next batch.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// After a batch (that deleted a full batch): adjust the size, and how long to
    /// pause before the next.
    pub(crate) fn next(&mut self, batch: BatchTiming) -> std::time::Duration {
        let contended = batch.others_wrote || batch.waited >= PURGE_CONTENDED;
        // Only SQLite's batches report contention (see `BatchTiming::since`).
        let target = if contended {
            PURGE_BATCH_TIME_CONTENDED
        } else {
            PURGE_BATCH_TIME
        };
        if batch.held > target {
            self.size = (self.size / 2).max(self.min);
        } else if batch.held < target / 2 {
            self.size = self.size.saturating_mul(2).min(self.max);
        }
        if contended {
            (batch.held * PURGE_YIELD).min(PURGE_MAX_PAUSE * PURGE_YIELD)
        } else {
            batch.held.min(PURGE_MAX_PAUSE)
        }
    }

    /// [`Self::next`], then the pause.
    pub(crate) async fn after_batch(&mut self, batch: BatchTiming) {
        tokio::time::sleep(self.next(batch)).await;
    }
}

#[cfg(test)]
mod purge_pace_tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn batch(waited: Duration, others_wrote: bool, held: Duration) -> BatchTiming {
        BatchTiming {
            waited,
            others_wrote,
            held,
        }
    }

    #[test]
    fn batches_grow_on_an_idle_database_and_pause_as_long_as_they_held_it() {
        let mut pace = PurgePace::single_writer(1000);
        assert_eq!(pace.size(), 100);
        let idle = batch(Duration::from_micros(20), false, ms(1));
        assert_eq!(pace.next(idle), ms(1));
        assert_eq!(pace.size(), 200);
        for _ in 0..5 {
            pace.next(idle);
        }
        assert_eq!(pace.size(), 1000, "never above the configured batch");
        assert_eq!(
            pace.next(batch(Duration::ZERO, false, ms(300))),
            PURGE_MAX_PAUSE
        );
        assert_eq!(pace.size(), 500);
        // Alone, a batch may hold the database for 10 ms.
        pace.next(batch(Duration::ZERO, false, ms(8)));
        assert_eq!(pace.size(), 500);
    }

    #[test]
    fn a_batch_that_met_other_writes_pauses_four_times_as_long() {
        let mut pace = PurgePace::single_writer(1000);
        // Kept waiting for other writes.
        assert_eq!(pace.next(batch(ms(3), false, ms(4))), ms(16));
        assert_eq!(pace.size(), 100, "4 ms is within the 5 ms aimed at");
        // 8 ms is not, when other writes wait.
        pace.next(batch(ms(1), false, ms(8)));
        assert_eq!(pace.size(), 100);
        // Not kept waiting, but another connection wrote between two batches.
        assert_eq!(pace.next(batch(Duration::ZERO, true, ms(2))), ms(8));
        assert_eq!(pace.size(), 200);
        let slow = batch(ms(3), false, ms(200));
        assert_eq!(pace.next(slow), PURGE_MAX_PAUSE * PURGE_YIELD);
        assert_eq!(pace.size(), 100);
        pace.next(slow);
        assert_eq!(pace.size(), 100, "never below a tenth of the batch");
    }

    #[test]
    fn postgres_keeps_a_quarter_batch_floor_and_a_10_ms_aim() {
        let mut pace = PurgePace::new(1000);
        assert_eq!(pace.size(), 250);
        let seven = BatchTiming::since(std::time::Instant::now() - ms(7));
        assert!(!seven.others_wrote && seven.waited.is_zero());
        assert!(pace.next(seven) >= ms(7));
        assert_eq!(pace.size(), 250);
        pace.next(batch(Duration::ZERO, false, ms(4)));
        assert_eq!(pace.size(), 500);
        assert_eq!(PurgePace::new(0).size(), 1);
    }
}

/// What else a grant candidate of the housekeeping's purge found by `column`
/// (`revoked_at` or `expires_at`) waits for, as SQL on the candidate `g` (the same in
/// both stores): a revoked grant, for its revocation feed entry, which introspection
/// reads until the grant's access tokens have expired (they are not indexed by grant);
/// a lapsed grant's access tokens expired with it.
fn purge_waits_for_feed(column: &str) -> &'static str {
    match column {
        "revoked_at" => "AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.grant_id = g.id)",
        _ => "",
    }
}

#[async_trait]
pub trait HousekeepingStore: Send + Sync {
    /// Delete what has expired at `now`: codes (consumed or not), sessions, refresh
    /// tokens, opaque access tokens, revoked JWT ids, client assertion ids and
    /// revocation feed entries with `expires_at <= now`; then grants that are revoked
    /// or lapsed and have no code or refresh token chain left, a revoked one no feed
    /// entry either (which is kept until the grant's access tokens have expired: see
    /// [`GrantStore::revoke_grant`]; a lapsed grant's expired with it); then, when
    /// `audit_before` is given, the audit events recorded before it
    /// (`at < audit_before`). Consents, clients and users are kept.
    ///
    /// Audit events go oldest first, by id, and only those before the first event (by
    /// id) that is to be kept: events are numbered in the order they are recorded, so
    /// finding where to stop reads only the events that go, whatever the trail's size,
    /// and an event recorded with a clock slightly behind another instance's is kept a
    /// little longer rather than searched for.
    ///
    /// Deletes at most `batch` rows per statement (each its own short transaction),
    /// repeating until a statement deletes fewer than it was given (for grants: until
    /// one examines fewer candidates than it was given, going on after the last one
    /// examined, so that grants still waiting for their tokens are read once per
    /// purge), at the pace of
    /// [`PurgePace`]: statements of about 10 ms on PostgreSQL and 5 ms on SQLite, with
    /// as long a pause after each, or four times as long when other writes waited.
    async fn purge_expired(
        &self,
        now: i64,
        audit_before: Option<i64>,
        batch: u32,
    ) -> StoreResult<PurgeReport>;
}

/// A signing key as stored. The private half is PKCS#8, sealed with AES-256-GCM under
/// a key derived from the master key, the `kid` as associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// `ES256`, `EdDSA` or `RS256`.
    pub alg: String,
    /// The public JWK as published (JSON).
    pub public_jwk: String,
    /// The sealed private key; `None` once the key no longer signs and was wiped.
    pub private_key: Option<Vec<u8>>,
    pub created_at: i64,
    /// When the key starts signing; until then it is only published.
    pub activates_at: i64,
}

/// Signing keys shared by every instance on the database.
///
/// A key of an algorithm is *superseded* at the `activates_at` of the next key of the
/// same algorithm (by `activates_at`); before that moment it may sign.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key, by `activates_at` then `kid`.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Insert `key`, unless `unless_created_after` is given and a key of the same `alg`
    /// was created after it. The check and the insert are one atomic step, even when
    /// several instances try at once: at most one of them inserts. Returns whether
    /// `key` was inserted.
    async fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
        unless_created_after: Option<i64>,
    ) -> StoreResult<bool>;
    /// Wipe the private half of every key superseded at or before `wipe_before`, and
    /// delete every key superseded at or before `delete_before`. Returns the number of
    /// keys wiped and deleted.
    async fn retire_signing_keys(
        &self,
        wipe_before: i64,
        delete_before: i64,
    ) -> StoreResult<(u64, u64)>;
}

/// Everything the server stores.
pub trait Store:
    ScopeStore
    + ClientStore
    + UserStore
    + SessionStore
    + ConsentStore
    + GrantStore
    + CodeStore
    + RefreshTokenStore
    + AccessTokenStore
    + RevocationFeedStore
    + AuditStore
    + AssertionStore
    + AdminTokenStore
    + InitialAccessTokenStore
    + HousekeepingStore
    + SigningKeyStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: ScopeStore
        + ClientStore
        + UserStore
        + SessionStore
        + ConsentStore
        + GrantStore
        + CodeStore
        + RefreshTokenStore
        + AccessTokenStore
        + RevocationFeedStore
        + AuditStore
        + AssertionStore
        + AdminTokenStore
        + InitialAccessTokenStore
        + HousekeepingStore
        + SigningKeyStore
        + Send
        + Sync
{
}
