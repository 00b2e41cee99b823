//! Refusals of a protected resource, per RFC 6750 §3.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request to a protected resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No token at all: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    #[error("no access token")]
    Missing { realm: String },
    /// A malformed request, e.g. an `Authorization` header that is not Bearer: 400.
    #[error("invalid_request: {description}")]
    InvalidRequest { realm: String, description: String },
    /// Expired, revoked, malformed or forged: 401 `invalid_token`.
    #[error("invalid_token: {description}")]
    InvalidToken { realm: String, description: String },
    /// The token lacks a scope: 403 `insufficient_scope` naming it.
    #[error("insufficient_scope: {scope}")]
    InsufficientScope { realm: String, scope: String },
    /// The issuer could not be reached to check the token: 503.
    #[error("authorization server unavailable: {description}")]
    Unavailable { realm: String, description: String },
}

impl BearerError {
    pub(crate) fn invalid_token(realm: &str, description: impl Into<String>) -> Self {
        Self::InvalidToken {
            realm: realm.to_owned(),
            description: description.into(),
        }
    }

    pub(crate) fn insufficient_scope(realm: &str, scope: &str) -> Self {
        Self::InsufficientScope {
            realm: realm.to_owned(),
            scope: scope.to_owned(),
        }
    }

    /// The `error` code, if the response carries one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing { .. } => None,
            Self::InvalidRequest { .. } => Some("invalid_request"),
            Self::InvalidToken { .. } => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::Unavailable { .. } => Some("temporarily_unavailable"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing { .. } | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self) -> Option<String> {
        let q = |s: &str| s.replace(['"', '\\'], "'");
        match self {
            Self::Missing { realm } => Some(format!("Bearer realm=\"{}\"", q(realm))),
            Self::InvalidRequest { realm, description }
            | Self::InvalidToken { realm, description } => Some(format!(
                "Bearer realm=\"{}\", error=\"{}\", error_description=\"{}\"",
                q(realm),
                self.code().unwrap_or_default(),
                q(description)
            )),
            Self::InsufficientScope { realm, scope } => Some(format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{}\"",
                q(realm),
                q(scope)
            )),
            Self::Unavailable { .. } => None,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::Missing { .. } => "an access token is required".into(),
            Self::InvalidRequest { description, .. }
            | Self::InvalidToken { description, .. }
            | Self::Unavailable { description, .. } => description.clone(),
            Self::InsufficientScope { scope, .. } => {
                format!("the access token lacks the scope {scope}")
            }
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error_description": self.description() });
        if let Some(code) = self.code() {
            body["error"] = code.into();
        }
        if let Self::InsufficientScope { scope, .. } = &self {
            body["scope"] = scope.clone().into();
        }
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(value) = self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
