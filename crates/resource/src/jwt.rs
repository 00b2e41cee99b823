//! Local verification of JWT access tokens (RFC 9068 §4).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::jwks::{Algorithm, Key};
use crate::{BearerError, Claims};

/// A JWT split into its parts; nothing is trusted yet.
pub(crate) struct Parsed<'a> {
    pub alg: Algorithm,
    pub kid: String,
    pub signed: &'a [u8],
    pub signature: Vec<u8>,
    pub payload: Map<String, Value>,
}

/// Whether a token has the shape of a JWS compact serialization.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Parse the header and payload, and check the header: `typ` must be `at+jwt`
/// (RFC 9068 §4), `alg` one of `allowed` (so never `none`), `kid` present.
pub(crate) fn parse<'a>(
    token: &'a str,
    allowed: &[Algorithm],
    realm: &str,
) -> Result<Parsed<'a>, BearerError> {
    let bad = |d: &str| BearerError::invalid_token(realm, d);
    let mut parts = token.splitn(3, '.');
    let (h, p, s) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s)) => (h, p, s),
        _ => return Err(bad("the token is malformed")),
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the token header is malformed"))?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return Err(bad(
            "the token is not a JWT access token (typ must be at+jwt)",
        ));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::parse)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| bad("the token's algorithm is not accepted"))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the token names no key"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad("the token signature is malformed"))?;
    let payload: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the token payload is malformed"))?;
    Ok(Parsed {
        alg,
        kid: kid.to_owned(),
        signed: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature,
        payload,
    })
}

/// What the claims must satisfy.
pub(crate) struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
}

/// Verify the signature with `key`, then the claims.
pub(crate) fn verify(
    parsed: Parsed<'_>,
    key: &Key,
    expect: &Expect<'_>,
    realm: &Arc<str>,
) -> Result<Claims, BearerError> {
    let bad = |d: &str| BearerError::invalid_token(realm, d);
    // The header's algorithm must be the key's own.
    if key.alg != parsed.alg || !key.verify(parsed.signed, &parsed.signature) {
        return Err(bad("the token signature is invalid"));
    }
    let nbf = parsed.payload.get("nbf").and_then(Value::as_i64);
    let claims = Claims::from_json(parsed.payload, realm.clone()).map_err(|e| bad(&e))?;
    if claims.iss != expect.issuer {
        return Err(bad("the token was issued by another issuer"));
    }
    if let Some(aud) = expect.audience {
        if !claims.aud.iter().any(|a| a == aud) {
            return Err(bad("the token is not meant for this resource server"));
        }
    }
    if claims.exp + expect.leeway <= expect.now {
        return Err(bad("the token has expired"));
    }
    if nbf.is_some_and(|nbf| nbf - expect.leeway > expect.now) {
        return Err(bad("the token is not valid yet"));
    }
    Ok(claims)
}
