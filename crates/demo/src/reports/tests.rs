//! The reports app driven like a browser, against a stand-in Tessera (metadata,
//! token, introspection and revocation for one grant) and the real bank.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use tower::ServiceExt;

use super::oauth::s256_challenge;
use super::{router, ReportsConfig};
use crate::bank::{Bank, BankConfig};

const SCOPE: &str = "accounts:read transactions:read";

/// The one grant the stand-in issuer knows.
#[derive(Default)]
struct Grant {
    challenge: String,
    access: Vec<String>,
    refresh: String,
    revoked: bool,
    issued: u32,
    refreshes: u32,
    expires_in: u64,
    revocations: Vec<(String, String)>,
}

type Fake = Arc<Mutex<Grant>>;

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

fn issue(g: &mut Grant) -> Response {
    g.issued += 1;
    let (access, refresh) = (format!("at-{}", g.issued), format!("rt-{}", g.issued));
    g.access.push(access.clone());
    g.refresh = refresh.clone();
    Json(json!({ "access_token": access, "token_type": "Bearer", "expires_in": g.expires_in, "refresh_token": refresh, "scope": SCOPE }))
        .into_response()
}

async fn token(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic = headers[header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap();
    if STANDARD.decode(basic).unwrap() != b"reports:s3cret" {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut g = fake.lock().unwrap();
    match form["grant_type"].as_str() {
        "authorization_code" => {
            let pkce_ok = s256_challenge(&form["code_verifier"]) == g.challenge;
            if form["code"] != "good-code"
                || !pkce_ok
                || form["redirect_uri"] != "http://reports.test/callback"
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            g.revoked = false;
            issue(&mut g)
        }
        "refresh_token" if !g.revoked && form["refresh_token"] == g.refresh => {
            g.refreshes += 1;
            issue(&mut g)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
    }
}

async fn introspect(
    State(fake): State<Fake>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let g = fake.lock().unwrap();
    if g.revoked || !g.access.contains(&form["token"]) {
        return Json(json!({ "active": false }));
    }
    Json(
        json!({ "active": true, "sub": "alice-sub", "scope": SCOPE, "client_id": "reports", "exp": 4_000_000_000_i64 }),
    )
}

async fn revoke(State(fake): State<Fake>, Form(form): Form<HashMap<String, String>>) -> StatusCode {
    let mut g = fake.lock().unwrap();
    g.revocations
        .push((form["token"].clone(), form["token_type_hint"].clone()));
    if form["token"] == g.refresh {
        g.revoked = true;
    }
    StatusCode::OK
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

struct World {
    app: Router,
    fake: Fake,
    issuer: String,
    cookie: String,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let fake: Fake = Arc::new(Mutex::new(Grant {
        expires_in: 600,
        ..Grant::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let metadata = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "jwks_uri": format!("{issuer}/jwks.json"),
    });
    let tessera = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, tessera).await });

    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::open(BankConfig {
        issuer: issuer.clone(),
        audience: "http://bank.test".into(),
        database: dir.path().join("bank.db"),
        introspection: Some(("bank".into(), "bank-secret".into())),
    })
    .await
    .unwrap();
    bank.seed_demo_accounts("alice-sub", "alice").await.unwrap();
    let bank_url = serve(bank.router()).await;
    let app = router(ReportsConfig {
        issuer: format!("{issuer}/"),
        bank_url,
        base_url: "http://reports.test".into(),
        client_id: "reports".into(),
        client_secret: "s3cret".into(),
        scope: SCOPE.into(),
    });
    World {
        app,
        fake,
        issuer,
        cookie: String::new(),
        _dir: dir,
    }
}

impl World {
    async fn request(
        &mut self,
        method: &str,
        uri: &str,
        form: Option<String>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie);
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request.body(Body::from(form.unwrap_or_default())).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        if let Some(set) = headers.get(header::SET_COOKIE) {
            self.cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        }
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn page(&mut self) -> String {
        let (status, headers, body) = self.request("GET", "/", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        body
    }

    async fn post(&mut self, path: &str, csrf: &str) -> (StatusCode, HeaderMap, String) {
        self.request("POST", path, Some(format!("csrf={csrf}")))
            .await
    }

    /// Press Connect, play the browser at the issuer, and come back to the callback.
    async fn connect(&mut self, csrf: &str) -> HashMap<String, String> {
        let (status, headers, _) = self.post("/connect", csrf).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
        assert_eq!(location.path(), "/authorize");
        let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
        self.fake.lock().unwrap().challenge = params["code_challenge"].clone();
        params
    }
}

fn csrf(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn connect_read_refuse_write_and_disconnect() {
    let mut w = world().await;
    let welcome = w.page().await;
    assert!(welcome.contains("Connect your bank"));
    assert!(w.cookie.starts_with("reports_session="));
    let csrf = csrf(&welcome);
    assert_eq!(w.post("/connect", "forged").await.0, StatusCode::FORBIDDEN);

    let params = w.connect(&csrf).await;
    for (key, value) in [
        ("response_type", "code"),
        ("client_id", "reports"),
        ("scope", SCOPE),
        ("code_challenge_method", "S256"),
    ] {
        assert_eq!(params[key], value);
    }
    assert_eq!(params["redirect_uri"], "http://reports.test/callback");
    let (state, iss) = (params["state"].clone(), w.issuer.clone());
    let callback =
        |state: &str, iss: &str| format!("/callback?code=good-code&state={state}&iss={iss}");
    let (status, _, body) = w.request("GET", &callback("wrong", &iss), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = w
        .request("GET", &callback(&state, "http://evil.test"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("iss mismatch"));

    let state = w.connect(&csrf).await["state"].clone();
    let (status, headers, _) = w.request("GET", &callback(&state, &iss), None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/");
    let report = w.page().await;
    for text in [
        "Your spending report",
        "Everyday account",
        "<svg",
        "<rect class=\"bar\"",
        "Groceries",
        "Try to create a transaction",
    ] {
        assert!(report.contains(text), "no {text} in {report}");
    }

    let (status, _, body) = w.post("/try-create", &csrf).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("The bank refused: insufficient_scope"),
        "{body}"
    );
    assert!(body.contains("transactions:write"), "{body}");

    let (_, _, body) = w.post("/disconnect", &csrf).await;
    assert!(
        body.contains("Disconnected: the reports app no longer has access to your bank."),
        "{body}"
    );
    {
        let g = w.fake.lock().unwrap();
        assert!(g.revoked);
        assert_eq!(
            g.revocations[0],
            ("rt-1".to_owned(), "refresh_token".to_owned())
        );
        assert_eq!(
            g.revocations[1],
            ("at-1".to_owned(), "access_token".to_owned())
        );
    }
    assert!(w.page().await.contains("Connect your bank"));
}

#[tokio::test]
async fn refreshes_early_and_notices_a_revoked_grant() {
    let mut w = world().await;
    let csrf = csrf(&w.page().await);
    w.fake.lock().unwrap().expires_in = 5;
    let state = w.connect(&csrf).await["state"].clone();
    let iss = w.issuer.clone();
    w.request(
        "GET",
        &format!("/callback?code=good-code&state={state}&iss={iss}"),
        None,
    )
    .await;
    assert!(w.page().await.contains("Your spending report"));
    assert!(
        w.fake.lock().unwrap().refreshes >= 1,
        "an access token within 10 s of expiry is refreshed first"
    );

    // The person revokes the grant at Tessera: the bank refuses the token, the refresh fails.
    w.fake.lock().unwrap().revoked = true;
    let page = w.page().await;
    assert!(page.contains("Access revoked — reconnect"), "{page}");
    assert!(page.contains("Connect your bank"));
    assert!(
        w.page().await.contains("See where your money goes"),
        "the tokens were dropped"
    );
}

#[tokio::test]
async fn a_declined_request_says_so() {
    let mut w = world().await;
    let csrf = csrf(&w.page().await);
    let state = w.connect(&csrf).await["state"].clone();
    let (status, _, body) = w
        .request(
            "GET",
            &format!("/callback?error=access_denied&state={state}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("You declined"), "{body}");
    let (status, _, _) = w
        .request("GET", "/callback?code=x&state=a&state=b", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
