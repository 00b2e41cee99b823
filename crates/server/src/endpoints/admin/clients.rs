//! `/admin/clients`: register, list (paged by id), show, replace, delete clients and
//! rotate their secrets. Registration goes through [`crate::admin::create_client`].

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_protocol::GrantType;
use utoipa::{IntoParams, ToSchema};

use super::auth::Administrator;
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::admin::{self, NewClient};
use crate::revocation;
use crate::state::AppState;
use crate::store::{AuthMethod, Client, ClientMetadata, TokenFormat};

/// Page size when `limit` is not given, and the largest one allowed.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
/// The longest grace period of a rotated secret: 30 days.
const MAX_GRACE_SECONDS: u32 = 30 * 24 * 3600;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantTypeName {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl From<GrantTypeName> for GrantType {
    fn from(g: GrantTypeName) -> Self {
        match g {
            GrantTypeName::AuthorizationCode => GrantType::AuthorizationCode,
            GrantTypeName::RefreshToken => GrantType::RefreshToken,
            GrantTypeName::ClientCredentials => GrantType::ClientCredentials,
        }
    }
}

impl From<GrantType> for GrantTypeName {
    fn from(g: GrantType) -> Self {
        match g {
            GrantType::AuthorizationCode => Self::AuthorizationCode,
            GrantType::RefreshToken => Self::RefreshToken,
            GrantType::ClientCredentials => Self::ClientCredentials,
        }
    }
}

/// How the client's access tokens are minted: JWT (RFC 9068) or opaque.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormatName {
    #[default]
    Jwt,
    Opaque,
}

impl From<TokenFormatName> for TokenFormat {
    fn from(f: TokenFormatName) -> Self {
        match f {
            TokenFormatName::Jwt => TokenFormat::Jwt,
            TokenFormatName::Opaque => TokenFormat::Opaque,
        }
    }
}

impl From<TokenFormat> for TokenFormatName {
    fn from(f: TokenFormat) -> Self {
        match f {
            TokenFormat::Jwt => Self::Jwt,
            TokenFormat::Opaque => Self::Opaque,
        }
    }
}

/// A client as the admin API shows it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// A public client has no secret.
    pub public: bool,
    /// How it authenticates at the token endpoint, e.g. `client_secret_basic`.
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    /// The scopes it may be granted, space separated.
    pub scope: String,
    /// The scopes it cannot work without, space separated.
    pub required_scope: String,
    pub grant_types: Vec<GrantTypeName>,
    pub token_format: TokenFormatName,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub contacts: Vec<String>,
    /// Registered through RFC 7591 dynamic registration.
    pub dynamic: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: Option<i64>,
    /// Until when (Unix seconds) the secret before the last rotation still works.
    pub previous_secret_expires_at: Option<i64>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            public: c.is_public(),
            auth_method: c.auth_method.as_str().to_owned(),
            redirect_uris: c.redirect_uris.iter().map(|u| u.as_str().into()).collect(),
            scope: c.scope.to_string(),
            required_scope: c.required_scope.to_string(),
            grant_types: c.grant_types.iter().map(|g| (*g).into()).collect(),
            token_format: c.token_format.into(),
            client_uri: c.metadata.client_uri.clone(),
            logo_uri: c.metadata.logo_uri.clone(),
            policy_uri: c.metadata.policy_uri.clone(),
            tos_uri: c.metadata.tos_uri.clone(),
            contacts: c.metadata.contacts.clone(),
            dynamic: c.dynamic,
            created_at: c.created_at,
            updated_at: c.updated_at,
            previous_secret_expires_at: c.previous_secret.map(|(_, until)| until),
        }
    }
}

/// A newly registered client with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    /// `null` for a public client. Store it now: it is not shown again.
    pub client_secret: Option<String>,
}

/// The settings of a client: the body of a registration (`POST`) and of a full
/// replacement (`PUT`), where a field left out takes its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// Display name, shown on the consent page.
    pub name: String,
    /// Matched exactly, except for the port of loopback URIs. Required for the
    /// `authorization_code` grant.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes the client may be granted, space separated; each must exist.
    #[serde(default)]
    pub scope: String,
    /// Scopes it cannot work without (a subset of `scope`), space separated.
    #[serde(default)]
    pub required_scope: String,
    /// Registration: a public client gets no secret. Replacement: may repeat the
    /// client's kind, not change it.
    #[serde(default)]
    pub public: Option<bool>,
    /// Default: `authorization_code` and `refresh_token`.
    #[serde(default)]
    pub grant_types: Vec<GrantTypeName>,
    #[serde(default)]
    pub token_format: TokenFormatName,
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub logo_uri: Option<String>,
    #[serde(default)]
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub tos_uri: Option<String>,
    /// Up to 10 addresses of people responsible for the client.
    #[serde(default)]
    pub contacts: Vec<String>,
    /// Registration only: `client_secret_basic` (default for a confidential client),
    /// `client_secret_post`, `client_secret_jwt`, `private_key_jwt` (no secret is
    /// issued; needs `jwks` or `jwks_uri`) or `none` (a public client). A replacement
    /// keeps the client's method.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// A JWK Set of public keys for `private_key_jwt`, by value.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the JWK Set for `private_key_jwt` (https).
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many clients (1 to 200; default 50).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// One page of clients, ordered by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old secret keeps working, in seconds (at most 30 days; default 0:
    /// it stops working at once).
    #[serde(default)]
    pub grace_period_seconds: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    /// The new secret. Store it now: it is not shown again.
    pub client_secret: String,
    /// Until when (Unix seconds) the old secret still works; `null` if it stopped at once.
    pub previous_secret_expires_at: Option<i64>,
}

/// An absolute https URL (or http on loopback) for a page or image about the client.
fn check_url(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let url = url::Url::parse(&value)
        .map_err(|e| ApiError::Invalid(format!("{field}: {value:?} is not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(Some(value)),
        "http" if loopback => Ok(Some(value)),
        _ => Err(ApiError::Invalid(format!(
            "{field}: {value:?} must be an https URL"
        ))),
    }
}

impl ClientRequest {
    /// The descriptive metadata, checked: what is shown to people must be a web page.
    fn metadata(&mut self, keep: &ClientMetadata) -> ApiResult<ClientMetadata> {
        if self.name.chars().count() > 100 || self.name.chars().any(char::is_control) {
            return Err(ApiError::Invalid(
                "the client name is at most 100 printable characters".into(),
            ));
        }
        let contacts = std::mem::take(&mut self.contacts);
        if contacts.len() > 10
            || contacts
                .iter()
                .any(|c| c.trim().is_empty() || c.len() > 254 || c.chars().any(char::is_control))
        {
            return Err(ApiError::Invalid(
                "contacts: up to 10 addresses of at most 254 characters".into(),
            ));
        }
        let (jwks, jwks_uri) = match (self.jwks.take(), self.jwks_uri.take()) {
            (None, None) => (keep.jwks.clone(), keep.jwks_uri.clone()),
            given => given,
        };
        Ok(ClientMetadata {
            jwks,
            jwks_uri,
            client_uri: check_url("client_uri", self.client_uri.take())?,
            logo_uri: check_url("logo_uri", self.logo_uri.take())?,
            policy_uri: check_url("policy_uri", self.policy_uri.take())?,
            tos_uri: check_url("tos_uri", self.tos_uri.take())?,
            contacts,
            ..keep.clone()
        })
    }

    /// The client to register or (with `keep`, the client being replaced) its new
    /// settings. What the admin API does not manage is kept.
    fn into_new_client(mut self, public: bool, keep: Option<&Client>) -> ApiResult<NewClient> {
        let default = ClientMetadata::default();
        let metadata = self.metadata(keep.map_or(&default, |c| &c.metadata))?;
        let requested_method = match self.token_endpoint_auth_method.take() {
            Some(name) => Some(AuthMethod::parse(&name).ok_or_else(|| {
                ApiError::Invalid(format!(
                    "token_endpoint_auth_method {name:?} is not supported"
                ))
            })?),
            None => None,
        };
        Ok(NewClient {
            name: self.name,
            redirect_uris: self.redirect_uris,
            scope: self.scope,
            required_scope: self.required_scope,
            public,
            grant_types: self.grant_types.into_iter().map(Into::into).collect(),
            token_format: self.token_format.into(),
            auth_method: keep.map(|c| c.auth_method).or(requested_method),
            metadata,
            dynamic: keep.is_some_and(|c| c.dynamic),
        })
    }
}

async fn find(state: &AppState, id: &str) -> ApiResult<Client> {
    state
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no client {id}")))
}

#[utoipa::path(
    post, path = "/clients", operation_id = "create_client", tag = "clients",
    request_body = ClientRequest,
    responses(
        (status = 201, description = "Registered; the secret is in this response only",
            body = CreatedClient, headers(("Location" = String, description = "The client's URL"))),
        (status = 400, description = "Invalid settings", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<ClientRequest>,
) -> ApiResult<Response> {
    let public = body.public.unwrap_or(false);
    let new = body.into_new_client(public, None)?;
    let created =
        admin::create_client_sealed(state.store.as_ref(), new, &state.sealer, state.clock.now())
            .await
            .map_err(ApiError::refused)?;
    let body = CreatedClient {
        client: (&created.client).into(),
        client_secret: created.secret,
    };
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            super::location(&["clients", &created.client.id]),
        )],
        axum::Json(body),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/clients", operation_id = "list_clients", tag = "clients",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of clients", body = ClientPage),
        (status = 400, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<ClientPage>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    // One more than asked tells whether there is a next page.
    let mut clients = state
        .store
        .list_clients_page(query.after.as_deref(), limit + 1)
        .await?;
    let next = if clients.len() > limit as usize {
        clients.truncate(limit as usize);
        clients.last().map(|c| c.id.clone())
    } else {
        None
    };
    Ok(axum::Json(ClientPage {
        items: clients.iter().map(ClientView::from).collect(),
        next,
    }))
}

#[utoipa::path(
    get, path = "/clients/{id}", operation_id = "get_client", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ClientView>> {
    Ok(axum::Json((&find(&state, &id).await?).into()))
}

#[utoipa::path(
    put, path = "/clients/{id}", operation_id = "update_client", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientRequest,
    responses(
        (status = 200, description = "The client as replaced", body = ClientView),
        (status = 400, description = "Invalid settings", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ClientRequest>,
) -> ApiResult<axum::Json<ClientView>> {
    let client = find(&state, &id).await?;
    if body.public.is_some_and(|p| p != client.is_public()) {
        return Err(ApiError::Invalid(
            "a client cannot change between public and confidential; register a new one".into(),
        ));
    }
    let mut new = body.into_new_client(client.is_public(), Some(&client))?;
    // The method stays; the shared checks then apply to the replacement as at creation.
    new.auth_method = Some(client.auth_method);
    let checked = admin::check_settings(state.store.as_ref(), &new)
        .await
        .map_err(ApiError::refused)?;
    let updated = Client {
        name: new.name,
        redirect_uris: checked.redirect_uris,
        scope: checked.scope,
        required_scope: checked.required_scope,
        grant_types: checked.grant_types,
        token_format: new.token_format,
        metadata: new.metadata,
        updated_at: Some(state.clock.now()),
        ..client
    };
    let found = state.store.update_client(&updated).await?;
    state.clients.invalidate(&id);
    if !found {
        return Err(ApiError::NotFound(format!("no client {id}")));
    }
    Ok(axum::Json((&updated).into()))
}

#[utoipa::path(
    delete, path = "/clients/{id}", operation_id = "delete_client", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted, after revoking its grants (resource servers learn of it from the revocation feed)"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(admin): Extension<Administrator>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    find(&state, &id).await?;
    let grants = state.store.list_client_grants(&id).await?;
    let reason = format!(
        "client deleted through the admin API (token {})",
        admin.token_name
    );
    revocation::revoke_all(&state, grants, &reason).await?;
    let found = state.store.delete_client(&id).await?;
    state.client_deleted(&id);
    if !found {
        return Err(ApiError::NotFound(format!("no client {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/clients/{id}/rotate-secret", operation_id = "rotate_client_secret", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = Option<RotateRequest>, description = "Optional; without a body the old secret stops working at once"),
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecret),
        (status = 400, description = "Invalid grace period", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client has no secret (a public or private_key_jwt client)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(r.body_text()),
        _ => ApiError::Invalid(r.body_text()),
    })?;
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Invalid(format!("the body must be JSON: {e}")))?
    };
    if request.grace_period_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::Invalid(format!(
            "grace_period_seconds is at most {MAX_GRACE_SECONDS} (30 days)"
        )));
    }
    let client = find(&state, &id).await?;
    if !client.auth_method.uses_secret() {
        return Err(ApiError::Conflict(format!(
            "client {id} authenticates with {} and has no secret",
            client.auth_method.as_str()
        )));
    }
    // With a grace period the old secret keeps working until it ends (client
    // authentication reads `previous_secret`); without one it stops at once.
    let now = state.clock.now();
    let grace = Duration::from_secs(request.grace_period_seconds.into());
    let secret = admin::rotate_client_secret_sealed(
        state.store.as_ref(),
        &id,
        Some(grace),
        &state.sealer,
        now,
    )
    .await
    .map_err(ApiError::refused);
    state.clients.invalidate(&id);
    let secret = secret?;
    let previous = find(&state, &id).await?.previous_secret;
    let body = RotatedSecret {
        client_id: id,
        client_secret: secret,
        previous_secret_expires_at: previous.map(|(_, until)| until),
    };
    Ok(axum::Json(body).into_response())
}
