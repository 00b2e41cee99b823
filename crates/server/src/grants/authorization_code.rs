//! The authorization code grant (RFC 6749 §4.1.3–§4.1.4) with PKCE (RFC 7636 §4.6).
//!
//! Codes are single-use: the store consumes a code atomically, and a second use
//! revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use std::sync::Arc;

use axum::response::Response;
use tessera_protocol::{CodeVerifier, GrantType, RedirectUri};

use crate::crypto::{chained_token, hash_secret, new_chain, pkce_s256_matches};
use crate::error::{OAuthError, Result};
use crate::revocation::revoke_grant;
use crate::state::AppState;
use crate::store::{Actor, AuthCode, Client, Grant, Issuance, PlannedRedemption, TokenFormat};
use crate::tokens::{refresh_row, token_response, AccessDraw, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Arc<Client>,
    code: &str,
    redirect_uri: Option<&RedirectUri>,
    verifier: &CodeVerifier,
) -> Result<Response> {
    let now = state.clock.now();
    // What is random in the tokens is drawn here; the rest comes from the code and its
    // grant, which the store reads as it consumes the code and gives to `plan` there.
    let access = AccessDraw::new(client.token_format);
    let refresh = client
        .allows_grant(GrantType::RefreshToken)
        .then(|| chained_token(&new_chain()));
    let plan = {
        let (client, config) = (Arc::clone(client), Arc::clone(&state.config));
        let (redirect_uri, verifier) = (redirect_uri.cloned(), verifier.clone());
        // A JWT is signed after the commit; only an opaque token has a row to write.
        let access = (client.token_format == TokenFormat::Opaque).then(|| access.clone());
        let refresh = refresh.clone();
        Box::new(move |code: &AuthCode, grant: Option<&Grant>| {
            let grant = redeemable(code, grant, redirect_uri.as_ref(), &verifier, now)?;
            let access_token =
                access.and_then(|a| a.row(&config, now, &access_for(&client, code, grant)));
            let refresh_token = refresh.map(|token| {
                refresh_row(
                    &config,
                    now,
                    &token,
                    &code.grant_id,
                    &client.id,
                    Some(&code.user_id),
                    &code.scope,
                    grant.expires_at,
                )
            });
            // Everything the exchange leaves behind, in the transaction that consumes
            // the code where the store can.
            Ok(Issuance {
                access_token,
                refresh_token,
                grant_used: Some((grant.id.clone(), now)),
                audit: None,
            })
        })
    };
    let (code, grant) = match state
        .store
        .plan_redemption(&hash_secret(code), &client.id, now, plan)
        .await?
    {
        PlannedRedemption::Redeemed {
            code,
            grant: Some(grant),
        } => (code, grant),
        PlannedRedemption::AlreadyUsed { grant_id } => {
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
        PlannedRedemption::Refused(refusal) => return Err(refusal),
        // A redemption without its grant is refused by the plan.
        PlannedRedemption::Unknown | PlannedRedemption::Redeemed { grant: None, .. } => {
            return Err(OAuthError::InvalidGrant(
                "the authorization code is invalid".into(),
            ));
        }
    };
    // Signing cannot fail once the key is loaded; were it to, the code is spent, as
    // after any answer lost on its way to the client.
    let access = access.finish(state, now, &access_for(client, &code, &grant))?;
    Ok(token_response(access, refresh, &code.scope))
}

/// The grant of `code`, consumed just now, if the redemption may go on.
fn redeemable<'g>(
    code: &AuthCode,
    grant: Option<&'g Grant>,
    redirect_uri: Option<&RedirectUri>,
    verifier: &CodeVerifier,
    now: i64,
) -> Result<&'g Grant> {
    if code.expires_at <= now {
        return Err(OAuthError::InvalidGrant(
            "the authorization code has expired".into(),
        ));
    }
    // RFC 6749 §4.1.3: redirect_uri is required if the authorization request had it,
    // and must then be identical.
    match (code.redirect_uri_given, redirect_uri) {
        (true, None) => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri is required for this code".into(),
            ))
        }
        (_, Some(uri)) if uri.as_str() != code.redirect_uri => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri does not match the authorization request".into(),
            ))
        }
        _ => {}
    }
    // RFC 7636 §4.6.
    if !pkce_s256_matches(verifier.as_str(), &code.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    // The grant may have lapsed since the code was issued. A revocation is not checked
    // here: tokens of a revoked grant are refused everywhere anyway, and a concurrent
    // replay of this very code revokes the grant at any moment (RFC 6749 §4.1.2), which
    // must not turn the one legitimate redemption into an error.
    match grant {
        Some(g) if !g.is_expired(now) => Ok(g),
        _ => Err(OAuthError::InvalidGrant(
            "the authorization has expired".into(),
        )),
    }
}

/// The access token a redemption of `code` issues.
fn access_for<'a>(client: &'a Client, code: &'a AuthCode, grant: &Grant) -> AccessTokenFor<'a> {
    AccessTokenFor {
        client,
        user_id: Some(&code.user_id),
        scope: &code.scope,
        grant_id: Some(&code.grant_id),
        auth_time: Some(code.auth_time),
        not_after: grant.expires_at,
    }
}
