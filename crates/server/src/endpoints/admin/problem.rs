//! The admin API's errors, answered as RFC 7807 problem details
//! (`application/problem+json` with `type`, `title`, `status`, `detail`).
//!
//! Client-safe text lives in the variants; an internal cause is logged with its chain
//! and answered without detail.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3).
pub const CHALLENGE: &str = "Bearer realm=\"tessera-admin\"";

/// An RFC 7807 problem details object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:tessera:problem:invalid-request`.
    #[serde(rename = "type")]
    #[schema(example = "urn:tessera:problem:invalid-request")]
    pub kind: String,
    /// A short summary of the kind of problem.
    #[schema(example = "The request is invalid")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong with this request.
    #[schema(example = "the client name must not be empty")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input: 400.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No admin token, or one that is unknown or revoked: 401.
    #[error("unauthorized")]
    Unauthorized { token_given: bool },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request contradicts the current state, e.g. a username that is taken: 409.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Status, `type` slug and title: one exhaustive match.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Invalid(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "The request is invalid",
            ),
            Self::Unauthorized { .. } => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid admin API token is required",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "The request conflicts with the current state",
            ),
            Self::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The request body must be JSON",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The client-safe detail; internal causes are never shown.
    fn detail(&self) -> Option<String> {
        match self {
            Self::Invalid(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::TooLarge(d)
            | Self::UnsupportedMediaType(d) => Some(d.clone()),
            Self::Unauthorized { token_given: true } => {
                Some("the admin API token is unknown or revoked".into())
            }
            Self::Unauthorized { token_given: false } => {
                Some("send `Authorization: Bearer <admin API token>`".into())
            }
            Self::MethodNotAllowed | Self::Internal(_) => None,
        }
    }

    /// An error of a [`crate::admin`] operation. Those refuse bad input with a message
    /// (`bail!`, perhaps with context), which the administrator should read; a
    /// duplicate key is a conflict; a failure of the database, a file or a task is
    /// internal.
    pub fn refused(e: anyhow::Error) -> Self {
        let unique_violation = e.chain().any(|c| {
            c.downcast_ref::<sqlx::Error>()
                .is_some_and(|s| matches!(s, sqlx::Error::Database(d) if d.is_unique_violation()))
        });
        if unique_violation {
            return Self::Conflict("it exists already".into());
        }
        let system = e.chain().any(|c| {
            c.is::<sqlx::Error>() || c.is::<std::io::Error>() || c.is::<tokio::task::JoinError>()
        });
        if system {
            Self::Internal(e)
        } else {
            Self::Invalid(format!("{e:#}"))
        }
    }
}

impl From<crate::error::OAuthError> for ApiError {
    fn from(e: crate::error::OAuthError) -> Self {
        Self::Internal(e.into())
    }
}

/// A body that cannot be read: unreadable JSON, a missing or unknown field, the wrong
/// content type, or too many bytes.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge(r.body_text()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(r.body_text()),
            _ => Self::Invalid(r.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::Invalid(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::Invalid(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind();
        match &self {
            Self::Internal(e) => tracing::error!(error = format!("{e:#}"), "admin API error"),
            other => tracing::debug!(error = %other, "admin API request refused"),
        }
        let problem = Problem {
            kind: format!("urn:tessera:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.detail(),
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Self::Unauthorized { token_given } = self {
            let challenge = if token_given {
                HeaderValue::from_static("Bearer realm=\"tessera-admin\", error=\"invalid_token\"")
            } else {
                HeaderValue::from_static(CHALLENGE)
            };
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// A JSON request body whose rejections are problem details. Unknown fields are
/// refused by `#[serde(deny_unknown_fields)]` on each body type.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Query parameters whose rejections are problem details.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters whose rejections are problem details.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Any path under `/admin/` that is not a route.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such admin API resource".into())
}

/// A route asked with a method it does not have (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::ApiError;

    #[test]
    fn refused_input_is_a_400_and_failures_are_internal() {
        let plain = ApiError::refused(anyhow::anyhow!("the client name must not be empty"));
        assert!(matches!(plain, ApiError::Invalid(d) if d == "the client name must not be empty"));
        let with_context: anyhow::Result<()> = Err(anyhow::anyhow!("no kty")).context("jwks");
        let e = ApiError::refused(with_context.unwrap_err());
        assert!(matches!(e, ApiError::Invalid(d) if d == "jwks: no kty"));
        let database = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("listing scopes");
        assert!(matches!(ApiError::refused(database), ApiError::Internal(_)));
        let file = anyhow::Error::from(std::io::Error::other("disk full"));
        assert!(matches!(ApiError::refused(file), ApiError::Internal(_)));
    }
}
