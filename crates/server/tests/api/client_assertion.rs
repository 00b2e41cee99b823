//! JWT client assertions (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OpenID Connect Core §9):
//! `private_key_jwt` with keys by value and by `jwks_uri`, `client_secret_jwt`, the
//! claim rules, replay, and the secret rotation grace period. Failures are 401
//! `invalid_client` with `WWW-Authenticate` (RFC 6749 §5.2, RFC 7521 §4.2.1).

use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::store::{AuthMethod, ClientMetadata};

use crate::helpers::*;

mod jwks_uri;
mod keys;
mod secrets;

use keys::{b64, jws, Key};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const UNKNOWN_KEY: &str = "no registered key of the client matches the assertion";

/// RFC 7523 §3 claims for `client_id`, valid for a minute, audience the token endpoint.
fn claims(app: &TestApp, client_id: &str) -> Value {
    let now = app.now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/token", app.url),
        "exp": now + 60,
        "iat": now,
        "jti": tessera_server::crypto::random_token(),
    })
}

/// Register a key-based client with every grant's defaults and client_credentials.
async fn key_client(app: &TestApp, metadata: ClientMetadata) -> String {
    let created = admin::create_client(
        app.state.store.as_ref(),
        NewClient {
            scope: "transactions:read".into(),
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            metadata,
            ..NewClient::named("Batch job")
        },
        app.now(),
    )
    .await
    .expect("client");
    // A key-based client gets no secret.
    assert!(created.secret.is_none());
    assert!(created.client.secret_hash.is_none());
    assert!(!created.client.is_public());
    created.client.id
}

fn jwks(keys: &[Value]) -> ClientMetadata {
    ClientMetadata {
        jwks: Some(json!({ "keys": keys })),
        ..ClientMetadata::default()
    }
}

async fn setup() -> TestApp {
    let app = spawn_app().await;
    app.scope("transactions:read", "Read your transactions")
        .await;
    app
}

/// `POST path` with the assertion in the body (RFC 7521 §4.2) and `params`.
async fn post_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(params);
    app.http
        .post(format!("{}{path}", app.url))
        .form(&form)
        .send()
        .await
        .expect("request")
}

async fn token_with(app: &TestApp, assertion: &str) -> reqwest::Response {
    post_assertion(
        app,
        "/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

async fn assert_token_ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    body
}

/// RFC 6749 §5.2: 401 `invalid_client` naming the Basic scheme, never cached.
async fn assert_invalid_client(r: reqwest::Response, description: &str) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tessera\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], description);
}

async fn assert_invalid_request(r: reqwest::Response, description: &str) {
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("www-authenticate").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], description);
}

#[tokio::test]
async fn private_key_jwt_with_es256_rs256_and_eddsa_keys_by_value() {
    let app = setup().await;
    // RFC 7518 §3.4 (ES256), §3.3 (RS256), RFC 8037 §3.1 (EdDSA).
    for key in [Key::es256(), Key::rs256(), Key::eddsa()] {
        let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
        let body =
            assert_token_ok(token_with(&app, &key.assertion("k1", &claims(&app, &id))).await).await;
        let access = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(access["client_id"], id.as_str(), "{}", key.alg());
        // Without kid: the one key that fits the alg is used (OpenID Connect Core §10.1).
        let no_kid = jws(&json!({"alg": key.alg()}), &claims(&app, &id), |m| {
            key.sign(m)
        });
        assert_token_ok(token_with(&app, &no_kid).await).await;
    }
}

#[tokio::test]
async fn a_tampered_or_foreign_signature_is_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    // Signed by another key under the registered kid.
    let other = Key::es256().assertion("k1", &claims(&app, &id));
    assert_invalid_client(
        token_with(&app, &other).await,
        "the assertion's signature does not verify",
    )
    .await;
    // RS256 header on an EC key: the alg must match the key type (RFC 7517 §4.4).
    let mismatched = jws(
        &json!({"alg": "RS256", "kid": "k1"}),
        &claims(&app, &id),
        |m| Key::rs256().sign(m),
    );
    assert_invalid_client(
        token_with(&app, &mismatched).await,
        "the key k1 is not for alg RS256",
    )
    .await;
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    let r = token_with(&app, &key.assertion("k2", &claims(&app, &id))).await;
    assert_invalid_client(r, UNKNOWN_KEY).await;
}

#[tokio::test]
async fn alg_none_and_hs256_on_a_key_client_are_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    // RFC 7523 §3 item 9: the JWT MUST be signed; `none` never authenticates.
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims(&app, &id).to_string().as_bytes())
    );
    assert_invalid_client(
        token_with(&app, &unsigned).await,
        "unsigned assertions (alg none) are not accepted",
    )
    .await;
    // HS256 keyed with the public key (the classic alg confusion) is not private_key_jwt.
    let x = key.jwk("k1")["x"].as_str().unwrap().to_owned();
    let confused = jws(
        &json!({"alg": "HS256", "kid": "k1"}),
        &claims(&app, &id),
        |m| {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, x.as_bytes());
            aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
        },
    );
    assert_invalid_client(
        token_with(&app, &confused).await,
        "this client must sign its assertions with its private key (private_key_jwt)",
    )
    .await;
}

#[tokio::test]
async fn expired_and_too_long_lived_assertions_are_refused() {
    let app = setup().await;
    let key = Key::eddsa();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    // RFC 7523 §3 item 4: exp in the future (30 s leeway).
    let mut expired = claims(&app, &id);
    expired["exp"] = json!(app.now() - 31);
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &expired)).await,
        "the assertion has expired",
    )
    .await;
    // Tessera's bound: at most 5 minutes (plus leeway) ahead.
    let mut far = claims(&app, &id);
    far["exp"] = json!(app.now() + 331);
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &far)).await,
        "the assertion's exp is more than 300 seconds ahead",
    )
    .await;
    let mut no_exp = claims(&app, &id);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &no_exp)).await,
        "the assertion has no exp",
    )
    .await;
    // RFC 7523 §3 items 5–6: nbf and iat are not in the future.
    let mut early = claims(&app, &id);
    early["nbf"] = json!(app.now() + 120);
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &early)).await,
        "the assertion is not valid yet (nbf)",
    )
    .await;
    // Once the clock reaches nbf it is accepted: the refusal did not spend its jti.
    app.clock.advance(120);
    early["exp"] = json!(app.now() + 60);
    assert_token_ok(token_with(&app, &key.assertion("k1", &early)).await).await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    let mut c = claims(&app, &id);
    c["aud"] = json!("https://elsewhere.example/token");
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &c)).await,
        "the assertion's aud must be the issuer or the token endpoint URL",
    )
    .await;
    // RFC 7523 §3 item 3: the issuer identifier is accepted too, alone or in an array.
    c["aud"] = json!(["https://elsewhere.example", app.url]);
    assert_token_ok(token_with(&app, &key.assertion("k1", &c)).await).await;
}

#[tokio::test]
async fn wrong_iss_or_sub_is_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    // RFC 7523 §3 items 1–2: both iss and sub are the client_id.
    let mut c = claims(&app, &id);
    c["iss"] = json!("someone-else");
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &c)).await,
        "the assertion's iss and sub must both be the client_id",
    )
    .await;
    let mut c = claims(&app, "nobody");
    c["iss"] = json!("nobody");
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &c)).await,
        "client authentication failed",
    )
    .await;
    // RFC 7521 §4.2: a client_id in the body must name the same client.
    let r = post_assertion(
        &app,
        "/token",
        &key.assertion("k1", &claims(&app, &id)),
        &[("grant_type", "client_credentials"), ("client_id", "other")],
    )
    .await;
    assert_invalid_client(r, "client_id differs from the assertion's sub").await;
    let r = post_assertion(
        &app,
        "/token",
        &key.assertion("k1", &claims(&app, &id)),
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .await;
    assert_token_ok(r).await;
}

#[tokio::test]
async fn a_replayed_jti_is_refused() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    let assertion = key.assertion("k1", &claims(&app, &id));
    assert_token_ok(token_with(&app, &assertion).await).await;
    // RFC 7523 §3 item 7: the jti is single-use while the assertion lives.
    assert_invalid_client(
        token_with(&app, &assertion).await,
        "the assertion was used before (jti replay)",
    )
    .await;
    let mut no_jti = claims(&app, &id);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_invalid_client(
        token_with(&app, &key.assertion("k1", &no_jti)).await,
        "the assertion has no jti",
    )
    .await;
}

#[tokio::test]
async fn assertion_parameters_are_checked() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    let assertion = key.assertion("k1", &claims(&app, &id));
    let send = |form: Vec<(&'static str, String)>| {
        app.http
            .post(format!("{}/token", app.url))
            .form(&form)
            .send()
    };
    // RFC 7521 §4.2: both parameters are REQUIRED; a missing one is RFC 6749 §5.2
    // `invalid_request`.
    let r = send(vec![
        ("grant_type", "client_credentials".into()),
        ("client_assertion", assertion.clone()),
    ])
    .await
    .unwrap();
    assert_invalid_request(r, "client_assertion_type is required with client_assertion").await;
    // An assertion type we do not support is an unsupported authentication method:
    // RFC 6749 §5.2 `invalid_client`.
    let r = send(vec![
        ("grant_type", "client_credentials".into()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into(),
        ),
        ("client_assertion", assertion.clone()),
    ])
    .await
    .unwrap();
    assert_invalid_client(
        r,
        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    .await;
    // A value that is not a JWS: RFC 7521 §4.2.1, `invalid_client`.
    assert_invalid_client(
        token_with(&app, "not-a-jwt").await,
        "client_assertion is not a signed JWT (JWS compact serialization)",
    )
    .await;
    // RFC 6749 §2.3: one method per request.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some("secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_invalid_request(r, "the client used more than one authentication method").await;
}

#[tokio::test]
async fn methods_do_not_fall_back_to_one_another() {
    let app = setup().await;
    let key = Key::es256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    // A key-based client cannot use a secret, nor only its id.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(
        r,
        "this client must authenticate with a private_key_jwt assertion",
    )
    .await;
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .form(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .send()
        .await
        .unwrap();
    assert_invalid_client(
        r,
        "this client must authenticate with a private_key_jwt assertion",
    )
    .await;
    // And a secret client cannot use an assertion.
    let secret_client = app
        .client_with(
            "Reports",
            "transactions:read",
            false,
            &[GrantType::ClientCredentials],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let r = token_with(&app, &key.assertion("k1", &claims(&app, &secret_client.id))).await;
    assert_invalid_client(
        r,
        "this client is registered for client_secret_basic, not for JWT assertions",
    )
    .await;
}

#[tokio::test]
async fn registration_refuses_private_keys_and_missing_keys() {
    let app = setup().await;
    let key = Key::es256();
    let create = |metadata: ClientMetadata| {
        admin::create_client(
            app.state.store.as_ref(),
            NewClient {
                grant_types: vec![GrantType::ClientCredentials],
                auth_method: Some(AuthMethod::PrivateKeyJwt),
                metadata,
                ..NewClient::named("Batch job")
            },
            app.now(),
        )
    };
    // RFC 7517 §5 / RFC 7591 §2: jwks holds public keys; a `d` member is a private key.
    let mut private = key.jwk("k1");
    private["d"] = json!(b64(&[7u8; 32]));
    let err = create(jwks(&[private])).await.err().expect("refused");
    assert!(
        format!("{err:#}").contains("private member \"d\""),
        "{err:#}"
    );
    let err = create(ClientMetadata::default())
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("jwks or jwks_uri"), "{err:#}");
    // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
    let both = ClientMetadata {
        jwks_uri: Some("https://batch.example/jwks".into()),
        ..jwks(&[key.jwk("k1")])
    };
    assert!(create(both).await.is_err());
    let plain_http = ClientMetadata {
        jwks_uri: Some("http://batch.example/jwks".into()),
        ..ClientMetadata::default()
    };
    assert!(create(plain_http).await.is_err());
}

#[tokio::test]
async fn the_assertion_authenticates_at_introspection_and_revocation() {
    let app = setup().await;
    let key = Key::rs256();
    let id = key_client(&app, jwks(&[key.jwk("k1")])).await;
    let body =
        assert_token_ok(token_with(&app, &key.assertion("k1", &claims(&app, &id))).await).await;
    let token = body["access_token"].as_str().unwrap();
    // The same kind of assertion, addressed to the endpoint it is presented at.
    let at = |path: &str| {
        let mut c = claims(&app, &id);
        c["aud"] = json!(format!("{}{path}", app.url));
        key.assertion("k1", &c)
    };
    let r = post_assertion(&app, "/introspect", &at("/introspect"), &[("token", token)]).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], id.as_str());
    // An assertion for /revoke is not accepted at /introspect.
    let r = post_assertion(&app, "/introspect", &at("/revoke"), &[("token", token)]).await;
    assert_invalid_client(
        r,
        "the assertion's aud must be the issuer or the token endpoint URL",
    )
    .await;
    // One addressed to the issuer is accepted at every endpoint, but only once.
    let to_issuer = at("");
    let r = post_assertion(&app, "/introspect", &to_issuer, &[("token", token)]).await;
    assert_eq!(r.status(), 200);
    let r = post_assertion(&app, "/revoke", &to_issuer, &[("token", token)]).await;
    assert_invalid_client(r, "the assertion was used before (jti replay)").await;
    let r = post_assertion(&app, "/revoke", &at("/revoke"), &[("token", token)]).await;
    assert_eq!(r.status(), 200);
    // The token endpoint URL is an accepted audience everywhere (RFC 7523 §3 item 3).
    let r = post_assertion(&app, "/introspect", &at("/token"), &[("token", token)]).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["active"], false);
}
