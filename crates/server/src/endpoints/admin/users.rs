//! `/admin/users`: create, list, show and delete the people who sign in at Tessera,
//! and set their passwords (Argon2id, through [`crate::admin`]).

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Administrator;
use super::problem::{ApiError, ApiResult, Json, Path, Problem};
use crate::admin;
use crate::revocation;
use crate::state::AppState;
use crate::store::User;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// Every user, in order of creation.
    pub items: Vec<UserView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1 to 64 characters without spaces.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// At least 8 characters.
    pub password: String,
}

async fn find(state: &AppState, username: &str) -> ApiResult<User> {
    state
        .store
        .get_user_by_username(username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {username}")))
}

#[utoipa::path(
    post, path = "/users", operation_id = "create_user", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView,
            headers(("Location" = String, description = "The user's URL"))),
        (status = 400, description = "Invalid username or password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> ApiResult<Response> {
    if state
        .store
        .get_user_by_username(&body.username)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "user {} already exists",
            body.username
        )));
    }
    let user = admin::create_user(
        state.store.as_ref(),
        &body.username,
        &body.password,
        state.clock.now(),
    )
    .await
    .map_err(|e| match ApiError::refused(e) {
        // Created by someone else since the check above.
        ApiError::Conflict(_) => {
            ApiError::Conflict(format!("user {} already exists", body.username))
        }
        other => other,
    })?;
    let location = super::location(&["users", &user.username]);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(UserView::from(&user)),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/users", operation_id = "list_users", tag = "users",
    responses((status = 200, description = "Every user", body = UserList))
)]
pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<UserList>> {
    let users = state.store.list_users().await?;
    Ok(axum::Json(UserList {
        items: users.iter().map(UserView::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/users/{username}", operation_id = "get_user", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json((&find(&state, &username).await?).into()))
}

#[utoipa::path(
    delete, path = "/users/{username}", operation_id = "delete_user", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses(
        (status = 204, description = "Deleted with their sessions and consents, after revoking their grants (resource servers learn of it from the revocation feed)"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(admin): Extension<Administrator>,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let reason = format!(
        "user deleted through the admin API (token {})",
        admin.token_name
    );
    if !revocation::delete_user(&state, &username, &reason).await? {
        return Err(ApiError::NotFound(format!("no user {username}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/users/{username}/password", operation_id = "set_user_password", tag = "users",
    params(("username" = String, Path, description = "The username")),
    request_body = NewPassword,
    responses(
        (status = 204, description = "Changed; the user's sessions have ended"),
        (status = 400, description = "Invalid password", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_password(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Json(body): Json<NewPassword>,
) -> ApiResult<StatusCode> {
    find(&state, &username).await?;
    admin::set_password(state.store.as_ref(), &username, &body.password)
        .await
        .map_err(ApiError::refused)?;
    Ok(StatusCode::NO_CONTENT)
}
