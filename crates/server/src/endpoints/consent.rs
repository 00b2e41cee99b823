//! `POST /consent`: the person's decision. They may untick scopes (partial consent)
//! and choose how long the grant lasts; approval is remembered for this user, client
//! and scope set until then. Denial, or refusing a scope the client requires, sends
//! `access_denied` to the client (RFC 6749 §4.1.2.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_protocol::{Form, Scope};

use super::authorize::{issue_code, login_page, redirect_error, refuse, Granted, DURATIONS};
use super::login::CSRF_FAILED;
use crate::authorize::{validate, AuthorizeError, AuthorizeRequest};
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
            let granted = match granted(&state, &form, &req) {
                Ok(g) => g,
                Err(Refusal::Denied(error)) => return redirect_error(&state, &req, error, true),
                Err(Refusal::BadForm(message)) => {
                    return pages::error(&issuer, StatusCode::BAD_REQUEST, message)
                }
            };
            let now = state.clock.now();
            if let Err(e) = state
                .store
                .add_consent(
                    &user.id,
                    &req.client.id,
                    &granted.scope,
                    now,
                    granted.expires_at,
                )
                .await
            {
                return refuse(&state, AuthorizeError::from(e), true);
            }
            issue_code(&state, &req, &user, session.auth_time, &granted, true, &[]).await
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

enum Refusal {
    /// Sent to the client as an error.
    Denied(OAuthError),
    /// A form that Tessera's page cannot have produced.
    BadForm(&'static str),
}

/// The scopes the person left ticked and the lifetime they chose.
fn granted(state: &AppState, form: &Form, req: &AuthorizeRequest) -> Result<Granted, Refusal> {
    let scope = Scope::from_tokens(
        req.scope
            .iter()
            .filter(|s| form.get(&format!("scope.{s}")).is_some()),
    );
    let refused_required: Vec<&str> = req
        .scope
        .iter()
        .filter(|s| req.client.required_scope.contains(s) && !scope.contains(s))
        .collect();
    if !refused_required.is_empty() {
        return Err(Refusal::Denied(OAuthError::AccessDenied(
            format!(
                "the user refused a scope the client requires: {}",
                refused_required.join(" ")
            )
            .into(),
        )));
    }
    if scope.is_empty() && !req.scope.is_empty() {
        return Err(Refusal::Denied(OAuthError::AccessDenied(
            "the user granted no scope".into(),
        )));
    }
    let choice = form.get("duration").unwrap_or("forever");
    let Some((_, _, seconds)) = DURATIONS.iter().find(|(value, _, _)| *value == choice) else {
        return Err(Refusal::BadForm("The form asks for an unknown duration."));
    };
    Ok(Granted {
        scope,
        expires_at: seconds.map(|s| state.clock.now() + s),
    })
}
