//! The person's own pages: connected apps with a Revoke button per app, their
//! history, and signing out. Server-rendered, CSRF-protected, no JavaScript.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tessera_protocol::{Form, Scope};

use super::authorize::render_login;
use super::login::CSRF_FAILED;
use crate::crypto::hash_secret;
use crate::pages::{self, format_time, AccountPage, AppView, HistoryView, MessagePage, ScopeView};
use crate::revocation::revoke_app;
use crate::session::{cookie, csrf, csrf_ok, current_user, SESSION_COOKIE};
use crate::state::AppState;
use crate::store::{Actor, AuditFilter, Grant, ScopeEntry, User};

/// How many history lines the page shows.
const HISTORY: u32 = 50;

fn internal(state: &AppState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account page failed");
    pages::error(
        &state.config.issuer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again.",
    )
}

/// The sign-in form for the account pages (no authorization request).
pub fn standalone_login(
    state: &AppState,
    headers: &HeaderMap,
    username: &str,
    error: Option<&str>,
) -> Response {
    render_login(state, headers, None, "", username, error)
}

/// `GET /account/apps`.
pub async fn apps(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match current_user(&state, &headers).await {
        Ok(Some((user, _))) => match account_page(&state, &headers, &user).await {
            Ok(r) => r,
            Err(e) => internal(&state, format!("{e:#}")),
        },
        Ok(None) => standalone_login(&state, &headers, "", None),
        Err(e) => internal(&state, e),
    }
}

fn describe(catalog: &[ScopeEntry], scope: &Scope) -> Vec<ScopeView> {
    scope
        .iter()
        .map(|name| ScopeView {
            name: name.to_owned(),
            description: catalog
                .iter()
                .find(|s| s.name == name)
                .map_or_else(|| name.to_owned(), |s| s.description.clone()),
            required: false,
        })
        .collect()
}

async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
) -> anyhow::Result<Response> {
    let now = state.clock.now();
    let catalog = state.store.list_scopes().await?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut by_client: Vec<(String, Vec<Grant>)> = Vec::new();
    for grant in state.store.list_user_grants(&user.id).await? {
        match by_client.iter_mut().find(|(c, _)| *c == grant.client_id) {
            Some((_, grants)) => grants.push(grant),
            None => by_client.push((grant.client_id.clone(), vec![grant])),
        }
    }
    let mut apps = Vec::new();
    for (client_id, grants) in by_client {
        let Some(client) = state.store.get_client(&client_id).await? else {
            continue;
        };
        names.insert(client_id.clone(), client.name.clone());
        let live: Vec<&Grant> = grants.iter().filter(|g| !g.is_expired(now)).collect();
        let shown: Vec<&Grant> = if live.is_empty() {
            grants.iter().collect()
        } else {
            live.clone()
        };
        let scope = shown
            .iter()
            .fold(Scope::default(), |acc, g| acc.union(&g.scope));
        let until = if shown.iter().any(|g| g.expires_at.is_none()) {
            "until you revoke it".to_owned()
        } else {
            shown
                .iter()
                .filter_map(|g| g.expires_at)
                .max()
                .map_or_else(String::new, format_time)
        };
        apps.push(AppView {
            client_id,
            name: client.name,
            scopes: describe(&catalog, &scope),
            granted_at: shown
                .iter()
                .map(|g| g.created_at)
                .min()
                .map_or_else(String::new, format_time),
            last_used: shown
                .iter()
                .filter_map(|g| g.last_used_at)
                .max()
                .map_or_else(|| "never".into(), format_time),
            until,
            expired: live.is_empty(),
        });
    }
    let filter = AuditFilter {
        user_id: Some(user.id.clone()),
        client_id: None,
        limit: HISTORY,
    };
    let mut history = Vec::new();
    for e in state.store.list_audit(&filter).await? {
        let app = match &e.client_id {
            Some(id) => match names.get(id) {
                Some(n) => n.clone(),
                None => {
                    let n = state
                        .store
                        .get_client(id)
                        .await?
                        .map_or_else(|| "(deleted app)".to_owned(), |c| c.name);
                    names.insert(id.clone(), n.clone());
                    n
                }
            },
            None => String::new(),
        };
        let what = match e.kind.as_str() {
            "grant" => format!("Access granted: {}", e.detail),
            "refresh" => "Access renewed (tokens refreshed)".to_owned(),
            "revoke" => format!("Access revoked: {}", e.detail),
            "login_failed" => "Failed sign-in".to_owned(),
            other => format!("{other}: {}", e.detail),
        };
        let by = match e.actor {
            Actor::Person => "you",
            Actor::Client => "the app",
            Actor::Admin => "an administrator",
            Actor::System => "Tessera",
        };
        history.push(HistoryView {
            at: format_time(e.at),
            what,
            app,
            by: by.to_owned(),
        });
    }
    let csrf = csrf(state, headers);
    let page = AccountPage {
        issuer: &state.config.issuer,
        username: &user.username,
        csrf: &csrf.token,
        apps,
        history,
    };
    Ok(pages::render(
        StatusCode::OK,
        &page,
        csrf.set_cookie.as_slice(),
    ))
}

/// Parse a posted account form and check its CSRF token.
fn posted(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Form, Box<Response>> {
    let issuer = &state.config.issuer;
    let form = Form::parse(body).map_err(|_| {
        Box::new(pages::error(
            issuer,
            StatusCode::BAD_REQUEST,
            "The form is malformed.",
        ))
    })?;
    if !csrf_ok(headers, form.get("csrf")) {
        return Err(Box::new(pages::error(
            issuer,
            StatusCode::FORBIDDEN,
            CSRF_FAILED,
        )));
    }
    Ok(form)
}

/// `POST /account/apps/revoke`: take an app's access back.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match posted(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let user = match current_user(&state, &headers).await {
        Ok(Some((user, _))) => user,
        Ok(None) => return standalone_login(&state, &headers, "", None),
        Err(e) => return internal(&state, e),
    };
    let Some(client_id) = form.get("client_id") else {
        return pages::error(
            &state.config.issuer,
            StatusCode::BAD_REQUEST,
            "The form names no app.",
        );
    };
    match revoke_app(&state, &user.id, client_id, Actor::Person).await {
        // Post/redirect/get: the page shows the result.
        Ok(_) => Redirect::to(&format!("{}/account/apps", state.config.issuer)).into_response(),
        Err(e) => internal(&state, e),
    }
}

/// `POST /account/logout`: end the Tessera session.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = posted(&state, &headers, &body) {
        return *r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.store.delete_session(&hash_secret(token)).await {
            return internal(&state, format!("{e:#}"));
        }
    }
    let page = MessagePage {
        issuer: &state.config.issuer,
        title: "Signed out",
        text: "You are signed out of Tessera. Apps you connected keep the access you gave them until you revoke it.",
    };
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}");
    let mut response = pages::render(StatusCode::OK, &page, &[]);
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
