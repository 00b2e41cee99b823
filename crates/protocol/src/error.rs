//! The OAuth error codes Tessera answers with, their wire strings and HTTP statuses.
//!
//! Codes come from RFC 6749 §4.1.2.1 (authorization), §5.2 (token), RFC 7009 §2.2.1
//! (revocation), RFC 6750 §3.1 (bearer tokens) and OpenID Connect Core §3.1.2.6
//! (`prompt=none`). One exhaustive `match` maps each code to its status.

use std::fmt;

/// Every error code Tessera can put in an `error` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    UnsupportedTokenType,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
}

impl ErrorCode {
    /// The string sent in the `error` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
        }
    }

    /// The HTTP status of a direct (non-redirect) error response carrying this code.
    ///
    /// RFC 6749 §5.2: 400 unless the client failed to authenticate (401);
    /// RFC 6750 §3.1: `invalid_token` is 401 and `insufficient_scope` is 403.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope | Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::InvalidScope
            | Self::UnsupportedResponseType
            | Self::UnsupportedTokenType
            | Self::LoginRequired
            | Self::ConsentRequired
            | Self::InteractionRequired => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of an error response (RFC 6749 §5.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}
