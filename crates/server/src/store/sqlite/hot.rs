//! The writes of the token hot path (and the audit events and grant use times they
//! record), run by the [`super::writer`] thread on its own connection, so that it can
//! run many of them in one transaction. Each changes the database with one statement
//! at most, except [`issue_tokens`] and [`rotate_refresh_token`] with something to
//! issue, which the writer runs in a savepoint
//! ([`super::writer::Writer::write_atomic`]). Statements come from the connection's
//! cache of prepared statements.

use rusqlite::{params, Connection, OptionalExtension, Row};
use tessera_protocol::Scope;

use crate::crypto::CHAIN_LEN;
use crate::store::{
    AuditEvent, AuthCode, CodeConsumption, Grant, Issuance, OpaqueAccessToken, RefreshToken,
    Rotation, StoreResult, TokenHash,
};

// The row mappings read columns by position, from statements that name their
// columns in the order of the `*_COLUMNS` lists below (a lookup by name scans the
// statement's column names for every value read, a few percent of a token lookup).

/// The columns of `auth_codes` that [`code_at`] reads, in its order.
macro_rules! code_columns {
    () => {
        "code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given, scope, \
         code_challenge, auth_time, expires_at"
    };
}
/// The columns of `refresh_tokens` that [`refresh_at`] reads, in its order, for a
/// statement whose `?2` is the key of the token presented: the last is its `used_at`
/// ([`RefreshToken::used_at`]).
macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, \
         CASE WHEN token_hash = ?2 THEN NULL WHEN prev_hash = ?2 THEN rotated_at ELSE 0 END"
    };
}
/// The columns of `access_tokens` that [`access_at`] reads, in its order.
macro_rules! access_columns {
    () => {
        "token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at, \
         revoked_at"
    };
}
/// The columns of `grants` that [`grant_at`] reads, in its order, for a statement on
/// `grants` by that name. The last use is the later of the grant's `last_used_at` and
/// the issue times of its refresh token chains' current tokens: a rotation writes the
/// chain's row, and the grant's only once per `audit.refresh_interval`.
macro_rules! grant_columns {
    () => {
        "id, client_id, user_id, scope, created_at, expires_at, \
         NULLIF(max(IFNULL(last_used_at, 0), \
                    IFNULL((SELECT max(r.issued_at) FROM refresh_tokens r WHERE r.grant_id = grants.id), 0)), \
                0) AS last_used_at, \
         revoked_at"
    };
}
pub(super) use {access_columns, grant_columns, refresh_columns};
/// How many columns [`access_columns`] lists.
pub(super) const ACCESS_COLUMNS: usize = 10;
/// How many columns [`refresh_columns`] lists.
pub(super) const REFRESH_COLUMNS: usize = 8;

/// A stored value that does not read back as its type.
fn bad(idx: usize, kind: rusqlite::types::Type, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, kind, why.into())
}

fn hash_at(row: &Row, idx: usize) -> rusqlite::Result<TokenHash> {
    let bytes: Vec<u8> = row.get(idx)?;
    bytes.try_into().map_err(|_| {
        bad(
            idx,
            rusqlite::types::Type::Blob,
            format!("column {idx} does not hold a 32-byte hash"),
        )
    })
}

pub(super) fn scope_at(row: &Row, idx: usize) -> rusqlite::Result<Scope> {
    let text: String = row.get(idx)?;
    Scope::parse(&text).map_err(|e| {
        bad(
            idx,
            rusqlite::types::Type::Text,
            format!("stored scope {text:?}: {e}"),
        )
    })
}

/// A row of [`code_columns`].
pub(super) fn code_at(row: &Row) -> rusqlite::Result<AuthCode> {
    Ok(AuthCode {
        code_hash: hash_at(row, 0)?,
        grant_id: row.get(1)?,
        client_id: row.get(2)?,
        user_id: row.get(3)?,
        redirect_uri: row.get(4)?,
        redirect_uri_given: row.get(5)?,
        scope: scope_at(row, 6)?,
        code_challenge: row.get(7)?,
        auth_time: row.get(8)?,
        expires_at: row.get(9)?,
    })
}

/// A row of [`refresh_columns`].
pub(super) fn refresh_at(row: &Row) -> rusqlite::Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: hash_at(row, 0)?,
        grant_id: row.get(1)?,
        client_id: row.get(2)?,
        user_id: row.get(3)?,
        scope: scope_at(row, 4)?,
        issued_at: row.get(5)?,
        expires_at: row.get(6)?,
        used_at: row.get(7)?,
    })
}

/// A row of [`access_columns`].
pub(super) fn access_at(row: &Row) -> rusqlite::Result<OpaqueAccessToken> {
    Ok(OpaqueAccessToken {
        token_hash: hash_at(row, 0)?,
        jti: row.get(1)?,
        grant_id: row.get(2)?,
        client_id: row.get(3)?,
        user_id: row.get(4)?,
        scope: scope_at(row, 5)?,
        audience: row.get(6)?,
        issued_at: row.get(7)?,
        expires_at: row.get(8)?,
        revoked_at: row.get(9)?,
    })
}

/// A row of [`grant_columns`].
pub(super) fn grant_at(row: &Row) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: row.get(0)?,
        client_id: row.get(1)?,
        user_id: row.get(2)?,
        scope: scope_at(row, 3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        last_used_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

pub(super) fn insert_grant(conn: &Connection, g: &Grant) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        g.id,
        g.client_id,
        g.user_id,
        g.scope.to_string(),
        g.created_at,
        g.expires_at,
        g.last_used_at,
    ])?;
    Ok(())
}

pub(super) fn insert_code(conn: &Connection, c: &AuthCode) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given,
                                 scope, code_challenge, auth_time, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &c.code_hash[..],
        c.grant_id,
        c.client_id,
        c.user_id,
        c.redirect_uri,
        c.redirect_uri_given,
        c.scope.to_string(),
        c.code_challenge,
        c.auth_time,
        c.expires_at,
    ])?;
    Ok(())
}

/// Start a chain with its first token, and the copies of its grant's lapse and
/// revocation times that rotations read instead of the grant (migration 0008) and of
/// its user's name that they give the access tokens they mint (migration 0009). They
/// are read here, in the writer's transaction: a grant revoked before this insert is
/// seen revoked by it, and one revoked after it marks this chain too
/// ([`super::SqliteStore::revoke_grant`]).
pub(super) fn insert_refresh_token(conn: &Connection, t: &RefreshToken) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, purge_at,
                                     grant_ends_at, grant_revoked_at, username)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, g.expires_at, g.revoked_at,
                (SELECT u.username FROM users u WHERE u.id = ?5)
         FROM (SELECT 1) LEFT JOIN grants g ON g.id = ?3",
    )?
    .execute(params![
        &t.token_hash[..CHAIN_LEN],
        &t.token_hash[..],
        t.grant_id,
        t.client_id,
        t.user_id,
        t.scope.to_string(),
        t.issued_at,
        t.expires_at,
        t.purge_at(),
    ])?;
    Ok(())
}

/// Rotate in place: the successor in `then` (if of the same chain) becomes the chain's
/// current token in the chain's row; the rest of `then` is written as
/// [`issue_tokens`] writes it. A rotation writes the chain's row alone (its indexed
/// columns, `grant_id` and `purge_at`, are unchanged but once a day), where inserting a
/// row per token wrote two more random index leaves and kept every used token.
pub(super) fn rotate_refresh_token(
    conn: &Connection,
    token_hash: &TokenHash,
    client_id: &str,
    now: i64,
    then: &Issuance,
) -> StoreResult<Rotation> {
    let chain = &token_hash[..CHAIN_LEN];
    let successor = then
        .refresh_token
        .as_ref()
        .filter(|r| r.token_hash[..CHAIN_LEN] == *chain);
    // No successor of this chain: the chain is left with no current token.
    let mut spent = [0u8; 32];
    spent[..CHAIN_LEN].copy_from_slice(chain);
    let rotated = conn
        .prepare_cached(concat!(
            "UPDATE refresh_tokens
             SET token_hash = ?3, prev_hash = token_hash, rotated_at = ?5,
                 scope = COALESCE(?6, scope), issued_at = COALESCE(?7, issued_at),
                 expires_at = COALESCE(?8, expires_at),
                 username = COALESCE(username, (SELECT u.username FROM users u WHERE u.id = refresh_tokens.user_id))
             WHERE chain = ?1 AND token_hash = ?2 AND client_id = ?4 AND expires_at > ?5
               AND grant_revoked_at IS NULL AND (grant_ends_at IS NULL OR grant_ends_at > ?5)
             RETURNING ",
            refresh_columns!(),
            ", purge_at, grant_ends_at, username"
        ))?
        .query_row(
            params![
                chain,
                &token_hash[..],
                successor.map_or(&spent[..], |r| &r.token_hash[..]),
                client_id,
                now,
                successor.map(|r| r.scope.to_string()),
                successor.map(|r| r.issued_at),
                successor.map(|r| r.expires_at),
            ],
            |row| {
                Ok((
                    refresh_at(row)?,
                    row.get::<_, i64>(REFRESH_COLUMNS)?,
                    row.get::<_, Option<i64>>(REFRESH_COLUMNS + 1)?,
                    row.get::<_, Option<String>>(REFRESH_COLUMNS + 2)?,
                ))
            },
        )
        .optional()?;
    if let Some((rotated, purge_at, grant_ends_at, username)) = rotated {
        // The day housekeeping may delete the row moves on once a day at most.
        if let Some(r) = successor.filter(|r| r.purge_at() > purge_at) {
            conn.prepare_cached("UPDATE refresh_tokens SET purge_at = ? WHERE chain = ?")?
                .execute(params![r.purge_at(), chain])?;
        }
        // The grant is active (the update above found it so, in this transaction):
        // the access token's copies of its state and of its user's name need no read
        // of the grant or the user.
        let active = ActiveGrant {
            id: &rotated.grant_id,
            ends_at: grant_ends_at,
            username: username.as_deref(),
        };
        issue_tokens_but(conn, then, successor.is_some(), Some(active))?;
        return Ok(Rotation::Rotated(rotated));
    }
    let found = conn
        .prepare_cached(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens WHERE chain = ?1 AND client_id = ?3"
        ))?
        .query_row(params![chain, &token_hash[..], client_id], refresh_at)
        .optional()?;
    Ok(match found {
        Some(record) if record.used_at.is_some() => Rotation::AlreadyUsed(record),
        _ => Rotation::Invalid,
    })
}

/// Insert an opaque access token with the copies of its user's name and its grant's
/// lapse and revocation times that [`super::read::view_access_token`] reads instead of
/// the user and the grant (migration 0006). The copies are read here, in the writer's
/// transaction: SQLite runs one write transaction at a time, so a grant revoked before
/// this insert is seen revoked by it, and one revoked after it marks this token too
/// ([`super::SqliteStore::revoke_grant`]). A token of a grant that does not exist is
/// refused (an error), as the foreign key did before migration 0009.
pub(super) fn insert_access_token(conn: &Connection, t: &OpaqueAccessToken) -> StoreResult<()> {
    insert_access_token_of(conn, t, None)
}

/// A grant found active in the writer's current transaction, with when it lapses and
/// its user's name.
struct ActiveGrant<'a> {
    id: &'a str,
    ends_at: Option<i64>,
    username: Option<&'a str>,
}

/// [`insert_access_token`]; when the token is of `active`, with that grant's state
/// and user's name as its copies instead of reads of the grant and the user. `active`
/// must have been found active in the same transaction: a revocation is a write, so
/// none can come in between.
fn insert_access_token_of(
    conn: &Connection,
    t: &OpaqueAccessToken,
    active: Option<ActiveGrant>,
) -> StoreResult<()> {
    /// An access token's columns; the values of the first nine are `?1` to `?9`.
    macro_rules! insert {
        () => {
            "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at,
                                        username, grant_ends_at, grant_revoked_at) "
        };
    }
    let known = active.filter(|g| t.grant_id.as_deref() == Some(g.id));
    let sql = match (&known, &t.grant_id) {
        // Of a grant known active: its state and user's name are `?10` and `?11`.
        (Some(_), _) => concat!(
            insert!(),
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?10, NULL)"
        ),
        // Of a grant: its state and user's name read, and nothing inserted without it.
        (None, Some(_)) => concat!(
            insert!(),
            "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, (SELECT u.username FROM users u WHERE u.id = ?5),
                    g.expires_at, g.revoked_at
             FROM grants g WHERE g.id = ?3"
        ),
        // Of no grant (a client acting for itself): no user, nothing to read.
        (None, None) => concat!(
            insert!(),
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, NULL)"
        ),
    };
    let (hash, scope) = (&t.token_hash[..], t.scope.to_string());
    let ends_at = known.as_ref().and_then(|g| g.ends_at);
    let username = known.as_ref().and_then(|g| g.username);
    let values: [&dyn rusqlite::ToSql; 11] = [
        &hash,
        &t.jti,
        &t.grant_id,
        &t.client_id,
        &t.user_id,
        &scope,
        &t.audience,
        &t.issued_at,
        &t.expires_at,
        &ends_at,
        &username,
    ];
    let inserted = conn
        .prepare_cached(sql)?
        .execute(&values[..if known.is_some() { 11 } else { 9 }])?;
    if inserted == 0 {
        anyhow::bail!(
            "access token of grant {:?}, which does not exist",
            t.grant_id
        );
    }
    Ok(())
}

pub(super) fn consume_code(
    conn: &Connection,
    code_hash: &TokenHash,
    client_id: &str,
    now: i64,
) -> StoreResult<CodeConsumption> {
    let consumed = conn
        .prepare_cached(concat!(
            "UPDATE auth_codes SET consumed_at = ?
             WHERE code_hash = ? AND client_id = ? AND consumed_at IS NULL
             RETURNING ",
            code_columns!()
        ))?
        .query_row(params![now, &code_hash[..], client_id], code_at)
        .optional()?;
    if let Some(code) = consumed {
        return Ok(CodeConsumption::Consumed(code));
    }
    let used: Option<String> = conn
        .prepare_cached("SELECT grant_id FROM auth_codes WHERE code_hash = ? AND client_id = ?")?
        .query_row(params![&code_hash[..], client_id], |row| row.get(0))
        .optional()?;
    Ok(match used {
        Some(grant_id) => CodeConsumption::AlreadyUsed { grant_id },
        None => CodeConsumption::Unknown,
    })
}

pub(super) fn touch_grant(conn: &Connection, id: &str, now: i64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE grants SET last_used_at = ? WHERE id = ?")?
        .execute(params![now, id])?;
    Ok(())
}

/// Every part of `issuance`; the caller runs it in a savepoint.
pub(super) fn issue_tokens(conn: &Connection, i: &Issuance) -> StoreResult<()> {
    issue_tokens_but(conn, i, false, None)
}

/// Every part of `issuance`, its refresh token unless `rotated_in_place`; an access
/// token of `active` with that grant's state ([`insert_access_token_of`]).
fn issue_tokens_but(
    conn: &Connection,
    i: &Issuance,
    rotated_in_place: bool,
    active: Option<ActiveGrant>,
) -> StoreResult<()> {
    if let Some(t) = &i.access_token {
        insert_access_token_of(conn, t, active)?;
    }
    if let Some(t) = i.refresh_token.as_ref().filter(|_| !rotated_in_place) {
        insert_refresh_token(conn, t)?;
    }
    if let Some((grant_id, at)) = &i.grant_used {
        touch_grant(conn, grant_id, *at)?;
    }
    if let Some(e) = &i.audit {
        record_audit(conn, e)?;
    }
    Ok(())
}

/// An audit event; a missing username is looked up from the user id.
pub(super) fn record_audit(conn: &Connection, e: &AuditEvent) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
         VALUES (?, ?, ?, ?, COALESCE(?, (SELECT username FROM users WHERE id = ?)), ?, ?, ?)",
    )?
    .execute(params![
        e.at,
        e.kind,
        e.actor.as_str(),
        e.user_id,
        e.username,
        e.user_id,
        e.client_id,
        e.grant_id,
        e.detail,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts the views read their extra columns after match the lists.
    #[test]
    fn column_counts_match_the_lists() {
        assert_eq!(access_columns!().split(',').count(), ACCESS_COLUMNS);
        assert_eq!(refresh_columns!().split(',').count(), REFRESH_COLUMNS);
    }
}
