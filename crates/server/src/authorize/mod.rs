//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1 and RFC 7636), checked as
//! an ordered list of small functions. The list is the spec checklist:
//!
//! 1. [`check_client`]: `client_id` names a registered client. *
//! 2. [`check_redirect_uri`]: `redirect_uri` matches a registered one exactly. *
//! 3. [`check_response_type`]: `response_type=code`, and the client may use it.
//! 4. [`check_response_mode`]: only `query`.
//! 5. [`pkce::check_pkce`]: a `code_challenge` with method `S256`.
//! 6. [`check_scope`]: only scopes the client is allowed.
//! 7. [`prompt::check_prompt`]: `none`, `login`, `consent`, sensibly combined.
//!
//! (*) Failures of the first two are shown to the person and never redirected
//! (RFC 6749 §4.1.2.1, RFC 9700 §4.11); every later failure is redirected to the client.

pub mod pkce;
pub mod prompt;
pub mod response;

use axum::http::StatusCode;
use tessera_protocol::{CodeChallenge, Form, RedirectUri, Scope};

use crate::error::OAuthError;
use crate::state::AppState;
use crate::store::Client;
use tessera_protocol::GrantType;

pub use prompt::Prompt;

/// An authorization request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The request's query string, carried through the login and consent forms and
    /// checked again when they are posted.
    pub raw: String,
    pub client: Client,
    pub redirect_uri: RedirectUri,
    /// Whether `redirect_uri` was sent (it must then be sent to the token endpoint).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub scope: Scope,
    pub code_challenge: CodeChallenge,
    pub prompt: Prompt,
}

/// Why an authorization request was refused, and where the refusal goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the person: the client or its redirect URI could not be trusted.
    Page { status: StatusCode, message: String },
    /// Sent to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        to: Box<RedirectUri>,
        state: Option<String>,
        error: OAuthError,
    },
}

impl From<anyhow::Error> for AuthorizeError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(
            error = format!("{e:#}"),
            "internal error in the authorization endpoint"
        );
        AuthorizeError::Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The authorization server failed to handle this request.".into(),
        }
    }
}

fn page(message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

/// Run every check, in order.
pub async fn validate(state: &AppState, raw: &str) -> Result<AuthorizeRequest, AuthorizeError> {
    let form =
        Form::parse(raw.as_bytes()).map_err(|e| page(format!("The request is malformed: {e}.")))?;
    let client = check_client(state, &form).await?;
    let (redirect_uri, redirect_uri_given) = check_redirect_uri(&form, &client)?;
    let state_param = form.get("state").map(str::to_owned);
    let redirect = |error: OAuthError| AuthorizeError::Redirect {
        to: Box::new(redirect_uri.clone()),
        state: state_param.clone(),
        error,
    };
    check_response_type(&form, &client).map_err(redirect)?;
    check_response_mode(&form).map_err(redirect)?;
    let code_challenge = pkce::check_pkce(&form).map_err(redirect)?;
    let scope = check_scope(&form, &client).map_err(redirect)?;
    let prompt = prompt::check_prompt(&form).map_err(redirect)?;
    Ok(AuthorizeRequest {
        raw: raw.to_owned(),
        client,
        redirect_uri: redirect_uri.clone(),
        redirect_uri_given,
        state: state_param.clone(),
        scope,
        code_challenge,
        prompt,
    })
}

/// Check 1: The client must exist.
async fn check_client(state: &AppState, form: &Form) -> Result<Client, AuthorizeError> {
    let Some(id) = form.get("client_id") else {
        return Err(page("The request has no client_id."));
    };
    state
        .clients
        .get(state.store.as_ref(), id)
        .await?
        .map(|c| Client::clone(&c))
        .ok_or_else(|| page("The application that sent you here is not registered."))
}

/// Check 2: The redirect URI must match a registered one exactly (loopback ports may vary,
/// RFC 8252 §7.3). Without `redirect_uri`, the client's only registered URI is used
/// (OAuth 2.1 §4.1.1).
fn check_redirect_uri(form: &Form, client: &Client) -> Result<(RedirectUri, bool), AuthorizeError> {
    match form.get("redirect_uri") {
        Some(raw) => {
            let uri = RedirectUri::parse(raw).map_err(|e| {
                page(format!(
                    "The application's redirect address is invalid: {e}."
                ))
            })?;
            if client
                .redirect_uris
                .iter()
                .any(|registered| registered.matches(&uri))
            {
                Ok((uri, true))
            } else {
                Err(page(
                    "The application's redirect address is not registered for it.",
                ))
            }
        }
        None => match client.redirect_uris.as_slice() {
            [only] => Ok((only.clone(), false)),
            _ => Err(page("The request has no redirect_uri.")),
        },
    }
}

/// Check 3: Only the authorization code flow exists (OAuth 2.1 §4.1; implicit is gone).
fn check_response_type(form: &Form, client: &Client) -> Result<(), OAuthError> {
    match form.get("response_type") {
        None => Err(OAuthError::InvalidRequest(
            "response_type is required".into(),
        )),
        Some("code") if client.allows_grant(GrantType::AuthorizationCode) => Ok(()),
        Some("code") => Err(OAuthError::UnauthorizedClient(
            "this client may not use the authorization code grant".into(),
        )),
        Some(other) => Err(OAuthError::UnsupportedResponseType(
            format!("response_type '{other}' is not supported; use 'code'").into(),
        )),
    }
}

/// Check 4: Responses go in the redirect URI's query (RFC 6749 §4.1.2).
fn check_response_mode(form: &Form) -> Result<(), OAuthError> {
    match form.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(other) => Err(OAuthError::InvalidRequest(
            format!("response_mode '{other}' is not supported; use 'query'").into(),
        )),
    }
}

/// Check 6: RFC 6749 §3.3: the requested scopes must all be allowed for the client; without
/// `scope`, the client's allowed scopes are requested.
fn check_scope(form: &Form, client: &Client) -> Result<Scope, OAuthError> {
    let Some(raw) = form.get("scope") else {
        return Ok(client.scope.clone());
    };
    let scope = Scope::parse(raw).map_err(|e| OAuthError::InvalidScope(e.into()))?;
    let refused = scope.difference(&client.scope);
    if !refused.is_empty() {
        return Err(OAuthError::InvalidScope(
            format!("scope not allowed for this client: {}", refused.join(" ")).into(),
        ));
    }
    Ok(scope)
}
