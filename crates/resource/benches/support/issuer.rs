//! A stand-in issuer for the benchmarks of a resource server (this crate's `extractor`
//! and the demo's `bank`, which includes this file by path): metadata and a JWKS with
//! one ES256 key on 127.0.0.1, and access tokens of the shape Tessera issues (RFC 9068)
//! signed with that key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new ES256 key pair.
pub fn new_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
}

/// Serve an issuer publishing the public half of `key` as `k1`; its URL.
pub async fn spawn_issuer(key: &EcdsaKeyPair) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let p = key.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "use": "sig", "x": b64(&p[1..33]), "y": b64(&p[33..65])}]});
    let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/jwks.json", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// An access token of `issuer` for the audience `aud`, of the person `sub`, with the
/// scopes `accounts:read transactions:read`, valid for an hour.
pub fn token(key: &EcdsaKeyPair, issuer: &str, sub: &str, aud: &str) -> String {
    let header = b64(br#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer, "sub": sub, "aud": aud,
        "client_id": "reports", "scope": "accounts:read transactions:read",
        "jti": "Zx9y8W7v6U5t4S3r", "iat": now, "exp": now + 3600,
        "grant_id": "9a8b7c6d5e4f30211f2e3d4c5b6a7988"});
    let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = key.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(signature.as_ref()))
}
