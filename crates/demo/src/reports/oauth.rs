//! The app's side of OAuth: issuer metadata (RFC 8414), PKCE (RFC 7636), the token
//! endpoint with `client_secret_basic` (RFC 6749 §2.3.1), and revocation (RFC 7009).

use std::time::{Duration, Instant};

use axum::http::header;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::App;

/// Refresh an access token this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// The parts of the issuer's metadata the app uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// Why a call to Tessera failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Tessera answered with an OAuth error (RFC 6749 §5.2).
    #[error("{error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// Tessera could not be reached or answered something unexpected (the cause is
    /// logged, not shown).
    #[error("Tessera could not be reached or gave an unexpected answer")]
    Unavailable,
}

fn unavailable(what: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(error = %what, "call to Tessera failed");
    OAuthError::Unavailable
}

/// The tokens of a connected session.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<Instant>,
    /// The scope granted (RFC 6749 §5.1: the requested one when the answer omits it).
    pub scope: String,
}

impl Tokens {
    /// Whether the access token is expired or about to be.
    pub fn expiring(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now + EXPIRY_MARGIN >= at)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// 256 random bits, base64url: session ids, CSRF tokens, `state`, PKCE verifiers.
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// `client_secret_basic`: both parts form-urlencoded, then base64 (RFC 6749 §2.3.1).
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(client_id), encode(client_secret)))
    )
}

impl App {
    /// The issuer's metadata, fetched once and kept. It must name the configured
    /// issuer (RFC 8414 §3.3).
    pub async fn metadata(&self) -> Result<&Metadata, OAuthError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/oauth-authorization-server",
                    self.config.issuer
                );
                let response = self.http.get(&url).send().await.map_err(unavailable)?;
                if !response.status().is_success() {
                    return Err(unavailable(format!("{url} answered {}", response.status())));
                }
                let metadata: Metadata = response.json().await.map_err(unavailable)?;
                if metadata.issuer != self.config.issuer {
                    return Err(unavailable(format!(
                        "the metadata names the issuer {}",
                        metadata.issuer
                    )));
                }
                Ok(metadata)
            })
            .await
    }

    /// Where to send the browser to ask for access (RFC 6749 §4.1.1, RFC 7636 §4.3).
    pub async fn authorize_url(
        &self,
        state: &str,
        pkce_verifier: &str,
    ) -> Result<String, OAuthError> {
        let endpoint = &self.metadata().await?.authorization_endpoint;
        let challenge = s256_challenge(pkce_verifier);
        let params = [
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", self.config.scope.as_str()),
            ("state", state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        url::Url::parse_with_params(endpoint, params)
            .map(String::from)
            .map_err(|e| unavailable(format!("the authorization endpoint is not a URL: {e}")))
    }

    /// Exchange an authorization code (RFC 6749 §4.1.3, with the PKCE verifier).
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<Tokens, OAuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pkce_verifier),
        ];
        self.token_request(&form, &self.config.scope).await
    }

    /// Use a refresh token (RFC 6749 §6); Tessera rotates it, so the answer holds a new one.
    pub async fn refresh(&self, refresh_token: &str, scope: &str) -> Result<Tokens, OAuthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let mut tokens = self.token_request(&form, scope).await?;
        tokens
            .refresh_token
            .get_or_insert_with(|| refresh_token.to_owned());
        Ok(tokens)
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        scope: &str,
    ) -> Result<Tokens, OAuthError> {
        let endpoint = &self.metadata().await?.token_endpoint;
        let body = self.post_form(endpoint, form).await?;
        let answer: TokenResponse = serde_json::from_value(body).map_err(unavailable)?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") {
            return Err(unavailable(format!(
                "unexpected token type {}",
                answer.token_type
            )));
        }
        Ok(Tokens {
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
            expires_at: answer
                .expires_in
                .map(|s| Instant::now() + Duration::from_secs(s)),
            scope: answer.scope.unwrap_or_else(|| scope.to_owned()),
        })
    }

    /// Revoke a token (RFC 7009 §2.1); revoking a refresh token revokes the whole grant.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<(), OAuthError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = &metadata.revocation_endpoint else {
            return Err(unavailable("the issuer has no revocation endpoint"));
        };
        self.post_form(endpoint, &[("token", token), ("token_type_hint", hint)])
            .await?;
        Ok(())
    }

    /// POST a form with the client's credentials; the JSON answer, or the OAuth error.
    async fn post_form(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<Value, OAuthError> {
        let response = self
            .http
            .post(endpoint)
            .header(
                header::AUTHORIZATION,
                basic_auth(&self.config.client_id, &self.config.client_secret),
            )
            .form(form)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unavailable)?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(body);
        }
        match body.get("error").and_then(Value::as_str) {
            Some(error) => Err(OAuthError::Refused {
                error: error.to_owned(),
                description: body
                    .get("error_description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            None => Err(unavailable(format!("{endpoint} answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let value = basic_auth("app one", "s:e/c");
        let decoded = STANDARD
            .decode(value.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "app+one:s%3Ae%2Fc");
    }

    #[test]
    fn tokens_count_as_expiring_ten_seconds_early() {
        let now = Instant::now();
        let tokens = |expires_at| Tokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_at,
            scope: String::new(),
        };
        assert!(tokens(Some(now + Duration::from_secs(5))).expiring(now));
        assert!(!tokens(Some(now + Duration::from_secs(60))).expiring(now));
        assert!(!tokens(None).expiring(now));
    }
}
