//! The writes of the token hot path on one connection, so that a token request's rows
//! (its access and refresh tokens, the grant's use time, the audit event) can be
//! written in one transaction: one commit, one WAL flush, per request.

use sqlx::PgConnection;

use super::refresh_from;
use crate::store::{
    AuditEvent, Issuance, OpaqueAccessToken, RefreshToken, Rotation, StoreResult, TokenHash,
};

pub(super) async fn insert_refresh_token(
    conn: &mut PgConnection,
    t: &RefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.token_hash.to_vec())
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(t.scope.to_string())
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(t.used_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_access_token(
    conn: &mut PgConnection,
    t: &OpaqueAccessToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.token_hash.to_vec())
    .bind(&t.jti)
    .bind(&t.grant_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(t.scope.to_string())
    .bind(&t.audience)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .execute(conn)
    .await?;
    Ok(())
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
    if let Some(t) = &i.access_token {
        insert_access_token(&mut *conn, t).await?;
    }
    if let Some(t) = &i.refresh_token {
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
    let row = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1
         WHERE token_hash = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > $4
           AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > $5))
         RETURNING *",
    )
    .bind(now)
    .bind(token_hash.to_vec())
    .bind(client_id)
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        let rotated = refresh_from(&row)?;
        issue_tokens(conn, then).await?;
        return Ok(Rotation::Rotated(rotated));
    }
    not_rotated(conn, token_hash, client_id).await
}

/// Why a token was not rotated: used before (reuse, or a race), or invalid.
pub(super) async fn not_rotated(
    conn: &mut PgConnection,
    token_hash: &TokenHash,
    client_id: &str,
) -> StoreResult<Rotation> {
    let row = sqlx::query(
        "SELECT * FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2 AND used_at IS NOT NULL",
    )
    .bind(token_hash.to_vec())
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(row) => Rotation::AlreadyUsed(refresh_from(&row)?),
        None => Rotation::Invalid,
    })
}

/// A refresh's whole write in one statement (one round trip, one commit): the rotation,
/// and only if it happened, the successor refresh token, the access token (if opaque),
/// the grant's use time and the audit event (if any), as data-modifying CTEs gated on
/// the rotated row. A failing part (a duplicate hash) fails the statement, rotation
/// included. `None` when the token was not rotated. Needs `then` to carry a refresh
/// token and the grant's use time (what a refresh writes); the caller falls back to
/// [`rotate_refresh_token`] in a transaction otherwise.
pub(super) async fn rotate_refresh_token_in_one(
    conn: &mut PgConnection,
    token_hash: &TokenHash,
    client_id: &str,
    now: i64,
    then: &Issuance,
) -> StoreResult<Option<Option<RefreshToken>>> {
    let (Some(r), Some((grant_id, used_at))) = (&then.refresh_token, &then.grant_used) else {
        return Ok(None);
    };
    // The optional parts' parameters follow the fixed ones ($1 to $12), audit event
    // first.
    let audit_at = 13;
    let access_at = if then.audit.is_some() { 21 } else { 13 };
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
    let access = match &then.access_token {
        Some(_) => format!(
            ", a AS (INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at)
                 SELECT {} FROM rotated)",
            (access_at..access_at + 9)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let sql = format!(
        "WITH rotated AS (
             UPDATE refresh_tokens SET used_at = $1
             WHERE token_hash = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > $1
               AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > $1))
             RETURNING *),
         r AS (INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at)
               SELECT $4, $5, $6, $7, $8, $9, $10 FROM rotated),
         t AS (UPDATE grants SET last_used_at = $12 WHERE id = $11 AND EXISTS (SELECT 1 FROM rotated))
         {audit}
         {access}
         SELECT * FROM rotated"
    );
    let mut query = sqlx::query(&sql)
        .bind(now)
        .bind(token_hash.to_vec())
        .bind(client_id)
        .bind(r.token_hash.to_vec())
        .bind(&r.grant_id)
        .bind(&r.client_id)
        .bind(&r.user_id)
        .bind(r.scope.to_string())
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(grant_id)
        .bind(*used_at);
    if let Some(e) = &then.audit {
        query = bind_audit(query, e);
    }
    if let Some(a) = &then.access_token {
        query = query
            .bind(a.token_hash.to_vec())
            .bind(&a.jti)
            .bind(&a.grant_id)
            .bind(&a.client_id)
            .bind(&a.user_id)
            .bind(a.scope.to_string())
            .bind(&a.audience)
            .bind(a.issued_at)
            .bind(a.expires_at);
    }
    let row = query.fetch_optional(&mut *conn).await?;
    Ok(Some(row.as_ref().map(refresh_from).transpose()?))
}
