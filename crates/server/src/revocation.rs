//! Revoking grants and tokens: one place that marks them revoked, appends to the
//! revocation feed (in the store's transaction), wakes the feed's subscribers and
//! records who did it.

use crate::audit::{self, Entry};
use crate::error::Result;
use crate::state::AppState;
use crate::store::Actor;

/// The least time a grant's feed entry is kept, whatever the access token lifetime.
const REMEMBERED_AT_LEAST: i64 = 86_400;

/// How long after a grant's revocation its feed entry matters: every access token of
/// the grant has expired by then. Introspection refuses a token whose grant is in the
/// feed (the tokens themselves are not marked), and so do resource servers reading it:
/// an entry forgotten while a token of its grant is live would let that token back in.
/// So it is kept for a day at least, which covers the tokens issued before a shorter
/// `tokens.access_token_ttl` was configured, down from up to a day.
fn forget_after(state: &AppState, now: i64) -> i64 {
    let ttl = state.config.tokens.access_token_ttl.as_secs() as i64;
    now + ttl.max(REMEMBERED_AT_LEAST) + 60
}

/// Revoke a grant (a token family) and everything issued under it. Returns whether it
/// was live before.
pub async fn revoke_grant(
    state: &AppState,
    grant_id: &str,
    by: Actor,
    reason: &str,
) -> Result<bool> {
    let now = state.clock.now();
    let revoked = state
        .store
        .revoke_grant(grant_id, now, by, forget_after(state, now))
        .await?;
    if revoked {
        state.revoked();
        let grant = state.store.get_grant(grant_id).await?;
        audit::record(
            state,
            Entry {
                kind: "revoke",
                actor: by,
                user_id: grant.as_ref().and_then(|g| g.user_id.as_deref()),
                client_id: grant.as_ref().map(|g| g.client_id.as_str()),
                grant_id: Some(grant_id),
                detail: reason.to_owned(),
            },
        )
        .await?;
        tracing::info!(grant_id, by = by.as_str(), reason, "grant revoked");
    }
    Ok(revoked)
}

/// Revoke one JWT access token by its `jti` until it expires.
pub async fn revoke_jti(
    state: &AppState,
    jti: &str,
    exp: i64,
    client_id: &str,
    user_id: Option<&str>,
) -> Result<()> {
    let now = state.clock.now();
    state.store.revoke_jti(jti, exp, now).await?;
    state.revoked();
    audit::record(
        state,
        Entry {
            kind: "revoke",
            actor: Actor::Client,
            user_id,
            client_id: Some(client_id),
            grant_id: None,
            detail: format!("access token {jti} revoked by the client"),
        },
    )
    .await
}

/// The person takes an app's access back: every grant of theirs to the client is
/// revoked and the consent forgotten, so the next authorization asks again.
/// Returns how many live grants were revoked.
pub async fn revoke_app(
    state: &AppState,
    user_id: &str,
    client_id: &str,
    by: Actor,
) -> Result<usize> {
    let mut count = 0;
    for grant in state.store.list_user_grants(user_id).await? {
        if grant.client_id == client_id
            && revoke_grant(
                state,
                &grant.id,
                by,
                "access revoked on the connected apps page",
            )
            .await?
        {
            count += 1;
        }
    }
    state.store.delete_consent(user_id, client_id).await?;
    Ok(count)
}

/// Before a user or client is deleted (which deletes their grants by cascade), revoke
/// their grants so that the feed tells resource servers.
pub async fn revoke_all(
    state: &AppState,
    grants: Vec<crate::store::Grant>,
    reason: &str,
) -> Result<usize> {
    let mut count = 0;
    for grant in grants {
        if revoke_grant(state, &grant.id, Actor::Admin, reason).await? {
            count += 1;
        }
    }
    Ok(count)
}

/// Delete a user: their grants are revoked first (so that the feed tells resource
/// servers, and the audit trail says why), then the user goes with everything of
/// theirs; a grant made meanwhile gets its feed entry in the deletion's transaction.
/// Returns whether the user existed.
pub async fn delete_user(state: &AppState, username: &str, reason: &str) -> Result<bool> {
    if let Some(user) = state.store.get_user_by_username(username).await? {
        let grants = state.store.list_user_grants(&user.id).await?;
        revoke_all(state, grants, reason).await?;
    }
    let now = state.clock.now();
    let deleted = state
        .store
        .delete_user(username, now, forget_after(state, now))
        .await?;
    if deleted {
        state.revoked();
    }
    Ok(deleted)
}
