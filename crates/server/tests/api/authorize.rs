//! The authorization endpoint's checks (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636; RFC 8252
//! §7.3; RFC 9207): what is shown to the person and what is redirected to the client.

use crate::helpers::*;

fn assert_page_headers(r: &reqwest::Response) {
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
}

/// Request parameters with one replaced or removed.
fn params<'a>(
    client: &'a TestClient,
    challenge: &'a str,
    change: (&'a str, Option<&'a str>),
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "transactions:read"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "st-1"),
    ];
    p.retain(|(k, _)| *k != change.0);
    if let Some(v) = change.1 {
        p.push((change.0, v));
    }
    p
}

/// The error redirected to the client, with `state` and `iss`.
fn assert_redirected_error(r: &reqwest::Response, app: &TestApp, error: &str, description: &str) {
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let p = location_params(r);
    assert_eq!(p["error"], error);
    assert_eq!(p["error_description"], description);
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], app.url);
}

#[tokio::test]
async fn unknown_client_is_shown_not_redirected() {
    let app = spawn_app().await;
    app.standard().await;
    let fake = TestClient {
        id: "nobody".into(),
        secret: None,
    };
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get("/authorize", &params(&fake, &challenge, ("x", None)))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert_page_headers(&r);
    assert!(r.text().await.unwrap().contains("is not registered"));
}

#[tokio::test]
async fn missing_client_id_is_shown() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(&client, &challenge, ("client_id", None)),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("no client_id"));
}

#[tokio::test]
async fn unregistered_redirect_uri_is_shown_not_redirected() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    // OAuth 2.1 §2.3.1: exact string matching; none of these is the registered URI.
    for uri in [
        "https://attacker.example/cb",
        "http://127.0.0.1:9000/cb/",
        "http://127.0.0.1:9000/cb?x=1",
        "http://127.0.0.1:9000/CB",
        "http://localhost:9000/cb",
        "http://127.0.0.1:9000/cb#frag",
        "not a uri",
    ] {
        let r = app
            .browser()
            .get(
                "/authorize",
                &params(&client, &challenge, ("redirect_uri", Some(uri))),
            )
            .await;
        assert_eq!(r.status(), 400, "{uri}");
        assert!(
            r.headers().get("location").is_none(),
            "{uri} was redirected to"
        );
        assert_page_headers(&r);
    }
}

#[tokio::test]
async fn loopback_redirect_port_may_vary() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    // RFC 8252 §7.3: any port on a loopback IP redirect URI.
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(
                &client,
                &challenge,
                ("redirect_uri", Some("http://127.0.0.1:51000/cb")),
            ),
        )
        .await;
    assert_eq!(r.status(), 200, "the login page is shown");
    assert!(r.text().await.unwrap().contains("Sign in"));
}

#[tokio::test]
async fn only_the_code_response_type_exists() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    for rt in ["token", "id_token", "code token"] {
        let r = app
            .browser()
            .get(
                "/authorize",
                &params(&client, &challenge, ("response_type", Some(rt))),
            )
            .await;
        assert_redirected_error(
            &r,
            &app,
            "unsupported_response_type",
            &format!("response_type '{rt}' is not supported; use 'code'"),
        );
    }
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(&client, &challenge, ("response_type", None)),
        )
        .await;
    assert_redirected_error(&r, &app, "invalid_request", "response_type is required");
}

#[tokio::test]
async fn pkce_is_required_with_s256() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let browser = app.browser();
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("code_challenge", None)),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "code_challenge is required (PKCE, RFC 7636)",
    );
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("code_challenge_method", None)),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "code_challenge_method must be S256",
    );
    let r = browser
        .get(
            "/authorize",
            &params(
                &client,
                &challenge,
                ("code_challenge_method", Some("plain")),
            ),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "code_challenge_method must be S256",
    );
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("code_challenge", Some("short"))),
        )
        .await;
    assert_eq!(location_params(&r)["error"], "invalid_request");
}

#[tokio::test]
async fn scopes_beyond_the_clients_are_refused() {
    let app = spawn_app().await;
    app.standard().await;
    app.scope("admin", "Administer the bank").await;
    let client = app
        .client_with(
            "Narrow",
            "transactions:read",
            false,
            &[tessera_protocol::GrantType::AuthorizationCode],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(
                &client,
                &challenge,
                ("scope", Some("transactions:read admin")),
            ),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_scope",
        "scope not allowed for this client: admin",
    );
}

#[tokio::test]
async fn client_without_the_code_grant_is_unauthorized() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .client_with(
            "Machine",
            "transactions:read",
            false,
            &[tessera_protocol::GrantType::ClientCredentials],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get("/authorize", &params(&client, &challenge, ("x", None)))
        .await;
    assert_redirected_error(
        &r,
        &app,
        "unauthorized_client",
        "this client may not use the authorization code grant",
    );
}

#[tokio::test]
async fn repeated_parameters_are_refused_on_a_page() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let mut p = params(&client, &challenge, ("x", None));
    p.push(("client_id", "other"));
    // RFC 6749 §3.1: parameters MUST NOT be included more than once; the client is
    // then not established, so nothing is redirected.
    let r = app.browser().get("/authorize", &p).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn unsupported_prompt_and_response_mode() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let browser = app.browser();
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("prompt", Some("none login"))),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "prompt=none cannot be combined with other values",
    );
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("prompt", Some("select_account"))),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "prompt value 'select_account' is not supported",
    );
    let r = browser
        .get(
            "/authorize",
            &params(&client, &challenge, ("response_mode", Some("fragment"))),
        )
        .await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "response_mode 'fragment' is not supported; use 'query'",
    );
}

#[tokio::test]
async fn prompt_none_without_session_is_login_required() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(&client, &challenge, ("prompt", Some("none"))),
        )
        .await;
    assert_redirected_error(&r, &app, "login_required", "the user is not signed in");
}

#[tokio::test]
async fn redirect_uri_may_be_omitted_when_only_one_is_registered() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, challenge) = pkce();
    let r = app
        .browser()
        .get(
            "/authorize",
            &params(&client, &challenge, ("redirect_uri", None)),
        )
        .await;
    assert_eq!(r.status(), 200);
    // An error after the client is known goes to the one registered URI.
    let mut p = params(&client, &challenge, ("redirect_uri", None));
    p.retain(|(k, _)| *k != "code_challenge");
    let r = app.browser().get("/authorize", &p).await;
    assert_redirected_error(
        &r,
        &app,
        "invalid_request",
        "code_challenge is required (PKCE, RFC 7636)",
    );
}
