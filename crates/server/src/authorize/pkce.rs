//! Check 5: PKCE is required for every client, with the S256 method only
//! (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1, RFC 7636 §4.3).

use tessera_protocol::{CodeChallenge, Form};

use crate::error::OAuthError;

pub fn check_pkce(form: &Form) -> Result<CodeChallenge, OAuthError> {
    let Some(challenge) = form.get("code_challenge") else {
        return Err(OAuthError::InvalidRequest(
            "code_challenge is required (PKCE, RFC 7636)".into(),
        ));
    };
    // RFC 7636 §4.3: a missing method means "plain", which Tessera does not accept.
    match form.get("code_challenge_method") {
        Some("S256") => {}
        None | Some("plain") => {
            return Err(OAuthError::InvalidRequest(
                "code_challenge_method must be S256".into(),
            ))
        }
        Some(other) => {
            return Err(OAuthError::InvalidRequest(
                format!("code_challenge_method '{other}' is not supported; use S256").into(),
            ))
        }
    }
    CodeChallenge::parse(challenge).map_err(|e| OAuthError::InvalidRequest(e.into()))
}
