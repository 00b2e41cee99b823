//! `POST /consent`: the person's decision. Approval is remembered for this user,
//! client and scope set; denial sends `access_denied` to the client (RFC 6749 §4.1.2.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_protocol::Form;

use super::authorize::{issue_code, login_page, redirect_error, refuse};
use super::login::CSRF_FAILED;
use crate::authorize::{validate, AuthorizeError};
use crate::error::OAuthError;
use crate::pages;
use crate::session::{csrf_ok, current_user};
use crate::state::AppState;

pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
    let (user, session) = match current_user(&state, &headers).await {
        Ok(Some(u)) => u,
        // The session ended while the consent page was open: sign in again.
        Ok(None) => return login_page(&state, &headers, &req, "", None),
        Err(e) => return refuse(&state, AuthorizeError::from(anyhow::Error::from(e)), true),
    };
    match form.get("decision") {
        Some("approve") => {
            let now = state.clock.now();
            if let Err(e) = state
                .store
                .add_consent(&user.id, &req.client.id, &req.scope, now)
                .await
            {
                return refuse(&state, AuthorizeError::from(e), true);
            }
            issue_code(&state, &req, &user, session.auth_time, true, &[]).await
        }
        Some("deny") => redirect_error(
            &state,
            &req,
            OAuthError::AccessDenied("the user denied the request".into()),
            true,
        ),
        _ => pages::error(
            &issuer,
            StatusCode::BAD_REQUEST,
            "The form has no decision.",
        ),
    }
}
