//! The authorization code grant (RFC 6749 §4.1.3–§4.1.4) with PKCE (RFC 7636 §4.6).
//!
//! Codes are single-use: the store consumes a code atomically, and a second use
//! revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use axum::response::Response;
use tessera_protocol::{CodeVerifier, GrantType, RedirectUri};

use crate::crypto::{hash_secret, pkce_s256_matches};
use crate::error::{OAuthError, Result};
use crate::revocation::revoke_grant;
use crate::state::AppState;
use crate::store::{Actor, Client, CodeConsumption, Issuance};
use crate::tokens::{mint_access_token, mint_refresh_token, token_response, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Client,
    code: &str,
    redirect_uri: Option<&RedirectUri>,
    verifier: &CodeVerifier,
) -> Result<Response> {
    let now = state.clock.now();
    let record = match state
        .store
        .consume_code(&hash_secret(code), &client.id, now)
        .await?
    {
        CodeConsumption::Consumed(record) => record,
        CodeConsumption::AlreadyUsed { grant_id } => {
            revoke_grant(
                state,
                &grant_id,
                Actor::System,
                "authorization code used twice",
            )
            .await?;
            tracing::warn!(client_id = %client.id, grant_id, "authorization code reused: grant revoked");
            return Err(OAuthError::InvalidGrant(
                "the authorization code has already been used".into(),
            ));
        }
        CodeConsumption::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "the authorization code is invalid".into(),
            ));
        }
    };
    if record.expires_at <= now {
        return Err(OAuthError::InvalidGrant(
            "the authorization code has expired".into(),
        ));
    }
    // RFC 6749 §4.1.3: redirect_uri is required if the authorization request had it,
    // and must then be identical.
    match (record.redirect_uri_given, redirect_uri) {
        (true, None) => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri is required for this code".into(),
            ))
        }
        (_, Some(uri)) if uri.as_str() != record.redirect_uri => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri does not match the authorization request".into(),
            ))
        }
        _ => {}
    }
    // RFC 7636 §4.6.
    if !pkce_s256_matches(verifier.as_str(), &record.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    // The grant may have lapsed since the code was issued. A revocation is not checked
    // here: tokens of a revoked grant are refused everywhere anyway, and a concurrent
    // replay of this very code revokes the grant at any moment (RFC 6749 §4.1.2), which
    // must not turn the one legitimate redemption into an error.
    let grant = match state.store.get_grant(&record.grant_id).await? {
        Some(g) if !g.is_expired(now) => g,
        _ => {
            return Err(OAuthError::InvalidGrant(
                "the authorization has expired".into(),
            ))
        }
    };
    let (access, access_row) = mint_access_token(
        state,
        AccessTokenFor {
            client,
            user_id: Some(&record.user_id),
            scope: &record.scope,
            grant_id: Some(&record.grant_id),
            auth_time: Some(record.auth_time),
            not_after: grant.expires_at,
        },
    )?;
    let (refresh, refresh_row) = if client.allows_grant(GrantType::RefreshToken) {
        let (token, row) = mint_refresh_token(
            state,
            None,
            &record.grant_id,
            client,
            Some(&record.user_id),
            &record.scope,
            grant.expires_at,
        );
        (Some(token), Some(row))
    } else {
        (None, None)
    };
    // One transaction for everything the exchange leaves behind.
    state
        .store
        .issue_tokens(&Issuance {
            access_token: access_row,
            refresh_token: refresh_row,
            grant_used: Some((grant.id.clone(), now)),
            audit: None,
        })
        .await?;
    Ok(token_response(access, refresh, &record.scope))
}
