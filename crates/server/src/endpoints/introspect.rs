//! `POST /introspect`: token introspection (RFC 7662) for authenticated clients, such
//! as resource servers. Public clients cannot authenticate and are refused (§2.1).
//!
//! Answers for active access tokens are kept in memory for a moment (see
//! [`crate::tokens::answers`]): a resource server introspects the same token on every
//! request it serves.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tessera_protocol::IntrospectionResponse;

use super::token::parse_form;
use crate::client_auth::{authenticate_at, Method};
use crate::crypto::hash_secret;
use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::tokens::lookup::{find_hashed, introspect as describe, Found};
use crate::tokens::no_store;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(answer) => no_store(
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                answer,
            )
                .into_response(),
        ),
        Err(e) => e.into_response(),
    }
}

/// The answer's JSON body.
async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Bytes> {
    let form = parse_form(headers, body)?;
    let caller = authenticate_at(state, headers, &form, "/introspect").await?;
    if caller.method == Method::None {
        return Err(OAuthError::InvalidClient(
            "introspection requires client authentication".into(),
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    let key = hash_secret(token);
    if let Some(kept) = state.answers.get(&key, state.clock.now()) {
        return Ok(kept);
    }
    // Read before the store, so that a revocation committed meanwhile voids the answer.
    let generation = state.answers.generation();
    let (answer, access) =
        match find_hashed(state, token, &key, form.get("token_type_hint")).await? {
            Some(found) => {
                let access = !matches!(found, Found::Refresh(_));
                (describe(state, token, found).await?, access)
            }
            None => (IntrospectionResponse::default(), false),
        };
    let json = Bytes::from(serde_json::to_vec(&answer).map_err(anyhow::Error::from)?);
    if let (true, true, Some(exp)) = (access, answer.active, answer.exp) {
        state.answers.keep(key, json.clone(), exp, generation);
    }
    Ok(json)
}
