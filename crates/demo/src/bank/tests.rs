//! The bank's API against a stand-in issuer that answers introspection for a few
//! fixed opaque tokens: ownership, scopes, validation and revocation.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{Bank, BankConfig};

const AUDIENCE: &str = "http://bank.test";

/// Serve a stand-in issuer on port 0; returns its URL.
async fn fake_issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = json!({
        "issuer": base,
        "jwks_uri": format!("{base}/jwks.json"),
        "introspection_endpoint": format!("{base}/introspect"),
    });
    let introspect = |Form(form): Form<HashMap<String, String>>| async move {
        let (sub, scope) = match form.get("token").map(String::as_str) {
            Some("alice-read") => ("alice-sub", "accounts:read transactions:read"),
            Some("alice-write") => ("alice-sub", "transactions:read transactions:write"),
            Some("alice-accounts") => ("alice-sub", "accounts:read"),
            Some("alice-profile") => ("alice-sub", "profile"),
            Some("bob-read") => ("bob-sub", "accounts:read transactions:read"),
            _ => return Json(json!({ "active": false })),
        };
        Json(json!({
            "active": true, "sub": sub, "scope": scope, "client_id": "reports",
            "token_type": "Bearer", "aud": AUDIENCE, "exp": 4_000_000_000_i64,
        }))
    };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/introspect", post(introspect));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn bank(dir: &tempfile::TempDir) -> Bank {
    let config = BankConfig {
        issuer: fake_issuer().await,
        audience: AUDIENCE.into(),
        database: dir.path().join("data").join("bank.db"),
        introspection: Some(("bank".into(), "bank-secret".into())),
    };
    let bank = Bank::open(config).await.unwrap();
    bank.seed_demo_accounts("alice-sub", "alice").await.unwrap();
    bank.seed_demo_accounts("bob-sub", "bob").await.unwrap();
    bank
}

async fn call(
    bank: &Bank,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = bank.router().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn account_ids(bank: &Bank, token: &str) -> Vec<String> {
    let (status, _, body) = call(bank, Method::GET, "/accounts", Some(token), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_only_the_callers_accounts_with_balances() {
    let dir = tempfile::tempdir().unwrap();
    let bank = bank(&dir).await;
    let (alice, bob) = (
        account_ids(&bank, "alice-read").await,
        account_ids(&bank, "bob-read").await,
    );
    assert_eq!(alice.len(), 2);
    assert!(alice.iter().all(|id| !bob.contains(id)));
    assert_eq!(account_ids(&bank, "alice-accounts").await, alice);

    let (status, _, body) = call(
        &bank,
        Method::GET,
        &format!("/accounts/{}/transactions", alice[0]),
        Some("alice-read"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sum: i64 = body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["amount_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(body["account"]["balance_cents"], sum);

    // Seeding again changes nothing.
    bank.seed_demo_accounts("alice-sub", "alice").await.unwrap();
    assert_eq!(account_ids(&bank, "alice-read").await, alice);
}

#[tokio::test]
async fn other_peoples_accounts_look_missing() {
    let dir = tempfile::tempdir().unwrap();
    let bank = bank(&dir).await;
    let bob = account_ids(&bank, "bob-read").await;
    for uri in [
        format!("/accounts/{}/transactions", bob[0]),
        "/accounts/acc_nope/transactions".into(),
    ] {
        let (status, _, body) = call(&bank, Method::GET, &uri, Some("alice-read"), "").await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({ "error": "not_found" }))
        );
    }
    let new = r#"{"date":"2025-05-04","description":"x","category":"y","amount_cents":-1}"#;
    let (status, _, _) = call(
        &bank,
        Method::POST,
        &format!("/accounts/{}/transactions", bob[0]),
        Some("alice-write"),
        new,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refusals_name_the_missing_scope() {
    let dir = tempfile::tempdir().unwrap();
    let bank = bank(&dir).await;
    let id = account_ids(&bank, "alice-read").await.remove(0);
    let uri = format!("/accounts/{id}/transactions");
    let new = r#"{"date":"2025-05-04","description":"Coffee","category":"Eating out","amount_cents":-350}"#;
    let cases = [
        (
            Method::POST,
            uri.as_str(),
            "alice-read",
            "transactions:write",
        ),
        (
            Method::GET,
            uri.as_str(),
            "alice-accounts",
            "transactions:read",
        ),
        (
            Method::GET,
            "/accounts",
            "alice-profile",
            "accounts:read transactions:read",
        ),
    ];
    for (method, uri, token, scope) in cases {
        let (status, headers, body) = call(&bank, method, uri, Some(token), new).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], scope);
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(&format!("scope=\"{scope}\"")));
    }
}

#[tokio::test]
async fn creates_valid_transactions_and_explains_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bank = bank(&dir).await;
    let id = account_ids(&bank, "alice-read").await.remove(0);
    let uri = format!("/accounts/{id}/transactions");
    let bad = r#"{"date":"2025-02-30","description":"Coffee","category":"Eating out","amount_cents":-350}"#;
    let (status, _, body) = call(&bank, Method::POST, &uri, Some("alice-write"), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("invalid_request"), Some("date"))
    );
    let (status, _, body) = call(&bank, Method::POST, &uri, Some("alice-write"), "not json").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let good = r#"{"date":"2025-05-04","description":"Coffee","category":"Eating out","amount_cents":-350}"#;
    let (status, headers, created) =
        call(&bank, Method::POST, &uri, Some("alice-write"), good).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        (
            created["account_id"].as_str(),
            created["amount_cents"].as_i64()
        ),
        (Some(id.as_str()), Some(-350))
    );
    let (_, _, listed) = call(&bank, Method::GET, &uri, Some("alice-read"), "").await;
    assert!(listed["transactions"]
        .as_array()
        .unwrap()
        .contains(&created));
}

#[tokio::test]
async fn refuses_missing_and_revoked_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let bank = bank(&dir).await;
    let (status, headers, _) = call(&bank, Method::GET, "/accounts", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="bank""#);
    let (status, headers, body) = call(&bank, Method::GET, "/accounts", Some("revoked"), "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let (status, _, _) = call(&bank, Method::GET, "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK);
}
