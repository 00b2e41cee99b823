//! How a client proves who it is at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, or `none` for a
//! public client that only identifies itself.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tessera_protocol::{ClientSecret, Form};

use crate::crypto::{constant_time_eq, hash_secret};
use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::store::Client;

/// The authentication methods Tessera accepts, as named in RFC 8414 metadata.
pub const METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SecretBasic,
    SecretPost,
    None,
}

/// A client whose identity the request established.
#[derive(Debug)]
pub struct AuthenticatedClient {
    pub client: Client,
    pub method: Method,
}

/// Credentials as presented, before they are checked.
struct Presented {
    client_id: String,
    secret: Option<ClientSecret>,
    method: Method,
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

fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented> {
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
            // RFC 6749 §2.3: a client MUST NOT use more than one method per request.
            if form.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest(
                    "the client used more than one authentication method".into(),
                ));
            }
            if form.get("client_id").is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Basic credentials".into(),
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(ClientSecret::new(secret)),
                method: Method::SecretBasic,
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
                Some(secret) => Presented {
                    client_id: id.to_owned(),
                    secret: Some(ClientSecret::new(secret)),
                    method: Method::SecretPost,
                },
                None => Presented {
                    client_id: id.to_owned(),
                    secret: None,
                    method: Method::None,
                },
            })
        }
    }
}

/// Establish which client sent the request, or fail with `invalid_client` (401).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<AuthenticatedClient> {
    let presented = presented(headers, form)?;
    let Some(client) = state.store.get_client(&presented.client_id).await? else {
        return Err(invalid_client("client authentication failed"));
    };
    match (&client.secret_hash, &presented.secret) {
        (Some(stored), Some(secret)) => {
            // The secret has 256 bits of entropy: SHA-256 and a constant-time
            // comparison protect it; a slow password hash would add nothing.
            if !constant_time_eq(stored, &hash_secret(secret.expose())) {
                return Err(invalid_client("client authentication failed"));
            }
        }
        (Some(_), None) => {
            return Err(invalid_client(
                "this client must authenticate with its secret",
            ))
        }
        (None, Some(_)) => return Err(invalid_client("this public client has no secret")),
        (None, None) => {}
    }
    Ok(AuthenticatedClient {
        client,
        method: presented.method,
    })
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
