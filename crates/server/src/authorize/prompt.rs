//! Check 7: the `prompt` parameter (OpenID Connect Core §3.1.2.1), honoured for OAuth too:
//! `none` never shows a page, `login` asks for the password again, `consent` asks for
//! consent again.

use tessera_protocol::Form;

use crate::error::OAuthError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

pub fn check_prompt(form: &Form) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    let Some(raw) = form.get("prompt") else {
        return Ok(prompt);
    };
    for value in raw.split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => {
                return Err(OAuthError::InvalidRequest(
                    format!("prompt value '{other}' is not supported").into(),
                ))
            }
        }
    }
    // OpenID Connect Core §3.1.2.1: `none` with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::InvalidRequest(
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    Ok(prompt)
}
