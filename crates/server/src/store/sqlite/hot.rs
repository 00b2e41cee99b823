//! The writes of the token hot path (and the audit events and grant use times they
//! record), on one connection, so that the [`super::writer`] can run many of them in
//! one transaction. Each changes the database with one statement at most, except
//! [`issue_tokens`] and [`rotate_refresh_token`] with something to issue, which the
//! writer runs in a savepoint ([`super::writer::Writer::write_atomic`]).

use sqlx::SqliteConnection;

use sqlx::Row;

use super::{code_from, refresh_from};
use crate::store::{
    AuditEvent, AuthCode, CodeConsumption, Issuance, OpaqueAccessToken, RefreshToken, Rotation,
    StoreResult, TokenHash,
};

pub(super) async fn insert_code(conn: &mut SqliteConnection, c: &AuthCode) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given,
                                 scope, code_challenge, auth_time, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_refresh_token(
    conn: &mut SqliteConnection,
    t: &RefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

pub(super) async fn rotate_refresh_token(
    conn: &mut SqliteConnection,
    token_hash: &TokenHash,
    client_id: &str,
    now: i64,
    then: &Issuance,
) -> StoreResult<Rotation> {
    let row = sqlx::query(
        "UPDATE refresh_tokens SET used_at = ?
         WHERE token_hash = ? AND client_id = ? AND used_at IS NULL AND expires_at > ?
           AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?))
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
    let row = sqlx::query(
        "SELECT * FROM refresh_tokens WHERE token_hash = ? AND client_id = ? AND used_at IS NOT NULL",
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

pub(super) async fn insert_access_token(
    conn: &mut SqliteConnection,
    t: &OpaqueAccessToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

pub(super) async fn consume_code(
    conn: &mut SqliteConnection,
    code_hash: &TokenHash,
    client_id: &str,
    now: i64,
) -> StoreResult<CodeConsumption> {
    let row = sqlx::query(
        "UPDATE auth_codes SET consumed_at = ?
         WHERE code_hash = ? AND client_id = ? AND consumed_at IS NULL
         RETURNING *",
    )
    .bind(now)
    .bind(code_hash.to_vec())
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(CodeConsumption::Consumed(code_from(&row)?));
    }
    let used = sqlx::query("SELECT grant_id FROM auth_codes WHERE code_hash = ? AND client_id = ?")
        .bind(code_hash.to_vec())
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match used {
        Some(row) => CodeConsumption::AlreadyUsed {
            grant_id: row.try_get("grant_id")?,
        },
        None => CodeConsumption::Unknown,
    })
}

pub(super) async fn touch_grant(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE grants SET last_used_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every part of `issuance`; the caller runs it in a savepoint.
pub(super) async fn issue_tokens(conn: &mut SqliteConnection, i: &Issuance) -> StoreResult<()> {
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

/// An audit event; a missing username is looked up from the user id.
pub(super) async fn record_audit(conn: &mut SqliteConnection, e: &AuditEvent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
         VALUES (?, ?, ?, ?, COALESCE(?, (SELECT username FROM users WHERE id = ?)), ?, ?, ?)",
    )
    .bind(e.at)
    .bind(&e.kind)
    .bind(e.actor.as_str())
    .bind(&e.user_id)
    .bind(&e.username)
    .bind(&e.user_id)
    .bind(&e.client_id)
    .bind(&e.grant_id)
    .bind(&e.detail)
    .execute(conn)
    .await?;
    Ok(())
}
