//! JWT client assertions (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OpenID Connect Core §9):
//! `private_key_jwt`, signed with a key of the client's JWK Set, and
//! `client_secret_jwt`, an HMAC keyed by the client secret.
//!
//! The checks, in order: the JWS parses and names an accepted `alg` (never `none`);
//! `iss` = `sub` = the client; the client is registered for the method the `alg`
//! implies; `aud` names Tessera; `exp` is near, `nbf` and `iat` are not in the future;
//! the signature verifies; the `jti` was never used (recorded only once all else holds).
//! Every failure is `invalid_client` (RFC 7521 §4.2.1).

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use tessera_protocol::Form;

use super::jwk::{parse_set, Alg, ClientKey};
use crate::crypto::{constant_time_eq, hash_secret};
use crate::error::{OAuthError, Result};
use crate::state::AppState;
use crate::store::{AuthMethod, Client};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4 allows "some small
/// leeway"), in seconds.
pub const LEEWAY: i64 = 30;
/// The furthest in the future `exp` may be (seconds): an assertion is for one request,
/// and its `jti` is remembered until it expires.
pub const MAX_LIFETIME: i64 = 300;
/// The longest `jti` accepted (it is stored until the assertion expires).
const MAX_JTI_LEN: usize = 256;

fn invalid(msg: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::InvalidClient(msg.into())
}

/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded, not yet trusted.
struct Jws<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, what the signature covers.
    signing_input: &'a str,
    signature: Vec<u8>,
    alg: Alg,
    kid: Option<String>,
    claims: Map<String, Value>,
}

fn decode_json(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// RFC 7521 §4.2.1: an assertion that is not a valid JWS is `invalid_client`.
fn parse(raw: &str) -> Result<Jws<'_>> {
    let malformed = || invalid("client_assertion is not a signed JWT (JWS compact serialization)");
    let mut parts = raw.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header = decode_json(h).ok_or_else(malformed)?;
    let claims = decode_json(p).ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        None => return Err(invalid("the assertion header has no alg")),
        // RFC 7523 §3 item 9: the JWT MUST be digitally signed or MACed.
        Some("none") => return Err(invalid("unsigned assertions (alg none) are not accepted")),
        Some(name) => Alg::parse(name)
            .ok_or_else(|| invalid(format!("assertion alg {name} is not supported")))?,
    };
    // RFC 7515 §4.1.11: extensions marked critical must be understood; we know none.
    if header.contains_key("crit") {
        return Err(invalid(
            "the assertion header has crit extensions, which are not supported",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(invalid("the assertion header's kid is not a string")),
    };
    if signature.is_empty() {
        return Err(malformed());
    }
    Ok(Jws {
        signing_input: &raw[..h.len() + 1 + p.len()],
        signature,
        alg,
        kid,
        claims,
    })
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(invalid(format!("the assertion's {name} is not a string"))),
        None => Err(invalid(format!("the assertion has no {name}"))),
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional.
fn date_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| invalid(format!("the assertion's {name} is not a NumericDate"))),
    }
}

/// What a valid assertion leaves to record: its `jti` and until when to remember it.
struct Checked {
    jti: String,
    remember_until: i64,
}

/// RFC 7523 §3 items 3–7 (with OpenID Connect Core §9's `jti`).
fn check_claims(claims: &Map<String, Value>, audiences: &[String], now: i64) -> Result<Checked> {
    // Item 3: `aud` identifies the authorization server: its issuer or token endpoint
    // URL (RFC 7523 §3), or the URL of the endpoint the assertion is presented at.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        Some(_) => false,
        None => return Err(invalid("the assertion has no aud")),
    };
    if !aud_ok {
        return Err(invalid(
            "the assertion's aud must be the issuer or the token endpoint URL",
        ));
    }
    // Item 4: `exp` is required and in the future; we also bound how far.
    let exp = date_claim(claims, "exp")?.ok_or_else(|| invalid("the assertion has no exp"))?;
    if now >= exp.saturating_add(LEEWAY) {
        return Err(invalid("the assertion has expired"));
    }
    if exp.saturating_sub(now) > MAX_LIFETIME + LEEWAY {
        return Err(invalid(format!(
            "the assertion's exp is more than {MAX_LIFETIME} seconds ahead"
        )));
    }
    // Items 5–6: `nbf` and `iat`, when present, are not in the future.
    if date_claim(claims, "nbf")?.is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(invalid("the assertion is not valid yet (nbf)"));
    }
    if date_claim(claims, "iat")?.is_some_and(|iat| iat > now + LEEWAY) {
        return Err(invalid("the assertion was issued in the future (iat)"));
    }
    // Item 7 and OpenID Connect Core §9: `jti` is required, for replay detection.
    let jti = string_claim(claims, "jti")?;
    if jti.len() > MAX_JTI_LEN {
        return Err(invalid("the assertion's jti is too long"));
    }
    Ok(Checked {
        jti: jti.to_owned(),
        remember_until: exp.saturating_add(LEEWAY),
    })
}

/// `client_secret_jwt` (OpenID Connect Core §9): HMAC-SHA256 keyed by the octets of
/// the client secret, which is why only these clients' secrets are kept sealed.
fn verify_hmac(state: &AppState, client: &Client, jws: &Jws<'_>) -> Result<()> {
    let Some(sealed) = &client.secret_sealed else {
        tracing::warn!(client_id = %client.id, "client_secret_jwt client without a sealed secret");
        return Err(invalid(
            "this client has no secret usable for client_secret_jwt; rotate its secret",
        ));
    };
    let secret = state
        .sealer
        .open(client.id.as_bytes(), sealed)
        .map_err(|e| OAuthError::Internal(e.context("opening a sealed client secret")))?;
    // The sealed copy must be the secret in force (never a stale one).
    let current = match (client.secret_hash, std::str::from_utf8(&secret)) {
        (Some(stored), Ok(text)) => constant_time_eq(&stored, &hash_secret(text)),
        _ => false,
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let valid = hmac::verify(&key, jws.signing_input.as_bytes(), &jws.signature).is_ok();
    if !(current && valid) {
        return Err(invalid("client authentication failed"));
    }
    Ok(())
}

/// Which key of a set verifies the assertion (OpenID Connect Core §10.1: with
/// several keys, the JWS must name one with `kid`).
fn select<'k>(keys: &'k [ClientKey], jws: &Jws<'_>) -> Result<Option<&'k ClientKey>> {
    match &jws.kid {
        Some(kid) => match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            Some(key) if key.allows(jws.alg) => Ok(Some(key)),
            Some(_) => Err(invalid(format!(
                "the key {kid} is not for alg {}",
                jws.alg.as_str()
            ))),
            None => Ok(None),
        },
        None => {
            let mut fitting = keys.iter().filter(|k| k.allows(jws.alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(Some(key)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(invalid(
                    "the client has several keys for this alg: the assertion must name one with kid",
                )),
            }
        }
    }
}

fn verify_with(key: &ClientKey, jws: &Jws<'_>) -> Result<()> {
    if key.verify(jws.alg, jws.signing_input.as_bytes(), &jws.signature) {
        Ok(())
    } else {
        Err(invalid("the assertion's signature does not verify"))
    }
}

const UNKNOWN_KEY: &str = "no registered key of the client matches the assertion";

/// `private_key_jwt` (RFC 7523 §3 item 9): a key of the registered `jwks`, or of the
/// document at `jwks_uri`, fetched again once when the `kid` is unknown.
async fn verify_key(state: &AppState, client: &Client, jws: &Jws<'_>) -> Result<()> {
    let m = &client.metadata;
    if let Some(set) = &m.jwks {
        let keys = parse_set(set).map_err(|e| {
            tracing::warn!(client_id = %client.id, error = format!("{e:#}"), "registered jwks unusable");
            invalid("the client's registered jwks is not usable")
        })?;
        return match select(&keys, jws)? {
            Some(key) => verify_with(key, jws),
            None => Err(invalid(UNKNOWN_KEY)),
        };
    }
    let Some(uri) = &m.jwks_uri else {
        return Err(invalid(
            "the client has no registered keys (jwks or jwks_uri)",
        ));
    };
    let now = state.clock.now();
    let unreachable = |e: anyhow::Error| {
        tracing::warn!(client_id = %client.id, error = format!("{e:#}"), "jwks_uri fetch failed");
        invalid("the client's jwks_uri could not be fetched")
    };
    let keys = state
        .client_jwks
        .keys(&client.id, uri, now)
        .await
        .map_err(unreachable)?;
    if let Some(key) = select(&keys, jws)? {
        return verify_with(key, jws);
    }
    match state
        .client_jwks
        .refetch(&client.id, uri, now)
        .await
        .map_err(unreachable)?
    {
        Some(fresh) => match select(&fresh, jws)? {
            Some(key) => verify_with(key, jws),
            None => Err(invalid(UNKNOWN_KEY)),
        },
        None => Err(invalid(UNKNOWN_KEY)),
    }
}

/// Authenticate the client that signed `raw`, presented at `endpoint` (a path).
pub(super) async fn authenticate(
    state: &AppState,
    form: &Form,
    raw: &str,
    endpoint: &str,
) -> Result<(Arc<Client>, AuthMethod)> {
    let jws = parse(raw)?;
    // RFC 7523 §3 items 1–2: for client authentication, iss and sub are the client_id.
    let sub = string_claim(&jws.claims, "sub")?;
    let iss = string_claim(&jws.claims, "iss")?;
    if iss != sub {
        return Err(invalid(
            "the assertion's iss and sub must both be the client_id",
        ));
    }
    // RFC 7521 §4.2: a client_id sent along must identify the same client.
    if form.get("client_id").is_some_and(|id| id != sub) {
        return Err(invalid("client_id differs from the assertion's sub"));
    }
    let Some(client) = state.clients.get(state.store.as_ref(), sub).await? else {
        return Err(invalid("client authentication failed"));
    };
    // The registered method decides; the alg must fit it (no fallback either way).
    let method = match (client.auth_method, jws.alg) {
        (AuthMethod::ClientSecretJwt, Alg::HS256) => AuthMethod::ClientSecretJwt,
        (AuthMethod::PrivateKeyJwt, alg) if alg != Alg::HS256 => AuthMethod::PrivateKeyJwt,
        (AuthMethod::ClientSecretJwt, _) => {
            return Err(invalid(
                "this client must sign its assertions with HS256 (client_secret_jwt)",
            ))
        }
        (AuthMethod::PrivateKeyJwt, _) => {
            return Err(invalid(
                "this client must sign its assertions with its private key (private_key_jwt)",
            ))
        }
        (registered, _) => {
            return Err(invalid(format!(
                "this client is registered for {}, not for JWT assertions",
                registered.as_str()
            )))
        }
    };
    let c = &state.config;
    let audiences = [c.issuer.clone(), c.endpoint("/token"), c.endpoint(endpoint)];
    let checked = check_claims(&jws.claims, &audiences, state.clock.now())?;
    match method {
        AuthMethod::ClientSecretJwt => verify_hmac(state, &client, &jws)?,
        _ => verify_key(state, &client, &jws).await?,
    }
    // RFC 7523 §3 item 7: the jti is single-use within the assertion's lifetime.
    let now = state.clock.now();
    let first_use = state
        .store
        .use_assertion_jti(&client.id, &checked.jti, checked.remember_until, now)
        .await?;
    if !first_use {
        return Err(invalid("the assertion was used before (jti replay)"));
    }
    Ok((client, method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn time_rules() {
        let aud = ["https://as.example".to_owned()];
        let now = 1_000_000;
        let ok = |exp: i64| json!({"aud": "https://as.example", "exp": exp, "jti": "j"});
        assert!(check_claims(&claims(ok(now + 60)), &aud, now).is_ok());
        // Leeway: 29 s after exp is still fine; 30 s is not.
        assert!(check_claims(&claims(ok(now - 29)), &aud, now).is_ok());
        assert!(check_claims(&claims(ok(now - 30)), &aud, now).is_err());
        assert!(check_claims(&claims(ok(now + 330)), &aud, now).is_ok());
        assert!(check_claims(&claims(ok(now + 331)), &aud, now).is_err());
        let fractional =
            json!({"aud": ["x", "https://as.example"], "exp": now as f64 + 10.5, "jti": "j"});
        assert!(check_claims(&claims(fractional), &aud, now).is_ok());
        let no_jti = json!({"aud": "https://as.example", "exp": now + 60});
        assert!(check_claims(&claims(no_jti), &aud, now).is_err());
    }

    #[test]
    fn malformed_and_unsigned_are_refused() {
        assert!(parse("a.b").is_err());
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let err = parse(&format!("{h}.{p}.")).err().unwrap();
        assert_eq!(
            err.description(),
            Some("unsigned assertions (alg none) are not accepted")
        );
    }
}
