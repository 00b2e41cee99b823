//! Why a bank request failed, and the JSON answer for each case. Token refusals are
//! `BearerError`'s own RFC 6750 responses; internal causes are logged, never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tessera_resource::BearerError;

use super::input::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `invalid_token` or 403 `insufficient_scope`, with `WWW-Authenticate`.
    #[error(transparent)]
    Bearer(#[from] BearerError),
    /// 404: no such account, or not the caller's (the two look the same).
    #[error("not found")]
    NotFound,
    /// 400: the request body is not a valid transaction.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// 500, logged with its cause.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Bearer(e) => e.into_response(),
            Self::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found" }))).into_response()
            }
            Self::Invalid(e) => {
                let mut body =
                    json!({ "error": "invalid_request", "error_description": e.to_string() });
                if let Some(field) = e.field() {
                    body["field"] = field.into();
                }
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "bank request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": "server_error" })),
                )
                    .into_response()
            }
        }
    }
}
