//! The SQLite store: the embedded default. WAL mode, one file under the data dir.
//!
//! Atomic consumption of codes and refresh tokens is a single
//! `UPDATE ... WHERE used IS NULL RETURNING ...`: SQLite serialises writers, so exactly
//! one of several concurrent statements updates the row.
//!
//! Three kinds of connection share the file. The request path's writes go to the
//! [`writer`] thread (group commit on a rusqlite connection of its own) and its point
//! reads to [`read`] (rusqlite connections used on the calling thread); both run
//! prepared statements directly, with no hand-over per statement. Housekeeping's
//! batched deletes go to the writer too, one job per batch, so that a purge never
//! holds the write lock while the writer sleeps in SQLite's busy handler. Everything
//! else (admin commands, consent and login writes, the feed, listings) uses the sqlx
//! pool, which also runs the migrations before the others are opened.
//! Listings stay there on purpose: a read on the calling thread must be bounded, and
//! a client's grants may number millions. That is why grants have a row mapping for
//! each library (`grant_from` here, `hot::grant_at`).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use tessera_protocol::{GrantType, RedirectUri, Scope};

mod hot;
mod keys;
mod read;
mod writer;

use super::*;

/// How the SQLite store reads.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    /// Bytes of the database file that each of the request path's read connections
    /// maps into memory (`PRAGMA mmap_size`; `0`: none, every page is read with
    /// `pread`). A mapped page is read in place instead of copied into the
    /// connection's cache, and the mapping is the kernel's page cache, shared by every
    /// connection: on a store larger than the caches, a lookup of a token no
    /// connection has cached costs a page fault instead of a `pread` per page it
    /// misses. Pages read through it count in the process's resident set, as file
    /// pages the kernel may drop. (The writer's connection keeps its own cache: a
    /// connection drops its mapping whenever it sees another's commit, and the writer
    /// reads between its own.)
    pub read_mmap_size: u64,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            read_mmap_size: crate::config::SQLITE_MMAP_SIZE,
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Group commit of the token hot path's writes (see [`writer`]).
    writer: writer::Writer,
    /// The point reads of the request path (see [`read`]).
    readers: Arc<read::Readers>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file and run the migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let url = format!("sqlite://{}", path.display());
        Self::connect(&url).await
    }

    /// Open a `sqlite://` URL with the default settings and run the migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, &SqliteSettings::default()).await
    }

    /// Open a `sqlite://` URL and run the migrations.
    pub async fn connect_with(url: &str, settings: &SqliteSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("bad SQLite URL {url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable: a committed token survives power loss (FULL syncs the WAL on commit).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename().to_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A ping before each use would cost a round trip to the connection's
            // worker thread per query, and tells nothing about a local file.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {url}"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(super::migration_error)
            .context("running SQLite migrations")?;
        let writer = writer::Writer::start(&path)?;
        let readers = Arc::new(read::Readers::open(&path, settings.read_mmap_size)?);
        Ok(Self {
            pool,
            writer,
            readers,
        })
    }
}

fn hash_from(row: &SqliteRow, col: &str) -> anyhow::Result<TokenHash> {
    let bytes: Vec<u8> = row.try_get(col)?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("column {col} does not hold a 32-byte hash"))
}

fn scope_from(row: &SqliteRow, col: &str) -> anyhow::Result<Scope> {
    let text: String = row.try_get(col)?;
    Scope::parse(&text).map_err(|e| anyhow::anyhow!("stored scope {text:?}: {e}"))
}

fn client_from(row: &SqliteRow) -> anyhow::Result<Client> {
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

fn optional_hash(row: &SqliteRow, col: &str) -> anyhow::Result<Option<TokenHash>> {
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

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_client<'q>(q: SqliteQuery<'q>, c: &'q Client) -> anyhow::Result<SqliteQuery<'q>> {
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

fn user_from(row: &SqliteRow) -> anyhow::Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl ScopeStore for SqliteStore {
    async fn upsert_scope(&self, scope: &ScopeEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO scopes (name, description) VALUES (?, ?)
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
        let done = sqlx::query("DELETE FROM scopes WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, c: &Client) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO clients ({}, id, created_at) VALUES ({}?, ?)",
            CLIENT_COLUMNS.join(", "),
            "?, ".repeat(CLIENT_COLUMNS.len())
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
            .map(|col| format!("{col} = ?"))
            .collect();
        let sql = format!("UPDATE clients SET {} WHERE id = ?", sets.join(", "));
        let done = bind_client(sqlx::query(&sql), c)?
            .bind(&c.id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_clients_page(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from).collect()
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE id = ?")
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
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &TokenHash) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = ? WHERE id = ? AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash.to_vec())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
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
        self.readers.read(|c| read::get_user(c, id))
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(DELETED_USERS_GRANTS_IN_FEED)
            .bind(username)
            .bind(now)
            .bind(forget_after)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE username = ?")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
        )
        .bind(username)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, token_hash: &TokenHash, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, auth_time, expires_at) VALUES (?, ?, ?, ?)",
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
        self.readers.read(|c| read::get_session(c, token_hash, now))
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<Consent>> {
        self.readers
            .read(|c| read::get_consent(c, user_id, client_id, now))
    }

    async fn add_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<()> {
        // Read then write: take the write lock first (BEGIN IMMEDIATE), or concurrent
        // consents fail to upgrade their read lock ("database is locked").
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let old = sqlx::query(
            "SELECT scope FROM consents
             WHERE user_id = ? AND client_id = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let merged = match old {
            Some(row) => scope_from(&row, "scope")?.union(scope),
            None => scope.clone(),
        };
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (user_id, client_id) DO UPDATE
             SET scope = excluded.scope, granted_at = excluded.granted_at, expires_at = excluded.expires_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(merged.to_string())
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM consents WHERE user_id = ? AND client_id = ?")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn grant_from(r: &SqliteRow) -> anyhow::Result<Grant> {
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

#[async_trait]
impl GrantStore for SqliteStore {
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        let g = g.clone();
        self.writer
            .write(move |conn| hot::insert_grant(conn, &g))
            .await
    }

    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        self.readers.read(|c| read::get_grant(c, id))
    }

    async fn grant_active(&self, id: &str, now: i64) -> StoreResult<bool> {
        self.readers.read(|c| read::grant_active(c, id, now))
    }

    async fn list_user_grants(&self, user_id: &str) -> StoreResult<Vec<Grant>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            hot::grant_columns!(),
            " FROM grants WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from).collect()
    }

    async fn list_client_grants(&self, client_id: &str) -> StoreResult<Vec<Grant>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            hot::grant_columns!(),
            " FROM grants WHERE client_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id"
        ))
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from).collect()
    }

    async fn touch_grant(&self, id: &str, now: i64) -> StoreResult<()> {
        let id = id.to_owned();
        self.writer
            .write(move |conn| hot::touch_grant(conn, &id, now))
            .await
    }

    async fn issue_tokens(&self, issuance: &Issuance) -> StoreResult<()> {
        if issuance.is_empty() {
            return Ok(());
        }
        let issuance = issuance.clone();
        self.writer
            .write_atomic(move |conn| hot::issue_tokens(conn, &issuance))
            .await
    }

    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        by: Actor,
        forget_after: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(by.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let revoked = done.rows_affected() > 0;
        if revoked {
            // The copy of the grant's state that rotations read on each of its refresh
            // token chains (migration 0008), in the same transaction. Its opaque access
            // tokens are not marked: introspection finds the grant in the feed
            // (migration 0010).
            sqlx::query(
                "UPDATE refresh_tokens SET grant_revoked_at = ? WHERE grant_id = ? AND grant_revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO revocations (grant_id, expires_at, created_at) VALUES (?, ?, ?)",
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
impl CodeStore for SqliteStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let c = c.clone();
        self.writer
            .write(move |conn| hot::insert_code(conn, &c))
            .await
    }

    async fn consume_code(
        &self,
        code_hash: &TokenHash,
        client_id: &str,
        now: i64,
    ) -> StoreResult<CodeConsumption> {
        let (hash, client_id) = (*code_hash, client_id.to_owned());
        self.writer
            .write(move |conn| hot::consume_code(conn, &hash, &client_id, now))
            .await
    }

    /// The code consumed, its grant read, the plan and its issuance in one write: one
    /// commit for the whole redemption. A refused redemption keeps the code consumed.
    async fn plan_redemption(
        &self,
        code_hash: &TokenHash,
        client_id: &str,
        now: i64,
        plan: RedemptionPlan,
    ) -> StoreResult<PlannedRedemption> {
        let (hash, client_id) = (*code_hash, client_id.to_owned());
        self.writer
            .write_atomic(move |conn| {
                let code = match hot::consume_code(conn, &hash, &client_id, now)?.consumed() {
                    Ok(code) => code,
                    Err(answer) => return Ok(answer),
                };
                let grant = read::get_grant(conn, &code.grant_id)?;
                match plan(&code, grant.as_ref()) {
                    Err(refusal) => Ok(PlannedRedemption::Refused(refusal)),
                    Ok(then) => {
                        hot::issue_tokens(conn, &then)?;
                        Ok(PlannedRedemption::Redeemed { code, grant })
                    }
                }
            })
            .await
    }
}

#[async_trait]
impl RefreshTokenStore for SqliteStore {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        let t = t.clone();
        self.writer
            .write(move |conn| hot::insert_refresh_token(conn, &t))
            .await
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        then: &Issuance,
    ) -> StoreResult<Rotation> {
        let (hash, client_id) = (*token_hash, client_id.to_owned());
        let then = then.clone();
        self.writer
            .write_atomic(move |conn| {
                hot::rotate_refresh_token(conn, &hash, &client_id, now, &then)
            })
            .await
    }

    async fn find_active_refresh_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.readers
            .read(|c| read::find_active_refresh_token(c, token_hash, now))
    }

    async fn find_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshToken>> {
        self.readers
            .read(|c| read::find_refresh_token(c, token_hash))
    }

    async fn view_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenView>> {
        self.readers
            .read(|c| read::view_refresh_token(c, token_hash))
    }

    /// The chain read, the plan and the rotation in one write, on the writer's
    /// connection: its page cache stays warm (a reader's is emptied by every commit
    /// of another connection), and the rotation's update finds the chain's page
    /// already read.
    async fn plan_rotation(
        &self,
        token_hash: &TokenHash,
        client_id: &str,
        now: i64,
        plan: RotationPlan,
    ) -> StoreResult<PlannedRotation> {
        let (hash, client_id) = (*token_hash, client_id.to_owned());
        self.writer
            .write_atomic(move |conn| {
                let Some(view) = read::view_refresh_token(conn, &hash)? else {
                    return Ok(PlannedRotation::Unknown);
                };
                let then = match plan(&view) {
                    Ok(then) => then,
                    Err(refusal) => return Ok(PlannedRotation::Refused(refusal)),
                };
                let rotation = hot::rotate_refresh_token(conn, &hash, &client_id, now, &then)?;
                Ok(PlannedRotation::Done {
                    view,
                    rotation,
                    then,
                })
            })
            .await
    }
}

#[async_trait]
impl AccessTokenStore for SqliteStore {
    async fn insert_access_token(&self, t: &OpaqueAccessToken) -> StoreResult<()> {
        let t = t.clone();
        self.writer
            .write(move |conn| hot::insert_access_token(conn, &t))
            .await
    }

    async fn find_active_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<OpaqueAccessToken>> {
        self.readers
            .read(|c| read::find_active_access_token(c, token_hash, now))
    }

    async fn find_access_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<OpaqueAccessToken>> {
        self.readers
            .read(|c| read::find_access_token(c, token_hash))
    }

    async fn view_access_token(
        &self,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<AccessTokenView>> {
        self.readers
            .read(|c| read::view_access_token(c, token_hash, now))
    }

    async fn revoke_access_token(&self, token_hash: &TokenHash, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
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
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            sqlx::query("INSERT INTO revocations (jti, expires_at, created_at) VALUES (?, ?, ?)")
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
        let row = sqlx::query("SELECT 1 FROM revoked_jtis WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl RevocationFeedStore for SqliteStore {
    async fn revocations_after(&self, cursor: i64, limit: u32) -> StoreResult<Vec<Revocation>> {
        let rows = sqlx::query("SELECT * FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?")
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
impl AuditStore for SqliteStore {
    async fn record_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        let e = e.clone();
        self.writer
            .write(move |conn| hot::record_audit(conn, &e))
            .await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR client_id = ?2)
             ORDER BY id DESC LIMIT ?3",
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
impl AssertionStore for SqliteStore {
    async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM client_assertion_jtis WHERE client_id = ? AND jti = ? AND expires_at <= ?",
        )
        .bind(client_id)
        .bind(jti)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES (?, ?, ?)
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

fn admin_token_from(r: &SqliteRow) -> anyhow::Result<AdminToken> {
    Ok(AdminToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        token_hash: hash_from(r, "token_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn create_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
        sqlx::query("INSERT INTO admin_tokens (id, name, token_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)")
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
            sqlx::query("SELECT * FROM admin_tokens WHERE token_hash = ? AND revoked_at IS NULL")
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
            "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl InitialAccessTokenStore for SqliteStore {
    async fn create_initial_access_token(&self, t: &InitialAccessToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO initial_access_tokens (id, token_hash, scope, uses_left, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
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
             WHERE token_hash = ? AND (uses_left IS NULL OR uses_left > 0) AND (expires_at IS NULL OR expires_at > ?)",
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
             WHERE token_hash = ? AND (uses_left IS NULL OR uses_left > 0) AND (expires_at IS NULL OR expires_at > ?)
             RETURNING *",
        )
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(iat_from).transpose()
    }
}

fn iat_from(r: &SqliteRow) -> anyhow::Result<InitialAccessToken> {
    Ok(InitialAccessToken {
        id: r.try_get("id")?,
        token_hash: hash_from(r, "token_hash")?,
        scope: scope_from(r, "scope")?,
        uses_left: r.try_get("uses_left")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The feed entries of a user's grants still live (not revoked, not lapsed), `?1` being
/// the user's name, `?2` now and `?3` when to forget them: the user's deletion takes
/// the grants, and their access tokens stay until they expire, refused because their
/// grant is in the feed (migration 0010). The callers revoke the user's grants first;
/// this covers one granted meanwhile.
const DELETED_USERS_GRANTS_IN_FEED: &str = "
    INSERT INTO revocations (grant_id, expires_at, created_at)
    SELECT g.id, ?3, ?2 FROM grants g JOIN users u ON u.id = g.user_id
    WHERE u.username = ?1 AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?2)";

/// What [`HousekeepingStore::purge_expired`] deletes first, in order: each table with
/// the condition on its rows, `?1` being `now`, and the column that keys its rows
/// (`refresh_tokens` and `access_tokens` have no rowid). A refresh token chain goes on
/// the day after its current token expired ([`RefreshToken::purge_at`]). Grants go
/// after their tokens ([`PURGE_GRANTS`]).
const PURGE: [(&str, &str, &str); 7] = [
    ("auth_codes", "expires_at <= ?1", "rowid"),
    ("sessions", "expires_at <= ?1", "rowid"),
    ("refresh_tokens", "purge_at <= ?1", "chain"),
    ("access_tokens", "expires_at <= ?1", "token_hash"),
    ("revoked_jtis", "expires_at <= ?1", "rowid"),
    ("client_assertion_jtis", "expires_at <= ?1", "rowid"),
    ("revocations", "expires_at <= ?1", "rowid"),
];

/// The grants that may go: revoked ones, then lapsed ones, each found through its
/// partial index (`grants_revoked`, `grants_expires`). Not every candidate goes: one
/// that still has a code or a refresh token chain waits for them (a lapsed grant's
/// chain stays until the day after its last token expired), and a revoked one for its
/// entry in the revocation feed, which stays until the grant's access tokens have
/// expired (introspection reads it: migration 0010). A lapsed grant's access tokens
/// expired with it (a token never outlives its grant). So each batch examines the next
/// `?4` candidates in the index's order, `(column, rowid)` after the cursor
/// `(?2, ?3)`, and says which have nothing left; a purge reads each candidate once,
/// instead of every batch reading again all those the earlier batches had to keep
/// (quadratic: 215 s for 250k lapsed grants of which 155k kept their chains). The
/// two arms are one index range each (`column = ?2 AND rowid > ?3`, then
/// `column > ?2`): a row value `(column, rowid) > (?2, ?3)` reads all the ties of
/// `?2` again. `?1` bounds the column (`now` for `expires_at`).
const PURGE_GRANTS: [&str; 2] = ["revoked_at", "expires_at"];

fn purge_grants_sql(column: &str) -> String {
    let in_feed = super::purge_waits_for_feed(column);
    format!(
        "SELECT c.id, c.k,
                NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id)
                AND NOT EXISTS (SELECT 1 FROM auth_codes o WHERE o.grant_id = g.id)
                {in_feed}
         FROM (SELECT rowid AS id, {column} AS k FROM grants WHERE {column} = ?2 AND rowid > ?3
               UNION ALL
               SELECT rowid, {column} FROM grants WHERE {column} > ?2 AND {column} <= ?1
               ORDER BY 2, 1 LIMIT ?4) c
         JOIN grants g ON g.rowid = c.id"
    )
}

/// The audit events that go, `?1` being the retention's cutoff and `?2` the batch:
/// of the `?2` oldest (by rowid), those before the first one recorded at or after the
/// cutoff. Each batch reads only its own rows, whatever the trail's size.
const PURGE_AUDIT: &str = "
    WITH head AS (SELECT rowid AS id, at FROM audit_events ORDER BY rowid LIMIT ?2)
    DELETE FROM audit_events WHERE rowid IN (
        SELECT id FROM head
        WHERE id < IFNULL((SELECT min(id) FROM head WHERE at >= ?1), 9223372036854775807))";

/// One batch of a purge, run through the writer with the size it is given: the rows it
/// examined (fewer than the size: the purge of this table is done) and deleted.
struct BatchDone {
    examined: usize,
    deleted: usize,
}

impl SqliteStore {
    /// Run `step` through the writer, batch after batch at the pace of [`PurgePace`],
    /// until one examines fewer rows than it was given; the rows deleted in all.
    /// `step` gets the batch size and what the batch before returned (the cursor of
    /// the grants' purge), `C::default()` first.
    async fn purge_paced<C, S>(&self, table: &str, batch: u32, step: S) -> StoreResult<u64>
    where
        C: Default + Send + 'static,
        S: Fn(&rusqlite::Connection, u32, C) -> rusqlite::Result<(BatchDone, C)>
            + Clone
            + Send
            + 'static,
    {
        let mut pace = PurgePace::single_writer(batch);
        // PRAGMA data_version changes when another connection commits: the server,
        // when this is `tessera gc` in a process of its own.
        let mut last_version: Option<i64> = None;
        let mut cursor = C::default();
        let mut deleted = 0u64;
        loop {
            let started = std::time::Instant::now();
            let limit = pace.size();
            // Through the writer, as one job between its groups: token writes wait for
            // one batch at most, instead of for SQLite's busy handler, which sleeps up
            // to 100 ms between retries while another connection holds the write lock.
            let step = step.clone();
            let (done, next, began, version) = self
                .writer
                .write_atomic(move |conn| {
                    // The write lock is held from here (the group's BEGIN IMMEDIATE came
                    // first, after any other writes of the group) to the commit.
                    let began = std::time::Instant::now();
                    let version: i64 = conn
                        .prepare_cached("PRAGMA data_version")?
                        .query_row([], |row| row.get(0))?;
                    let (done, next) = step(conn, limit, cursor)?;
                    Ok((done, next, began, version))
                })
                .await
                .with_context(|| format!("purging {table}"))?;
            deleted += done.deleted as u64;
            if done.examined < limit as usize {
                return Ok(deleted);
            }
            cursor = next;
            pace.after_batch(BatchTiming {
                waited: began.saturating_duration_since(started),
                others_wrote: last_version.is_some_and(|v| v != version),
                held: began.elapsed(),
            })
            .await;
            last_version = Some(version);
        }
    }
}

/// Where the grants' purge goes on: the `(column, rowid)` of the last candidate
/// examined.
#[derive(Clone, Copy)]
struct GrantCursor(i64, i64);

impl Default for GrantCursor {
    fn default() -> Self {
        Self(i64::MIN, i64::MIN)
    }
}

#[async_trait]
impl HousekeepingStore for SqliteStore {
    async fn purge_expired(
        &self,
        now: i64,
        audit_before: Option<i64>,
        batch: u32,
    ) -> StoreResult<PurgeReport> {
        let batch = batch.max(1);
        let mut counts = [0u64; PURGE.len() + 2];
        for (&(table, condition, key), count) in PURGE.iter().zip(counts.iter_mut()) {
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN
                 (SELECT {key} FROM {table} WHERE {condition} LIMIT ?2)"
            );
            *count = self
                .purge_paced(table, batch, move |conn, limit, (): ()| {
                    let deleted = conn
                        .prepare_cached(&sql)?
                        .execute(rusqlite::params![now, i64::from(limit)])?;
                    let done = BatchDone {
                        examined: deleted,
                        deleted,
                    };
                    Ok((done, ()))
                })
                .await?;
        }
        for column in PURGE_GRANTS {
            let sql = purge_grants_sql(column);
            // Revoked grants go whenever revoked; lapsed ones once `expires_at <= now`.
            let bound = if column == "expires_at" {
                now
            } else {
                i64::MAX
            };
            counts[PURGE.len()] += self
                .purge_paced("grants", batch, move |conn, limit, cursor: GrantCursor| {
                    let mut select = conn.prepare_cached(&sql)?;
                    let candidates = select
                        .query_map(
                            rusqlite::params![bound, cursor.0, cursor.1, i64::from(limit)],
                            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get(2)?)),
                        )?
                        .collect::<rusqlite::Result<Vec<(i64, i64, bool)>>>()?;
                    let mut delete = conn.prepare_cached("DELETE FROM grants WHERE rowid = ?1")?;
                    let mut deleted = 0;
                    for &(id, _, free) in &candidates {
                        if free {
                            deleted += delete.execute([id])?;
                        }
                    }
                    let next = candidates
                        .last()
                        .map_or(cursor, |&(id, k, _)| GrantCursor(k, id));
                    let done = BatchDone {
                        examined: candidates.len(),
                        deleted,
                    };
                    Ok((done, next))
                })
                .await?;
        }
        if let Some(before) = audit_before {
            counts[PURGE.len() + 1] = self
                .purge_paced("audit_events", batch, move |conn, limit, (): ()| {
                    let deleted = conn
                        .prepare_cached(PURGE_AUDIT)?
                        .execute(rusqlite::params![before, i64::from(limit)])?;
                    let done = BatchDone {
                        examined: deleted,
                        deleted,
                    };
                    Ok((done, ()))
                })
                .await?;
        }
        Ok(PurgeReport::from_counts(counts))
    }
}

#[cfg(test)]
mod tests;
