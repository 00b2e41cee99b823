//! Calls to the bank with the session's access token: refreshed shortly before it
//! expires, and once more (with one retry) when the bank answers `invalid_token`.
//! A refresh refused with `invalid_grant` means the person revoked the access.

use std::time::Instant;

use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::oauth::OAuthError;
use super::report::{Account, Transaction};
use super::session::Session;
use super::App;

/// Why the app could not talk to the bank.
#[derive(Debug)]
pub enum CallError {
    /// The tokens are gone; the person must connect again.
    Reconnect(Reconnect),
    /// Anything else, as a sentence for the person.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Tessera refused the refresh token (`invalid_grant`): the grant was revoked.
    Revoked,
    /// The access token expired and there is no refresh token.
    Expired,
}

/// What the bank shared.
pub struct BankData {
    pub accounts: Vec<Account>,
    pub transactions: Vec<Transaction>,
    /// What could not be read, and why.
    pub notes: Vec<String>,
}

/// The bank's answer to the attempt to create a transaction.
pub enum CreateOutcome {
    Created(Transaction),
    /// 403: `error` (normally `insufficient_scope`) and the scope the bank named.
    Refused {
        error: String,
        scope: Option<String>,
    },
    NoAccount,
    Other {
        status: StatusCode,
        detail: String,
    },
}

#[derive(Deserialize)]
struct AccountsBody {
    accounts: Vec<Account>,
}

#[derive(Deserialize)]
struct TransactionsBody {
    transactions: Vec<Transaction>,
}

/// A parameter of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3), unquoted.
pub fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let (scheme, rest) = challenge.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',' && *c != ' ')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| {
                chars.next_if(|c| *c != ',' && *c != ' ')
            }));
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

fn challenge(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(header::WWW_AUTHENTICATE)?.to_str().ok()?;
    challenge_param(value, name)
}

fn unreachable(e: reqwest::Error) -> CallError {
    tracing::warn!(error = %e, "call to the bank failed");
    CallError::Failed("The bank could not be reached. Please try again later.".into())
}

impl App {
    /// `{bank_url}/accounts[/{id}/transactions]`, the id percent-encoded as a path segment.
    fn bank_url(&self, account_id: Option<&str>) -> Result<url::Url, CallError> {
        let mut url = url::Url::parse(&self.config.bank_url)
            .map_err(|_| CallError::Failed("The bank address is misconfigured.".into()))?;
        url.path_segments_mut()
            .map_err(|_| CallError::Failed("The bank address is misconfigured.".into()))?
            .pop_if_empty()
            .push("accounts")
            .extend(
                account_id
                    .map(|id| [id, "transactions"])
                    .into_iter()
                    .flatten(),
            );
        Ok(url)
    }

    async fn refresh_session(&self, session: &mut Session) -> Result<(), CallError> {
        let Some(tokens) = &session.tokens else {
            return Err(CallError::Reconnect(Reconnect::Expired));
        };
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            session.tokens = None;
            return Err(CallError::Reconnect(Reconnect::Expired));
        };
        match self.refresh(&refresh_token, &tokens.scope).await {
            Ok(new) => {
                tracing::debug!("access token refreshed");
                session.tokens = Some(new);
                Ok(())
            }
            Err(OAuthError::Refused { error, .. }) if error == "invalid_grant" => {
                tracing::info!("the grant was revoked; tokens dropped");
                session.tokens = None;
                Err(CallError::Reconnect(Reconnect::Revoked))
            }
            Err(e) => Err(CallError::Failed(format!(
                "The access to your bank could not be renewed: {e}"
            ))),
        }
    }

    fn access_token(session: &Session) -> Result<String, CallError> {
        session
            .tokens
            .as_ref()
            .map(|t| t.access_token.clone())
            .ok_or(CallError::Reconnect(Reconnect::Expired))
    }

    /// Send a request built by `build` with the access token, refreshing as needed.
    async fn send(
        &self,
        session: &mut Session,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        if session
            .tokens
            .as_ref()
            .is_some_and(|t| t.expiring(Instant::now()))
        {
            self.refresh_session(session).await?;
        }
        let response = build(&Self::access_token(session)?)
            .send()
            .await
            .map_err(unreachable)?;
        let invalid = response.status() == StatusCode::UNAUTHORIZED
            && challenge(response.headers(), "error").as_deref() == Some("invalid_token");
        if !invalid {
            return Ok(response);
        }
        self.refresh_session(session).await?;
        build(&Self::access_token(session)?)
            .send()
            .await
            .map_err(unreachable)
    }

    /// Present the revoked `access_token` to the bank, without refreshing, until the
    /// bank refuses it (at most for two seconds), and describe the answer (e.g.
    /// `401 invalid_token after 3 ms`): shown after a disconnect as proof.
    pub async fn probe_bank(&self, access_token: &str) -> String {
        let Ok(url) = self.bank_url(None) else {
            return "nothing (its address is misconfigured)".into();
        };
        let started = Instant::now();
        loop {
            let answer = match self
                .http
                .get(url.clone())
                .bearer_auth(access_token)
                .send()
                .await
            {
                Ok(r) => (r.status(), challenge(r.headers(), "error")),
                Err(_) => return "nothing (it cannot be reached)".into(),
            };
            let waited = started.elapsed();
            if answer.0 == StatusCode::UNAUTHORIZED || waited > std::time::Duration::from_secs(2) {
                let code = answer.1.map_or_else(String::new, |e| format!(" {e}"));
                return format!(
                    "{}{code} after {} ms",
                    answer.0.as_u16(),
                    waited.as_millis()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Read everything the token lets the app see.
    pub async fn fetch_bank_data(&self, session: &mut Session) -> Result<BankData, CallError> {
        let url = self.bank_url(None)?;
        let response = self
            .send(session, |t| self.http.get(url.clone()).bearer_auth(t))
            .await?;
        let AccountsBody { accounts } = read_json(response).await?;
        let mut data = BankData {
            accounts,
            transactions: Vec::new(),
            notes: Vec::new(),
        };
        for account in &data.accounts {
            let url = self.bank_url(Some(&account.id))?;
            let response = self
                .send(session, |t| self.http.get(url.clone()).bearer_auth(t))
                .await?;
            if response.status() == StatusCode::FORBIDDEN {
                let scope = challenge(response.headers(), "scope")
                    .unwrap_or_else(|| "transactions:read".into());
                data.notes.push(format!(
                    "The bank did not share transactions: the app was not granted {scope}."
                ));
                break;
            }
            let TransactionsBody { transactions } = read_json(response).await?;
            data.transactions.extend(transactions);
        }
        Ok(data)
    }

    /// Ask the bank to add a test transaction to the first account.
    pub async fn try_create_transaction(
        &self,
        session: &mut Session,
        date: &str,
    ) -> Result<CreateOutcome, CallError> {
        let url = self.bank_url(None)?;
        let response = self
            .send(session, |t| self.http.get(url.clone()).bearer_auth(t))
            .await?;
        let AccountsBody { accounts } = read_json(response).await?;
        let Some(account) = accounts.first() else {
            return Ok(CreateOutcome::NoAccount);
        };
        let url = self.bank_url(Some(&account.id))?;
        let body = json!({
            "date": date,
            "description": "Test purchase by the reports app",
            "category": "Shopping",
            "amount_cents": -1234,
        });
        let response = self
            .send(session, |t| {
                self.http.post(url.clone()).bearer_auth(t).json(&body)
            })
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(match status {
            StatusCode::CREATED => match serde_json::from_value(answer.clone()) {
                Ok(t) => CreateOutcome::Created(t),
                Err(_) => CreateOutcome::Other {
                    status,
                    detail: "the answer could not be read".into(),
                },
            },
            StatusCode::FORBIDDEN => CreateOutcome::Refused {
                error: text("error")
                    .or_else(|| challenge(&headers, "error"))
                    .unwrap_or_else(|| "forbidden".into()),
                scope: text("scope").or_else(|| challenge(&headers, "scope")),
            },
            _ => CreateOutcome::Other {
                status,
                detail: text("error_description")
                    .or_else(|| text("error"))
                    .unwrap_or_default(),
            },
        })
    }
}

/// The JSON of a successful answer; any other answer as a sentence.
async fn read_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CallError> {
    let status = response.status();
    if status.is_success() {
        return response.json().await.map_err(|e| {
            tracing::warn!(error = %e, "unreadable answer from the bank");
            CallError::Failed("The bank sent an answer the app cannot read.".into())
        });
    }
    let detail = challenge(response.headers(), "error_description")
        .or_else(|| challenge(response.headers(), "error"))
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    Err(CallError::Failed(format!(
        "The bank answered {status}{detail}."
    )))
}

#[cfg(test)]
mod tests {
    use super::challenge_param;

    #[test]
    fn reads_challenge_parameters() {
        let c = r#"Bearer realm="bank", error="insufficient_scope", scope="transactions:write""#;
        assert_eq!(
            challenge_param(c, "scope").as_deref(),
            Some("transactions:write")
        );
        assert_eq!(
            challenge_param(c, "error").as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(challenge_param(c, "missing"), None);
        let c = r#"bearer realm="a, \"b\"",error=invalid_token, error_description="x, y""#;
        assert_eq!(challenge_param(c, "realm").as_deref(), Some(r#"a, "b""#));
        assert_eq!(
            challenge_param(c, "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            challenge_param(c, "error_description").as_deref(),
            Some("x, y")
        );
        assert_eq!(challenge_param(r#"Basic realm="x""#, "realm"), None);
        assert_eq!(challenge_param("Bearer", "realm"), None);
        assert_eq!(
            challenge_param(r#"Bearer realm="unterminated"#, "realm").as_deref(),
            Some("unterminated")
        );
    }
}
