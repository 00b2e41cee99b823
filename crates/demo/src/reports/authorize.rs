//! `POST /connect` starts the authorization code flow with PKCE (RFC 6749 §4.1,
//! RFC 7636); `GET /callback` checks `state` and `iss` (RFC 9207 §2.4) and
//! exchanges the code for tokens.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::oauth::random_token;
use super::pages::{Failure, MessagePage};
use super::request::posted_session;
use super::session::Pending;
use super::App;

/// A 303 to `location`.
pub fn see_other(location: &str) -> Result<Response, Failure> {
    let value = HeaderValue::from_str(location).map_err(anyhow::Error::from)?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response())
}

fn bad_request(message: &str) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, "Connecting failed", message)
}

pub async fn connect(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut session = posted_session(&app, &headers, &body).await?;
    let state = random_token()?;
    let pkce_verifier = random_token()?;
    let url = app
        .authorize_url(&state, &pkce_verifier)
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "Tessera could not be reached",
                e.to_string(),
            )
        })?;
    session.pending = Some(Pending {
        state,
        pkce_verifier,
    });
    see_other(&url)
}

/// The authorization response (RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207).
#[derive(Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<CallbackParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let Ok(Query(params)) = query else {
        return Err(bad_request("The answer from Tessera is malformed."));
    };
    let session = app.sessions.find(&headers).ok_or_else(|| {
        bad_request(
            "No connection was started in this browser. Go back to the start and try again.",
        )
    })?;
    let mut session = session.lock().await;
    let state_matches = match (&session.pending, &params.state) {
        (Some(pending), Some(state)) => aws_lc_rs::constant_time::verify_slices_are_equal(
            pending.state.as_bytes(),
            state.as_bytes(),
        )
        .is_ok(),
        _ => false,
    };
    if let Some(error) = &params.error {
        if state_matches {
            session.pending = None;
        }
        let page = if error == "access_denied" {
            MessagePage::new(
                "You declined",
                &["You did not give the reports app access to your bank. Nothing was shared."],
            )
        } else {
            let detail = params
                .error_description
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            MessagePage::new("Tessera did not give access", &[])
                .with_line(format!("Tessera answered {error}{detail}."))
        };
        let status = if error == "access_denied" {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return Ok(page.with_connect(&session.csrf).respond(status));
    }
    if !state_matches {
        return Err(bad_request(
            "This answer does not belong to a connection started in this browser (state mismatch). Nothing was done.",
        ));
    }
    let Some(pending) = session.pending.take() else {
        return Err(bad_request("No connection is in progress."));
    };
    if params.iss.as_deref() != Some(app.config.issuer.as_str()) {
        return Err(bad_request(
            "This answer did not come from the expected authorization server (iss mismatch). Nothing was done.",
        ));
    }
    let Some(code) = params.code else {
        return Err(bad_request(
            "The answer from Tessera holds no authorization code.",
        ));
    };
    let tokens = app
        .exchange_code(&code, &pending.pkce_verifier)
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "Connecting failed",
                format!("Tessera did not issue tokens: {e}"),
            )
        })?;
    session.tokens = Some(tokens);
    see_other("/")
}
