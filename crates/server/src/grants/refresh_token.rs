//! The refresh token grant (RFC 6749 §6) with rotation on every use and reuse
//! detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): presenting any earlier token of a
//! chain again revokes the whole family, unless it is the token just rotated and comes
//! within the configured grace period. A rotation replaces the chain's current token
//! in place ([`crate::store::RefreshToken`]); the grant's use time and the audit trail
//! record a chain's first rotation in each `audit.refresh_interval`.

use axum::response::Response;
use tessera_protocol::Scope;

use crate::crypto::{chain_of, refresh_key};
use crate::error::{OAuthError, Result};
use crate::revocation::revoke_grant;
use crate::state::AppState;
use crate::store::{Actor, AuditEvent, Client, Issuance, RefreshTokenView, Rotation};
use crate::tokens::{mint_access_token, mint_refresh_token, token_response, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Client,
    token: &str,
    requested: Option<&Scope>,
) -> Result<Response> {
    let now = state.clock.now();
    let hash = refresh_key(token);
    // A token's grant, user and scope never change, nor does when a grant lapses, so
    // reading them (in one read) before the rotation is race-free; it lets the
    // successor tokens be written in the rotation's own transaction (one commit per
    // refresh), and a request for a wider scope be refused before the token is spent
    // (RFC 6749 §6: a refused request must not use the token up).
    let Some(RefreshTokenView {
        token: current,
        grant_expires_at: not_after,
    }) = state
        .store
        .view_refresh_token(&hash)
        .await?
        .filter(|v| v.token.client_id == client.id)
    else {
        return Err(invalid());
    };
    // RFC 6749 §6: a narrower scope may be requested, never a wider one. The new
    // refresh token keeps the grant's full scope.
    let scope = match requested {
        Some(requested) if !requested.is_subset_of(&current.scope) => return Err(wider_scope()),
        Some(requested) => requested.clone(),
        None => current.scope.clone(),
    };
    let user_id = current.user_id.as_deref();
    let (access, access_row) = mint_access_token(
        state,
        AccessTokenFor {
            client,
            user_id,
            scope: &scope,
            grant_id: Some(&current.grant_id),
            auth_time: None,
            not_after,
        },
    )?;
    // The successor continues the chain: it replaces the current token in the chain's
    // row, and every earlier token of the chain is recognised as used by the chain id.
    let (mut refresh, refresh_row) = mint_refresh_token(
        state,
        Some(chain_of(&current.token_hash)),
        &current.grant_id,
        client,
        user_id,
        &current.scope,
        not_after,
    );
    // The chain's first rotation in this period of `audit.refresh_interval` (the token
    // presented was issued by the chain's previous token request) leaves its mark on
    // the grant: its use time and an audit event. In between, the grant's last use is
    // read from its chains' rows ([`crate::store::Grant::last_used_at`]), so that a
    // rotation writes no more than the chain's row and the access token.
    let marks = state.config.audit.records_refresh(current.issued_at, now);
    let mut issuance = Issuance {
        access_token: access_row,
        refresh_token: Some(refresh_row),
        grant_used: marks.then(|| (current.grant_id.clone(), now)),
        audit: marks.then(|| AuditEvent {
            id: 0,
            at: now,
            kind: "refresh".into(),
            actor: Actor::Client,
            user_id: current.user_id.clone(),
            username: None,
            client_id: Some(client.id.clone()),
            grant_id: Some(current.grant_id.clone()),
            detail: format!("tokens refreshed ({scope})"),
        }),
    };
    match state
        .store
        .rotate_refresh_token(&hash, &client.id, now, &issuance)
        .await?
    {
        Rotation::Rotated(_) => {}
        Rotation::AlreadyUsed(record) => {
            let grace = state.config.tokens.refresh_grace_period.as_secs() as i64;
            let used_at = record.used_at.unwrap_or(i64::MIN);
            let within_grace = grace > 0
                && now - used_at <= grace
                && record.expires_at > now
                && state.store.grant_active(&record.grant_id, now).await?;
            if !within_grace {
                revoke_grant(
                    state,
                    &record.grant_id,
                    Actor::System,
                    "refresh token used twice",
                )
                .await?;
                tracing::warn!(client_id = %client.id, grant_id = %record.grant_id, "refresh token reused: family revoked");
                return Err(OAuthError::InvalidGrant(
                    "the refresh token has already been used".into(),
                ));
            }
            // A race of the client with itself within the grace period: the token
            // it gets starts a chain of its own, next to the one the first request
            // continued.
            let (token, row) = mint_refresh_token(
                state,
                None,
                &current.grant_id,
                client,
                user_id,
                &current.scope,
                not_after,
            );
            refresh = token;
            issuance.refresh_token = Some(row);
            state.store.issue_tokens(&issuance).await?;
        }
        Rotation::Invalid => return Err(invalid()),
    }
    Ok(token_response(access, Some(refresh), &scope))
}

fn invalid() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

fn wider_scope() -> OAuthError {
    OAuthError::InvalidScope("the requested scope exceeds the scope originally granted".into())
}
