//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /jwks.json`
//! (RFC 7517 §5). The metadata lists only what Tessera actually supports.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_protocol::metadata::AuthorizationServerMetadata;
use tessera_protocol::GrantType;

use crate::client_auth::{signing_algs, METHODS};
use crate::error::OAuthError;
use crate::state::AppState;

pub async fn metadata(State(state): State<AppState>) -> Response {
    let scopes = match state.store.list_scopes().await {
        Ok(s) => s,
        Err(e) => return OAuthError::Internal(e).into_response(),
    };
    let c = &state.config;
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let authenticated: Vec<String> = METHODS
        .iter()
        .filter(|m| **m != "none")
        .map(|m| m.to_string())
        .collect();
    let doc = AuthorizationServerMetadata {
        issuer: c.issuer.clone(),
        authorization_endpoint: c.endpoint("/authorize"),
        token_endpoint: c.endpoint("/token"),
        jwks_uri: c.endpoint("/jwks.json"),
        revocation_endpoint: c.endpoint("/revoke"),
        introspection_endpoint: c.endpoint("/introspect"),
        scopes_supported: scopes.into_iter().map(|s| s.name).collect(),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: GrantType::ALL
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
        token_endpoint_auth_methods_supported: strings(&METHODS),
        revocation_endpoint_auth_methods_supported: strings(&METHODS),
        introspection_endpoint_auth_methods_supported: authenticated,
        token_endpoint_auth_signing_alg_values_supported: signing_algs(),
        revocation_endpoint_auth_signing_alg_values_supported: signing_algs(),
        introspection_endpoint_auth_signing_alg_values_supported: signing_algs(),
        code_challenge_methods_supported: strings(&["S256"]),
        authorization_response_iss_parameter_supported: true,
        access_token_signing_alg_values_supported: vec![state.keys.alg().as_str().to_owned()],
        prompt_values_supported: strings(&["none", "login", "consent"]),
        tessera_revocation_feed_endpoint: c.endpoint("/revocation-feed"),
        registration_endpoint: (c.registration.policy != crate::config::RegistrationPolicy::Closed)
            .then(|| c.endpoint("/register")),
    };
    Json(doc).into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.current().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
