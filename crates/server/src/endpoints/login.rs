//! `POST /login`: the login form of an authorization request. Checks the CSRF token
//! and the password (Argon2id), starts a session, then continues the request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_protocol::Form;

use super::account::standalone_login;
use super::authorize::{decide, login_page, refuse};
use crate::audit;
use crate::authorize::{validate, AuthorizeError};
use crate::crypto::{hash_secret, verify_password_bounded};
use crate::pages;
use crate::session::{cookie, csrf_ok, start_session, SESSION_COOKIE};
use crate::state::AppState;
use crate::store::Actor;
use axum::response::{IntoResponse, Redirect};

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
    // With an authorization request the login continues it; without one it signs the
    // person in to their account pages.
    let req = match form.get("request") {
        None => None,
        Some(raw) => match validate(&state, raw).await {
            Ok(req) => Some(req),
            Err(e) => return refuse(&state, e, true),
        },
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
    let verified = verify_password_bounded(password, phc).await;
    let Some(user) = user.clone().filter(|_| verified) else {
        let client_id = req.as_ref().map(|r| r.client.id.as_str());
        tracing::info!(username = %username, client_id, "failed login");
        let entry = audit::Entry {
            kind: "login_failed",
            actor: Actor::Person,
            user_id: user.as_ref().map(|u| u.id.as_str()),
            client_id,
            grant_id: None,
            detail: if user.is_some() {
                "wrong password".into()
            } else {
                "unknown username".into()
            },
        };
        if let Err(e) = audit::record_with_username(&state, entry, Some(username.clone())).await {
            return refuse(&state, AuthorizeError::from(anyhow::Error::from(e)), true);
        }
        const FAILED: &str = "Invalid username or password.";
        return match &req {
            Some(req) => login_page(&state, &headers, req, &username, Some(FAILED)),
            None => standalone_login(&state, &headers, &username, Some(FAILED)),
        };
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
    match req {
        Some(req) => {
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
        None => {
            let mut response = Redirect::to(&format!("{issuer}/account/apps")).into_response();
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, set_cookie);
            response
        }
    }
}
