//! The refresh token grant (RFC 6749 §6) with rotation on every use and reuse
//! detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): presenting any earlier token of a
//! chain again revokes the whole family, unless it is the token just rotated and comes
//! within the configured grace period. A rotation replaces the chain's current token
//! in place ([`crate::store::RefreshToken`]); the grant's use time and the audit trail
//! record a chain's first rotation in each `audit.refresh_interval`.

use std::sync::Arc;

use axum::response::Response;
use tessera_protocol::Scope;

use crate::crypto::{chain_of, chained_token, refresh_key};
use crate::error::{OAuthError, Result};
use crate::revocation::revoke_grant;
use crate::state::AppState;
use crate::store::{
    Actor, AuditEvent, Client, Issuance, PlannedRotation, RefreshTokenView, Rotation, TokenFormat,
};
use crate::tokens::{mint_refresh_token, refresh_row, token_response, AccessDraw, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Arc<Client>,
    token: &str,
    requested: Option<&Scope>,
) -> Result<Response> {
    let now = state.clock.now();
    let hash = refresh_key(token);
    // What is random in the new tokens is drawn here. The rest comes from the chain,
    // which the store reads in the rotation's own transaction and gives to `plan`
    // there; a chain's grant, user and scope never change, nor does when its grant
    // lapses. The successor continues the chain: it replaces the current token in the
    // chain's row, and every earlier token of the chain is recognised as used by the
    // chain id.
    let access = AccessDraw::new(client.token_format);
    let successor = chained_token(&chain_of(&hash));
    let plan = {
        let (client, config) = (Arc::clone(client), Arc::clone(&state.config));
        let requested = requested.cloned();
        // A JWT is signed after the rotation; only an opaque token has a row to write.
        let access = (client.token_format == TokenFormat::Opaque).then(|| access.clone());
        let successor = successor.clone();
        Box::new(move |view: &RefreshTokenView| {
            let current = &view.token;
            if current.client_id != client.id {
                return Err(invalid());
            }
            let scope = narrowed(requested.as_ref(), &current.scope)?;
            let access_token =
                access.and_then(|a| a.row(&config, now, &access_for(&client, view, &scope)));
            let refresh_token = refresh_row(
                &config,
                now,
                &successor,
                &current.grant_id,
                &client.id,
                current.user_id.as_deref(),
                &current.scope,
                view.grant_expires_at,
            );
            // The chain's first rotation in this period of `audit.refresh_interval`
            // (the token presented was issued by the chain's previous token request)
            // leaves its mark on the grant: its use time and an audit event. In
            // between, the grant's last use is read from its chains' rows
            // ([`crate::store::Grant::last_used_at`]), so that a rotation writes no
            // more than the chain's row and the access token.
            let marks = config.audit.records_refresh(current.issued_at, now);
            Ok(Issuance {
                access_token,
                refresh_token: Some(refresh_token),
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
            })
        })
    };
    let (view, rotation, mut issuance) = match state
        .store
        .plan_rotation(&hash, &client.id, now, plan)
        .await?
    {
        PlannedRotation::Unknown => return Err(invalid()),
        PlannedRotation::Refused(refusal) => return Err(refusal),
        PlannedRotation::Done {
            view,
            rotation,
            then,
        } => (view, rotation, then),
    };
    let mut refresh = successor;
    match rotation {
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
            let current = &view.token;
            let (token, row) = mint_refresh_token(
                state,
                None,
                &current.grant_id,
                client,
                current.user_id.as_deref(),
                &current.scope,
                view.grant_expires_at,
            );
            refresh = token;
            issuance.refresh_token = Some(row);
            state.store.issue_tokens(&issuance).await?;
        }
        Rotation::Invalid => return Err(invalid()),
    }
    // The plan accepted this scope in the rotation's transaction.
    let scope = narrowed(requested, &view.token.scope)?;
    // Signing cannot fail once the key is loaded; were it to, the token presented is
    // spent, as after any answer lost on its way to the client.
    let access = access.finish(state, now, &access_for(client, &view, &scope))?;
    Ok(token_response(access, Some(refresh), &scope))
}

/// The access token a rotation of `view`'s chain issues, with `scope`.
fn access_for<'a>(
    client: &'a Client,
    view: &'a RefreshTokenView,
    scope: &'a Scope,
) -> AccessTokenFor<'a> {
    AccessTokenFor {
        client,
        user_id: view.token.user_id.as_deref(),
        scope,
        grant_id: Some(&view.token.grant_id),
        auth_time: None,
        not_after: view.grant_expires_at,
    }
}

/// RFC 6749 §6: a narrower scope may be requested, never a wider one; none requested
/// is the grant's. The new refresh token keeps the grant's full scope.
fn narrowed(requested: Option<&Scope>, granted: &Scope) -> Result<Scope> {
    match requested {
        Some(requested) if !requested.is_subset_of(granted) => Err(wider_scope()),
        Some(requested) => Ok(requested.clone()),
        None => Ok(granted.clone()),
    }
}

fn invalid() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

fn wider_scope() -> OAuthError {
    OAuthError::InvalidScope("the requested scope exceeds the scope originally granted".into())
}
