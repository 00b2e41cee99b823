//! The admin REST API under `/admin/`: bearer-token authentication, clients, users and
//! scopes over HTTP, RFC 7807 problem details, and the OpenAPI document (kept in
//! `docs/admin-openapi.json`, and covering every routed `/admin` operation).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_server::crypto::hash_secret;
use tessera_server::endpoints::admin;

use crate::helpers::*;

/// Regenerate `docs/admin-openapi.json` from the served document with this set to 1.
const WRITE_ENV: &str = "TESSERA_WRITE_OPENAPI";
const DOC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/admin-openapi.json");

/// A server and an admin API token for it, made the way the CLI makes one.
struct Admin {
    app: TestApp,
    token: String,
}

async fn admin_app() -> Admin {
    let app = spawn_app().await;
    let (_, token) = admin::auth::create_token(app.state.store.as_ref(), "tests", app.now())
        .await
        .expect("admin token");
    Admin { app, token }
}

impl Admin {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(&self.token)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(Method::DELETE, path, None).await
    }

    /// Register a client through the API; returns its JSON (with `client_secret`).
    async fn client(&self, body: Value) -> Value {
        let r = self.post("/admin/clients", body).await;
        ok(r, 201).await
    }

    async fn scope(&self, name: &str, description: &str) {
        let r = self
            .put(
                &format!("/admin/scopes/{name}"),
                json!({ "description": description }),
            )
            .await;
        assert!(r.status().is_success(), "PUT scope: {}", r.status());
    }
}

/// Assert the status and a JSON body; return it.
async fn ok(r: reqwest::Response, status: u16) -> Value {
    let got = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Assert an RFC 7807 problem with this status; return it.
async fn problem(r: reqwest::Response, status: u16) -> Value {
    let got = r.status();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "body: {text}");
    assert_eq!(content_type, "application/problem+json", "body: {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON problem");
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    body
}

fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap_or_default()
}

/// A 401 problem with the admin realm's challenge.
async fn unauthorized(r: reqwest::Response) -> Value {
    let challenge = r
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate on a 401")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"tessera-admin\""),
        "{challenge}"
    );
    problem(r, 401).await
}

#[tokio::test]
async fn requests_need_a_valid_admin_token() {
    let admin = admin_app().await;
    let url = format!("{}/admin/clients", admin.app.url);
    let http = &admin.app.http;

    let p = unauthorized(http.get(&url).send().await.unwrap()).await;
    assert_eq!(p["type"], "urn:tessera:problem:unauthorized");
    let r = http
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    unauthorized(r).await;
    let r = http
        .get(&url)
        .basic_auth("admin", Some(&admin.token))
        .send()
        .await
        .unwrap();
    unauthorized(r).await;

    // A second token works until it is revoked; the first is untouched.
    let store = admin.app.state.store.as_ref();
    let (record, second) = admin::auth::create_token(store, "second", admin.app.now())
        .await
        .unwrap();
    let r = http.get(&url).bearer_auth(&second).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(store
        .revoke_admin_token(&record.id, admin.app.now())
        .await
        .unwrap());
    unauthorized(http.get(&url).bearer_auth(&second).send().await.unwrap()).await;
    assert_eq!(admin.get("/admin/clients").await.status(), 200);

    // Only the hash is stored.
    let stored = store.list_admin_tokens().await.unwrap();
    assert!(stored
        .iter()
        .any(|t| t.token_hash == hash_secret(&admin.token)));
    assert!(admin::auth::create_token(store, "  ", admin.app.now())
        .await
        .is_err());
}

#[tokio::test]
async fn a_created_clients_secret_works_at_the_token_endpoint() {
    let admin = admin_app().await;
    admin.scope("reports:read", "Read reports").await;
    let r = admin
        .post(
            "/admin/clients",
            json!({
                "name": "Batch job",
                "scope": "reports:read",
                "grant_types": ["client_credentials"],
                "token_format": "opaque",
                "client_uri": "https://batch.example",
                "contacts": ["ops@batch.example"],
            }),
        )
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let created = ok(r, 201).await;
    let id = created["client_id"].as_str().unwrap();
    assert_eq!(location, format!("/admin/clients/{id}"));
    assert_eq!(created["name"], "Batch job");
    assert_eq!(created["public"], false);
    assert_eq!(created["grant_types"], json!(["client_credentials"]));
    assert_eq!(created["token_format"], "opaque");
    assert_eq!(created["client_uri"], "https://batch.example");
    assert_eq!(created["auth_method"], "client_secret_basic");
    let secret = created["client_secret"].as_str().unwrap();

    let client = TestClient {
        id: id.into(),
        secret: Some(secret.into()),
    };
    let r = app_token(&admin.app, &client).await;
    assert_eq!(r["scope"], "reports:read");

    // The secret is shown once: never again.
    let shown = ok(admin.get(&location).await, 200).await;
    assert!(shown.get("client_secret").is_none(), "{shown}");
    assert_eq!(shown["client_id"], id);

    // Bad settings are refused by the same rules as `tessera client create`.
    let p = problem(
        admin.post("/admin/clients", json!({ "name": "" })).await,
        400,
    )
    .await;
    assert!(detail(&p).contains("name"), "{p}");
    let p = problem(
        admin
            .post(
                "/admin/clients",
                json!({ "name": "X", "redirect_uris": [REDIRECT], "scope": "nope" }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("unknown scope"), "{p}");
    let p = problem(
        admin
            .post(
                "/admin/clients",
                json!({ "name": "X", "public": true, "grant_types": ["client_credentials"] }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("public"), "{p}");
    let p = problem(
        admin
            .post(
                "/admin/clients",
                json!({ "name": "X", "redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)" }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("logo_uri"), "{p}");
}

/// A client credentials token for `client`; returns the token response.
async fn app_token(app: &TestApp, client: &TestClient) -> Value {
    let r = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    ok(r, 200).await
}

#[tokio::test]
async fn clients_are_listed_in_pages() {
    let admin = admin_app().await;
    let mut ids = BTreeSet::new();
    for i in 0..5 {
        let c = admin
            .client(json!({ "name": format!("App {i}"), "redirect_uris": [REDIRECT] }))
            .await;
        ids.insert(c["client_id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/admin/clients?limit=2".to_owned();
    loop {
        let page = ok(admin.get(&path).await, 200).await;
        let items = page["items"].as_array().unwrap();
        pages.push(items.len());
        seen.extend(
            items
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/admin/clients?limit=2&after={next}"),
            None => {
                assert_eq!(page["next"], Value::Null);
                break;
            }
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(
        seen,
        ids.iter().cloned().collect::<Vec<_>>(),
        "by id, each once"
    );

    // The default page holds them all.
    let page = ok(admin.get("/admin/clients").await, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert_eq!(page["next"], Value::Null);

    for bad in ["limit=0", "limit=201", "limit=two", "limit=-1", "color=red"] {
        let p = problem(admin.get(&format!("/admin/clients?{bad}")).await, 400).await;
        assert!(!detail(&p).is_empty(), "{bad}: {p}");
    }
}

#[tokio::test]
async fn show_update_and_delete_a_client() {
    let admin = admin_app().await;
    let client = admin.app.standard().await;
    let path = format!("/admin/clients/{}", client.id);
    let shown = ok(admin.get(&path).await, 200).await;
    assert_eq!(shown["name"], "Reports");
    assert_eq!(shown["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        shown["scope"],
        "accounts:read transactions:read transactions:write"
    );

    // A full replacement: the redirect URIs are replaced, fields left out reset.
    let r = admin
        .put(
            &path,
            json!({
                "name": "Reports v2",
                "redirect_uris": ["https://reports.example/cb", "http://127.0.0.1:7000/cb"],
                "scope": "transactions:read",
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "tos_uri": "https://reports.example/tos",
            }),
        )
        .await;
    let updated = ok(r, 200).await;
    assert_eq!(updated["name"], "Reports v2");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://reports.example/cb", "http://127.0.0.1:7000/cb"])
    );
    assert_eq!(updated["scope"], "transactions:read");
    assert_eq!(updated["tos_uri"], "https://reports.example/tos");
    assert_eq!(updated["updated_at"], admin.app.now());
    assert_eq!(ok(admin.get(&path).await, 200).await, updated);
    // The secret is unchanged.
    let token = app_token(&admin.app, &client).await;
    assert_eq!(token["scope"], "transactions:read");

    // Invalid replacements leave the client alone.
    let p = problem(
        admin
            .put(
                &path,
                json!({ "name": "Reports", "redirect_uris": ["http://evil.example/cb"] }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("http://evil.example/cb"), "{p}");
    assert!(detail(&p).contains("https"), "{p}");
    let p = problem(
        admin
            .put(
                &path,
                json!({ "name": "Reports", "redirect_uris": [REDIRECT], "scope": "nope" }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("unknown scope"), "{p}");
    let p = problem(
        admin
            .put(
                &path,
                json!({ "name": "Reports", "redirect_uris": [REDIRECT], "public": true }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("public"), "{p}");
    let p = problem(
        admin
            .put(&path, json!({ "redirect_uris": [REDIRECT] }))
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("name"), "{p}");
    assert_eq!(ok(admin.get(&path).await, 200).await, updated);
    problem(
        admin
            .put(
                "/admin/clients/nope",
                json!({ "name": "X", "redirect_uris": [REDIRECT] }),
            )
            .await,
        404,
    )
    .await;

    // Deleting revokes the client's grants first, so the revocation feed tells
    // resource servers.
    let tokens = admin.app.tokens_for(&client, "transactions:read").await;
    let grant_id = jwt_payload(tokens["access_token"].as_str().unwrap())["grant_id"].clone();
    let r = admin.delete(&path).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let p = problem(admin.get(&path).await, 404).await;
    assert_eq!(p["type"], "urn:tessera:problem:not-found");
    problem(admin.delete(&path).await, 404).await;
    let feed = admin
        .app
        .state
        .store
        .revocations_after(0, 100)
        .await
        .unwrap();
    assert!(
        feed.iter()
            .any(|e| e.grant_id.as_deref() == grant_id.as_str()),
        "{feed:?}"
    );
    let r = admin
        .app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_deleted_clients_opaque_tokens_are_inactive_at_once() {
    let admin = admin_app().await;
    let resource_server = admin.app.standard().await;
    let (batch, r) = admin.app.opaque_client_credentials().await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    // Answered twice, the second time from the kept answer.
    for _ in 0..2 {
        assert_eq!(
            admin.app.introspect(&resource_server, token).await["active"],
            true
        );
    }

    // A client_credentials token has no grant: it goes with its client.
    let r = admin.delete(&format!("/admin/clients/{}", batch.id)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        admin.app.introspect(&resource_server, token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn rotating_a_secret_keeps_the_old_one_for_the_grace_period() {
    let admin = admin_app().await;
    let client = admin.app.standard().await;
    let old = client.secret.clone().unwrap();
    let path = format!("/admin/clients/{}/rotate-secret", client.id);

    let r = admin
        .post(&path, json!({ "grace_period_seconds": 300 }))
        .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let rotated = ok(r, 200).await;
    let keys: BTreeSet<&str> = rotated
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["client_id", "client_secret", "previous_secret_expires_at"])
    );
    assert_eq!(rotated["client_id"], client.id);
    let until = admin.app.now() + 300;
    assert_eq!(rotated["previous_secret_expires_at"], until);
    let new = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new, old);

    // The new secret works; the old one is kept, as a hash, until the grace period ends.
    let rotated_client = TestClient {
        id: client.id.clone(),
        secret: Some(new.into()),
    };
    app_token(&admin.app, &rotated_client).await;
    let stored = admin
        .app
        .state
        .store
        .get_client(&client.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.previous_secret, Some((hash_secret(&old), until)));
    assert_eq!(stored.secret_hash, Some(hash_secret(new)));
    let shown = ok(
        admin.get(&format!("/admin/clients/{}", client.id)).await,
        200,
    )
    .await;
    assert_eq!(shown["previous_secret_expires_at"], until);

    // Without a body there is no grace period: only the newest secret works.
    let r = admin.request(Method::POST, &path).send().await.unwrap();
    let again = ok(r, 200).await;
    assert_eq!(again["previous_secret_expires_at"], Value::Null);
    let stored = admin
        .app
        .state
        .store
        .get_client(&client.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.previous_secret, None);
    let r = admin
        .app
        .token(&rotated_client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 401);

    let p = problem(
        admin
            .post(&path, json!({ "grace_period_seconds": 31 * 24 * 3600 }))
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("grace_period_seconds"), "{p}");
    problem(
        admin
            .post(&path, json!({ "grace_period_seconds": -1 }))
            .await,
        400,
    )
    .await;
    problem(admin.post(&path, json!({ "grace": 10 })).await, 400).await;
    problem(
        admin
            .post("/admin/clients/nope/rotate-secret", json!({}))
            .await,
        404,
    )
    .await;
    let public = admin
        .client(json!({ "name": "SPA", "public": true, "redirect_uris": [REDIRECT] }))
        .await;
    assert_eq!(public["client_secret"], Value::Null);
    let public_path = format!(
        "/admin/clients/{}/rotate-secret",
        public["client_id"].as_str().unwrap()
    );
    problem(admin.post(&public_path, json!({})).await, 409).await;
}

#[tokio::test]
async fn users_are_created_listed_changed_and_deleted() {
    let admin = admin_app().await;
    let r = admin
        .post(
            "/admin/users",
            json!({ "username": "carol", "password": "carol-password-1" }),
        )
        .await;
    assert_eq!(r.headers()["location"], "/admin/users/carol");
    let carol = ok(r, 201).await;
    assert_eq!(carol["username"], "carol");
    assert!(carol.get("password").is_none() && carol.get("password_hash").is_none());

    let p = problem(
        admin
            .post(
                "/admin/users",
                json!({ "username": "carol", "password": "another-password" }),
            )
            .await,
        409,
    )
    .await;
    assert!(detail(&p).contains("carol"), "{p}");
    let p = problem(
        admin
            .post(
                "/admin/users",
                json!({ "username": "dave", "password": "short" }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("8"), "{p}");
    problem(
        admin
            .post(
                "/admin/users",
                json!({ "username": "a b", "password": "long-enough" }),
            )
            .await,
        400,
    )
    .await;

    admin.app.user(ALICE.0, ALICE.1).await;
    let list = ok(admin.get("/admin/users").await, 200).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "carol"], "by username");
    assert_eq!(ok(admin.get("/admin/users/carol").await, 200).await, carol);
    problem(admin.get("/admin/users/nobody").await, 404).await;

    let r = admin
        .put(
            "/admin/users/carol/password",
            json!({ "password": "carol-password-2" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let stored = admin
        .app
        .state
        .store
        .get_user_by_username("carol")
        .await
        .unwrap()
        .unwrap();
    assert!(tessera_server::crypto::verify_password(
        "carol-password-2",
        Some(&stored.password_hash)
    ));
    problem(
        admin
            .put(
                "/admin/users/carol/password",
                json!({ "password": "short" }),
            )
            .await,
        400,
    )
    .await;
    problem(
        admin
            .put(
                "/admin/users/nobody/password",
                json!({ "password": "long-enough" }),
            )
            .await,
        404,
    )
    .await;

    // Deleting alice revokes her grants first, so the revocation feed tells
    // resource servers.
    admin
        .app
        .scope("transactions:read", "Read your transactions")
        .await;
    let client = admin
        .app
        .client_with(
            "Reports",
            "transactions:read",
            false,
            &tessera_protocol::GrantType::ALL,
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let tokens = admin.app.tokens_for(&client, "transactions:read").await;
    let grant_id = jwt_payload(tokens["access_token"].as_str().unwrap())["grant_id"].clone();
    // And an opaque access token of hers: it stays stored until it expires, and
    // introspection answers it inactive from her deletion on (RFC 7662 §2.2).
    let opaque = admin
        .app
        .client_with(
            "Ledger",
            "transactions:read",
            false,
            &tessera_protocol::GrantType::ALL,
            tessera_server::store::TokenFormat::Opaque,
        )
        .await;
    let opaque_tokens = admin.app.tokens_for(&opaque, "transactions:read").await;
    let opaque_token = opaque_tokens["access_token"].as_str().unwrap();
    assert_eq!(
        admin.app.introspect(&opaque, opaque_token).await["active"],
        true
    );
    assert_eq!(admin.delete("/admin/users/alice").await.status(), 204);
    assert_eq!(
        admin.app.introspect(&opaque, opaque_token).await,
        json!({ "active": false })
    );
    problem(admin.get("/admin/users/alice").await, 404).await;
    problem(admin.delete("/admin/users/alice").await, 404).await;
    let feed = admin
        .app
        .state
        .store
        .revocations_after(0, 100)
        .await
        .unwrap();
    assert!(
        feed.iter()
            .any(|e| e.grant_id.as_deref() == grant_id.as_str()),
        "{feed:?}"
    );
    let list = ok(admin.get("/admin/users").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn scopes_are_put_listed_and_deleted() {
    let admin = admin_app().await;
    let r = admin
        .put(
            "/admin/scopes/transactions:read",
            json!({ "description": "Read your transactions" }),
        )
        .await;
    assert_eq!(r.headers()["location"], "/admin/scopes/transactions:read");
    let created = ok(r, 201).await;
    assert_eq!(
        created,
        json!({ "name": "transactions:read", "description": "Read your transactions" })
    );
    let r = admin
        .put(
            "/admin/scopes/transactions:read",
            json!({ "description": "See your transactions" }),
        )
        .await;
    assert_eq!(ok(r, 200).await["description"], "See your transactions");
    admin.scope("accounts:read", "See your accounts").await;

    let list = ok(admin.get("/admin/scopes").await, 200).await;
    assert_eq!(
        list,
        json!({ "items": [
            { "name": "accounts:read", "description": "See your accounts" },
            { "name": "transactions:read", "description": "See your transactions" },
        ]})
    );

    let p = problem(
        admin
            .put("/admin/scopes/two%20words", json!({ "description": "X" }))
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("scope name"), "{p}");
    problem(
        admin
            .put("/admin/scopes/accounts:read", json!({ "description": " " }))
            .await,
        400,
    )
    .await;

    assert_eq!(
        admin.delete("/admin/scopes/accounts:read").await.status(),
        204
    );
    problem(admin.delete("/admin/scopes/accounts:read").await, 404).await;
    let list = ok(admin.get("/admin/scopes").await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_are_problems() {
    let admin = admin_app().await;
    let raw = |body: &'static str| {
        admin
            .request(Method::POST, "/admin/users")
            .header("content-type", "application/json")
            .body(body)
    };

    let p = problem(raw("{\"username\": ").send().await.unwrap(), 400).await;
    assert!(!detail(&p).is_empty(), "{p}");
    let p = problem(
        raw(r#"{"username": "erin", "password": "erin-password", "admin": true}"#)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(detail(&p).contains("unknown field `admin`"), "{p}");
    let p = problem(raw(r#"{"username": "erin"}"#).send().await.unwrap(), 400).await;
    assert!(detail(&p).contains("password"), "{p}");
    problem(
        raw(r#"{"username": 7, "password": "erin-password"}"#)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    let p = problem(
        admin
            .post(
                "/admin/clients",
                json!({ "name": "X", "grant_types": ["password"] }),
            )
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("password"), "{p}");
    let p = problem(
        admin
            .post("/admin/clients", json!({ "name": "X", "secret": "mine" }))
            .await,
        400,
    )
    .await;
    assert!(detail(&p).contains("unknown field `secret`"), "{p}");

    // Not JSON at all, and too much of it.
    let r = admin
        .request(Method::POST, "/admin/users")
        .header("content-type", "text/plain")
        .body("username=erin")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    let big = format!(
        r#"{{"username": "erin", "password": "{}"}}"#,
        "x".repeat(20_000)
    );
    let r = admin
        .request(Method::POST, "/admin/users")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(r, 413).await;

    // Unknown resources and methods.
    problem(admin.get("/admin/nothing-here").await, 404).await;
    let r = admin.send(Method::PATCH, "/admin/clients", None).await;
    assert!(r.headers().contains_key("allow"));
    problem(r, 405).await;
}

/// The served document, as JSON.
async fn served_document(app: &TestApp) -> Value {
    // No token needed: the document describes the API and holds no data.
    let r = app
        .http
        .get(format!("{}/admin/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    ok(r, 200).await
}

#[tokio::test]
async fn the_served_openapi_document_is_the_one_in_docs() {
    let app = spawn_app().await;
    let served = served_document(&app).await;
    assert_eq!(served["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var(WRITE_ENV).as_deref() == Ok("1") {
        std::fs::write(DOC_FILE, &text).expect("writing docs/admin-openapi.json");
        return;
    }
    let kept = std::fs::read_to_string(DOC_FILE).unwrap_or_default();
    let kept: Value = serde_json::from_str(&kept).unwrap_or(Value::Null);
    if let Some(at) = first_difference(&kept, &served, String::new()) {
        panic!(
            "docs/admin-openapi.json is not the document the server serves (first \
             difference at {at:?}). After changing the admin API, regenerate it with\n  \
             {WRITE_ENV}=1 cargo test -p tessera-server --test api -- \
             admin_api::the_served_openapi_document_is_the_one_in_docs\n\
             and review the difference."
        );
    }
}

/// The JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let next = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => first_difference(v, w, next),
                    _ => Some(next),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}/{i}"))),
        _ => (a != b).then_some(at),
    }
}

/// The `/admin` paths the app actually routes, read from the router itself: axum's
/// `Debug` lists every route as `RouteId(n): "<path>"`, routes first, then the
/// fallbacks (`fallback_router`).
fn routed_admin_paths(app: &TestApp) -> BTreeSet<String> {
    let debug = format!("{:?}", tessera_server::app(app.state.clone()));
    let (router, _fallbacks) = debug
        .split_once("fallback_router")
        .unwrap_or_else(|| panic!("no fallback_router in the router's Debug output:\n{debug}"));
    let mut paths = BTreeSet::new();
    for piece in router.split("RouteId(").skip(1) {
        let Some((_, rest)) = piece.split_once("): \"") else {
            continue;
        };
        let path = &rest[..rest.find('"').unwrap_or(0)];
        if path == "/admin" || path.starts_with("/admin/") {
            paths.insert(path.to_owned());
        }
    }
    assert!(
        paths.contains("/admin/clients"),
        "cannot read the routes from the router's Debug output (did axum change it?):\n{router}"
    );
    paths
}

/// The methods a routed path answers, from the `Allow` header of a 405 to a method no
/// route has. HEAD comes with GET.
async fn routed_methods(admin: &Admin, path: &str) -> BTreeSet<String> {
    let concrete = path
        .replace("{id}", "x")
        .replace("{username}", "x")
        .replace("{name}", "x");
    let probe = Method::from_bytes(b"PROBE").unwrap();
    let r = admin.request(probe, &concrete).send().await.unwrap();
    assert_eq!(
        r.status(),
        405,
        "{path}: a routed path refuses an unknown method"
    );
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    allow
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| m != "HEAD" || !allow.contains("GET"))
        .collect()
}

/// `(METHOD, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_admin_route_is_documented() {
    let admin = admin_app().await;
    let doc = served_document(&admin.app).await;
    let documented = documented(&doc);

    let mut routed = BTreeSet::new();
    for path in routed_admin_paths(&admin.app) {
        for method in routed_methods(&admin, &path).await {
            routed.insert((method, path.clone()));
        }
    }
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not in the OpenAPI document: {undocumented:?}\n\
         documented but not routed: {unrouted:?}\n\
         Register admin routes only with `routes!` in endpoints/admin/mod.rs."
    );
    assert!(documented.len() >= 15, "{documented:?}");

    // Each operation has its own id and a tag, for client generators.
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method.to_ascii_lowercase()];
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_owned()),
            "{method} {path}: operationId {id:?} is not unique"
        );
        assert!(
            operation["tags"][0].is_string(),
            "{method} {path} has no tag"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_but_the_document_needs_the_token() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    for (method, path) in documented(&doc) {
        let concrete = path
            .replace("{id}", "x")
            .replace("{username}", "x")
            .replace("{name}", "x");
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let r = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{concrete}", app.url),
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if path == "/admin/openapi.json" {
            assert_eq!(r.status(), 200);
            assert_eq!(operation["security"], json!([{}]), "documented as open");
        } else {
            unauthorized(r).await;
            assert_eq!(
                operation["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path} documents its 401"
            );
        }
    }
}

#[tokio::test]
async fn key_based_clients_are_created_without_a_secret() {
    let admin = admin_app().await;
    admin.scope("reports:read", "Read reports").await;
    let key =
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .unwrap();
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(key.as_ref()).unwrap();
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let created = admin
        .client(json!({
            "name": "Signer",
            "scope": "reports:read",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]},
        }))
        .await;
    assert_eq!(created["client_secret"], Value::Null);
    let stored = admin
        .app
        .state
        .store
        .get_client(created["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.auth_method.as_str(), "private_key_jwt");
    assert!(stored.secret_hash.is_none());
    // Without keys the method is refused, as at registration.
    let r = admin
        .post(
            "/admin/clients",
            json!({"name": "No keys", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
        )
        .await;
    problem(r, 400).await;
    let r = admin
        .post("/admin/clients", json!({"name": "Odd", "token_endpoint_auth_method": "magic", "redirect_uris": [REDIRECT]}))
        .await;
    problem(r, 400).await;
}
