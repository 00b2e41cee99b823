//! The client credentials grant (RFC 6749 §4.4): a confidential client acting on its
//! own behalf. No refresh token is issued (§4.4.3).

use axum::response::Response;
use tessera_protocol::Scope;

use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::store::Client;
use crate::tokens::{issue_access_token, token_response, AccessTokenFor};

pub async fn handle(
    state: &AppState,
    client: &Client,
    requested: Option<&Scope>,
) -> Result<Response> {
    // RFC 6749 §4.4: only confidential clients may use this grant.
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient(
            "public clients may not use the client_credentials grant".into(),
        ));
    }
    let scope = match requested {
        Some(requested) => {
            let refused = requested.difference(&client.scope);
            if !refused.is_empty() {
                return Err(OAuthError::InvalidScope(
                    format!("scope not allowed for this client: {}", refused.join(" ")).into(),
                ));
            }
            requested.clone()
        }
        None => client.scope.clone(),
    };
    let access = issue_access_token(
        state,
        AccessTokenFor {
            client,
            user_id: None,
            scope: &scope,
            grant_id: None,
            auth_time: None,
            not_after: None,
        },
    )
    .await?;
    Ok(token_response(access, None, &scope))
}
