//! Client metadata (RFC 7591 §2): the request body, its checks, and the response.

use serde::Deserialize;
use serde_json::{json, Value};
use tessera_protocol::{GrantType, RedirectUri, Scope};

use super::RegistrationError;
use crate::admin::NewClient;
use crate::store::{AuthMethod, Client, ClientMetadata, ScopeEntry, TokenFormat};

/// A registration or update request. Fields Tessera does not know are ignored
/// (RFC 7591 §2: "MUST ignore any client metadata ... that it does not understand").
#[derive(Debug, Default, Deserialize)]
pub struct MetadataRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Value>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub software_statement: Option<String>,
    // RFC 7592 §2.2: fields of an update request.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub registration_access_token: Option<Value>,
    pub registration_client_uri: Option<Value>,
    pub client_secret_expires_at: Option<Value>,
    pub client_id_issued_at: Option<Value>,
}

fn bad(msg: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(msg.into())
}

/// An https URL, or http on loopback (for development).
fn web_url(field: &str, raw: &str) -> Result<String, RegistrationError> {
    let url = url::Url::parse(raw).map_err(|_| bad(format!("{field} is not a URL")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad(format!("{field} must be an https URL")));
    }
    if url.fragment().is_some() {
        return Err(bad(format!("{field} must not have a fragment")));
    }
    Ok(raw.to_owned())
}

fn optional_url(field: &str, raw: &Option<String>) -> Result<Option<String>, RegistrationError> {
    raw.as_deref().map(|u| web_url(field, u)).transpose()
}

/// RFC 7591 §2: redirect URIs are https, or http on loopback (RFC 8252 §7.3); never a
/// fragment (RFC 6749 §3.1.2).
fn redirect_uri(raw: &str) -> Result<String, RegistrationError> {
    let uri = RedirectUri::parse(raw)
        .map_err(|e| RegistrationError::InvalidRedirectUri(format!("{raw}: {e}")))?;
    let url = uri.url();
    let loopback = uri.is_loopback() || url.host_str() == Some("localhost");
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "{raw}: a redirect URI must be https, or http on loopback"
        )));
    }
    Ok(raw.to_owned())
}

/// A software statement (RFC 7591 §2.3) must be a JWS; Tessera trusts no statement
/// issuer, so a well-formed one is refused as unapproved.
fn software_statement(raw: &str) -> Result<(), RegistrationError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = raw.split('.').collect();
    let well_formed = parts.len() == 3
        && parts[..2].iter().all(|p| {
            b64.decode(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v.is_object())
        });
    if !well_formed {
        return Err(RegistrationError::InvalidSoftwareStatement(
            "the software statement is not a JWT".into(),
        ));
    }
    Err(RegistrationError::UnapprovedSoftwareStatement(
        "no software statement issuer is trusted by this server".into(),
    ))
}

/// Members of a JWK that only a private key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn check_jwks(jwks: &Value) -> Result<(), RegistrationError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("jwks must be a JWK Set"))?;
    if keys.is_empty() {
        return Err(bad("jwks has no keys"));
    }
    for key in keys {
        if !key.is_object() || key.get("kty").and_then(Value::as_str).is_none() {
            return Err(bad("every key of jwks needs a kty"));
        }
        if PRIVATE_MEMBERS.iter().any(|m| key.get(m).is_some()) {
            return Err(bad("jwks must hold public keys only"));
        }
    }
    Ok(())
}

impl MetadataRequest {
    /// Check every field and build the client to register. `allowed` is the scope
    /// the registration policy permits; `catalog` the scopes that exist.
    pub fn into_new_client(
        self,
        allowed: &Scope,
        catalog: &[ScopeEntry],
    ) -> Result<NewClient, RegistrationError> {
        if let Some(statement) = &self.software_statement {
            software_statement(statement)?;
        }
        let grant_names = self
            .grant_types
            .clone()
            .unwrap_or_else(|| vec!["authorization_code".into()]);
        let mut grant_types = Vec::new();
        for g in &grant_names {
            let grant = GrantType::parse(g)
                .ok_or_else(|| bad(format!("grant type {g} is not supported")))?;
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        let code_grant = grant_types.contains(&GrantType::AuthorizationCode);
        let response_types = self.response_types.clone().unwrap_or_else(|| {
            if code_grant {
                vec!["code".into()]
            } else {
                vec![]
            }
        });
        if let Some(other) = response_types.iter().find(|r| *r != "code") {
            return Err(bad(format!(
                "response type {other} is not supported; only code"
            )));
        }
        // RFC 7591 §2.1: grant_types and response_types must agree.
        if code_grant != response_types.iter().any(|r| r == "code") {
            return Err(bad(
                "grant_types authorization_code and response_types code go together",
            ));
        }
        let method_name = self
            .token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic");
        let auth_method = AuthMethod::parse(method_name).ok_or_else(|| {
            bad(format!(
                "token_endpoint_auth_method {method_name} is not supported"
            ))
        })?;
        if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(bad(
                "a client without authentication cannot use client_credentials",
            ));
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(bad("jwks and jwks_uri must not both be present"));
        }
        if auth_method == AuthMethod::PrivateKeyJwt
            && self.jwks.is_none()
            && self.jwks_uri.is_none()
        {
            return Err(bad("private_key_jwt needs jwks or jwks_uri"));
        }
        if let Some(jwks) = &self.jwks {
            check_jwks(jwks)?;
        }
        let redirect_uris = self
            .redirect_uris
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|u| redirect_uri(u))
            .collect::<Result<Vec<_>, _>>()?;
        if code_grant && redirect_uris.is_empty() {
            return Err(RegistrationError::InvalidRedirectUri(
                "redirect_uris is required for the authorization_code grant".into(),
            ));
        }
        let scope = match &self.scope {
            Some(raw) => {
                let scope = Scope::parse(raw).map_err(|e| bad(e.to_owned()))?;
                let refused: Vec<&str> = scope
                    .iter()
                    .filter(|s| !allowed.contains(s) || !catalog.iter().any(|c| c.name == *s))
                    .collect();
                if !refused.is_empty() {
                    return Err(bad(format!(
                        "scope not allowed for this registration: {}",
                        refused.join(" ")
                    )));
                }
                scope
            }
            None => Scope::from_tokens(
                allowed
                    .iter()
                    .filter(|s| catalog.iter().any(|c| c.name == *s)),
            ),
        };
        let name = self
            .client_name
            .clone()
            .unwrap_or_else(|| "Unnamed app".into());
        if name.trim().is_empty()
            || name.chars().count() > 100
            || name.chars().any(char::is_control)
        {
            return Err(bad("client_name must be 1 to 100 printable characters"));
        }
        let contacts = self.contacts.clone().unwrap_or_default();
        if contacts.len() > 10 || contacts.iter().any(|c| c.is_empty() || c.len() > 254) {
            return Err(bad("contacts must be up to 10 addresses"));
        }
        let metadata = ClientMetadata {
            jwks: self.jwks.clone(),
            jwks_uri: optional_url("jwks_uri", &self.jwks_uri)?,
            client_uri: optional_url("client_uri", &self.client_uri)?,
            logo_uri: optional_url("logo_uri", &self.logo_uri)?,
            policy_uri: optional_url("policy_uri", &self.policy_uri)?,
            tos_uri: optional_url("tos_uri", &self.tos_uri)?,
            contacts,
            software_id: self.software_id.clone(),
            software_version: self.software_version.clone(),
        };
        Ok(NewClient {
            name,
            redirect_uris,
            scope: scope.to_string(),
            required_scope: String::new(),
            public: auth_method == AuthMethod::None,
            grant_types,
            token_format: TokenFormat::Jwt,
            auth_method: Some(auth_method),
            metadata,
            dynamic: true,
        })
    }
}

/// The client's metadata as RFC 7591 §3.2.1 returns it (without secrets or tokens).
pub fn response_body(client: &Client, registration_client_uri: &str) -> Value {
    let m = &client.metadata;
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if client.allows_grant(GrantType::AuthorizationCode) { vec!["code"] } else { vec![] },
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "scope": client.scope.to_string(),
        "contacts": m.contacts,
        "registration_client_uri": registration_client_uri,
    });
    let optional = [
        ("client_uri", &m.client_uri),
        ("logo_uri", &m.logo_uri),
        ("policy_uri", &m.policy_uri),
        ("tos_uri", &m.tos_uri),
        ("jwks_uri", &m.jwks_uri),
        ("software_id", &m.software_id),
        ("software_version", &m.software_version),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    if let Some(jwks) = &m.jwks {
        body["jwks"] = jwks.clone();
    }
    body
}
