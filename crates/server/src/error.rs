//! The one error type of the protocol endpoints and its HTTP rendering.
//!
//! Client-safe text lives in the variants; an internal cause is logged with its chain
//! and answered as a bare `server_error` (RFC 6749 §5.2, §4.1.2.1).

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tessera_protocol::error::ErrorResponse;
use tessera_protocol::ErrorCode;

type Text = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(Text),
    #[error("invalid_client: {0}")]
    InvalidClient(Text),
    #[error("invalid_grant: {0}")]
    InvalidGrant(Text),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Text),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Text),
    #[error("invalid_scope: {0}")]
    InvalidScope(Text),
    #[error("access_denied: {0}")]
    AccessDenied(Text),
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(Text),
    #[error("login_required: {0}")]
    LoginRequired(Text),
    #[error("consent_required: {0}")]
    ConsentRequired(Text),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl OAuthError {
    /// The wire code: one exhaustive match, no catch-all.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidClient(_) => ErrorCode::InvalidClient,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::AccessDenied(_) => ErrorCode::AccessDenied,
            Self::UnsupportedResponseType(_) => ErrorCode::UnsupportedResponseType,
            Self::LoginRequired(_) => ErrorCode::LoginRequired,
            Self::ConsentRequired(_) => ErrorCode::ConsentRequired,
            Self::Internal(e) if is_overloaded(e) => ErrorCode::TemporarilyUnavailable,
            Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// The client-safe `error_description`; internal causes are never shown.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(t)
            | Self::InvalidClient(t)
            | Self::InvalidGrant(t)
            | Self::UnauthorizedClient(t)
            | Self::UnsupportedGrantType(t)
            | Self::InvalidScope(t)
            | Self::AccessDenied(t)
            | Self::UnsupportedResponseType(t)
            | Self::LoginRequired(t)
            | Self::ConsentRequired(t) => Some(t),
            Self::Internal(e) if is_overloaded(e) => {
                Some("the database is busy; try again in a moment")
            }
            Self::Internal(_) => None,
        }
    }

    /// Build from a wire code and description (for errors parsed in `tessera-protocol`).
    pub fn from_code(code: ErrorCode, description: impl Into<Text>) -> Self {
        let d = description.into();
        match code {
            ErrorCode::InvalidRequest => Self::InvalidRequest(d),
            ErrorCode::InvalidClient => Self::InvalidClient(d),
            ErrorCode::InvalidGrant => Self::InvalidGrant(d),
            ErrorCode::UnauthorizedClient => Self::UnauthorizedClient(d),
            ErrorCode::UnsupportedGrantType => Self::UnsupportedGrantType(d),
            ErrorCode::InvalidScope => Self::InvalidScope(d),
            ErrorCode::AccessDenied => Self::AccessDenied(d),
            ErrorCode::UnsupportedResponseType => Self::UnsupportedResponseType(d),
            ErrorCode::LoginRequired => Self::LoginRequired(d),
            ErrorCode::ConsentRequired => Self::ConsentRequired(d),
            ErrorCode::ServerError
            | ErrorCode::TemporarilyUnavailable
            | ErrorCode::UnsupportedTokenType
            | ErrorCode::InvalidToken
            | ErrorCode::InsufficientScope
            | ErrorCode::InteractionRequired => {
                Self::Internal(anyhow::anyhow!("unexpected error code {code}: {d}"))
            }
        }
    }

    /// Log an internal cause; protocol errors are the client's and logged at debug.
    pub fn log(&self) {
        match self {
            Self::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            other => tracing::debug!(error = %other, "request refused"),
        }
    }
}

/// Whether an internal error is the database connection pool running dry (no connection
/// within `database_acquire_timeout`): answered 503 `temporarily_unavailable` with
/// `Retry-After`, rather than `server_error`.
fn is_overloaded(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::PoolTimedOut)
        )
    })
}

/// Shorthand for the `StoreResult`/`anyhow` errors that become `server_error`.
pub type Result<T, E = OAuthError> = std::result::Result<T, E>;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        self.log();
        let code = self.code();
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = ErrorResponse {
            error: code.as_str().to_owned(),
            error_description: self.description().map(str::to_owned),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1: token responses (and their errors) are never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if code == ErrorCode::TemporarilyUnavailable {
            // RFC 9110 §10.2.3.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        response
    }
}
