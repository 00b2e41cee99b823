//! The PostgreSQL store, for deployments that run several Tessera instances or
//! already operate PostgreSQL.
//!
//! Atomic consumption of codes and refresh tokens is a single
//! `UPDATE ... WHERE used IS NULL RETURNING ...`: under READ COMMITTED a concurrent
//! update of the same row waits for the first to commit, then re-checks the `WHERE`
//! clause against the new row and finds it used, so exactly one statement wins.

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use tessera_protocol::{GrantType, RedirectUri, Scope};

mod hot;
mod keys;

use super::*;
use crate::crypto::CHAIN_LEN;
use hot::REFRESH_COLUMNS;

/// How the connection pool behaves.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// How long a request waits for a free connection (or a new one) before failing.
    pub acquire_timeout: std::time::Duration,
    /// How long a connection may stay idle before it is closed (`None`: never).
    pub idle_timeout: Option<std::time::Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
            idle_timeout: Some(std::time::Duration::from_secs(600)),
        }
    }
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// [`RefreshTokenStore::rotate_refresh_token`] for a `then` that records no use of
    /// the grant, on `conn`.
    async fn rotate_without_use(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        then: &Issuance,
    ) -> StoreResult<Rotation> {
        if then.is_empty() {
            return hot::rotate_refresh_token(conn, token_hash, client_id, now, then).await;
        }
        match hot::rotate_refresh_token_in_one(conn, token_hash, client_id, now, then).await? {
            Some(Some(rotated)) => return Ok(Rotation::Rotated(rotated)),
            // Not rotated: used before, or invalid; nothing was written.
            Some(None) => return hot::not_rotated(conn, token_hash, client_id).await,
            None => {}
        }
        // The rotated row stays locked until the commit: a concurrent rotation of the
        // same token waits, then finds it used.
        let mut tx = sqlx::Acquire::begin(&mut **conn).await?;
        let rotation = hot::rotate_refresh_token(&mut tx, token_hash, client_id, now, then).await?;
        tx.commit().await?;
        Ok(rotation)
    }
    /// Connect to a `postgres://` URL with a pool of at most `max_connections`, and run
    /// the migrations (their `_sqlx_migrations` table lives in the search path).
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        Self::connect_with(
            url,
            &PoolSettings {
                max_connections,
                ..PoolSettings::default()
            },
        )
        .await
    }

    /// Connect with the given pool settings, and run the migrations.
    pub async fn connect_with(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL database {}", redact(url)))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(super::migration_error)
            .context("running PostgreSQL migrations")?;
        Ok(Self { pool })
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

fn hash_from(row: &PgRow, col: &str) -> anyhow::Result<TokenHash> {
    let bytes: Vec<u8> = row.try_get(col)?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("column {col} does not hold a 32-byte hash"))
}

fn scope_from(row: &PgRow, col: &str) -> anyhow::Result<Scope> {
    let text: String = row.try_get(col)?;
    Scope::parse(&text).map_err(|e| anyhow::anyhow!("stored scope {text:?}: {e}"))
}

fn client_from(row: &PgRow) -> anyhow::Result<Client> {
    let secret: Option<Vec<u8>> = row.try_get("secret_hash")?;
    let uris: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("redirect_uris")?)?;
    let grants: String = row.try_get("grant_types")?;
    let format: String = row.try_get("token_format")?;
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: secret
            .map(|s| s.try_into().map_err(|_| anyhow::anyhow!("bad secret hash")))
            .transpose()?,
        redirect_uris: uris
            .iter()
            .map(|u| {
                RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("stored redirect URI {u}: {e}"))
            })
            .collect::<Result<_, _>>()?,
        scope: scope_from(row, "scope")?,
        required_scope: scope_from(row, "required_scope")?,
        grant_types: grants
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(|g| GrantType::parse(g).ok_or_else(|| anyhow::anyhow!("stored grant type {g}")))
            .collect::<Result<_, _>>()?,
        token_format: TokenFormat::parse(&format)
            .ok_or_else(|| anyhow::anyhow!("stored token format {format}"))?,
        created_at: row.try_get("created_at")?,
        auth_method: {
            let m: String = row.try_get("token_endpoint_auth_method")?;
            AuthMethod::parse(&m).ok_or_else(|| anyhow::anyhow!("stored auth method {m}"))?
        },
        metadata: ClientMetadata {
            jwks: row
                .try_get::<Option<String>, _>("jwks")?
                .map(|j| serde_json::from_str(&j))
                .transpose()?,
            jwks_uri: row.try_get("jwks_uri")?,
            client_uri: row.try_get("client_uri")?,
            logo_uri: row.try_get("logo_uri")?,
            policy_uri: row.try_get("policy_uri")?,
            tos_uri: row.try_get("tos_uri")?,
            contacts: serde_json::from_str(&row.try_get::<String, _>("contacts")?)?,
            software_id: row.try_get("software_id")?,
            software_version: row.try_get("software_version")?,
        },
        dynamic: row.try_get("dynamic")?,
        registration_token_hash: optional_hash(row, "registration_token_hash")?,
        previous_secret: match (
            optional_hash(row, "previous_secret_hash")?,
            row.try_get::<Option<i64>, _>("previous_secret_expires_at")?,
        ) {
            (Some(h), Some(until)) => Some((h, until)),
            _ => None,
        },
        secret_sealed: row.try_get("secret_sealed")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn optional_hash(row: &PgRow, col: &str) -> anyhow::Result<Option<TokenHash>> {
    let bytes: Option<Vec<u8>> = row.try_get(col)?;
    bytes
        .map(|b| {
            b.try_into()
                .map_err(|_| anyhow::anyhow!("column {col} does not hold a 32-byte hash"))
        })
        .transpose()
}

/// The client columns every write sets, in the order [`bind_client`] binds them.
const CLIENT_COLUMNS: [&str; 23] = [
    "name",
    "secret_hash",
    "redirect_uris",
    "scope",
    "required_scope",
    "grant_types",
    "token_format",
    "token_endpoint_auth_method",
    "jwks",
    "jwks_uri",
    "client_uri",
    "logo_uri",
    "policy_uri",
    "tos_uri",
    "contacts",
    "software_id",
    "software_version",
    "dynamic",
    "registration_token_hash",
    "previous_secret_hash",
    "previous_secret_expires_at",
    "secret_sealed",
    "updated_at",
];

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_client<'q>(q: PgQuery<'q>, c: &'q Client) -> anyhow::Result<PgQuery<'q>> {
    let uris: Vec<&str> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    let m = &c.metadata;
    Ok(q.bind(&c.name)
        .bind(c.secret_hash.map(|h| h.to_vec()))
        .bind(serde_json::to_string(&uris)?)
        .bind(c.scope.to_string())
        .bind(c.required_scope.to_string())
        .bind(grants.join(" "))
        .bind(c.token_format.as_str())
        .bind(c.auth_method.as_str())
        .bind(m.jwks.as_ref().map(|j| j.to_string()))
        .bind(&m.jwks_uri)
        .bind(&m.client_uri)
        .bind(&m.logo_uri)
        .bind(&m.policy_uri)
        .bind(&m.tos_uri)
        .bind(serde_json::to_string(&m.contacts)?)
        .bind(&m.software_id)
        .bind(&m.software_version)
        .bind(c.dynamic)
        .bind(c.registration_token_hash.map(|h| h.to_vec()))
        .bind(c.previous_secret.map(|(h, _)| h.to_vec()))
        .bind(c.previous_secret.map(|(_, until)| until))
        .bind(&c.secret_sealed)
        .bind(c.updated_at))
}

fn user_from(row: &PgRow) -> anyhow::Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

fn code_from(row: &PgRow) -> anyhow::Result<AuthCode> {
    Ok(AuthCode {
        code_hash: hash_from(row, "code_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        redirect_uri_given: row.try_get("redirect_uri_given")?,
        scope: scope_from(row, "scope")?,
        code_challenge: row.try_get("code_challenge")?,
        auth_time: row.try_get("auth_time")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn refresh_from(row: &PgRow) -> anyhow::Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: hash_from(row, "token_hash")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: scope_from(row, "scope")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

fn access_from(row: &PgRow) -> anyhow::Result<OpaqueAccessToken> {
    Ok(OpaqueAccessToken {
        token_hash: hash_from(row, "token_hash")?,
        jti: row.try_get("jti")?,
        grant_id: row.try_get("grant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: scope_from(row, "scope")?,
        audience: row.try_get("audience")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait]
impl ScopeStore for PostgresStore {
    async fn upsert_scope(&self, scope: &ScopeEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO scopes (name, description) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        )
        .bind(&scope.name)
        .bind(&scope.description)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_scopes(&self) -> StoreResult<Vec<ScopeEntry>> {
        let rows = sqlx::query("SELECT name, description FROM scopes ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ScopeEntry {
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                })
            })
            .collect()
    }

    async fn delete_scope(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM scopes WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn create_client(&self, c: &Client) -> StoreResult<()> {
        let params: Vec<String> = (1..=CLIENT_COLUMNS.len() + 2)
            .map(|i| format!("${i}"))
            .collect();
        let sql = format!(
            "INSERT INTO clients ({}, id, created_at) VALUES ({})",
            CLIENT_COLUMNS.join(", "),
            params.join(", ")
        );
        bind_client(sqlx::query(&sql), c)?
            .bind(&c.id)
            .bind(c.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_client(&self, c: &Client) -> StoreResult<bool> {
        let sets: Vec<String> = CLIENT_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, col)| format!("{col} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE clients SET {} WHERE id = ${}",
            sets.join(", "),
            CLIENT_COLUMNS.len() + 1
        );
        let done = bind_client(sqlx::query(&sql), c)?
            .bind(&c.id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_clients_page(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from).collect()
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from).transpose()
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from).collect()
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &TokenHash) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1 WHERE id = $2 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash.to_vec())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from).collect()
    }

    async fn delete_user(&self, username: &str, now: i64, forget_after: i64) -> StoreResult<bool> {
        // The feed entries of the user's grants still live: the deletion takes the
        // grants, and their access tokens stay until they expire, refused because their
        // grant is in the feed (migration 0009). The callers revoke the user's grants
        // first; this covers one granted meanwhile.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO revocations (grant_id, expires_at, created_at)
             SELECT g.id, $3, $2 FROM grants g JOIN users u ON u.id = g.user_id
             WHERE u.username = $1 AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > $2)",
        )
        .bind(username)
        .bind(now)
        .bind(forget_after)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, token_hash: &TokenHash, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash.to_vec())
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &TokenHash, now: i64) -> StoreResult<Option<Session>> {
        let row = sqlx::query("SELECT user_id, auth_time, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash.to_vec())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Session {
                user_id: r.try_get("user_id")?,
                auth_time: r.try_get("auth_time")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<Consent>> {
        let row = sqlx::query(
            "SELECT scope, expires_at FROM consents
             WHERE user_id = $1 AND client_id = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| {
                Ok(Consent {
                    scope: scope_from(r, "scope")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .transpose()
    }

    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<()> {
        // Insert the consent if there is none; otherwise lock the row and widen it. A
        // plain read-then-upsert would let two concurrent first consents overwrite
        // each other; the loop covers a consent deleted between the two statements.
        let mut tx = self.pool.begin().await?;
        loop {
            let inserted = sqlx::query(
                "INSERT INTO consents (user_id, client_id, scope, granted_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, client_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(scope.to_string())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() > 0 {
                break;
            }
            let old = sqlx::query(
                "SELECT scope, expires_at FROM consents
                 WHERE user_id = $1 AND client_id = $2 FOR UPDATE",
            )
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(old) = old else { continue };
            let old_expires: Option<i64> = old.try_get("expires_at")?;
            let merged = if !matches!(old_expires, Some(e) if e <= now) {
                scope_from(&old, "scope")?.union(scope)
            } else {
                scope.clone()
            };
            sqlx::query(
                "UPDATE consents SET scope = $3, granted_at = $4, expires_at = $5
                 WHERE user_id = $1 AND client_id = $2",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(merged.to_string())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            break;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The columns of `grants` that [`grant_from`] reads, for a statement on `grants` by
/// that name. The last use is the later of the grant's `last_used_at` and the issue
/// times of its refresh token chains' current tokens: a rotation writes the chain's
/// row, and the grant's only once per `audit.refresh_interval`.
const GRANT_COLUMNS: &str = "id, client_id, user_id, scope, created_at, expires_at, revoked_at, \
     GREATEST(last_used_at, (SELECT max(r.issued_at) FROM refresh_tokens r WHERE r.grant_id = grants.id)) AS last_used_at";

fn grant_from(r: &PgRow) -> anyhow::Result<Grant> {
    Ok(Grant {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: scope_from(r, "scope")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// The class of the advisory locks that serialise the revocations of one grant (the
/// second key is the grant id's hash; two-key advisory locks do not share the
/// one-key space of [`keys`]'s lock).
const REVOCATION_LOCK: i32 = 0x7465_7276; // "terv"

#[async_trait]
impl GrantStore for PostgresStore {
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(g.scope.to_string())
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(g.last_used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from).transpose()
    }

    async fn grant_active(&self, id: &str, now: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM grants WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn list_user_grants(&self, user_id: &str) -> StoreResult<Vec<Grant>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id",
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from).collect()
    }

    async fn list_client_grants(&self, client_id: &str) -> StoreResult<Vec<Grant>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE client_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id",
        ))
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from).collect()
    }

    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()> {
        hot::touch_grant(&mut *self.pool.acquire().await?, id, now).await
    }

    async fn issue_tokens(&self, issuance: &Issuance) -> StoreResult<()> {
        if issuance.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        hot::issue_tokens(&mut tx, issuance).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        by: Actor,
        forget_after: i64,
    ) -> StoreResult<bool> {
        // The copy of the grant's state on each of its refresh token chains
        // (migration 0007), marked before the grant's row. A rotation holds its
        // chain's row alone: it records the grant's use once it has committed
        // (`rotate_refresh_token`). A grant revoked already has its chains marked:
        // this finds none.
        const MARK_CHAINS: &str = "UPDATE refresh_tokens SET grant_revoked_at = $1 WHERE grant_id = $2 AND grant_revoked_at IS NULL";
        let mut tx = self.pool.begin().await?;
        // Revocations of one grant run one at a time. Otherwise one that marked no
        // chain (none committed yet), then waited on the grant's row for a code
        // exchange inserting a chain, would mark that chain after the grant's row while
        // another revocation, started after the exchange, holds the chain and waits for
        // the grant's row: a deadlock (seen with twenty redemptions of one code, whose
        // losers all revoke the grant). Rotations do not take this lock.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(REVOCATION_LOCK)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(MARK_CHAINS)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(by.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let revoked = done.rows_affected() > 0;
        if revoked {
            // The grant's opaque access tokens are not marked: introspection finds the
            // grant in the feed (migration 0009), once this commits, whenever the token
            // was inserted. The chains are marked again, for a chain inserted meanwhile by a transaction that held the
            // grant's row (`hot::insert_refresh_token`) and committed before the
            // update of the grant above got its lock.
            sqlx::query(MARK_CHAINS)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO revocations (grant_id, expires_at, created_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(forget_after)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given,
                                     scope, code_challenge, auth_time, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(c.code_hash.to_vec())
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.user_id)
        .bind(&c.redirect_uri)
        .bind(c.redirect_uri_given)
        .bind(c.scope.to_string())
        .bind(&c.code_challenge)
        .bind(c.auth_time)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_code(
        &self,
        code_hash: &TokenHash,
        client_id: &str,
        now: i64,
    ) -> StoreResult<CodeConsumption> {
        let row = sqlx::query(
            "UPDATE auth_codes SET consumed_at = $1
             WHERE code_hash = $2 AND client_id = $3 AND consumed_at IS NULL
             RETURNING *",
        )
        .bind(now)
        .bind(code_hash.to_vec())
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(CodeConsumption::Consumed(code_from(&row)?));
        }
        let used =
            sqlx::query("SELECT grant_id FROM auth_codes WHERE code_hash = $1 AND client_id = $2")
                .bind(code_hash.to_vec())
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match used {
            Some(row) => CodeConsumption::AlreadyUsed {
                grant_id: row.try_get("grant_id")?,
            },
            None => CodeConsumption::Unknown,
        })
    }
}

#[async_trait]
impl RefreshTokenStore for PostgresStore {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        hot::insert_refresh_token(&mut *self.pool.acquire().await?, t).await
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        then: &Issuance,
    ) -> StoreResult<Rotation> {
        // The grant's use time is recorded after the rotation has committed, in a
        // statement of its own: a rotation that held its chain's row while it waited
        // for the grant's could deadlock with a revocation of the grant, which holds
        // the grant's row while it marks the chains inserted meanwhile (`revoke_grant`).
        // Holding one row at a time, the rotation cannot. The use time is a record
        // (what `Grant::last_used_at` reads takes the chains' rows into account too),
        // so that it lands a moment after the rotation changes nothing it guards.
        // (A copy of `then` only for those rotations, once a day per grant.)
        let without_use;
        let (then, used) = match &then.grant_used {
            Some(used) => {
                without_use = Issuance {
                    grant_used: None,
                    ..then.clone()
                };
                (&without_use, Some(used))
            }
            None => (then, None),
        };
        let mut conn = self.pool.acquire().await?;
        let rotation = self
            .rotate_without_use(&mut conn, token_hash, client_id, now, then)
            .await?;
        if let (Rotation::Rotated(_), Some((grant_id, at))) = (&rotation, used) {
            hot::touch_grant(&mut conn, grant_id, *at).await?;
        }
        Ok(rotation)
    }

    async fn find_active_refresh_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens
             WHERE chain = $1 AND token_hash = $2 AND expires_at > $3
               AND grant_revoked_at IS NULL AND (grant_ends_at IS NULL OR grant_ends_at > $3)",
        ))
        .bind(token_hash[..CHAIN_LEN].to_vec())
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh_from).transpose()
    }

    async fn find_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshToken>> {
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE chain = $1"
        ))
        .bind(token_hash[..CHAIN_LEN].to_vec())
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh_from).transpose()
    }

    async fn view_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenView>> {
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS}, grant_ends_at AS grant_expires_at
             FROM refresh_tokens WHERE chain = $1"
        ))
        .bind(token_hash[..CHAIN_LEN].to_vec())
        .bind(token_hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(RefreshTokenView {
                    token: refresh_from(row)?,
                    grant_expires_at: row.try_get("grant_expires_at")?,
                })
            })
            .transpose()
    }
}

#[async_trait]
impl AccessTokenStore for PostgresStore {
    async fn insert_access_token(&self, t: &OpaqueAccessToken) -> StoreResult<()> {
        hot::insert_access_token(&mut *self.pool.acquire().await?, t).await
    }

    async fn find_active_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<OpaqueAccessToken>> {
        let row = sqlx::query(
            "SELECT * FROM access_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2
               AND (grant_id IS NULL OR EXISTS (SELECT 1 FROM grants g WHERE g.id = access_tokens.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > $3)))",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(access_from).transpose()
    }

    async fn find_access_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<OpaqueAccessToken>> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(access_from).transpose()
    }

    async fn view_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<AccessTokenView>> {
        // The token's row: its grant's state and its user's name are the copies it
        // carries (migration 0006), not reads of the grant's and the user's rows, and
        // the revocation feed, where a grant revoked or deleted since is found
        // (migration 0009: its index `revocations_grant` is small, the grants revoked
        // lately).
        let row = sqlx::query(
            "SELECT a.*,
                    a.grant_id IS NULL
                    OR (a.grant_revoked_at IS NULL AND (a.grant_ends_at IS NULL OR a.grant_ends_at > $2)
                        AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.grant_id = a.grant_id)) AS grant_active
             FROM access_tokens a WHERE a.token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(AccessTokenView {
                    token: access_from(row)?,
                    grant_active: row.try_get("grant_active")?,
                    username: row.try_get("username")?,
                })
            })
            .transpose()
    }

    async fn revoke_access_token(&self, token_hash: &TokenHash, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_hash.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_jti(&self, jti: &str, expires_at: i64, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "INSERT INTO revocations (jti, expires_at, created_at) VALUES ($1, $2, $3)",
            )
            .bind(jti)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl RevocationFeedStore for PostgresStore {
    async fn revocations_after(&self, cursor: i64, limit: u32) -> StoreResult<Vec<Revocation>> {
        let rows = sqlx::query("SELECT * FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(cursor)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Revocation {
                    seq: r.try_get("seq")?,
                    grant_id: r.try_get("grant_id")?,
                    jti: r.try_get("jti")?,
                    exp: r.try_get("expires_at")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn record_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        hot::record_audit(&mut *self.pool.acquire().await?, e).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2::TEXT IS NULL OR client_id = $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(&f.user_id)
        .bind(&f.client_id)
        .bind(i64::from(f.limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let actor: String = r.try_get("actor")?;
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor: Actor::parse(&actor)
                        .ok_or_else(|| anyhow::anyhow!("stored actor {actor}"))?,
                    user_id: r.try_get("user_id")?,
                    username: r.try_get("username")?,
                    client_id: r.try_get("client_id")?,
                    grant_id: r.try_get("grant_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl AssertionStore for PostgresStore {
    async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM client_assertion_jtis WHERE client_id = $1 AND jti = $2 AND expires_at <= $3",
        )
        .bind(client_id)
        .bind(jti)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

fn admin_token_from(r: &PgRow) -> anyhow::Result<AdminToken> {
    Ok(AdminToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        token_hash: hash_from(r, "token_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[async_trait]
impl AdminTokenStore for PostgresStore {
    async fn create_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
        sqlx::query("INSERT INTO admin_tokens (id, name, token_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.token_hash.to_vec())
            .bind(t.created_at)
            .bind(t.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_admin_token(&self, token_hash: &TokenHash) -> StoreResult<Option<AdminToken>> {
        let row =
            sqlx::query("SELECT * FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(token_hash.to_vec())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(admin_token_from).transpose()
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        let rows = sqlx::query("SELECT * FROM admin_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(admin_token_from).collect()
    }

    async fn revoke_admin_token(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl InitialAccessTokenStore for PostgresStore {
    async fn create_initial_access_token(&self, t: &InitialAccessToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO initial_access_tokens (id, token_hash, scope, uses_left, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(t.token_hash.to_vec())
        .bind(t.scope.to_string())
        .bind(t.uses_left)
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<InitialAccessToken>> {
        let row = sqlx::query(
            "SELECT * FROM initial_access_tokens
             WHERE token_hash = $1 AND (uses_left IS NULL OR uses_left > 0) AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(iat_from).transpose()
    }

    async fn use_initial_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<InitialAccessToken>> {
        let row = sqlx::query(
            "UPDATE initial_access_tokens SET uses_left = uses_left - 1
             WHERE token_hash = $1 AND (uses_left IS NULL OR uses_left > 0) AND (expires_at IS NULL OR expires_at > $2)
             RETURNING *",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(iat_from).transpose()
    }
}

fn iat_from(r: &PgRow) -> anyhow::Result<InitialAccessToken> {
    Ok(InitialAccessToken {
        id: r.try_get("id")?,
        token_hash: hash_from(r, "token_hash")?,
        scope: scope_from(r, "scope")?,
        uses_left: r.try_get("uses_left")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// What [`HousekeepingStore::purge_expired`] deletes first, in order: each table with
/// the condition on its rows, `$1` being `now`, and the order in which they are picked
/// (an indexed column, so that each batch starts where the index leads instead of
/// scanning the heap past the rows the earlier batches left dead). Grants go after
/// their tokens ([`PURGE_GRANTS`]).
const PURGE: [(&str, &str, &str); 7] = [
    ("auth_codes", "expires_at <= $1", "expires_at"),
    ("sessions", "expires_at <= $1", "expires_at"),
    ("refresh_tokens", "purge_at <= $1", "purge_at"),
    ("access_tokens", "expires_at <= $1", "expires_at"),
    ("revoked_jtis", "expires_at <= $1", "expires_at"),
    ("client_assertion_jtis", "expires_at <= $1", "expires_at"),
    ("revocations", "expires_at <= $1", "expires_at"),
];

/// The grants that may go: revoked ones, then lapsed ones, each found through its
/// partial index (`grants_revoked`, `grants_expires`). Not every candidate goes: one
/// that still has a code or a refresh token chain waits for them (a lapsed grant's
/// chain stays until the day after its last token expired), and a revoked one for its
/// entry in the revocation feed, which stays until the grant's access tokens have
/// expired (introspection reads it: migration 0009). A lapsed grant's access tokens
/// expired with it (a token never outlives its grant). So each batch examines the next
/// `$4` candidates in `(column, id)` order after the cursor `($2, $3)` and deletes
/// those with nothing left (checked again by the DELETE itself); a purge reads each
/// candidate once, instead of every batch reading again all those the earlier batches
/// had to keep. `$1` bounds the column (`now` for `expires_at`). Returns the rows
/// examined, the rows deleted and the cursor for the next batch.
const PURGE_GRANTS: [&str; 2] = ["revoked_at", "expires_at"];

fn purge_grants_sql(column: &str) -> String {
    let in_feed = super::purge_waits_for_feed(column);
    let free = format!(
        "NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id)
        AND NOT EXISTS (SELECT 1 FROM auth_codes o WHERE o.grant_id = g.id)
        {in_feed}"
    );
    format!(
        "WITH c AS MATERIALIZED (
             (SELECT id, {column} AS k FROM grants WHERE {column} = $2 AND id > $3)
             UNION ALL
             (SELECT id, {column} FROM grants WHERE {column} > $2 AND {column} <= $1
              ORDER BY {column}, id LIMIT $4)
             ORDER BY k, id LIMIT $4),
         gone AS (
             DELETE FROM grants g USING c
             WHERE g.id = c.id AND g.{column} <= $1 AND {free}
             RETURNING 1)
         SELECT (SELECT count(*) FROM c) AS examined, (SELECT count(*) FROM gone) AS deleted,
                last.k, last.id
         FROM (SELECT 1) one
         LEFT JOIN (SELECT k, id FROM c ORDER BY k DESC, id DESC LIMIT 1) last ON true"
    )
}

/// The audit events that go, `$1` being the retention's cutoff and `$2` the batch: of
/// the `$2` oldest (by id), those before the first one recorded at or after the
/// cutoff. Each batch reads only its own rows, whatever the trail's size.
const PURGE_AUDIT: &str = "
    WITH head AS (SELECT id, at FROM audit_events ORDER BY id LIMIT $2)
    DELETE FROM audit_events WHERE id IN (
        SELECT id FROM head
        WHERE id < COALESCE((SELECT min(id) FROM head WHERE at >= $1), 9223372036854775807))";

impl PostgresStore {
    /// Run the DELETE `sql` (`$1` = `time`, `$2` = the batch size) batch after batch
    /// at the pace of [`PurgePace`], until one deletes fewer rows than it was given;
    /// the rows deleted in all.
    async fn purge_paced(&self, table: &str, sql: &str, time: i64, batch: u32) -> StoreResult<u64> {
        let mut pace = PurgePace::new(batch);
        let mut deleted = 0;
        loop {
            let started = std::time::Instant::now();
            let limit = pace.size();
            let done = sqlx::query(sql)
                .bind(time)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await
                .with_context(|| format!("purging {table}"))?;
            deleted += done.rows_affected();
            if done.rows_affected() < u64::from(limit) {
                return Ok(deleted);
            }
            pace.after_batch(BatchTiming::since(started)).await;
        }
    }
}

#[async_trait]
impl HousekeepingStore for PostgresStore {
    async fn purge_expired(
        &self,
        now: i64,
        audit_before: Option<i64>,
        batch: u32,
    ) -> StoreResult<PurgeReport> {
        let batch = batch.max(1);
        let mut counts = [0u64; PURGE.len() + 2];
        for (&(table, condition, order), count) in PURGE.iter().zip(counts.iter_mut()) {
            // Rows picked by their ctid, the condition checked again at deletion: a row
            // changed meanwhile is skipped, never deleted against its new state.
            let sql = format!(
                "DELETE FROM {table}
                 WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM {table} WHERE {condition} ORDER BY {order} LIMIT $2))
                 AND {condition}"
            );
            *count = self.purge_paced(table, &sql, now, batch).await?;
            // After a large purge the planner's statistics still count the deleted rows
            // until autovacuum comes by; the grants step, which checks these tables for
            // each candidate, then picks plans that scan them whole (measured: 3.9 s per
            // batch of 1000 grants after purging 100k tokens, 0.16 s once analysed).
            if *count > u64::from(batch) {
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&self.pool)
                    .await
                    .with_context(|| format!("analysing {table}"))?;
            }
        }
        for column in PURGE_GRANTS {
            let sql = purge_grants_sql(column);
            // Revoked grants go whenever revoked; lapsed ones once `expires_at <= now`.
            let bound = if column == "expires_at" {
                now
            } else {
                i64::MAX
            };
            let (mut after_k, mut after_id) = (i64::MIN, String::new());
            let mut pace = PurgePace::new(batch);
            loop {
                let started = std::time::Instant::now();
                let limit = pace.size();
                let row = sqlx::query(&sql)
                    .bind(bound)
                    .bind(after_k)
                    .bind(&after_id)
                    .bind(i64::from(limit))
                    .fetch_one(&self.pool)
                    .await
                    .context("purging grants")?;
                let examined: i64 = row.try_get("examined")?;
                let deleted: i64 = row.try_get("deleted")?;
                counts[PURGE.len()] += deleted as u64;
                if examined < i64::from(limit) {
                    break;
                }
                (after_k, after_id) = (row.try_get("k")?, row.try_get("id")?);
                pace.after_batch(BatchTiming::since(started)).await;
            }
        }
        if let Some(before) = audit_before {
            counts[PURGE.len() + 1] = self
                .purge_paced("audit_events", PURGE_AUDIT, before, batch)
                .await?;
        }
        Ok(PurgeReport::from_counts(counts))
    }
}
