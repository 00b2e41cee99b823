//! The audit trail: grants, refreshes (once per grant and `audit.refresh_interval`),
//! revocations (and by whom) and failed logins; kept for `audit.retention`.

use crate::error::Result;
use crate::state::AppState;
use crate::store::{Actor, AuditEvent};

/// What happened, to whom, through which client.
pub struct Entry<'a> {
    pub kind: &'a str,
    pub actor: Actor,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub detail: String,
}

/// Record an entry, resolving the username so the history reads well after deletions.
pub async fn record(state: &AppState, e: Entry<'_>) -> Result<()> {
    let username = match e.user_id {
        Some(id) => state.store.get_user(id).await?.map(|u| u.username),
        None => None,
    };
    record_with_username(state, e, username).await
}

/// Record an entry whose username is already known (or meaningful without a user id).
pub async fn record_with_username(
    state: &AppState,
    e: Entry<'_>,
    username: Option<String>,
) -> Result<()> {
    state
        .store
        .record_audit(&AuditEvent {
            id: 0,
            at: state.clock.now(),
            kind: e.kind.to_owned(),
            actor: e.actor,
            user_id: e.user_id.map(str::to_owned),
            username,
            client_id: e.client_id.map(str::to_owned),
            grant_id: e.grant_id.map(str::to_owned),
            detail: e.detail,
        })
        .await?;
    Ok(())
}
