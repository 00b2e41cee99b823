//! The report's two buttons: `POST /try-create` (shows that read-only access cannot
//! write) and `POST /disconnect` (revokes the grant at Tessera, RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::bank_client::{CallError, CreateOutcome};
use super::home::{reconnect_page, transaction_row};
use super::pages::{Failure, MessagePage};
use super::request::posted_session;
use super::App;
use crate::date;

pub async fn try_create(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut session = posted_session(&app, &headers, &body).await?;
    if session.tokens.is_none() {
        let page = MessagePage::new(
            "Not connected",
            &["Connect your bank first: the app has no access yet."],
        );
        return Ok(page.with_connect(&session.csrf).respond(StatusCode::OK));
    }
    let outcome = match app
        .try_create_transaction(&mut session, &date::format(date::today()))
        .await
    {
        Ok(outcome) => outcome,
        Err(CallError::Reconnect(why)) => {
            return Ok(reconnect_page(why, &session.csrf).respond(StatusCode::OK))
        }
        Err(CallError::Failed(message)) => {
            return Err(Failure::new(
                StatusCode::BAD_GATEWAY,
                "The bank could not be reached",
                message,
            ))
        }
    };
    let granted = session
        .tokens
        .as_ref()
        .map(|t| t.scope.clone())
        .unwrap_or_default();
    let page = match outcome {
        CreateOutcome::Refused { error, scope } => {
            let mut page = MessagePage::new(format!("The bank refused: {error}"), &[]);
            if let Some(scope) = scope {
                page = page.with_line(format!("Creating a transaction needs the scope {scope}, which this app was not granted."));
            }
            page.with_line(format!(
                "The reports app only has read access: you granted it {granted}."
            ))
            .with_line("It can read your transactions but can never create or change them.".into())
        }
        CreateOutcome::Created(t) => {
            let mut page = MessagePage::new("The bank created a transaction", &[])
                .with_line(format!("This app was granted {granted}, which includes write access, so the bank accepted it:"));
            page.transaction = Some(transaction_row(&t));
            page
        }
        CreateOutcome::NoAccount => MessagePage::new(
            "No account to write to",
            &["The bank lists no account of yours."],
        ),
        CreateOutcome::Other { status, detail } => {
            MessagePage::new("The bank did not create the transaction", &[])
                .with_line(format!("The bank answered {status}. {detail}"))
        }
    };
    Ok(page.respond(StatusCode::OK))
}

pub async fn disconnect(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut session = posted_session(&app, &headers, &body).await?;
    session.pending = None;
    let mut problems = Vec::new();
    let mut probe = None;
    if let Some(tokens) = session.tokens.take() {
        // Revoking the refresh token revokes the whole grant at Tessera.
        if let Some(refresh_token) = &tokens.refresh_token {
            if let Err(e) = app.revoke(refresh_token, "refresh_token").await {
                problems.push(e.to_string());
            }
        }
        if let Err(e) = app.revoke(&tokens.access_token, "access_token").await {
            problems.push(e.to_string());
        }
        probe = Some(app.probe_bank(&tokens.access_token).await);
    }
    let page = if problems.is_empty() {
        let page = MessagePage::new(
            "Disconnected: the reports app no longer has access to your bank.",
            &["The app asked Tessera to revoke its access and has forgotten its tokens."],
        );
        match probe {
            Some(answer) => page.with_line(format!(
                "Check: the bank now answers {answer} to the old access token."
            )),
            None => page,
        }
    } else {
        MessagePage::new(
            "Disconnected here, but Tessera did not confirm",
            &["The app has forgotten its tokens, but Tessera did not confirm that it revoked them."],
        )
        .with_line(format!("Tessera answered: {}", problems.join("; ")))
        .with_line("You can also take the access back at Tessera itself.".into())
    };
    Ok(page.respond(StatusCode::OK))
}
