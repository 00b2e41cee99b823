//! `/admin/scopes`: the scope catalog, each scope with the description a person reads
//! on the consent page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{ApiError, ApiResult, Json, Path, Problem};
use crate::admin;
use crate::state::AppState;
use crate::store::ScopeEntry;

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    #[schema(example = "transactions:read")]
    pub name: String,
    #[schema(example = "Read your transactions")]
    pub description: String,
}

impl From<ScopeEntry> for ScopeView {
    fn from(s: ScopeEntry) -> Self {
        Self {
            name: s.name,
            description: s.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeList {
    /// Every scope, ordered by name.
    pub items: Vec<ScopeView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    /// What the person reads on the consent page, e.g. "Read your transactions".
    pub description: String,
}

#[utoipa::path(
    get, path = "/scopes", operation_id = "list_scopes", tag = "scopes",
    responses((status = 200, description = "The scope catalog", body = ScopeList))
)]
pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<ScopeList>> {
    let scopes = state.store.list_scopes().await?;
    Ok(axum::Json(ScopeList {
        items: scopes.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    put, path = "/scopes/{name}", operation_id = "put_scope", tag = "scopes",
    params(("name" = String, Path, description = "The scope name (RFC 6749 section 3.3)")),
    request_body = ScopeRequest,
    responses(
        (status = 200, description = "The description was replaced", body = ScopeView),
        (status = 201, description = "Created", body = ScopeView,
            headers(("Location" = String, description = "The scope's URL"))),
        (status = 400, description = "Invalid name or empty description", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<ScopeRequest>,
) -> ApiResult<Response> {
    let existed = state
        .store
        .list_scopes()
        .await?
        .iter()
        .any(|s| s.name == name);
    admin::create_scope(state.store.as_ref(), &name, &body.description)
        .await
        .map_err(ApiError::refused)?;
    let view = axum::Json(ScopeView {
        name: name.clone(),
        description: body.description,
    });
    Ok(if existed {
        view.into_response()
    } else {
        let location = super::location(&["scopes", &name]);
        (StatusCode::CREATED, [(header::LOCATION, location)], view).into_response()
    })
}

#[utoipa::path(
    delete, path = "/scopes/{name}", operation_id = "delete_scope", tag = "scopes",
    params(("name" = String, Path, description = "The scope name")),
    responses(
        (status = 204, description = "Deleted from the catalog"),
        (status = 404, description = "No such scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_scope(&name).await? {
        return Err(ApiError::NotFound(format!("no scope {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
