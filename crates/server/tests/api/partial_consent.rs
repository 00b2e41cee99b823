//! Partial consent: the person unticks scopes; required scopes cannot be refused
//! without denying the request (RFC 6749 §3.3, §5.1).

use crate::helpers::*;
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::store::TokenFormat;

async fn consent_page(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
) -> String {
    let (_, challenge) = pkce();
    let r = browser
        .authorize(client, scope, &challenge, &[("state", "p")])
        .await;
    let r = browser.login(&r.text().await.unwrap(), ALICE).await;
    assert_eq!(r.status(), 200);
    let _ = app;
    r.text().await.unwrap()
}

#[tokio::test]
async fn unticked_scopes_are_not_granted() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:read transactions:write",
            &challenge,
            &[],
        )
        .await;
    let page = browser
        .login(&r.text().await.unwrap(), ALICE)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"scope.transactions:write\""), "{page}");
    let r = browser
        .consent_with(&page, "approve", &["transactions:write"], None)
        .await;
    assert_eq!(r.status(), 303);
    let code = location_params(&r)["code"].clone();
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    // RFC 6749 §5.1: the response names the scope, which differs from the request.
    assert_eq!(body["scope"], "transactions:read");
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["scope"],
        "transactions:read"
    );

    // Asking again for the refused scope shows the consent page; for the granted one, not.
    let (_, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:read transactions:write",
            &challenge,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn refusing_a_required_scope_denies_the_request() {
    let app = spawn_app().await;
    app.standard().await;
    let created = admin::create_client(
        app.state.store.as_ref(),
        NewClient {
            name: "Reports".into(),
            redirect_uris: vec![REDIRECT.into()],
            scope: "transactions:read transactions:write".into(),
            required_scope: "transactions:read".into(),
            public: false,
            grant_types: vec![GrantType::AuthorizationCode],
            token_format: TokenFormat::Jwt,
            ..NewClient::named("")
        },
        app.now(),
    )
    .await
    .unwrap();
    let client = TestClient {
        id: created.client.id,
        secret: created.secret,
    };
    let browser = app.browser();
    let page = consent_page(
        &app,
        &browser,
        &client,
        "transactions:read transactions:write",
    )
    .await;
    assert!(page.contains("required by the app"));
    let r = browser
        .consent_with(&page, "approve", &["transactions:read"], None)
        .await;
    assert_eq!(r.status(), 303);
    let p = location_params(&r);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(
        p["error_description"],
        "the user refused a scope the client requires: transactions:read"
    );
    assert_eq!(p["state"], "p");
    // Refusing only the optional scope is fine.
    let page = consent_page(
        &app,
        &browser,
        &client,
        "transactions:read transactions:write",
    )
    .await;
    let r = browser
        .consent_with(&page, "approve", &["transactions:write"], None)
        .await;
    assert!(location_params(&r).contains_key("code"));
}

#[tokio::test]
async fn unticking_everything_denies_the_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let page = consent_page(&app, &browser, &client, "transactions:read accounts:read").await;
    let r = browser
        .consent_with(
            &page,
            "approve",
            &["transactions:read", "accounts:read"],
            None,
        )
        .await;
    let p = location_params(&r);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["error_description"], "the user granted no scope");
}

#[tokio::test]
async fn a_forged_scope_box_grants_nothing_more() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    let page = browser
        .login(&r.text().await.unwrap(), ALICE)
        .await
        .text()
        .await
        .unwrap();
    let r = browser
        .post(
            "/consent",
            &[
                ("csrf", hidden_field(&page, "csrf").as_str()),
                ("request", hidden_field(&page, "request").as_str()),
                ("decision", "approve"),
                ("scope.transactions:read", "on"),
                ("scope.transactions:write", "on"),
            ],
        )
        .await;
    let code = location_params(&r)["code"].clone();
    let body: serde_json::Value = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "transactions:read");
}
