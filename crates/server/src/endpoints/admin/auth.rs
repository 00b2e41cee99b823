//! Admin API tokens: issued by `tessera admin-token create`, stored only as SHA-256
//! hashes, and required as `Authorization: Bearer <token>` (RFC 6750 §2.1) on every
//! admin API request but the OpenAPI document.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use crate::crypto::{hash_secret, random_id, random_token};
use crate::state::AppState;
use crate::store::{AdminToken, Store};

/// Who made an admin API request: put in the request's extensions once the token is checked.
#[derive(Debug, Clone)]
pub struct Administrator {
    pub token_id: String,
    pub token_name: String,
}

/// Issue an admin API token named `name`. Returns the stored record and the token
/// (256 random bits), which exists nowhere else: show it once.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    now: i64,
) -> anyhow::Result<(AdminToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        anyhow::bail!("a token name is 1 to 100 printable characters");
    }
    let token = random_token();
    let record = AdminToken {
        id: random_id(),
        name: name.to_owned(),
        token_hash: hash_secret(&token),
        created_at: now,
        revoked_at: None,
    };
    store.create_admin_token(&record).await?;
    Ok((record, token))
}

/// The token of an `Authorization: Bearer` header, if there is one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: let the request through only with an unrevoked admin API token. The
/// token is found by its SHA-256 hash, so no stored secret is ever compared.
pub async fn require_admin(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request.headers().contains_key(header::AUTHORIZATION);
    let Some(token) = bearer(&request) else {
        return ApiError::Unauthorized { token_given: given }.into_response();
    };
    let found = match state.store.find_admin_token(&hash_secret(token)).await {
        Ok(found) => found,
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    let Some(found) = found else {
        return ApiError::Unauthorized { token_given: true }.into_response();
    };
    tracing::info!(
        token_id = %found.id,
        method = %request.method(),
        path = %request.uri().path(),
        "admin API request"
    );
    request.extensions_mut().insert(Administrator {
        token_id: found.id,
        token_name: found.name,
    });
    next.run(request).await
}
