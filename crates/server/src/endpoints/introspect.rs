//! `POST /introspect`: token introspection (RFC 7662) for authenticated clients, such
//! as resource servers. Public clients cannot authenticate and are refused (§2.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_protocol::IntrospectionResponse;

use super::token::parse_form;
use crate::client_auth::{authenticate_at, Method};
use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::tokens::lookup::{find, introspect as describe};
use crate::tokens::no_store;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<IntrospectionResponse> {
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
    match find(state, token, form.get("token_type_hint")).await? {
        Some(found) => describe(state, token, found).await,
        None => Ok(IntrospectionResponse::default()),
    }
}
