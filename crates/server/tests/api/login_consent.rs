//! The login and consent pages: CSRF, session cookie, consent remembered per user,
//! client and scope set, and the `prompt` parameter.

use crate::helpers::*;

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn login_then_consent_then_code() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:read accounts:read",
            &challenge,
            &[("state", "s-42")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign in") && page.contains("Reports"));

    let r = browser.login(&page, ALICE).await;
    assert_eq!(r.status(), 200);
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tessera_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain-http loopback issuer: no Secure flag"
    );
    let page = r.text().await.unwrap();
    // Each requested scope is listed by its description.
    assert!(
        page.contains("Read your transactions") && page.contains("See your accounts"),
        "{page}"
    );
    assert!(!page.contains("Create transactions"));

    let r = browser.consent(&page, "approve").await;
    // RFC 9700 §4.11: 303 after a form post.
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(REDIRECT));
    let p = location_params(&r);
    assert!(p["code"].len() >= 43);
    assert_eq!(p["state"], "s-42");
    assert_eq!(p["iss"], app.url);
}

#[tokio::test]
async fn consent_is_remembered_for_the_same_or_fewer_scopes() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    app.authorize_code(&browser, &client, "transactions:read accounts:read")
        .await;

    // Same session, covered scopes: straight back to the client (302 after a GET).
    let (_, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("state", "again")],
        )
        .await;
    assert_eq!(r.status(), 302);
    let p = location_params(&r);
    assert!(p.contains_key("code"));
    assert_eq!(p["state"], "again");

    // A scope not yet consented to: the consent page again, listing it.
    let r = browser
        .authorize(
            &client,
            "transactions:read transactions:write",
            &challenge,
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Create transactions"));

    // prompt=none with a session and consent: silent success.
    let r = browser
        .authorize(&client, "accounts:read", &challenge, &[("prompt", "none")])
        .await;
    assert_eq!(r.status(), 302);
    assert!(location_params(&r).contains_key("code"));
}

#[tokio::test]
async fn prompt_consent_and_prompt_login_force_the_pages() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    app.authorize_code(&browser, &client, "transactions:read")
        .await;
    let (_, challenge) = pkce();

    let r = browser
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("prompt", "consent")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow access?"));

    let r = browser
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("prompt", "login")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign in"));
    // After signing in again the consent is remembered: the code follows at once.
    let r = browser.login(&page, ALICE).await;
    assert_eq!(r.status(), 303);
    assert!(location_params(&r).contains_key("code"));
}

#[tokio::test]
async fn prompt_none_without_consent_is_consent_required() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    app.authorize_code(&browser, &client, "transactions:read")
        .await;
    let (_, challenge) = pkce();
    let r = browser
        .authorize(
            &client,
            "transactions:write",
            &challenge,
            &[("prompt", "none"), ("state", "n")],
        )
        .await;
    assert_eq!(r.status(), 302);
    let p = location_params(&r);
    assert_eq!(p["error"], "consent_required");
    assert_eq!(p["state"], "n");
    assert_eq!(p["iss"], app.url);
}

#[tokio::test]
async fn denying_consent_sends_access_denied() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[("state", "d")])
        .await;
    let r = browser.login(&r.text().await.unwrap(), ALICE).await;
    let r = browser.consent(&r.text().await.unwrap(), "deny").await;
    assert_eq!(r.status(), 303);
    let p = location_params(&r);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["error_description"], "the user denied the request");
    assert_eq!(p["state"], "d");
    assert!(!p.contains_key("code"));
    // Nothing was remembered: the next request asks again.
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let page = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await
        .text()
        .await
        .unwrap();
    for creds in [("alice", "wrong-password"), ("mallory", "whatever-1")] {
        let r = browser.login(&page, creds).await;
        assert_eq!(r.status(), 401);
        assert!(set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("tessera_session=")));
        let body = r.text().await.unwrap();
        assert!(body.contains("Invalid username or password."));
    }
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let page = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await
        .text()
        .await
        .unwrap();
    let request = hidden_field(&page, "request");

    // A cross-site post: no CSRF cookie at all.
    let outsider = app.browser();
    let r = outsider
        .post(
            "/login",
            &[
                ("csrf", "x".repeat(43).as_str()),
                ("request", &request),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    // The right cookie but a wrong form token.
    let r = browser
        .post(
            "/login",
            &[
                ("csrf", "y".repeat(43).as_str()),
                ("request", &request),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("expired or was not sent from this site"));
    // The consent form is protected the same way.
    let r = browser.login(&page, ALICE).await;
    let consent = r.text().await.unwrap();
    let r = browser
        .post(
            "/consent",
            &[
                ("csrf", "z".repeat(43).as_str()),
                ("request", &hidden_field(&consent, "request")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_tampered_request_is_checked_again_on_post() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let page = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf");
    let tampered = hidden_field(&page, "request").replace(
        &urlencode(REDIRECT),
        &urlencode("https://attacker.example/cb"),
    );
    let r = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &tampered),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn session_cookie_is_secure_under_an_https_issuer() {
    let app = spawn_with(|c| c.issuer = c.issuer.replace("http://", "https://")).await;
    let client = app.standard().await;
    let browser = app.browser();
    let (_, challenge) = pkce();
    let r = browser
        .authorize(&client, "transactions:read", &challenge, &[])
        .await;
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("tessera_csrf=") && c.contains("Secure")));
    let page = r.text().await.unwrap();
    // The form posts to the issuer's https URL; post to the plain listener instead,
    // presenting the cookie by hand (reqwest keeps Secure cookies off plain http).
    let csrf = hidden_field(&page, "csrf");
    let r = app
        .http
        .post(format!("{}/login", app.url))
        .header("cookie", format!("tessera_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", &hidden_field(&page, "request")),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("tessera_session="))
        .unwrap();
    assert!(
        session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
    );
}

#[tokio::test]
async fn client_names_are_escaped_on_pages() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .client_with(
            "<script>alert(1)</script>",
            "transactions:read",
            false,
            &[tessera_protocol::GrantType::AuthorizationCode],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let (_, challenge) = pkce();
    let page = app
        .browser()
        .authorize(&client, "transactions:read", &challenge, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"));
    assert!(
        page.contains("&#60;script&#62;") || page.contains("&lt;script&gt;"),
        "{page}"
    );
}
