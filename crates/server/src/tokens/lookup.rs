//! Finding a presented token, whatever its kind, for revocation and introspection.

use tessera_protocol::IntrospectionResponse;

use super::AccessClaims;
use crate::crypto::{hash_secret, refresh_key};
use crate::error::Result;
use crate::state::AppState;
use crate::store::{AccessTokenView, RefreshToken, TokenHash};

/// A token Tessera issued, in whatever state it is now.
pub enum Found {
    /// A JWT access token with a valid signature of ours.
    Jwt(AccessClaims),
    /// An opaque access token, with its grant's state and its user's name as of the
    /// lookup.
    Opaque(AccessTokenView),
    Refresh(RefreshToken),
}

impl Found {
    pub fn client_id(&self) -> &str {
        match self {
            Found::Jwt(c) => &c.client_id,
            Found::Opaque(v) => &v.token.client_id,
            Found::Refresh(t) => &t.client_id,
        }
    }
}

/// Look a token up. `hint` (RFC 7009 §2.1, RFC 7662 §2.1) only orders the search.
pub async fn find(state: &AppState, token: &str, hint: Option<&str>) -> Result<Option<Found>> {
    find_hashed(state, token, &hash_secret(token), hint).await
}

/// [`find`], given the token's `hash` ([`hash_secret`]).
pub async fn find_hashed(
    state: &AppState,
    token: &str,
    hash: &TokenHash,
    hint: Option<&str>,
) -> Result<Option<Found>> {
    // A JWT has exactly two dots; opaque and refresh tokens are BASE64URL with none.
    if token.bytes().filter(|b| *b == b'.').count() == 2 {
        return Ok(state
            .keys
            .current()
            .verify_jwt(token)
            .and_then(|v| serde_json::from_value::<AccessClaims>(v).ok())
            .filter(|c| c.iss == state.config.issuer)
            .map(Found::Jwt));
    }
    let refresh_first = hint == Some("refresh_token");
    for refresh in [refresh_first, !refresh_first] {
        if refresh {
            if let Some(t) = state.store.find_refresh_token(&refresh_key(token)).await? {
                return Ok(Some(Found::Refresh(t)));
            }
        } else if let Some(v) = state
            .store
            .view_access_token(hash, state.clock.now())
            .await?
        {
            return Ok(Some(Found::Opaque(v)));
        }
    }
    Ok(None)
}

/// The introspection answer for a token (RFC 7662 §2.2): `{"active": false}` for
/// anything expired, revoked, rotated or of a revoked grant.
pub async fn introspect(
    state: &AppState,
    token: &str,
    found: Found,
) -> Result<IntrospectionResponse> {
    let now = state.clock.now();
    let inactive = IntrospectionResponse::default();
    let (client_id, user_id, username, scope, token_type, exp, iat, aud, jti) = match found {
        Found::Jwt(c) => {
            let grant_ok = match &c.grant_id {
                Some(g) => state.store.grant_active(g, now).await?,
                None => true,
            };
            if c.exp <= now || !grant_ok || state.store.jti_revoked(&c.jti).await? {
                return Ok(inactive);
            }
            let user = c.grant_id.as_ref().map(|_| c.sub.clone());
            let username = username_of(state, user.as_deref()).await?;
            (
                c.client_id,
                user,
                username,
                c.scope,
                "Bearer",
                c.exp,
                c.iat,
                Some(c.aud),
                Some(c.jti),
            )
        }
        // The row as found, with its grant's state and its user's name read with it.
        Found::Opaque(AccessTokenView {
            token: t,
            grant_active,
            username,
        }) => {
            if t.revoked_at.is_some() || t.expires_at <= now || !grant_active {
                return Ok(inactive);
            }
            (
                t.client_id,
                t.user_id,
                username,
                t.scope.to_string(),
                "Bearer",
                t.expires_at,
                t.issued_at,
                Some(t.audience),
                Some(t.jti),
            )
        }
        Found::Refresh(_) => match state
            .store
            .find_active_refresh_token(&refresh_key(token), now)
            .await?
        {
            Some(t) => {
                let username = username_of(state, t.user_id.as_deref()).await?;
                (
                    t.client_id,
                    t.user_id,
                    username,
                    t.scope.to_string(),
                    "refresh_token",
                    t.expires_at,
                    t.issued_at,
                    None,
                    None,
                )
            }
            None => return Ok(inactive),
        },
    };
    Ok(IntrospectionResponse {
        active: true,
        scope: (!scope.is_empty()).then_some(scope),
        sub: Some(user_id.unwrap_or_else(|| client_id.clone())),
        client_id: Some(client_id),
        username,
        token_type: Some(token_type.into()),
        exp: Some(exp),
        iat: Some(iat),
        aud,
        iss: Some(state.config.issuer.clone()),
        jti,
    })
}

/// The username of the user with this id, if there is one.
async fn username_of(state: &AppState, user_id: Option<&str>) -> Result<Option<String>> {
    Ok(match user_id {
        Some(id) => state.store.get_user(id).await?.map(|u| u.username),
        None => None,
    })
}
