//! How a client proves who it is at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, a JWT assertion
//! (`private_key_jwt` or `client_secret_jwt`, RFC 7523 §2.2, in [`assertion`]), or
//! `none` for a public client that only identifies itself.
//!
//! A client authenticates with the method it was registered for: secret clients with
//! their secret (Basic or in the body), key clients with an assertion; neither falls
//! back to the other.

pub mod assertion;
pub mod jwk;
pub mod jwks_uri;

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tessera_protocol::{ClientSecret, Form};

use crate::crypto::{constant_time_eq, hash_secret};
use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::store::Client;

pub use crate::store::AuthMethod as Method;

/// The authentication methods Tessera accepts, as named in RFC 8414 metadata.
pub const METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];

/// The JWS algorithms accepted in client assertions, for the RFC 8414
/// `*_endpoint_auth_signing_alg_values_supported` metadata.
pub fn signing_algs() -> Vec<String> {
    jwk::Alg::ALL
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}

/// A client whose identity the request established.
#[derive(Debug)]
pub struct AuthenticatedClient {
    /// Shared with the client cache: no copy per request.
    pub client: Arc<Client>,
    /// The method the client used this time.
    pub method: Method,
}

/// Credentials as presented, before they are checked.
enum Presented {
    Secret {
        client_id: String,
        secret: ClientSecret,
        method: Method,
    },
    /// A JWT client assertion (RFC 7521 §4.2), not yet parsed.
    Assertion(String),
    /// Only a `client_id`.
    Id(String),
}

fn invalid_client(msg: &'static str) -> OAuthError {
    OAuthError::InvalidClient(msg.into())
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64.
fn form_decode(s: &str) -> Option<String> {
    let replaced = s.replace('+', " ");
    percent_decode(&replaced)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn more_than_one() -> OAuthError {
    // RFC 6749 §2.3: a client MUST NOT use more than one method per request.
    OAuthError::InvalidRequest("the client used more than one authentication method".into())
}

/// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` come together.
fn presented_assertion(headers: &HeaderMap, form: &Form) -> Result<Option<Presented>> {
    let kind = form.get("client_assertion_type");
    let assertion = form.get("client_assertion");
    if kind.is_none() && assertion.is_none() {
        return Ok(None);
    }
    if headers.contains_key(header::AUTHORIZATION) || form.get("client_secret").is_some() {
        return Err(more_than_one());
    }
    match (kind, assertion) {
        // A parameter the assertion method requires is missing: RFC 6749 §5.2
        // `invalid_request`.
        (None, _) => Err(OAuthError::InvalidRequest(
            "client_assertion_type is required with client_assertion".into(),
        )),
        (_, None) => Err(OAuthError::InvalidRequest(
            "client_assertion is required with client_assertion_type".into(),
        )),
        // Another assertion type (SAML, RFC 7522) is an unsupported authentication
        // method: RFC 6749 §5.2 `invalid_client`.
        (Some(kind), Some(_)) if kind != assertion::ASSERTION_TYPE => Err(invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )),
        (Some(_), Some(raw)) => Ok(Some(Presented::Assertion(raw.to_owned()))),
    }
}

fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented> {
    if let Some(assertion) = presented_assertion(headers, form)? {
        return Ok(assertion);
    }
    let basic = headers.get(header::AUTHORIZATION).map(|v| {
        let v = v.to_str().ok()?;
        let (scheme, rest) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    });
    match basic {
        Some(Some((id, secret))) => {
            if form.get("client_secret").is_some() {
                return Err(more_than_one());
            }
            if form.get("client_id").is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Basic credentials".into(),
                ));
            }
            Ok(Presented::Secret {
                client_id: id,
                secret: ClientSecret::new(secret),
                method: Method::ClientSecretBasic,
            })
        }
        Some(None) => Err(invalid_client(
            "the Authorization header is not valid Basic credentials",
        )),
        None => {
            let Some(id) = form.get("client_id") else {
                return Err(invalid_client("client authentication is required"));
            };
            Ok(match form.get("client_secret") {
                Some(secret) => Presented::Secret {
                    client_id: id.to_owned(),
                    secret: ClientSecret::new(secret),
                    method: Method::ClientSecretPost,
                },
                None => Presented::Id(id.to_owned()),
            })
        }
    }
}

/// Whether `secret` is the client's secret, or its previous one before the end of the
/// rotation grace period. Both comparisons run, each in constant time.
fn secret_matches(client: &Client, secret: &ClientSecret, now: i64) -> bool {
    // The secret has 256 bits of entropy: SHA-256 and a constant-time comparison
    // protect it; a slow password hash would add nothing.
    let presented = hash_secret(secret.expose());
    let current = client
        .secret_hash
        .is_some_and(|h| constant_time_eq(&h, &presented));
    let previous = client
        .previous_secret
        .is_some_and(|(h, until)| constant_time_eq(&h, &presented) && now < until);
    current | previous
}

/// What a client registered for `method` must present instead of what it did.
fn wrong_method(registered: Method) -> OAuthError {
    invalid_client(match registered {
        Method::ClientSecretBasic | Method::ClientSecretPost => {
            "this client must authenticate with its secret"
        }
        Method::ClientSecretJwt => {
            "this client must authenticate with a client_secret_jwt assertion"
        }
        Method::PrivateKeyJwt => "this client must authenticate with a private_key_jwt assertion",
        Method::None => "this public client has no secret",
    })
}

async fn client(state: &AppState, id: &str) -> Result<Arc<Client>> {
    state
        .clients
        .get(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| invalid_client("client authentication failed"))
}

/// Establish which client sent the request to the token endpoint, or fail with
/// `invalid_client` (401).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<AuthenticatedClient> {
    authenticate_at(state, headers, form, "/token").await
}

/// Establish which client sent the request to `endpoint` (its path, e.g. `/revoke`,
/// which a JWT assertion may name as its audience), or fail with `invalid_client`.
pub async fn authenticate_at(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    endpoint: &str,
) -> Result<AuthenticatedClient> {
    let (client, method) = match presented(headers, form)? {
        Presented::Assertion(raw) => assertion::authenticate(state, form, &raw, endpoint).await?,
        Presented::Secret {
            client_id,
            secret,
            method,
        } => {
            let client = client(state, &client_id).await?;
            match client.auth_method {
                // Basic and post are the same secret: either is accepted.
                Method::ClientSecretBasic | Method::ClientSecretPost => {
                    if !secret_matches(&client, &secret, state.clock.now()) {
                        return Err(invalid_client("client authentication failed"));
                    }
                }
                registered => return Err(wrong_method(registered)),
            }
            (client, method)
        }
        Presented::Id(client_id) => {
            let client = client(state, &client_id).await?;
            if client.auth_method != Method::None {
                return Err(wrong_method(client.auth_method));
            }
            (client, Method::None)
        }
    };
    Ok(AuthenticatedClient { client, method })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
    }
}
