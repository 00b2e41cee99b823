//! Authorization server metadata (RFC 8414) and the JWKS (RFC 7517).

use crate::helpers::*;
use tessera_server::config::SigningAlg;

#[tokio::test]
async fn metadata_lists_what_is_supported() {
    let app = spawn_app().await;
    app.standard().await;
    let r = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: serde_json::Value = r.json().await.unwrap();
    // RFC 8414 §3.3: the issuer is identical to the one the metadata was fetched for.
    assert_eq!(m["issuer"], app.url.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks.json"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(m[key], format!("{}{path}", app.url), "{key}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ])
    );
    // RFC 8414 §2: the JWS algorithms accepted in client assertions, per endpoint.
    for endpoint in ["token", "revocation", "introspection"] {
        assert_eq!(
            m[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            serde_json::json!(["ES256", "EdDSA", "RS256", "PS256", "HS256"]),
            "{endpoint}"
        );
    }
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["accounts:read", "transactions:read", "transactions:write"])
    );
}

#[tokio::test]
async fn jwks_publishes_public_keys_only() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/jwks.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks: serde_json::Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    // No private member ("d", or RSA's "p", "q", ...) ever leaves the server.
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "private member {private} published"
        );
    }
}

#[tokio::test]
async fn eddsa_and_rs256_are_selectable() {
    for (alg, kty) in [(SigningAlg::EdDSA, "OKP"), (SigningAlg::RS256, "RSA")] {
        let app = spawn_with(|c| c.tokens.signing_alg = alg).await;
        let client = app.standard().await;
        let r = app
            .token(&client, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let header = jwt_header(body["access_token"].as_str().unwrap());
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["typ"], "at+jwt");
        let jwks: serde_json::Value = app
            .http
            .get(format!("{}/jwks.json", app.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], kty);
        assert_eq!(key["kid"], header["kid"]);
        let m: serde_json::Value = app
            .http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                app.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            m["access_token_signing_alg_values_supported"],
            serde_json::json!([alg.as_str()])
        );
    }
}
