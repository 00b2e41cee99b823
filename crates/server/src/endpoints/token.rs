//! `POST /token` (RFC 6749 §3.2): authenticate the client, parse the request into its
//! grant, and dispatch with one `match`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use tessera_protocol::{Form, GrantType, TokenRequest};

use crate::client_auth::authenticate;
use crate::error::{OAuthError, Result};
use crate::grants;
use crate::state::AppState;

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Parse a form body, insisting on `application/x-www-form-urlencoded` (RFC 6749 §3.2).
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Form> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    Form::parse(body).map_err(|e| OAuthError::InvalidRequest(e.to_string().into()))
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response> {
    let form = parse_form(headers, body)?;
    let client = authenticate(state, headers, &form).await?.client;
    let request =
        TokenRequest::from_form(&form).map_err(|(code, d)| OAuthError::from_code(code, d))?;
    // RFC 6749 §5.2: the client must be registered for the grant it uses.
    if !client.allows_grant(request.grant_type()) {
        return Err(OAuthError::UnauthorizedClient(
            format!(
                "this client may not use the {} grant",
                request.grant_type().as_str()
            )
            .into(),
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            grants::authorization_code::handle(
                state,
                &client,
                &code,
                redirect_uri.as_ref(),
                &code_verifier,
            )
            .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => grants::refresh_token::handle(state, &client, &refresh_token, scope.as_ref()).await,
        TokenRequest::ClientCredentials { scope } => {
            debug_assert!(client.allows_grant(GrantType::ClientCredentials));
            grants::client_credentials::handle(state, &client, scope.as_ref()).await
        }
    }
}
