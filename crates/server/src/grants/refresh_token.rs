//! The refresh token grant (RFC 6749 §6) with rotation on every use and reuse
//! detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): presenting a rotated token again
//! revokes the whole family, unless it comes within the configured grace period.

use axum::response::Response;
use tessera_protocol::Scope;

use crate::audit;
use crate::crypto::hash_secret;
use crate::error::{OAuthError, Result};
use crate::revocation::revoke_grant;
use crate::state::AppState;
use crate::store::{Actor, Client, Rotation};
use crate::tokens::{issue_access_token, issue_refresh_token, token_response, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Client,
    token: &str,
    requested: Option<&Scope>,
) -> Result<Response> {
    let now = state.clock.now();
    let hash = hash_secret(token);
    // RFC 6749 §6: a refused request must not use the token up, so a requested scope
    // is checked against the token's before the token is rotated. (A token's scope
    // never changes, so reading it first is race-free.)
    if let Some(requested) = requested {
        if let Some(current) = state.store.find_refresh_token(&hash).await? {
            if current.client_id == client.id && !requested.is_subset_of(&current.scope) {
                return Err(wider_scope());
            }
        }
    }
    let record = match state
        .store
        .rotate_refresh_token(&hash, &client.id, now)
        .await?
    {
        Rotation::Rotated(record) => record,
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
            record
        }
        Rotation::Invalid => {
            return Err(OAuthError::InvalidGrant(
                "the refresh token is invalid, expired or revoked".into(),
            ))
        }
    };
    // RFC 6749 §6: a narrower scope may be requested, never a wider one. The new
    // refresh token keeps the grant's full scope.
    let scope = match requested {
        Some(requested) if !requested.is_subset_of(&record.scope) => return Err(wider_scope()),
        Some(requested) => requested.clone(),
        None => record.scope.clone(),
    };
    let grant = state.store.get_grant(&record.grant_id).await?;
    let not_after = grant.as_ref().and_then(|g| g.expires_at);
    state.store.touch_grant(&record.grant_id, now).await?;
    let access = issue_access_token(
        state,
        AccessTokenFor {
            client,
            user_id: record.user_id.as_deref(),
            scope: &scope,
            grant_id: Some(&record.grant_id),
            auth_time: None,
            not_after,
        },
    )
    .await?;
    let refresh = issue_refresh_token(
        state,
        &record.grant_id,
        client,
        record.user_id.as_deref(),
        &record.scope,
        not_after,
    )
    .await?;
    audit::record(
        state,
        audit::Entry {
            kind: "refresh",
            actor: Actor::Client,
            user_id: record.user_id.as_deref(),
            client_id: Some(&client.id),
            grant_id: Some(&record.grant_id),
            detail: format!("tokens refreshed ({scope})"),
        },
    )
    .await?;
    Ok(token_response(access, Some(refresh), &scope))
}

fn wider_scope() -> OAuthError {
    OAuthError::InvalidScope("the requested scope exceeds the scope originally granted".into())
}
