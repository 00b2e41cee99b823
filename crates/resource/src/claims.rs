//! The verified claims of an access token.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::BearerError;

/// What a verified access token says (RFC 9068 §2.2, RFC 7662 §2.2).
#[derive(Debug, Clone)]
pub struct Claims {
    /// The resource owner, or the client itself for client credentials tokens.
    pub sub: String,
    pub client_id: String,
    pub scope: BTreeSet<String>,
    pub iss: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    /// The grant (token family) the token belongs to, when Tessera issued it for a user.
    pub grant_id: Option<String>,
    /// Every other claim.
    pub extra: Map<String, Value>,
    pub(crate) realm: Arc<str>,
}

impl Claims {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// Demand a scope: `claims.require("transactions:write")?` answers 403
    /// `insufficient_scope` naming it when the token lacks it (RFC 6750 §3.1).
    pub fn require(&self, scope: &str) -> Result<(), BearerError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(BearerError::insufficient_scope(&self.realm, scope))
        }
    }

    /// Demand any one of several scopes; the refusal names them all.
    pub fn require_any(&self, scopes: &[&str]) -> Result<(), BearerError> {
        if scopes.iter().any(|s| self.has_scope(s)) {
            Ok(())
        } else {
            Err(BearerError::insufficient_scope(
                &self.realm,
                &scopes.join(" "),
            ))
        }
    }

    /// Build claims from a JSON object (a JWT payload or an introspection answer).
    pub(crate) fn from_json(
        mut object: Map<String, Value>,
        realm: Arc<str>,
    ) -> Result<Self, String> {
        let mut take_string = |key: &str| match object.remove(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(format!("claim {key} is not a string")),
        };
        let sub = take_string("sub")?.ok_or("the token has no sub")?;
        let client_id = take_string("client_id")?.unwrap_or_default();
        let scope = take_string("scope")?.unwrap_or_default();
        let iss = take_string("iss")?.unwrap_or_default();
        let jti = take_string("jti")?;
        let grant_id = take_string("grant_id")?;
        let aud = match object.remove("aud") {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err("aud holds a non-string".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err("aud is neither a string nor an array".into()),
        };
        let number = |v: Option<Value>, key: &str| match v {
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or(format!("claim {key} is not an integer")),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(format!("claim {key} is not a number")),
        };
        let exp = number(object.remove("exp"), "exp")?.ok_or("the token has no exp")?;
        let iat = number(object.remove("iat"), "iat")?;
        Ok(Self {
            sub,
            client_id,
            scope: scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            iss,
            aud,
            exp,
            iat,
            jti,
            grant_id,
            extra: object,
            realm,
        })
    }
}
