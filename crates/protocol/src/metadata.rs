//! Authorization server metadata (RFC 8414 §2) and JSON Web Key Sets (RFC 7517 §5).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8414 §2: the JWS algorithms accepted in `private_key_jwt` and
    /// `client_secret_jwt` assertions, at each endpoint that authenticates clients.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9068 has no metadata name for this; it mirrors OpenID's naming.
    pub access_token_signing_alg_values_supported: Vec<String>,
    pub prompt_values_supported: Vec<String>,
    /// Tessera's revocation feed: Server-Sent Events of revoked grants and tokens for
    /// resource servers (authenticated with client credentials).
    pub tessera_revocation_feed_endpoint: String,
    /// RFC 7591 §3, unless registration is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
}

/// One public JSON Web Key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}
