//! The writes of the token hot path on one connection, so that a token request's rows
//! (its access and refresh tokens, the grant's use time, the audit event) can be
//! written in one transaction: one commit, one WAL flush, per request.

use std::sync::LazyLock;

use sqlx::{PgConnection, Row};

use super::refresh_from;
use crate::crypto::CHAIN_LEN;
use crate::store::{
    AuditEvent, Issuance, OpaqueAccessToken, RefreshToken, Rotation, StoreResult, TokenHash,
};

/// The columns of `refresh_tokens` that [`refresh_from`] reads, for a statement whose
/// `$2` is the key of the token presented: `used_at` is its
/// [`RefreshToken::used_at`].
pub(super) const REFRESH_COLUMNS: &str = "token_hash, grant_id, client_id, user_id, scope, \
     issued_at, expires_at, \
     CASE WHEN token_hash = $2 THEN NULL WHEN prev_hash = $2 THEN rotated_at ELSE 0 END AS used_at";

/// Start a chain with its first token, and the copies of its grant's lapse and
/// revocation times that rotations read instead of the grant (migration 0007), read
/// with `FOR SHARE` for the reason [`grant_state_locked`] gives; a revocation marks
/// the grant's chains again after its update of the grant, so that a chain inserted
/// while it waited for this lock is marked too ([`super::PostgresStore::revoke_grant`]).
/// Also the copy of its user's name that rotations give the access tokens they mint
/// (migration 0008).
pub(super) async fn insert_refresh_token(
    conn: &mut PgConnection,
    t: &RefreshToken,
) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, purge_at,
                                         grant_ends_at, grant_revoked_at, username)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, gs.expires_at, gs.revoked_at,
                    (SELECT u.username FROM users u WHERE u.id = $5)
             FROM (SELECT 1) one {}",
            grant_state_locked(3)
        )
    });
    sqlx::query(SQL.as_str())
        .bind(t.token_hash[..CHAIN_LEN].to_vec())
        .bind(t.token_hash.to_vec())
        .bind(&t.grant_id)
        .bind(&t.client_id)
        .bind(&t.user_id)
        .bind(t.scope.to_string())
        .bind(t.issued_at)
        .bind(t.expires_at)
        .bind(t.purge_at())
        .execute(conn)
        .await?;
    Ok(())
}

/// The successor in `then` if it continues the chain of the token `token_hash`.
fn successor<'a>(token_hash: &TokenHash, then: &'a Issuance) -> Option<&'a RefreshToken> {
    then.refresh_token
        .as_ref()
        .filter(|r| r.token_hash[..CHAIN_LEN] == token_hash[..CHAIN_LEN])
}

/// The chain's row after a rotation whose successor is `next`: its current token, or
/// the chain id and 16 zero bytes (no token's key) when there is none.
fn next_key(token_hash: &TokenHash, next: Option<&RefreshToken>) -> Vec<u8> {
    match next {
        Some(r) => r.token_hash.to_vec(),
        None => {
            let mut spent = token_hash[..CHAIN_LEN].to_vec();
            spent.resize(32, 0);
            spent
        }
    }
}

/// The update of a rotation in place, `$1` to `$9`: `now`, the key presented, the
/// client, the chain, the new current key, and the successor's scope, issue and expiry
/// times and purge day (NULL without one). `purge_at` only grows, so that it changes
/// once a day and the update stays a HOT update (no index changed) otherwise. The
/// grant's state is the chain's copy (migration 0007): the grant's row is not read. A
/// revocation marks the chain's row under its lock, so a rotation waiting for that lock
/// sees the mark when it gets it (PostgreSQL re-checks the condition on the row's new
/// version), and one holding it first makes the revocation wait until its commit. A
/// chain stored before migration 0008 gets its user's name here, once.
const ROTATE: &str = "UPDATE refresh_tokens
     SET token_hash = $5, prev_hash = token_hash, rotated_at = $1,
         scope = COALESCE($6, scope), issued_at = COALESCE($7, issued_at),
         expires_at = COALESCE($8, expires_at), purge_at = GREATEST(purge_at, COALESCE($9, purge_at)),
         username = COALESCE(username, (SELECT u.username FROM users u WHERE u.id = refresh_tokens.user_id))
     WHERE chain = $4 AND token_hash = $2 AND client_id = $3 AND expires_at > $1
       AND grant_revoked_at IS NULL AND (grant_ends_at IS NULL OR grant_ends_at > $1)";

/// What a rotation returns: [`REFRESH_COLUMNS`], then the chain's copies of when its
/// grant lapses and of its user's name, for the access token the rotation issues (the
/// grant is not revoked: [`ROTATE`] rotates only then).
const ROTATED_COLUMNS: &str = "grant_ends_at, username";

/// The columns of an access token's insert: the nine that [`bind_access`] binds, in its
/// order, then the three copies of [`access_values`].
const ACCESS_INSERT: &str =
    "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, \
     scope, audience, issued_at, expires_at, username, grant_ends_at, grant_revoked_at)";

/// The values of an access token's insert whose parameters start at `$first`, and the
/// copies that [`super::PostgresStore::view_access_token`] reads instead of the user
/// and the grant (migration 0006): the user's name, and the grant's lapse and
/// revocation times, all three from `gs`, the one row that `from` (the statement's
/// `FROM` clause) gives: without it, nothing is inserted.
fn access_values(first: usize, from: &str) -> String {
    let [hash, jti, grant, client, user, scope, audience, issued, expires] =
        std::array::from_fn::<_, 9, _>(|i| first + i);
    format!(
        "SELECT ${hash}, ${jti}, ${grant}, ${client}, ${user}, ${scope}, ${audience}, ${issued}, ${expires},
                gs.username, gs.expires_at, gs.revoked_at
         {from}"
    )
}

/// The grant's state for an access token's copies, read with `FOR SHARE`: a
/// revocation in progress holds a conflicting lock on the grant's row from its
/// `UPDATE grants` to its commit, so the read waits for it and then reads the revoked
/// row; a revocation that comes after this read waits for this transaction, and then
/// marks this token with the rest of the grant's ([`super::PostgresStore::revoke_grant`]:
/// its `UPDATE access_tokens` is a later statement, which sees this token committed).
/// Without the lock, a token inserted from a snapshot taken before the revocation's
/// commit, and committed after its `UPDATE access_tokens`, would keep a grant that is
/// active for ever in its copy.
fn grant_state_locked(grant: usize) -> String {
    format!(
        "LEFT JOIN (SELECT expires_at, revoked_at FROM grants WHERE id = ${grant} FOR SHARE) gs ON TRUE"
    )
}

/// The `gs` of [`access_values`] for a token of a grant that is read: the grant's
/// state, read with `FOR SHARE` as [`grant_state_locked`] reads it, and its user's
/// name; no row when the grant does not exist. `$grant` and `$user` are the token's.
fn grant_and_user_locked(grant: usize, user: usize) -> String {
    format!(
        "(SELECT g.expires_at, g.revoked_at, (SELECT u.username FROM users u WHERE u.id = ${user}) AS username
          FROM grants g WHERE g.id = ${grant} FOR SHARE OF g) gs"
    )
}

/// Insert an opaque access token with its copies of the user's name and the grant's
/// state.
pub(super) async fn insert_access_token(
    conn: &mut PgConnection,
    t: &OpaqueAccessToken,
) -> StoreResult<()> {
    insert_access_token_of(conn, t, None).await
}

/// A grant whose refresh token chain this transaction rotated, with the chain's copy
/// of when the grant lapses. The rotation found the grant active and holds the
/// chain's row until the commit: a revocation marks the chain before anything else
/// and so waits for this transaction, then marks its access tokens, this one
/// included, in a later statement.
#[derive(Clone, Copy)]
struct RotatedGrant<'a> {
    id: &'a str,
    ends_at: Option<i64>,
    username: Option<&'a str>,
}

/// [`insert_access_token`]; when the token is of `rotated`'s grant, with that grant's
/// state and user's name as its copies instead of reads of the grant and the user. A
/// token of a grant that does not exist is refused (an error), as the foreign key did
/// before migration 0008.
async fn insert_access_token_of(
    conn: &mut PgConnection,
    t: &OpaqueAccessToken,
    rotated: Option<RotatedGrant<'_>>,
) -> StoreResult<()> {
    static SQL_OF_GRANT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{ACCESS_INSERT} {}",
            access_values(1, &format!("FROM {}", grant_and_user_locked(3, 5)))
        )
    });
    static SQL_OF_CLIENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{ACCESS_INSERT} {}",
            access_values(
                1,
                "FROM (SELECT NULL::BIGINT AS expires_at, NULL::BIGINT AS revoked_at, NULL::TEXT AS username) gs"
            )
        )
    });
    static SQL_ROTATED: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{ACCESS_INSERT} {}",
            access_values(
                1,
                "FROM (SELECT $10::BIGINT AS expires_at, NULL::BIGINT AS revoked_at, $11::TEXT AS username) gs"
            )
        )
    });
    let done = match rotated.filter(|g| t.grant_id.as_deref() == Some(g.id)) {
        Some(g) => {
            bind_access(sqlx::query(SQL_ROTATED.as_str()), t)
                .bind(g.ends_at)
                .bind(g.username)
                .execute(conn)
                .await?
        }
        None if t.grant_id.is_some() => {
            bind_access(sqlx::query(SQL_OF_GRANT.as_str()), t)
                .execute(conn)
                .await?
        }
        None => {
            bind_access(sqlx::query(SQL_OF_CLIENT.as_str()), t)
                .execute(conn)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        anyhow::bail!(
            "access token of grant {:?}, which does not exist",
            t.grant_id
        );
    }
    Ok(())
}

/// Bind an access token's nine columns, in the order of [`ACCESS_INSERT`], as the
/// next parameters of `query`.
fn bind_access<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    a: &'q OpaqueAccessToken,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(a.token_hash.to_vec())
        .bind(&a.jti)
        .bind(&a.grant_id)
        .bind(&a.client_id)
        .bind(&a.user_id)
        .bind(a.scope.to_string())
        .bind(&a.audience)
        .bind(a.issued_at)
        .bind(a.expires_at)
}

pub(super) async fn touch_grant(conn: &mut PgConnection, id: &str, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An audit event; a missing username is looked up from the user id.
pub(super) async fn record_audit(conn: &mut PgConnection, e: &AuditEvent) -> StoreResult<()> {
    let query = sqlx::query(
        "INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
         VALUES ($1, $2, $3, $4, COALESCE($5, (SELECT username FROM users WHERE id = $4)), $6, $7, $8)",
    );
    bind_audit(query, e).execute(conn).await?;
    Ok(())
}

/// Bind an audit event's eight columns, in the order of `audit_events` (`at` to
/// `detail`), as the next parameters of `query`.
fn bind_audit<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    e: &'q AuditEvent,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(e.at)
        .bind(&e.kind)
        .bind(e.actor.as_str())
        .bind(&e.user_id)
        .bind(&e.username)
        .bind(&e.client_id)
        .bind(&e.grant_id)
        .bind(&e.detail)
}

/// Every part of `issuance`; the caller runs it in a transaction.
pub(super) async fn issue_tokens(conn: &mut PgConnection, i: &Issuance) -> StoreResult<()> {
    issue_tokens_but(conn, i, false, None).await
}

/// Every part of `issuance`, its refresh token unless `rotated_in_place`; an access
/// token of `rotated`'s grant with that grant's state ([`insert_access_token_of`]).
async fn issue_tokens_but(
    conn: &mut PgConnection,
    i: &Issuance,
    rotated_in_place: bool,
    rotated: Option<RotatedGrant<'_>>,
) -> StoreResult<()> {
    if let Some(t) = &i.access_token {
        insert_access_token_of(&mut *conn, t, rotated).await?;
    }
    if let Some(t) = i.refresh_token.as_ref().filter(|_| !rotated_in_place) {
        insert_refresh_token(&mut *conn, t).await?;
    }
    if let Some((grant_id, at)) = &i.grant_used {
        touch_grant(&mut *conn, grant_id, *at).await?;
    }
    if let Some(e) = &i.audit {
        record_audit(&mut *conn, e).await?;
    }
    Ok(())
}

/// Rotate, and if this call rotated, write `then`; the caller runs it in a transaction
/// when `then` is not empty.
pub(super) async fn rotate_refresh_token(
    conn: &mut PgConnection,
    token_hash: &TokenHash,
    client_id: &str,
    now: i64,
    then: &Issuance,
) -> StoreResult<Rotation> {
    let next = successor(token_hash, then);
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{ROTATE} RETURNING {REFRESH_COLUMNS}, {ROTATED_COLUMNS}"));
    let row = sqlx::query(SQL.as_str())
        .bind(now)
        .bind(token_hash.to_vec())
        .bind(client_id)
        .bind(token_hash[..CHAIN_LEN].to_vec())
        .bind(next_key(token_hash, next))
        .bind(next.map(|r| r.scope.to_string()))
        .bind(next.map(|r| r.issued_at))
        .bind(next.map(|r| r.expires_at))
        .bind(next.map(RefreshToken::purge_at))
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = row {
        let rotated = refresh_from(&row)?;
        let username: Option<String> = row.try_get("username")?;
        let grant = RotatedGrant {
            id: &rotated.grant_id,
            ends_at: row.try_get("grant_ends_at")?,
            username: username.as_deref(),
        };
        issue_tokens_but(conn, then, next.is_some(), Some(grant)).await?;
        return Ok(Rotation::Rotated(rotated));
    }
    not_rotated(conn, token_hash, client_id).await
}

/// Why a token was not rotated: an earlier token of its chain (reuse, or a race), or
/// invalid.
pub(super) async fn not_rotated(
    conn: &mut PgConnection,
    token_hash: &TokenHash,
    client_id: &str,
) -> StoreResult<Rotation> {
    let row = sqlx::query(&format!(
        "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE chain = $1 AND client_id = $3"
    ))
    .bind(token_hash[..CHAIN_LEN].to_vec())
    .bind(token_hash.to_vec())
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    let record = row.as_ref().map(refresh_from).transpose()?;
    Ok(match record {
        Some(record) if record.used_at.is_some() => Rotation::AlreadyUsed(record),
        _ => Rotation::Invalid,
    })
}

/// A refresh's whole write in one statement (one round trip, one commit): the rotation
/// (the successor becomes the chain's current token in place), and only if it
/// happened, the access token (if opaque) and the audit event (if any), as
/// data-modifying CTEs gated on the rotated row. A failing part (a
/// duplicate hash) fails the statement, rotation included. `None` when the token was
/// not rotated. Needs `then` to carry a successor of the token's chain (what a refresh
/// writes), and its access token, if opaque, to be of the chain's grant (the one a
/// refresh mints), and to record no use of the grant; the caller falls back to
/// [`rotate_refresh_token`] in a transaction otherwise.
pub(super) async fn rotate_refresh_token_in_one(
    conn: &mut PgConnection,
    token_hash: &TokenHash,
    client_id: &str,
    now: i64,
    then: &Issuance,
) -> StoreResult<Option<Option<RefreshToken>>> {
    let Some(r) = successor(token_hash, then) else {
        return Ok(None);
    };
    if let Some(a) = &then.access_token {
        if a.grant_id.as_deref() != Some(r.grant_id.as_str()) {
            return Ok(None);
        }
    }
    // The grant's use time is not among the parts: it would lock the grant's row while
    // this statement holds the chain's (the caller records it after the commit).
    if then.grant_used.is_some() {
        return Ok(None);
    }
    // The optional parts' parameters follow the fixed ones ($1 to $9): the audit event,
    // the access token.
    let audit_at = 10;
    let access_at = audit_at + if then.audit.is_some() { 8 } else { 0 };
    let audit = match &then.audit {
        Some(_) => {
            let [at, kind, actor, user, name, client, grant, detail] =
                std::array::from_fn::<_, 8, _>(|i| audit_at + i);
            format!(
                ", e AS (INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
                   SELECT ${at}, ${kind}, ${actor}, ${user}, COALESCE(${name}, (SELECT username FROM users WHERE id = ${user})), ${client}, ${grant}, ${detail} FROM rotated)"
            )
        }
        None => String::new(),
    };
    // The token's copies of its grant's state and user's name: the rotated row's (the
    // token is of the chain's grant, checked above; see `RotatedGrant`).
    let access = match &then.access_token {
        Some(_) => format!(
            ", a AS ({ACCESS_INSERT} {})",
            access_values(
                access_at,
                "FROM (SELECT grant_ends_at AS expires_at, NULL::BIGINT AS revoked_at, username FROM rotated) gs"
            )
        ),
        None => String::new(),
    };
    let sql = format!(
        "WITH rotated AS ({ROTATE} RETURNING {REFRESH_COLUMNS}, {ROTATED_COLUMNS})
         {audit}
         {access}
         SELECT * FROM rotated"
    );
    let mut query = sqlx::query(&sql)
        .bind(now)
        .bind(token_hash.to_vec())
        .bind(client_id)
        .bind(token_hash[..CHAIN_LEN].to_vec())
        .bind(r.token_hash.to_vec())
        .bind(r.scope.to_string())
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(r.purge_at());
    if let Some(e) = &then.audit {
        query = bind_audit(query, e);
    }
    if let Some(a) = &then.access_token {
        query = bind_access(query, a);
    }
    let row = query.fetch_optional(&mut *conn).await?;
    Ok(Some(row.as_ref().map(refresh_from).transpose()?))
}
