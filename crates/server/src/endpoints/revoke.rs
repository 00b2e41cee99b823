//! `POST /revoke`: token revocation (RFC 7009). Revoking a refresh token revokes its
//! whole family, with every access token issued from it (§2.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::token::parse_form;
use crate::client_auth::authenticate_at;
use crate::crypto::hash_secret;
use crate::error::{OAuthError, Result};
use crate::revocation::{revoke_grant, revoke_jti};
use crate::state::AppState;
use crate::store::{AccessTokenView, Actor};
use crate::tokens::lookup::{find, Found};
use crate::tokens::no_store;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let form = parse_form(headers, body)?;
    let client = authenticate_at(state, headers, &form, "/revoke")
        .await?
        .client;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    // §2.2: an unknown or invalid token is answered with 200 all the same.
    let Some(found) = find(state, token, form.get("token_type_hint")).await? else {
        return Ok(());
    };
    // §2.1: only the client the token was issued to may revoke it.
    if found.client_id() != client.id {
        return Err(OAuthError::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    let now = state.clock.now();
    match found {
        Found::Jwt(claims) => {
            let user = claims.grant_id.as_ref().map(|_| claims.sub.as_str());
            revoke_jti(state, &claims.jti, claims.exp, &client.id, user).await?
        }
        Found::Opaque(AccessTokenView { token: t, .. }) => {
            state
                .store
                .revoke_access_token(&hash_secret(token), now)
                .await?;
            // Also on the feed, for resource servers that cache introspection answers.
            revoke_jti(
                state,
                &t.jti,
                t.expires_at,
                &client.id,
                t.user_id.as_deref(),
            )
            .await?
        }
        Found::Refresh(t) => {
            revoke_grant(
                state,
                &t.grant_id,
                Actor::Client,
                "refresh token revoked by the client",
            )
            .await?;
        }
    }
    Ok(())
}
