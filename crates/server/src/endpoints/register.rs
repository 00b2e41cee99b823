//! `POST /register` (RFC 7591) and `GET|PUT|DELETE /register/{client_id}` (RFC 7592).
//! Registration follows the operator's policy (closed, initial access token, open);
//! management needs the client's registration access token, rotated on every update.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tessera_protocol::Scope;

use crate::admin;
use crate::config::RegistrationPolicy;
use crate::crypto::{constant_time_eq, hash_secret, random_token};
use crate::registration::{response_body, MetadataRequest, RegistrationError};
use crate::revocation::revoke_all;
use crate::state::AppState;
use crate::store::Client;

type Result<T> = std::result::Result<T, RegistrationError>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<MetadataRequest> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(RegistrationError::InvalidRequest(
            "the body must be application/json".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RegistrationError::InvalidRequest(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(RegistrationError::InvalidRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| RegistrationError::InvalidClientMetadata(e.to_string()))
}

fn registration_uri(state: &AppState, client_id: &str) -> String {
    state.config.endpoint(&format!("/register/{client_id}"))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The scopes the registration policy allows this request, after checking its token.
async fn allowed_scope(state: &AppState, headers: &HeaderMap) -> Result<Scope> {
    let config = &state.config.registration;
    match config.policy {
        RegistrationPolicy::Closed => Err(RegistrationError::AccessDenied(
            "dynamic registration is closed; ask an administrator".into(),
        )),
        RegistrationPolicy::Open => Ok(Scope::parse(&config.open_scope).unwrap_or_default()),
        RegistrationPolicy::InitialAccessToken => {
            let token = bearer(headers).ok_or_else(|| {
                RegistrationError::InvalidToken("an initial access token is required".into())
            })?;
            let now = state.clock.now();
            let found = state
                .store
                .find_initial_access_token(&hash_secret(token), now)
                .await?;
            found.map(|t| t.scope).ok_or_else(used_up)
        }
    }
}

fn used_up() -> RegistrationError {
    RegistrationError::InvalidToken(
        "the initial access token is unknown, used up or expired".into(),
    )
}

/// Use the initial access token once, atomically, after the request was found valid
/// (so that a rejected request does not cost one of its uses).
async fn consume(state: &AppState, headers: &HeaderMap) -> Result<()> {
    if state.config.registration.policy != RegistrationPolicy::InitialAccessToken {
        return Ok(());
    }
    let token = bearer(headers).ok_or_else(used_up)?;
    let now = state.clock.now();
    match state
        .store
        .use_initial_access_token(&hash_secret(token), now)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(used_up()),
    }
}

/// `POST /register`.
pub async fn register(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle_register(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_register(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response> {
    let allowed = allowed_scope(state, headers).await?;
    let request = parse_body(headers, body)?;
    let catalog = state.store.list_scopes().await?;
    let new = request.into_new_client(&allowed, &catalog)?;
    consume(state, headers).await?;
    let now = state.clock.now();
    let created = admin::create_client_sealed(state.store.as_ref(), new, &state.sealer, now)
        .await
        .map_err(|e| RegistrationError::InvalidClientMetadata(format!("{e:#}")))?;
    let mut client = created.client;
    let token = random_token();
    client.registration_token_hash = Some(hash_secret(&token));
    state.store.update_client(&client).await?;
    state.clients.invalidate(&client.id);
    tracing::info!(client_id = %client.id, "client registered dynamically");
    let mut body = response_body(&client, &registration_uri(state, &client.id));
    body["registration_access_token"] = json!(token);
    if let Some(secret) = created.secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(json_response(StatusCode::CREATED, body))
}

/// The client named in the path, if the registration access token is its own.
/// RFC 7592 §2: an unknown client and a wrong token answer alike (401).
async fn managed_client(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<Client> {
    let refused =
        || RegistrationError::InvalidToken("the registration access token is invalid".into());
    let token = bearer(headers).ok_or_else(refused)?;
    let client = state
        .store
        .get_client(client_id)
        .await?
        .ok_or_else(refused)?;
    match &client.registration_token_hash {
        Some(stored) if constant_time_eq(stored, &hash_secret(token)) => Ok(client),
        _ => Err(refused()),
    }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    match managed_client(&state, &headers, &client_id).await {
        Ok(client) => json_response(
            StatusCode::OK,
            response_body(&client, &registration_uri(&state, &client.id)),
        ),
        Err(e) => e.into_response(),
    }
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): full replacement of the metadata; the
/// registration access token is rotated.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    match handle_update(&state, &headers, &client_id, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_update(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    body: &[u8],
) -> Result<Response> {
    let client = managed_client(state, headers, client_id).await?;
    let request = parse_body(headers, body)?;
    // §2.2: the body names the client, and must not carry the server-managed fields.
    if request.client_id.as_deref() != Some(client.id.as_str()) {
        return Err(RegistrationError::InvalidRequest(
            "client_id must be present and match the client".into(),
        ));
    }
    if request.registration_access_token.is_some()
        || request.registration_client_uri.is_some()
        || request.client_secret_expires_at.is_some()
        || request.client_id_issued_at.is_some()
    {
        return Err(RegistrationError::InvalidRequest(
            "registration_access_token, registration_client_uri, client_secret_expires_at and client_id_issued_at must not be sent"
                .into(),
        ));
    }
    if let Some(secret) = &request.client_secret {
        let matches = client
            .secret_hash
            .is_some_and(|h| constant_time_eq(&h, &hash_secret(secret)));
        if !matches {
            return Err(RegistrationError::InvalidRequest(
                "client_secret does not match the client's".into(),
            ));
        }
    }
    let catalog = state.store.list_scopes().await?;
    // An update may narrow the client's scope but never widen it.
    let new = request.into_new_client(&client.scope, &catalog)?;
    if new.auth_method != Some(client.auth_method) {
        return Err(RegistrationError::InvalidClientMetadata(
            "token_endpoint_auth_method cannot change; register a new client".into(),
        ));
    }
    let mut updated = client.clone();
    updated.name = new.name;
    updated.redirect_uris = new
        .redirect_uris
        .iter()
        .map(|u| tessera_protocol::RedirectUri::parse(u))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| RegistrationError::InvalidRedirectUri(e.to_owned()))?;
    updated.scope = Scope::parse(&new.scope).unwrap_or_default();
    updated.required_scope = Scope::from_tokens(
        client
            .required_scope
            .iter()
            .filter(|s| updated.scope.contains(s)),
    );
    updated.grant_types = new.grant_types;
    updated.metadata = new.metadata;
    updated.updated_at = Some(state.clock.now());
    let token = random_token();
    updated.registration_token_hash = Some(hash_secret(&token));
    state.store.update_client(&updated).await?;
    state.clients.invalidate(&updated.id);
    let mut body = response_body(&updated, &registration_uri(state, &updated.id));
    body["registration_access_token"] = json!(token);
    Ok(json_response(StatusCode::OK, body))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and everything issued to
/// it are gone; its grants are revoked first so resource servers learn of it.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let result = async {
        let client = managed_client(&state, &headers, &client_id).await?;
        let grants = state.store.list_client_grants(&client.id).await?;
        revoke_all(
            &state,
            grants,
            "the client deleted its registration (RFC 7592)",
        )
        .await?;
        state.store.delete_client(&client.id).await?;
        state.client_deleted(&client.id);
        Ok::<_, RegistrationError>(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}
