//! `POST /login`: the login form of an authorization request. Checks the CSRF token
//! and the password (Argon2id), starts a session, then continues the request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_protocol::Form;

use super::authorize::{decide, login_page, refuse};
use crate::authorize::{validate, AuthorizeError};
use crate::crypto::{hash_secret, verify_password};
use crate::pages;
use crate::session::{cookie, csrf_ok, start_session, SESSION_COOKIE};
use crate::state::AppState;

pub const CSRF_FAILED: &str =
    "This form has expired or was not sent from this site. Go back to the application and start again.";

pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let issuer = state.config.issuer.clone();
    let Ok(form) = Form::parse(&body) else {
        return pages::error(&issuer, StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    if !csrf_ok(&headers, form.get("csrf")) {
        return pages::error(&issuer, StatusCode::FORBIDDEN, CSRF_FAILED);
    }
    let req = match validate(&state, form.get("request").unwrap_or("")).await {
        Ok(req) => req,
        Err(e) => return refuse(&state, e, true),
    };
    let username = form.get("username").unwrap_or("").to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    let user = match state.store.get_user_by_username(&username).await {
        Ok(u) => u,
        Err(e) => return refuse(&state, AuthorizeError::from(e), true),
    };
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    // Argon2id takes tens of milliseconds of CPU: keep it off the async workers.
    // An unknown user costs the same as a wrong password.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, phc.as_deref()))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!(username = %username, client_id = %req.client.id, "failed login");
        return login_page(
            &state,
            &headers,
            &req,
            &username,
            Some("Invalid username or password."),
        );
    };
    // A new session on every login; the old one (if any) ends (no session fixation).
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.store.delete_session(&hash_secret(old)).await {
            return refuse(&state, AuthorizeError::from(e), true);
        }
    }
    let (session, set_cookie) = match start_session(&state, &user).await {
        Ok(s) => s,
        Err(e) => return refuse(&state, AuthorizeError::from(anyhow::Error::from(e)), true),
    };
    decide(
        &state,
        &headers,
        req,
        &user,
        session.auth_time,
        true,
        vec![set_cookie],
    )
    .await
}
