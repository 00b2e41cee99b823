//! Registration errors (RFC 7591 §3.2.2, RFC 7592 §2, RFC 6750 §3.1 for the bearer
//! tokens that protect the endpoints).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A redirect URI is missing, malformed or not allowed.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    /// Any other metadata field is invalid or inconsistent.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    /// The software statement is not a well-formed JWT.
    #[error("invalid_software_statement: {0}")]
    InvalidSoftwareStatement(String),
    /// The software statement is not signed by an issuer Tessera trusts.
    #[error("unapproved_software_statement: {0}")]
    UnapprovedSoftwareStatement(String),
    /// The request itself is malformed (e.g. not JSON, a read-only field in an update).
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Missing, unknown, used up or expired bearer token: 401.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// Registration is closed: 403.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl RegistrationError {
    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        match self {
            Self::InvalidRedirectUri(d) => {
                (StatusCode::BAD_REQUEST, "invalid_redirect_uri", Some(d))
            }
            Self::InvalidClientMetadata(d) => {
                (StatusCode::BAD_REQUEST, "invalid_client_metadata", Some(d))
            }
            Self::InvalidSoftwareStatement(d) => (
                StatusCode::BAD_REQUEST,
                "invalid_software_statement",
                Some(d),
            ),
            Self::UnapprovedSoftwareStatement(d) => (
                StatusCode::BAD_REQUEST,
                "unapproved_software_statement",
                Some(d),
            ),
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", Some(d)),
            Self::InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", Some(d)),
            Self::AccessDenied(d) => (StatusCode::FORBIDDEN, "access_denied", Some(d)),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        }
    }
}

impl From<crate::error::OAuthError> for RegistrationError {
    fn from(e: crate::error::OAuthError) -> Self {
        Self::Internal(anyhow::anyhow!("{e}"))
    }
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "registration failed");
        }
        let (status, code, description) = self.parts();
        let body = serde_json::json!({ "error": code, "error_description": description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"tessera-registration\", error=\"invalid_token\", error_description=\"{}\"",
                description.unwrap_or_default().replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}
