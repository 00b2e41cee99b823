//! Minting tokens: JWT access tokens (RFC 9068), opaque access tokens and refresh
//! tokens (stored as SHA-256 hashes), and the token response (RFC 6749 §5.1).

pub mod answers;
pub mod keys;
pub mod lookup;
pub mod ring;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tessera_protocol::{Scope, TokenResponse};

use crate::config::Config;
use crate::crypto::{
    chained_token, hash_secret, new_chain, ordered_token, random_string, refresh_key, ChainId,
};
use crate::error::Result;
use crate::state::AppState;
use crate::store::{Client, OpaqueAccessToken, RefreshToken, TokenFormat, TokenHash};

pub use keys::Keys;
pub use ring::KeyRing;

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    /// The token family this token belongs to; revoking the grant refuses the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// RFC 9068 §2.2.1: when the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// What an access token is issued for.
pub struct AccessTokenFor<'a> {
    pub client: &'a Client,
    /// The user, or `None` when the client acts on its own behalf.
    pub user_id: Option<&'a str>,
    pub scope: &'a Scope,
    pub grant_id: Option<&'a str>,
    pub auth_time: Option<i64>,
    /// The token never outlives this (a time-limited grant's end).
    pub not_after: Option<i64>,
}

pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// Mint an access token in the client's format. Opaque tokens are stored (as a hash)
/// before this returns; JWTs are not stored.
pub async fn issue_access_token(
    state: &AppState,
    spec: AccessTokenFor<'_>,
) -> Result<IssuedAccessToken> {
    let (issued, row) = mint_access_token(state, spec)?;
    if let Some(row) = row {
        state.store.insert_access_token(&row).await?;
    }
    Ok(issued)
}

/// Mint an access token in the client's format without storing anything: a JWT is
/// signed; an opaque token comes with the row (its hash) that the caller must store
/// before handing the token out.
pub fn mint_access_token(
    state: &AppState,
    spec: AccessTokenFor<'_>,
) -> Result<(IssuedAccessToken, Option<OpaqueAccessToken>)> {
    let now = state.clock.now();
    let draw = AccessDraw::new(spec.client.token_format);
    let row = draw.row(&state.config, now, &spec);
    Ok((draw.finish(state, now, &spec)?, row))
}

/// The random parts of an access token, drawn before the rest of it is known: a
/// refresh token's rotation learns its grant, user and scope in the store's own
/// transaction ([`crate::store::RefreshTokenStore::plan_rotation`]), where the opaque
/// token's row is made ([`Self::row`]); a JWT is signed after ([`Self::finish`]).
#[derive(Clone)]
pub struct AccessDraw {
    jti: String,
    /// An opaque token and its key; `None` for a JWT.
    opaque: Option<(String, TokenHash)>,
}

impl AccessDraw {
    pub fn new(format: TokenFormat) -> Self {
        let jti = random_string(16);
        let opaque = (format == TokenFormat::Opaque).then(|| {
            let token = ordered_token();
            let key = hash_secret(&token);
            (token, key)
        });
        Self { jti, opaque }
    }

    /// The row an opaque token is stored as (before it is handed out); `None` for a
    /// JWT, which is not stored.
    pub fn row(
        &self,
        config: &Config,
        now: i64,
        spec: &AccessTokenFor<'_>,
    ) -> Option<OpaqueAccessToken> {
        let (_, key) = self.opaque.as_ref()?;
        Some(OpaqueAccessToken {
            token_hash: *key,
            jti: self.jti.clone(),
            grant_id: spec.grant_id.map(str::to_owned),
            client_id: spec.client.id.clone(),
            user_id: spec.user_id.map(str::to_owned),
            scope: spec.scope.clone(),
            audience: config.audience().to_owned(),
            issued_at: now,
            expires_at: access_expiry(config, now, spec.not_after).0,
            revoked_at: None,
        })
    }

    /// The token issued at `now`: the opaque one drawn, or the JWT signed now.
    pub fn finish(
        self,
        state: &AppState,
        now: i64,
        spec: &AccessTokenFor<'_>,
    ) -> Result<IssuedAccessToken> {
        let (exp, expires_in) = access_expiry(&state.config, now, spec.not_after);
        let token = match self.opaque {
            Some((token, _)) => token,
            None => {
                let claims = AccessClaims {
                    iss: state.config.issuer.clone(),
                    // RFC 9068 §2.2: for a client acting for itself, `sub` is the
                    // client id.
                    sub: spec.user_id.unwrap_or(&spec.client.id).to_owned(),
                    aud: state.config.audience().to_owned(),
                    client_id: spec.client.id.clone(),
                    scope: spec.scope.to_string(),
                    jti: self.jti,
                    exp,
                    iat: now,
                    grant_id: spec.grant_id.map(str::to_owned),
                    auth_time: spec.auth_time,
                };
                state.keys.current().sign_jwt(now, &claims)?
            }
        };
        Ok(IssuedAccessToken { token, expires_in })
    }
}

/// When an access token issued at `now` expires (never after `not_after`), and its
/// lifetime in seconds.
fn access_expiry(config: &Config, now: i64, not_after: Option<i64>) -> (i64, u64) {
    let configured = now + config.tokens.access_token_ttl.as_secs() as i64;
    let exp = not_after.map_or(configured, |cap| configured.min(cap));
    (exp, (exp - now).max(0) as u64)
}

/// Mint a refresh token of `grant_id`: the token, and the row (its key) that the
/// caller must store before handing it out. `chain` is the chain a rotation continues;
/// `None` starts a new one.
pub fn mint_refresh_token(
    state: &AppState,
    chain: Option<ChainId>,
    grant_id: &str,
    client: &Client,
    user_id: Option<&str>,
    scope: &Scope,
    not_after: Option<i64>,
) -> (String, RefreshToken) {
    let token = chained_token(&chain.unwrap_or_else(new_chain));
    let row = refresh_row(
        &state.config,
        state.clock.now(),
        &token,
        grant_id,
        &client.id,
        user_id,
        scope,
        not_after,
    );
    (token, row)
}

/// The row of refresh token `token` issued at `now`: its key, what it is for, and its
/// expiry (never after `not_after`).
#[allow(clippy::too_many_arguments)]
pub fn refresh_row(
    config: &Config,
    now: i64,
    token: &str,
    grant_id: &str,
    client_id: &str,
    user_id: Option<&str>,
    scope: &Scope,
    not_after: Option<i64>,
) -> RefreshToken {
    let configured = now + config.tokens.refresh_token_ttl.as_secs() as i64;
    RefreshToken {
        token_hash: refresh_key(token),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_id: user_id.map(str::to_owned),
        scope: scope.clone(),
        issued_at: now,
        expires_at: not_after.map_or(configured, |cap| configured.min(cap)),
        used_at: None,
    }
}

/// A successful token response with `Cache-Control: no-store` (RFC 6749 §5.1).
///
/// `scope` is always included, so a client never has to guess what it was granted
/// (RFC 6749 §5.1 requires it only when it differs from the request).
pub fn token_response(
    access: IssuedAccessToken,
    refresh: Option<String>,
    scope: &Scope,
) -> Response {
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: refresh,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
    };
    no_store(Json(body).into_response())
}

/// Mark a response as never to be cached (RFC 6749 §5.1, RFC 7662 §4).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
