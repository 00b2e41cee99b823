//! What every handler starts with: the browser's session and, for a posted form,
//! the check of its CSRF token.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::OwnedMutexGuard;

use super::pages::Failure;
use super::session::{csrf_ok, form_field, Session, Shared};
use super::App;

/// The browser's session, or a new one with the cookie that names it.
pub fn current_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Shared, Option<HeaderValue>), Failure> {
    match app.sessions.find(headers) {
        Some(session) => Ok((session, None)),
        None => {
            let (session, cookie) = app.sessions.create()?;
            Ok((session, Some(cookie)))
        }
    }
}

/// The session of a posted form, locked, if the form's `csrf` field is the session's.
pub async fn posted_session(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<OwnedMutexGuard<Session>, Failure> {
    let expired = || {
        Failure::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Your session with the reports app has ended or the form did not come from this app. Go back to the start and try again.",
        )
    };
    let session = app
        .sessions
        .find(headers)
        .ok_or_else(expired)?
        .lock_owned()
        .await;
    if !csrf_ok(&session.csrf, form_field(body, "csrf").as_deref()) {
        return Err(expired());
    }
    Ok(session)
}
