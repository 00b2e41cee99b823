//! Token endpoint requests and responses (RFC 6749 §4.1.3, §4.4.2, §5.1, §6).

use crate::{CodeVerifier, ErrorCode, Form, RedirectUri, Scope};

/// The grant types Tessera implements. Implicit and password grants do not exist
/// here (OAuth 2.1 §10.1, RFC 9700 §2.1.2 and §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// A token request, one variant per grant type.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
    AuthorizationCode {
        code: String,
        redirect_uri: Option<RedirectUri>,
        code_verifier: CodeVerifier,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<Scope>,
    },
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<Scope> },
}

/// A token request that could not be parsed: the error code and its description.
pub type RequestError = (ErrorCode, String);

fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, RequestError> {
    form.get(name)
        .ok_or_else(|| (ErrorCode::InvalidRequest, format!("{name} is required")))
}

fn optional_scope(form: &Form) -> Result<Option<Scope>, RequestError> {
    form.get("scope")
        .map(|s| Scope::parse(s).map_err(|e| (ErrorCode::InvalidScope, e.to_owned())))
        .transpose()
}

impl TokenRequest {
    /// Parse the form of a token request.
    pub fn from_form(form: &Form) -> Result<Self, RequestError> {
        let grant_type = required(form, "grant_type")?;
        let Some(grant) = GrantType::parse(grant_type) else {
            return Err((
                ErrorCode::UnsupportedGrantType,
                format!("grant_type '{grant_type}' is not supported"),
            ));
        };
        match grant {
            GrantType::AuthorizationCode => Ok(Self::AuthorizationCode {
                code: required(form, "code")?.to_owned(),
                redirect_uri: form
                    .get("redirect_uri")
                    .map(|u| {
                        RedirectUri::parse(u).map_err(|e| (ErrorCode::InvalidRequest, e.to_owned()))
                    })
                    .transpose()?,
                // RFC 7636 §4.5; OAuth 2.1 requires PKCE for every client.
                code_verifier: CodeVerifier::parse(required(form, "code_verifier")?)
                    .map_err(|e| (ErrorCode::InvalidRequest, e.to_owned()))?,
            }),
            GrantType::RefreshToken => Ok(Self::RefreshToken {
                refresh_token: required(form, "refresh_token")?.to_owned(),
                scope: optional_scope(form)?,
            }),
            GrantType::ClientCredentials => Ok(Self::ClientCredentials {
                scope: optional_scope(form)?,
            }),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// An introspection response (RFC 7662 §2.2). An inactive token carries nothing else.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, RequestError> {
        TokenRequest::from_form(&Form::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn unknown_and_removed_grants_are_unsupported() {
        for g in ["password", "implicit", "urn:x"] {
            let err = parse(&format!("grant_type={g}")).unwrap_err();
            assert_eq!(err.0, ErrorCode::UnsupportedGrantType);
        }
        assert_eq!(parse("").unwrap_err().0, ErrorCode::InvalidRequest);
    }

    #[test]
    fn code_grant_needs_verifier() {
        let err = parse("grant_type=authorization_code&code=x").unwrap_err();
        assert_eq!(
            err,
            (
                ErrorCode::InvalidRequest,
                "code_verifier is required".into()
            )
        );
    }
}
