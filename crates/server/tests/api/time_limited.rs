//! Time-limited consent: the person chooses how long a grant lasts; when it lapses,
//! refresh fails with `invalid_grant` and the app shows as expired.

use crate::helpers::*;

const DAY: i64 = 86_400;

/// A server whose login sessions outlast the test's jumps in time.
async fn app_with_long_sessions() -> TestApp {
    spawn_with(|c| c.sessions.ttl = std::time::Duration::from_secs(365 * DAY as u64)).await
}

/// Consent for `duration`, then redeem the code; returns the token response.
async fn grant_for(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    duration: &str,
) -> serde_json::Value {
    let (verifier, challenge) = pkce();
    let r = browser
        .authorize(client, "transactions:read", &challenge, &[])
        .await;
    let page = browser
        .login(&r.text().await.unwrap(), ALICE)
        .await
        .text()
        .await
        .unwrap();
    let r = browser
        .consent_with(&page, "approve", &[], Some(duration))
        .await;
    assert_eq!(r.status(), 303);
    let code = location_params(&r)["code"].clone();
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

#[tokio::test]
async fn a_one_day_grant_stops_refreshing_after_a_day() {
    let app = app_with_long_sessions().await;
    let client = app.standard().await;
    let browser = app.browser();
    let start = app.now();
    let tokens = grant_for(&app, &browser, &client, "1d").await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Within the day, refresh works.
    app.clock.advance(DAY - 700);
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    // The access token never outlives the grant.
    let exp = jwt_payload(body["access_token"].as_str().unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!(
        exp <= start + DAY,
        "exp {exp} past the grant's end {}",
        start + DAY
    );
    rt = body["refresh_token"].as_str().unwrap().to_owned();

    app.clock.advance(701);
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        app.introspect(&client, &rt).await,
        serde_json::json!({"active": false})
    );

    // The connected apps page shows it as expired; the consent lapsed with it.
    let html = browser
        .get("/account/apps", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("expired"), "{html}");
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn until_revoked_and_ninety_days() {
    let app = app_with_long_sessions().await;
    let client = app.standard().await;
    let browser = app.browser();
    let tokens = grant_for(&app, &browser, &client, "90d").await;
    app.clock.advance(20 * DAY);
    let rt = tokens["refresh_token"].as_str().unwrap();
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = browser
        .get("/account/apps", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&tessera_server::pages::format_time(
            app.now() - 20 * DAY + 90 * DAY
        )),
        "{html}"
    );

    // A remembered consent keeps its end: a new grant made silently ends with it.
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn an_unknown_duration_is_refused() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
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
        .consent_with(&page, "approve", &[], Some("forever-and-ever"))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}
