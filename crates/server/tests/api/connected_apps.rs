//! The connected apps page: what the person granted, revoking it (which bites at once
//! and forgets the consent), their history, and signing out.

use crate::helpers::*;

/// Run the code flow in `browser` and redeem the code; returns the token response.
async fn connect(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
) -> serde_json::Value {
    let (code, verifier) = app.authorize_code(browser, client, scope).await;
    let r = app
        .token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn page(browser: &Browser) -> String {
    let r = browser.get("/account/apps", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.text().await.unwrap()
}

#[tokio::test]
async fn revoking_on_the_page_bites_at_once_and_forgets_consent() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let tokens = connect(&app, &browser, &client, "transactions:read accounts:read").await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();

    let html = page(&browser).await;
    assert!(html.contains("Reports"), "{html}");
    assert!(html.contains("Read your transactions") && html.contains("See your accounts"));
    assert!(!html.contains("Create transactions"));
    assert!(html.contains("until you revoke it"));
    // Last used: the code redemption, at the pinned clock's time.
    assert!(html.contains(&tessera_server::pages::format_time(app.now())));
    assert!(
        html.contains("Access granted"),
        "the history shows the grant"
    );

    let csrf = hidden_field(&html, "csrf");
    let r = browser
        .post(
            "/account/apps/revoke",
            &[("csrf", &csrf), ("client_id", &client.id)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = page(&browser).await;
    assert!(
        html.contains("No app has access to your account."),
        "{html}"
    );
    assert!(
        html.contains("Access revoked") && html.contains("you"),
        "the history names who revoked"
    );

    // Every token of the grant is refused.
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        app.introspect(&client, at).await,
        serde_json::json!({"active": false})
    );
    // The consent is forgotten: the next authorization asks again.
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn revoking_needs_the_csrf_token() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let tokens = connect(&app, &browser, &client, "transactions:read").await;
    page(&browser).await;
    let r = browser
        .post(
            "/account/apps/revoke",
            &[("csrf", "x".repeat(43).as_str()), ("client_id", &client.id)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, at).await["active"], true);
}

#[tokio::test]
async fn the_page_asks_to_sign_in_first() {
    let app = spawn_app().await;
    app.standard().await;
    let browser = app.browser();
    let r = browser.get("/account/apps", &[]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Sign in to see and manage the apps"),
        "{html}"
    );
    let r = browser.login(&html, ("alice", "wrong-password-1")).await;
    assert_eq!(r.status(), 401);
    let r = browser.login(&html, ALICE).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("{}/account/apps", app.url));
    let html = page(&browser).await;
    assert!(html.contains("Signed in as <strong>alice</strong>"));
    assert!(html.contains("No app has access to your account."));
    assert!(
        html.contains("Failed sign-in"),
        "the failed attempt is in the history"
    );
    assert!(browser.get("/account", &[]).await.status().is_redirection());
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    connect(&app, &browser, &client, "transactions:read").await;
    let html = page(&browser).await;
    let r = browser
        .post("/account/logout", &[("csrf", &hidden_field(&html, "csrf"))])
        .await;
    assert_eq!(r.status(), 200);
    let cleared = r.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("tessera_session=;") && c.contains("Max-Age=0")
    });
    assert!(cleared);
    assert!(r.text().await.unwrap().contains("Signed out"));
    // The next authorization asks for the password again.
    let (_, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("prompt", "none")],
        )
        .await;
    assert_eq!(location_params(&r)["error"], "login_required");
}

#[tokio::test]
async fn the_audit_trail_records_who_did_what() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let html = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        browser
            .login(&html, ("alice", "not-her-password"))
            .await
            .status(),
        401
    );
    let tokens = connect(&app, &browser, &client, "transactions:read").await;
    let refresh = |rt: String| {
        let (app, client) = (&app, &client);
        async move {
            let r = app
                .token(
                    client,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await;
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            body["refresh_token"].as_str().unwrap().to_owned()
        }
    };
    // A refresh in the period of the code's redemption is not recorded (audit.
    // refresh_interval, a day by default); the first one of the next day is, and the
    // one after it that day is not.
    let rt = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    app.clock.advance(86_400);
    let rt = refresh(rt).await;
    let rt = refresh(rt).await;
    // The client revokes through RFC 7009.
    let r = app
        .post_auth("/revoke", &client, &[("token", rt.as_str())])
        .await;
    assert_eq!(r.status(), 200);
    let alice = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let filter = tessera_server::store::AuditFilter {
        user_id: Some(alice.id),
        client_id: None,
        limit: 20,
    };
    let events = app.state.store.list_audit(&filter).await.unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .rev()
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("login_failed", "person"),
            ("grant", "person"),
            ("refresh", "client"),
            ("revoke", "client")
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.client_id.as_deref() == Some(client.id.as_str())));
}
