//! `GET /authorize`: validate the request, then sign the person in, ask consent, and
//! send the client its code (RFC 6749 §4.1.1–§4.1.2).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::audit;
use crate::authorize::response::{error_redirect, redirect};
use crate::authorize::{validate, AuthorizeError, AuthorizeRequest};
use crate::crypto::{hash_secret, ordered_id, ordered_token};
use crate::error::OAuthError;
use crate::pages::{self, ConsentPage, LoginPage, ScopeView};
use crate::session::{csrf, current_user};
use crate::state::AppState;
use crate::store::{Actor, AuthCode, Grant, User};
use tessera_protocol::Scope;

pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let req = match validate(&state, &raw).await {
        Ok(req) => req,
        Err(e) => return refuse(&state, e, false),
    };
    let user = match current_user(&state, &headers).await {
        Ok(user) => user,
        Err(e) => return refuse(&state, AuthorizeError::from(anyhow::Error::from(e)), false),
    };
    match user {
        // prompt=login: authenticate again even with a live session.
        _ if req.prompt.login => login_page(&state, &headers, &req, "", None),
        None if req.prompt.none => redirect_error(
            &state,
            &req,
            OAuthError::LoginRequired("the user is not signed in".into()),
            false,
        ),
        None => login_page(&state, &headers, &req, "", None),
        Some((user, session)) => {
            decide(
                &state,
                &headers,
                req,
                &user,
                session.auth_time,
                false,
                Vec::new(),
            )
            .await
        }
    }
}

/// Answer a refused request: a page for the person, or a redirect to the client.
pub fn refuse(state: &AppState, error: AuthorizeError, after_post: bool) -> Response {
    match error {
        AuthorizeError::Page { status, message } => {
            pages::error(&state.config.issuer, status, &message)
        }
        AuthorizeError::Redirect {
            to,
            state: s,
            error,
        } => error_redirect(&state.config.issuer, &to, s.as_deref(), &error, after_post),
    }
}

pub fn redirect_error(
    state: &AppState,
    req: &AuthorizeRequest,
    error: OAuthError,
    after_post: bool,
) -> Response {
    error_redirect(
        &state.config.issuer,
        &req.redirect_uri,
        req.state.as_deref(),
        &error,
        after_post,
    )
}

/// The login form for this request.
pub fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    username: &str,
    error: Option<&str>,
) -> Response {
    render_login(
        state,
        headers,
        Some(&req.client.name),
        &req.raw,
        username,
        error,
    )
}

/// The login form: for an authorization request (`client_name` and its `request`), or
/// for the account pages (neither). 401 after a failed attempt.
pub fn render_login(
    state: &AppState,
    headers: &HeaderMap,
    client_name: Option<&str>,
    request: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf = csrf(state, headers);
    let page = LoginPage {
        issuer: &state.config.issuer,
        client_name,
        request,
        csrf: &csrf.token,
        username,
        error,
    };
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    pages::render(status, &page, csrf.set_cookie.as_slice())
}

/// The person is signed in: ask consent if needed, else issue the code.
pub async fn decide(
    state: &AppState,
    headers: &HeaderMap,
    req: AuthorizeRequest,
    user: &User,
    auth_time: i64,
    after_post: bool,
    mut cookies: Vec<HeaderValue>,
) -> Response {
    let now = state.clock.now();
    let consented = match state.store.get_consent(&user.id, &req.client.id, now).await {
        Ok(c) => c,
        Err(e) => return refuse(state, AuthorizeError::from(e), after_post),
    };
    if let Some(consent) = consented.filter(|c| req.scope.is_subset_of(&c.scope)) {
        if !req.prompt.consent {
            // Remembered: the new grant ends when the consent does.
            let granted = Granted {
                scope: req.scope.clone(),
                expires_at: consent.expires_at,
            };
            return issue_code(state, &req, user, auth_time, &granted, after_post, &cookies).await;
        }
    }
    if req.prompt.none {
        return redirect_error(
            state,
            &req,
            OAuthError::ConsentRequired("the user has not consented to this request".into()),
            after_post,
        );
    }
    let catalog = match state.store.list_scopes().await {
        Ok(c) => c,
        Err(e) => return refuse(state, AuthorizeError::from(e), after_post),
    };
    let scopes = req
        .scope
        .iter()
        .map(|name| ScopeView {
            name: name.to_owned(),
            description: catalog
                .iter()
                .find(|s| s.name == name)
                .map_or_else(|| name.to_owned(), |s| s.description.clone()),
            required: req.client.required_scope.contains(name),
        })
        .collect();
    let csrf = csrf(state, headers);
    cookies.extend(csrf.set_cookie);
    let meta = &req.client.metadata;
    // The logo is shown only from an https (or loopback) URL, and the CSP admits that
    // one origin for images and nothing more.
    let logo = meta
        .logo_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")))
        });
    let logo_origin = logo.as_ref().map(|u| u.origin().ascii_serialization());
    let page = ConsentPage {
        issuer: &state.config.issuer,
        client_name: &req.client.name,
        client_uri: meta.client_uri.as_deref(),
        logo_uri: logo.as_ref().map(|u| u.as_str()),
        policy_uri: meta.policy_uri.as_deref(),
        tos_uri: meta.tos_uri.as_deref(),
        unverified: req.client.dynamic,
        username: &user.username,
        scopes,
        durations: &DURATIONS,
        request: &req.raw,
        csrf: &csrf.token,
    };
    let csp = pages::csp_with_image_origin(logo_origin.as_deref());
    pages::render_with_csp(StatusCode::OK, &page, &cookies, &csp)
}

/// What the person allowed: the scopes and how long.
pub struct Granted {
    pub scope: Scope,
    pub expires_at: Option<i64>,
}

/// The lifetimes offered on the consent page: form value, label, seconds (`None`: until revoked).
pub const DURATIONS: [(&str, &str, Option<i64>); 3] = [
    ("forever", "Until I revoke it", None),
    ("90d", "For 90 days", Some(90 * 86_400)),
    ("1d", "For 1 day", Some(86_400)),
];

/// Issue a single-use code bound to the client, redirect URI, PKCE challenge, user
/// and scope, and send it to the client (RFC 6749 §4.1.2, RFC 9207).
pub async fn issue_code(
    state: &AppState,
    req: &AuthorizeRequest,
    user: &User,
    auth_time: i64,
    granted: &Granted,
    after_post: bool,
    cookies: &[HeaderValue],
) -> Response {
    let now = state.clock.now();
    let grant_id = ordered_id();
    let code = ordered_token();
    let stored = async {
        state
            .store
            .create_grant(&Grant {
                id: grant_id.clone(),
                client_id: req.client.id.clone(),
                user_id: Some(user.id.clone()),
                scope: granted.scope.clone(),
                created_at: now,
                expires_at: granted.expires_at,
                last_used_at: None,
                revoked_at: None,
            })
            .await?;
        state
            .store
            .insert_code(&AuthCode {
                code_hash: hash_secret(&code),
                grant_id: grant_id.clone(),
                client_id: req.client.id.clone(),
                user_id: user.id.clone(),
                redirect_uri: req.redirect_uri.as_str().to_owned(),
                redirect_uri_given: req.redirect_uri_given,
                scope: granted.scope.clone(),
                code_challenge: req.code_challenge.as_str().to_owned(),
                auth_time,
                expires_at: now + state.config.tokens.code_ttl.as_secs() as i64,
            })
            .await
    };
    if let Err(e) = stored.await {
        return refuse(state, AuthorizeError::from(e), after_post);
    }
    let until = granted.expires_at.map_or_else(
        || "until revoked".to_owned(),
        |t| format!("until {}", pages::format_time(t)),
    );
    let entry = audit::Entry {
        kind: "grant",
        actor: Actor::Person,
        user_id: Some(&user.id),
        client_id: Some(&req.client.id),
        grant_id: Some(&grant_id),
        detail: format!("{} {until}", granted.scope),
    };
    if let Err(e) = audit::record_with_username(state, entry, Some(user.username.clone())).await {
        return refuse(
            state,
            AuthorizeError::from(anyhow::Error::from(e)),
            after_post,
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", &state.config.issuer));
    let mut response = redirect(&req.redirect_uri, &params, after_post);
    for c in cookies {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, c.clone());
    }
    response
}
