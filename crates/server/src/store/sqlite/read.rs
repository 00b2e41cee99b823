//! The point reads of the request path (tokens, grants, sessions, consents and users
//! by key), on connections of their own, run on the calling thread.
//!
//! Each is one lookup of an indexed key in a WAL database: a few microseconds when
//! the pages are cached, less than the hand-over to a database thread and back would
//! cost (through sqlx every query was such a round trip, about half of the server's
//! CPU time on the token endpoint). A WAL reader never waits for a writer, so a read
//! blocks its thread only for the lookup itself (or a page read from disk on a cold
//! cache). Every connection is `query_only`: nothing here can write.
//!
//! The connections read through a memory mapping of the database file
//! ([`super::SqliteSettings::read_mmap_size`]). A connection's own page cache is
//! emptied whenever it sees that another connection committed, so under writes, and
//! on a store larger than that cache, most pages a lookup needs are not in it; through
//! the mapping such a page is a page fault on the kernel's page cache, which every
//! connection shares, instead of a `pread` copying it into the connection's cache. At
//! a million grants, introspecting random tokens: 60,219 a second against 53,905 with
//! `pread` (`bench/ab.sh`, 3 rounds alternating, medians; `bench/RESULTS-store.md`).
//! SQLite as this workspace builds it maps up to 1 TiB (`.cargo/config.toml`); with
//! SQLite's own limit, 2 GiB, introspection at ten million grants missed most of its
//! pages beyond the mapping: 39,778 and 42,672 a second, against 47,035 and 49,862
//! with the whole file mapped.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use super::hot::{
    access_at, access_columns, grant_at, grant_columns, refresh_at, refresh_columns, scope_at,
    ACCESS_COLUMNS, REFRESH_COLUMNS,
};
use crate::crypto::CHAIN_LEN;
use crate::store::{
    AccessTokenView, Consent, Grant, OpaqueAccessToken, RefreshToken, RefreshTokenView, Session,
    StoreResult, TokenHash, User,
};

/// Idle connections kept for reuse; more are opened when more reads run at once.
const MAX_IDLE: usize = 16;

/// A pool of read-only connections to one database file.
pub(super) struct Readers {
    path: PathBuf,
    /// Each connection's `mmap_size`.
    mmap_size: u64,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path`, each mapping up to `mmap_size` bytes of it;
    /// one connection is opened now, so that a database that cannot be read is
    /// reported at start.
    pub(super) fn open(path: &Path, mmap_size: u64) -> anyhow::Result<Self> {
        let first = connect(path, mmap_size)?;
        Ok(Self {
            path: path.to_owned(),
            mmap_size,
            idle: Mutex::new(vec![first]),
        })
    }

    /// Run `f` on an idle connection (a new one if none is idle).
    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, self.mmap_size)?,
        };
        let outcome = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        outcome
    }
}

fn connect(path: &Path, mmap_size: u64) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(&format!(
        "PRAGMA query_only = ON; PRAGMA mmap_size = {mmap_size};"
    ))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

pub(super) fn find_refresh_token(
    conn: &Connection,
    token_hash: &TokenHash,
) -> StoreResult<Option<RefreshToken>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens WHERE chain = ?1"
        ))?
        .query_row(
            params![&token_hash[..CHAIN_LEN], &token_hash[..]],
            refresh_at,
        )
        .optional()?)
}

pub(super) fn view_refresh_token(
    conn: &Connection,
    token_hash: &TokenHash,
) -> StoreResult<Option<RefreshTokenView>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            refresh_columns!(),
            ", grant_ends_at FROM refresh_tokens WHERE chain = ?1"
        ))?
        .query_row(params![&token_hash[..CHAIN_LEN], &token_hash[..]], |row| {
            Ok(RefreshTokenView {
                token: refresh_at(row)?,
                grant_expires_at: row.get(REFRESH_COLUMNS)?,
            })
        })
        .optional()?)
}

pub(super) fn find_active_refresh_token(
    conn: &Connection,
    token_hash: &TokenHash,
    now: i64,
) -> StoreResult<Option<RefreshToken>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens
         WHERE chain = ?1 AND token_hash = ?2 AND expires_at > ?3
           AND grant_revoked_at IS NULL AND (grant_ends_at IS NULL OR grant_ends_at > ?3)"
        ))?
        .query_row(
            params![&token_hash[..CHAIN_LEN], &token_hash[..], now],
            refresh_at,
        )
        .optional()?)
}

pub(super) fn find_access_token(
    conn: &Connection,
    token_hash: &TokenHash,
) -> StoreResult<Option<OpaqueAccessToken>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            access_columns!(),
            " FROM access_tokens WHERE token_hash = ?"
        ))?
        .query_row(params![&token_hash[..]], access_at)
        .optional()?)
}

/// The token's row: whether its grant is active and its user's name come from the
/// copies the row carries (migration 0006; made by
/// [`super::hot::insert_access_token`]), not from the grant's and the user's rows, and
/// from the revocation feed, where a grant revoked or deleted since is found (migration
/// 0010: its index `revocations_grant` is small, the grants revoked lately).
pub(super) fn view_access_token(
    conn: &Connection,
    token_hash: &TokenHash,
    now: i64,
) -> StoreResult<Option<AccessTokenView>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            access_columns!(),
            ", grant_id IS NULL
               OR (grant_revoked_at IS NULL AND (grant_ends_at IS NULL OR grant_ends_at > ?1)
                   AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.grant_id = access_tokens.grant_id)),
               username
             FROM access_tokens WHERE token_hash = ?2"
        ))?
        .query_row(params![now, &token_hash[..]], |row| {
            Ok(AccessTokenView {
                token: access_at(row)?,
                grant_active: row.get(ACCESS_COLUMNS)?,
                username: row.get(ACCESS_COLUMNS + 1)?,
            })
        })
        .optional()?)
}

pub(super) fn find_active_access_token(
    conn: &Connection,
    token_hash: &TokenHash,
    now: i64,
) -> StoreResult<Option<OpaqueAccessToken>> {
    Ok(conn.prepare_cached(concat!(
        "SELECT ",
        access_columns!(),
        " FROM access_tokens
         WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?
           AND (grant_id IS NULL OR EXISTS (SELECT 1 FROM grants g WHERE g.id = access_tokens.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?)))"
    ))?
    .query_row(params![&token_hash[..], now, now], access_at)
    .optional()?)
}

pub(super) fn get_grant(conn: &Connection, id: &str) -> StoreResult<Option<Grant>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE id = ?"
        ))?
        .query_row(params![id], grant_at)
        .optional()?)
}

pub(super) fn grant_active(conn: &Connection, id: &str, now: i64) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM grants WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )?
        .exists(params![id, now])?)
}

pub(super) fn get_session(
    conn: &Connection,
    token_hash: &TokenHash,
    now: i64,
) -> StoreResult<Option<Session>> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id, auth_time, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?",
        )?
        .query_row(params![&token_hash[..], now], |row| {
            Ok(Session {
                user_id: row.get(0)?,
                auth_time: row.get(1)?,
                expires_at: row.get(2)?,
            })
        })
        .optional()?)
}

pub(super) fn get_consent(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> StoreResult<Option<Consent>> {
    Ok(conn
        .prepare_cached(
            "SELECT scope, expires_at FROM consents
             WHERE user_id = ? AND client_id = ? AND (expires_at IS NULL OR expires_at > ?)",
        )?
        .query_row(params![user_id, client_id, now], |row| {
            Ok(Consent {
                scope: scope_at(row, 0)?,
                expires_at: row.get(1)?,
            })
        })
        .optional()?)
}

pub(super) fn get_user(conn: &Connection, id: &str) -> StoreResult<Option<User>> {
    Ok(conn
        .prepare_cached("SELECT id, username, password_hash, created_at FROM users WHERE id = ?")?
        .query_row(params![id], |row| {
            Ok(User {
                id: row.get(0)?,
                username: row.get(1)?,
                password_hash: row.get(2)?,
                created_at: row.get(3)?,
            })
        })
        .optional()?)
}
