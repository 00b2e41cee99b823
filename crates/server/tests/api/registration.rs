//! Dynamic client registration (RFC 7591) under the operator's policy, and client
//! management with the registration access token (RFC 7592).

use serde_json::{json, Value};
use tessera_protocol::Scope;
use tessera_server::config::RegistrationPolicy;
use tessera_server::crypto::{hash_secret, random_string, random_token};
use tessera_server::store::InitialAccessToken;

use crate::helpers::*;

/// An initial access token allowing `scope`, with `uses` registrations.
async fn initial_access_token(
    app: &TestApp,
    scope: &str,
    uses: Option<i64>,
    expires_in: Option<i64>,
) -> String {
    let token = random_token();
    app.state
        .store
        .create_initial_access_token(&InitialAccessToken {
            id: random_string(8),
            token_hash: hash_secret(&token),
            scope: Scope::parse(scope).unwrap(),
            uses_left: uses,
            expires_at: expires_in.map(|e| app.now() + e),
            created_at: app.now(),
        })
        .await
        .unwrap();
    token
}

async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app.http.post(format!("{}/register", app.url)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// The error of a refused registration, checked for status and `no-store`.
async fn refused(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

fn metadata() -> Value {
    json!({
        "client_name": "Budget Buddy",
        "redirect_uris": [REDIRECT],
        "scope": "transactions:read",
        "client_uri": "https://budget.example",
        "logo_uri": "https://cdn.budget.example/logo.png",
        "policy_uri": "https://budget.example/privacy",
        "tos_uri": "https://budget.example/terms",
        "contacts": ["dev@budget.example"],
    })
}

#[tokio::test]
async fn a_registered_client_runs_the_code_flow() {
    let app = spawn_app().await;
    app.standard().await;
    let iat = initial_access_token(&app, "transactions:read accounts:read", Some(1), None).await;
    let r = register(&app, Some(&iat), &metadata()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let reg: Value = r.json().await.unwrap();
    let id = reg["client_id"].as_str().unwrap();
    assert_eq!(reg["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(reg["client_secret_expires_at"], 0);
    assert_eq!(reg["client_id_issued_at"], app.now());
    assert_eq!(reg["grant_types"], json!(["authorization_code"]));
    assert_eq!(reg["response_types"], json!(["code"]));
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reg["scope"], "transactions:read");
    assert_eq!(
        reg["registration_client_uri"],
        format!("{}/register/{id}", app.url)
    );
    assert!(reg["registration_access_token"].as_str().unwrap().len() >= 43);

    // The consent page shows who asks, marked as unverified, the logo allowed by CSP.
    let client = TestClient {
        id: id.to_owned(),
        secret: reg["client_secret"].as_str().map(str::to_owned),
    };
    let browser = app.browser();
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    let r = browser.login(&r.text().await.unwrap(), ALICE).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("img-src 'self' https://cdn.budget.example;"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Budget Buddy") && page.contains("Unverified app"),
        "{page}"
    );
    assert!(page.contains("src=\"https://cdn.budget.example/logo.png\""));
    assert!(page.contains("Privacy policy") && page.contains("Terms of service"));
    let r = browser.consent(&page, "approve").await;
    assert!(location_params(&r).contains_key("code"));
    // The whole flow, token included, in a fresh browser.
    let tokens = app.tokens_for(&client, "transactions:read").await;
    assert_eq!(tokens["scope"], "transactions:read");
    assert!(
        tokens.get("refresh_token").is_none(),
        "registered for authorization_code only"
    );
}

#[tokio::test]
async fn every_invalid_metadata_answers_its_error() {
    let app = spawn_app().await;
    app.standard().await;
    let iat = initial_access_token(&app, "transactions:read", None, None).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"client_name": "x"}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://budget.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://budget.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["budget:/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "magic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "jwks_uri": "https://budget.example/jwks", "jwks": {"keys": [{"kty": "EC"}]}}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]}}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "client_uri": "http://budget.example"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "scope": "transactions:write"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://budget.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "software_statement": "not-a-jwt"}),
            "invalid_software_statement",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "software_statement": "eyJhbGciOiJFUzI1NiJ9.eyJzb2Z0d2FyZV9pZCI6IngifQ.c2ln"}),
            "unapproved_software_statement",
        ),
    ];
    for (body, error) in cases {
        let e = refused(register(&app, Some(&iat), &body).await, 400).await;
        assert_eq!(e["error"], error, "{body} -> {e}");
        assert!(e["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    let r = app
        .http
        .post(format!("{}/register", app.url))
        .bearer_auth(&iat)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(r, 400).await["error"], "invalid_request");
    // The rejected requests used none of the token's uses: it still registers.
    assert_eq!(register(&app, Some(&iat), &metadata()).await.status(), 201);
}

#[tokio::test]
async fn the_initial_access_token_policy() {
    let app = spawn_app().await;
    app.standard().await;
    let r = register(&app, None, &metadata()).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(refused(r, 401).await["error"], "invalid_token");
    let e = refused(register(&app, Some("wrong"), &metadata()).await, 401).await;
    assert_eq!(
        e["error_description"],
        "the initial access token is unknown, used up or expired"
    );

    let once = initial_access_token(&app, "transactions:read", Some(1), None).await;
    assert_eq!(register(&app, Some(&once), &metadata()).await.status(), 201);
    assert_eq!(
        refused(register(&app, Some(&once), &metadata()).await, 401).await["error"],
        "invalid_token"
    );

    let short = initial_access_token(&app, "transactions:read", None, Some(3600)).await;
    app.clock.advance(3600);
    assert_eq!(
        refused(register(&app, Some(&short), &metadata()).await, 401).await["error"],
        "invalid_token"
    );
}

#[tokio::test]
async fn closed_and_open_policies() {
    let closed = spawn_with(|c| c.registration.policy = RegistrationPolicy::Closed).await;
    closed.standard().await;
    let e = refused(register(&closed, None, &metadata()).await, 403).await;
    assert_eq!(e["error"], "access_denied");
    let m: Value = closed
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            closed.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(m.get("registration_endpoint").is_none());

    let open = spawn_with(|c| {
        c.registration.policy = RegistrationPolicy::Open;
        c.registration.open_scope = "accounts:read".into();
    })
    .await;
    open.standard().await;
    let mut body = metadata();
    body["scope"] = json!("accounts:read");
    assert_eq!(register(&open, None, &body).await.status(), 201);
    body["scope"] = json!("transactions:read");
    assert_eq!(
        refused(register(&open, None, &body).await, 400).await["error"],
        "invalid_client_metadata"
    );
    let m: Value = open
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            open.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["registration_endpoint"], format!("{}/register", open.url));
}

#[tokio::test]
async fn read_update_delete_with_the_registration_access_token() {
    let app = spawn_app().await;
    app.standard().await;
    let iat = initial_access_token(&app, "transactions:read accounts:read", None, None).await;
    let mut body = metadata();
    body["scope"] = json!("transactions:read accounts:read");
    let reg: Value = register(&app, Some(&iat), &body)
        .await
        .json()
        .await
        .unwrap();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
    let token = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = reg["client_id"].as_str().unwrap().to_owned();

    let r = app.http.get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["client_name"], "Budget Buddy");
    assert!(read.get("client_secret").is_none() && read.get("registration_access_token").is_none());
    assert_eq!(
        refused(
            app.http
                .get(&uri)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap(),
            401
        )
        .await["error"],
        "invalid_token"
    );
    let other = format!("{}/register/someone-else", app.url);
    assert_eq!(
        app.http
            .get(&other)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // RFC 7592 §2.2: a full replacement, answered with a new registration access token.
    let update = json!({
        "client_id": id,
        "client_name": "Budget Buddy 2",
        "redirect_uris": ["http://127.0.0.1:9000/other"],
        "scope": "transactions:read",
    });
    let r = app
        .http
        .put(&uri)
        .bearer_auth(&token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["client_name"], "Budget Buddy 2");
    assert_eq!(
        updated["redirect_uris"],
        json!(["http://127.0.0.1:9000/other"])
    );
    assert_eq!(updated["scope"], "transactions:read");
    assert!(
        updated.get("logo_uri").is_none(),
        "a full replacement drops what was not sent"
    );
    let new_token = updated["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_token, token);
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "the old token is rotated out"
    );
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    for (bad, error) in [
        (
            json!({"client_name": "x", "redirect_uris": [REDIRECT]}),
            "invalid_request",
        ),
        (
            json!({"client_id": id, "redirect_uris": [REDIRECT], "registration_access_token": "x"}),
            "invalid_request",
        ),
        (
            json!({"client_id": id, "redirect_uris": [REDIRECT], "scope": "accounts:read"}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "redirect_uris": [REDIRECT], "client_secret": "wrong"}),
            "invalid_request",
        ),
        (
            json!({"client_id": id, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
            "invalid_client_metadata",
        ),
    ] {
        let r = app
            .http
            .put(&uri)
            .bearer_auth(&new_token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r, 400).await["error"], error, "{bad}");
    }

    let r = app
        .http
        .delete(&uri)
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert!(app.state.store.get_client(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn key_and_hmac_clients_register_with_the_right_credentials() {
    let app = spawn_app().await;
    app.standard().await;
    let iat = initial_access_token(&app, "transactions:read", None, None).await;
    let mut body = metadata();
    body["token_endpoint_auth_method"] = json!("client_secret_jwt");
    let reg: Value = register(&app, Some(&iat), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_jwt");
    assert_eq!(
        reg["client_secret"].as_str().unwrap().len(),
        43,
        "HS256 needs a shared secret"
    );

    let key = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        key.as_ref(),
    )
    .unwrap();
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65])});
    let mut body = metadata();
    body["token_endpoint_auth_method"] = json!("private_key_jwt");
    body["jwks"] = json!({ "keys": [jwk] });
    let r = register(&app, Some(&iat), &body).await;
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert!(
        reg.get("client_secret").is_none(),
        "a key client gets no secret: {reg}"
    );
    assert_eq!(reg["jwks"]["keys"][0]["kid"], "k1");
}
