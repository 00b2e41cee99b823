//! The verifier against a stand-in issuer on port 0 that serves metadata, a JWKS and
//! introspection, with tokens signed by test keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera_resource::{Algorithm, Bearer, BearerError, RequireScope, RevocationCheck, Verifier};
use tower::ServiceExt;

const NOW: i64 = 1_790_000_000;
const AUD: &str = "https://bank.example";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum TestKey {
    Es(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key with its kid.
struct Signer {
    kid: String,
    key: TestKey,
}

impl Signer {
    fn new(alg: Algorithm, kid: &str) -> Self {
        let rng = SystemRandom::new();
        let key = match alg {
            Algorithm::ES256 => {
                let doc =
                    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .unwrap();
                TestKey::Es(
                    EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        doc.as_ref(),
                    )
                    .unwrap(),
                )
            }
            Algorithm::EdDSA => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                TestKey::Ed(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
            }
            Algorithm::RS256 => {
                TestKey::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
            }
        };
        Self {
            kid: kid.into(),
            key,
        }
    }

    fn alg(&self) -> &'static str {
        match self.key {
            TestKey::Es(_) => "ES256",
            TestKey::Ed(_) => "EdDSA",
            TestKey::Rsa(_) => "RS256",
        }
    }

    fn jwk(&self) -> Value {
        match &self.key {
            TestKey::Es(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
                       "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            TestKey::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA", "use": "sig",
                                      "x": b64(k.public_key().as_ref())})
            }
            TestKey::Rsa(k) => {
                let p = k.public_key();
                json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                       "n": b64(p.modulus().big_endian_without_leading_zero()),
                       "e": b64(p.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// Sign `claims` under `header` (alg and kid filled in unless given).
    fn sign_with(&self, mut header: Value, claims: &Value) -> String {
        if header.get("alg").is_none() {
            header["alg"] = self.alg().into();
        }
        if header.get("kid").is_none() {
            header["kid"] = self.kid.clone().into();
        }
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.key {
            TestKey::Es(k) => k
                .sign(&rng, signing_input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            TestKey::Ed(k) => k.sign(signing_input.as_bytes()).as_ref().to_vec(),
            TestKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    signing_input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
        };
        format!("{signing_input}.{}", b64(&sig))
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(json!({"typ": "at+jwt"}), claims)
    }
}

/// The stand-in issuer.
#[derive(Clone)]
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
    introspections: Arc<AtomicUsize>,
    active: Arc<Mutex<HashMap<String, Value>>>,
}

async fn spawn_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Issuer {
        url,
        jwks: Arc::default(),
        jwks_fetches: Arc::default(),
        introspections: Arc::default(),
        active: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(|State(i): State<Issuer>| async move {
                Json(
                    json!({"issuer": i.url, "jwks_uri": format!("{}/jwks.json", i.url),
                            "introspection_endpoint": format!("{}/introspect", i.url)}),
                )
            }),
        )
        .route(
            "/jwks.json",
            get(|State(i): State<Issuer>| async move {
                i.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                let keys = i.jwks.lock().unwrap().clone();
                Json(json!({ "keys": keys }))
            }),
        )
        .route(
            "/introspect",
            post(
                |State(i): State<Issuer>, headers: axum::http::HeaderMap, body: String| async move {
                    i.introspections.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        headers.get("authorization").is_some(),
                        "introspection must authenticate"
                    );
                    let token: String = url_decode_token(&body);
                    let answer = i
                        .active
                        .lock()
                        .unwrap()
                        .get(&token)
                        .cloned()
                        .unwrap_or(json!({"active": false}));
                    Json(answer)
                },
            ),
        )
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn url_decode_token(body: &str) -> String {
    body.split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(|t| {
            t.replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=")
        })
        .unwrap_or_default()
}

fn claims(issuer: &Issuer) -> Value {
    json!({"iss": issuer.url, "sub": "alice-id", "aud": AUD, "client_id": "reports",
           "scope": "transactions:read accounts:read", "jti": "j1", "iat": NOW, "exp": NOW + 600})
}

fn verifier(issuer: &Issuer) -> Verifier {
    Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .introspection("bank", "bank-secret")
        .build()
}

async fn setup(alg: Algorithm) -> (Issuer, Signer, Verifier) {
    let issuer = spawn_issuer().await;
    let signer = Signer::new(alg, "k1");
    issuer.jwks.lock().unwrap().push(signer.jwk());
    let v = verifier(&issuer);
    (issuer, signer, v)
}

fn assert_invalid(result: Result<tessera_resource::Claims, BearerError>, description: &str) {
    match result {
        Err(BearerError::InvalidToken {
            description: d,
            realm,
        }) => {
            assert_eq!(realm, "bank");
            assert_eq!(d, description);
        }
        other => panic!("expected invalid_token ({description}), got {other:?}"),
    }
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let (issuer, signer, v) = setup(alg).await;
        let c = v.verify(&signer.sign(&claims(&issuer))).await.unwrap();
        assert_eq!(c.sub, "alice-id");
        assert_eq!(c.client_id, "reports");
        assert!(c.has_scope("transactions:read") && !c.has_scope("transactions:write"));
        assert_eq!(c.aud, vec![AUD.to_owned()]);
    }
}

#[tokio::test]
async fn expiry_and_not_before_with_leeway() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    let mut c = claims(&issuer);
    c["exp"] = json!(NOW - 31);
    assert_invalid(v.verify(&signer.sign(&c)).await, "the token has expired");
    c["exp"] = json!(NOW - 29);
    assert!(
        v.verify(&signer.sign(&c)).await.is_ok(),
        "within the 30 s leeway"
    );
    let mut c = claims(&issuer);
    c["nbf"] = json!(NOW + 31);
    assert_invalid(
        v.verify(&signer.sign(&c)).await,
        "the token is not valid yet",
    );
    let strict = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .leeway(Duration::ZERO)
        .build();
    let mut c = claims(&issuer);
    c["exp"] = json!(NOW);
    assert_invalid(
        strict.verify(&signer.sign(&c)).await,
        "the token has expired",
    );
}

#[tokio::test]
async fn wrong_audience_and_issuer() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    let mut c = claims(&issuer);
    c["aud"] = json!("https://other.example");
    assert_invalid(
        v.verify(&signer.sign(&c)).await,
        "the token is not meant for this resource server",
    );
    c["aud"] = json!(["https://other.example", AUD]);
    assert!(
        v.verify(&signer.sign(&c)).await.is_ok(),
        "aud may be an array containing ours"
    );
    let mut c = claims(&issuer);
    c["iss"] = json!("https://evil.example");
    assert_invalid(
        v.verify(&signer.sign(&c)).await,
        "the token was issued by another issuer",
    );
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    let token = signer.sign(&claims(&issuer));
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 1;
    assert_invalid(
        v.verify(&format!("{head}.{}", b64(&bytes))).await,
        "the token signature is invalid",
    );
    // A payload swapped under the original signature.
    let mut forged = claims(&issuer);
    forged["scope"] = json!("transactions:write");
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged.to_string().as_bytes()),
        parts[2]
    );
    assert_invalid(v.verify(&swapped).await, "the token signature is invalid");
}

#[tokio::test]
async fn alg_none_and_foreign_algorithms_are_refused() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    let header = b64(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let none = format!("{header}.{}.", b64(claims(&issuer).to_string().as_bytes()));
    assert_invalid(
        v.verify(&none).await,
        "the token's algorithm is not accepted",
    );
    let hs = signer.sign_with(json!({"typ": "at+jwt", "alg": "HS256"}), &claims(&issuer));
    assert_invalid(v.verify(&hs).await, "the token's algorithm is not accepted");
    // The header claims EdDSA but the kid names an ES256 key.
    let ed = Signer::new(Algorithm::EdDSA, "k1");
    let confused = ed.sign(&claims(&issuer));
    assert_invalid(v.verify(&confused).await, "the token signature is invalid");
    // An allow-list without ES256 refuses ES256 tokens.
    let only_ed = Verifier::builder(&issuer.url)
        .realm("bank")
        .clock(|| NOW)
        .algorithms(&[Algorithm::EdDSA])
        .build();
    assert_invalid(
        only_ed.verify(&signer.sign(&claims(&issuer))).await,
        "the token's algorithm is not accepted",
    );
}

#[tokio::test]
async fn typ_must_be_at_jwt() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    for header in [json!({}), json!({"typ": "JWT"})] {
        let token = signer.sign_with(header, &claims(&issuer));
        assert_invalid(
            v.verify(&token).await,
            "the token is not a JWT access token (typ must be at+jwt)",
        );
    }
    let token = signer.sign_with(json!({"typ": "application/at+jwt"}), &claims(&issuer));
    assert!(v.verify(&token).await.is_ok());
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    v.verify(&signer.sign(&claims(&issuer))).await.unwrap();
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);
    // A flood of tokens with unknown kids: one refetch at most.
    let stranger = Signer::new(Algorithm::ES256, "unknown");
    for _ in 0..50 {
        assert_invalid(
            v.verify(&stranger.sign(&claims(&issuer))).await,
            "the token is signed by an unknown key",
        );
    }
    assert_eq!(
        issuer.jwks_fetches.load(Ordering::SeqCst),
        1,
        "the floor held"
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up() {
    let issuer = spawn_issuer().await;
    let old = Signer::new(Algorithm::ES256, "old");
    issuer.jwks.lock().unwrap().push(old.jwk());
    let v = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .jwks_refetch_interval(Duration::ZERO)
        .build();
    v.verify(&old.sign(&claims(&issuer))).await.unwrap();
    let new = Signer::new(Algorithm::EdDSA, "new");
    issuer.jwks.lock().unwrap().push(new.jwk());
    let c = v.verify(&new.sign(&claims(&issuer))).await.unwrap();
    assert_eq!(c.sub, "alice-id");
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn opaque_tokens_are_introspected_with_an_optional_cache() {
    let issuer = spawn_issuer().await;
    issuer.active.lock().unwrap().insert(
        "opaque-1".into(),
        json!({"active": true, "sub": "alice-id", "client_id": "reports", "scope": "transactions:read",
               "exp": NOW + 600, "aud": AUD, "iss": issuer.url, "token_type": "Bearer"}),
    );
    let v = verifier(&issuer);
    let c = v.verify("opaque-1").await.unwrap();
    assert!(c.has_scope("transactions:read"));
    v.verify("opaque-1").await.unwrap();
    assert_eq!(
        issuer.introspections.load(Ordering::SeqCst),
        2,
        "no cache by default"
    );
    assert_invalid(v.verify("opaque-2").await, "the token is not active");

    let cached = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .introspection("bank", "bank-secret")
        .introspection_cache(Duration::from_secs(30))
        .build();
    let before = issuer.introspections.load(Ordering::SeqCst);
    cached.verify("opaque-1").await.unwrap();
    cached.verify("opaque-1").await.unwrap();
    assert_eq!(issuer.introspections.load(Ordering::SeqCst), before + 1);

    // A refresh token is not an access token.
    issuer.active.lock().unwrap().insert(
        "refresh-1".into(),
        json!({"active": true, "sub": "alice-id", "exp": NOW + 600, "token_type": "refresh_token"}),
    );
    assert_invalid(
        v.verify("refresh-1").await,
        "the token is not an access token",
    );
    // Without credentials an opaque token cannot be checked.
    let no_creds = Verifier::builder(&issuer.url)
        .realm("bank")
        .clock(|| NOW)
        .build();
    assert_invalid(
        no_creds.verify("opaque-1").await,
        "the token is not a JWT this server can verify",
    );
}

#[tokio::test]
async fn revocation_check_by_introspection() {
    let (issuer, signer, _) = setup(Algorithm::ES256).await;
    let token = signer.sign(&claims(&issuer));
    let v = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .introspection("bank", "bank-secret")
        .revocation_check(RevocationCheck::Introspect)
        .build();
    // The issuer does not know the token as active: it was revoked.
    assert_invalid(v.verify(&token).await, "the token is not active");
    issuer.active.lock().unwrap().insert(
        token.clone(),
        json!({"active": true, "sub": "alice-id", "exp": NOW + 600}),
    );
    assert!(v.verify(&token).await.is_ok());
}

#[tokio::test]
async fn unreachable_issuer_is_unavailable_not_accepted() {
    let v = Verifier::builder("http://127.0.0.1:9")
        .realm("bank")
        .clock(|| NOW)
        .build();
    let signer = Signer::new(Algorithm::ES256, "k1");
    let token = signer.sign(&json!({"iss": "http://127.0.0.1:9", "sub": "x", "exp": NOW + 60}));
    assert!(matches!(
        v.verify(&token).await,
        Err(BearerError::Unavailable { .. })
    ));
}

tessera_resource::scope!(TransactionsWrite = "transactions:write");

async fn write(RequireScope(claims, ..): RequireScope<TransactionsWrite>) -> String {
    claims.sub
}

async fn me(Bearer(claims): Bearer) -> Result<String, BearerError> {
    claims.require_any(&["accounts:read", "transactions:read"])?;
    Ok(claims.sub)
}

async fn call(app: &Router, path: &str, authorization: Option<&str>) -> axum::response::Response {
    let mut req = axum::http::Request::get(path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    app.clone()
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body(r: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn extractors_answer_per_rfc6750() {
    let (issuer, signer, v) = setup(Algorithm::ES256).await;
    let app = Router::new()
        .route("/write", get(write))
        .route("/me", get(me))
        .with_state(v);
    let token = signer.sign(&claims(&issuer));

    let r = call(&app, "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(r.status(), 200);

    let r = call(&app, "/write", Some(&format!("Bearer {token}"))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="bank", error="insufficient_scope", scope="transactions:write""#
    );
    let b = body(r).await;
    assert_eq!(b["error"], "insufficient_scope");
    assert_eq!(b["scope"], "transactions:write");

    let r = call(&app, "/me", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="bank""#);

    // RFC 6750 §2.3 is not supported: a token in the query string is ignored.
    let r = call(&app, &format!("/me?access_token={token}"), None).await;
    assert_eq!(r.status(), 401);

    let r = call(&app, "/me", Some("Basic YTpi")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"], "invalid_request");

    let mut expired = claims(&issuer);
    expired["exp"] = json!(NOW - 3600);
    let r = call(
        &app,
        "/me",
        Some(&format!("Bearer {}", signer.sign(&expired))),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="bank", error="invalid_token", error_description="the token has expired""#
    );
    let r = call(&app, "/me", Some("Bearer not a token")).await;
    assert_eq!(r.status(), 401);
}

/// A verified token presented again is served from the verifier's cache, and only as
/// long as it is valid: the clock moves past its `exp`, and it is refused.
#[tokio::test]
async fn a_cached_token_expires_like_any_other() {
    let issuer = spawn_issuer().await;
    let signer = Signer::new(Algorithm::ES256, "k1");
    issuer.jwks.lock().unwrap().push(signer.jwk());
    let now = Arc::new(std::sync::atomic::AtomicI64::new(NOW));
    let clock = now.clone();
    let v = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .leeway(Duration::ZERO)
        .clock(move || clock.load(Ordering::SeqCst))
        .build();
    let token = signer.sign(&claims(&issuer));
    for _ in 0..3 {
        assert_eq!(v.verify(&token).await.unwrap().sub, "alice-id");
    }
    // Same header and payload, another signature: not taken from the cache.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", b64(&[7u8; 64]));
    assert_invalid(v.verify(&forged).await, "the token signature is invalid");
    now.store(NOW + 600, Ordering::SeqCst);
    assert_invalid(v.verify(&token).await, "the token has expired");
    // With the cache off, the same answers.
    let uncached = Verifier::builder(&issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .jwt_cache(0)
        .build();
    assert_eq!(uncached.verify(&token).await.unwrap().sub, "alice-id");
    assert_invalid(
        uncached.verify(&forged).await,
        "the token signature is invalid",
    );
}
