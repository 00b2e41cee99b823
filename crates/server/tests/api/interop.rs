//! Interoperability: the `oauth2` crate (version 5), a widely used Rust OAuth client, talks to Tessera.

use std::collections::HashMap;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, IntrospectionUrl, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};

use crate::helpers::{location_params, spawn_app, TestApp, TestClient, ALICE, REDIRECT};

/// An HTTP client for oauth2 that does not follow redirects (as oauth2's docs require).
fn http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `https://` form of the test server's base URL.
///
/// oauth2 refuses a revocation endpoint that is not https (RFC 7009 §2), and the test
/// server speaks plain http on loopback; [`tls_terminator`] turns the scheme back.
fn https_base(app: &TestApp) -> String {
    app.url.replacen("http://", "https://", 1)
}

/// Stands in for a TLS-terminating proxy in front of the server: sends the request to
/// the same host and port over plain http.
async fn tls_terminator(
    mut request: HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<oauth2::reqwest::Error>> {
    let uri = request.uri().to_string().replacen("https://", "http://", 1);
    *request.uri_mut() = uri.parse().expect("uri");
    let http = http_client();
    http.call(request).await
}

/// The client as oauth2 sees it: every endpoint the tests use, Basic authentication.
type OAuthClient = BasicClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointSet, EndpointSet>;

fn oauth_client(app: &TestApp, client: &TestClient) -> OAuthClient {
    BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(
            client.secret.clone().expect("confidential client"),
        ))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", app.url)).expect("auth url"))
        .set_token_uri(TokenUrl::new(format!("{}/token", app.url)).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect url"))
        .set_revocation_url(
            RevocationUrl::new(format!("{}/revoke", https_base(app))).expect("revocation url"),
        )
        .set_introspection_url(
            IntrospectionUrl::new(format!("{}/introspect", app.url)).expect("introspection url"),
        )
}

/// Sign alice in through the browser for an authorization URL built by oauth2; returns
/// the redirect's query parameters.
async fn follow_in_browser(app: &TestApp, url: &oauth2::url::Url) -> HashMap<String, String> {
    let browser = app.browser();
    let response = browser
        .http
        .get(url.as_str())
        .send()
        .await
        .expect("GET /authorize");
    let response = browser.complete(response, ALICE).await;
    assert_eq!(
        response.status(),
        303,
        "expected the redirect back to the client"
    );
    let location = response.headers()["location"].to_str().expect("location");
    assert!(location.starts_with(REDIRECT), "redirected to {location}");
    location_params(&response)
}

#[tokio::test]
async fn client_credentials_with_the_oauth2_crate() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let oauth = oauth_client(&app, &client);
    let http = http_client();

    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("accounts:read".into()))
        .request_async(&http)
        .await
        .expect("client credentials token");

    assert!(!token.access_token().secret().is_empty());
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        token.expires_in(),
        Some(std::time::Duration::from_secs(600))
    );
    let scopes: Vec<&str> = token
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(scopes, ["accounts:read"]);
    assert!(
        token.refresh_token().is_none(),
        "client credentials must not issue a refresh token"
    );
}

#[tokio::test]
async fn authorization_code_refresh_introspect_revoke_with_the_oauth2_crate() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let oauth = oauth_client(&app, &client);
    let http = http_client();

    // Authorization request (RFC 6749 §4.1.1 with RFC 7636 S256).
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("accounts:read".into()))
        .add_scope(Scope::new("transactions:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let params = follow_in_browser(&app, &url).await;
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(app.url.as_str()),
        "RFC 9207 iss"
    );
    let code = params.get("code").expect("code").clone();

    // Token request.
    let token = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        token.expires_in(),
        Some(std::time::Duration::from_secs(600))
    );
    let scopes: Vec<&str> = token
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(scopes, ["accounts:read", "transactions:read"]);
    let refresh = token.refresh_token().expect("a refresh token").clone();

    // Refresh (rotation: a new refresh token).
    let refreshed = oauth
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    let rotated = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .clone();
    assert_ne!(
        rotated.secret(),
        refresh.secret(),
        "the refresh token must rotate"
    );
    assert_ne!(
        refreshed.access_token().secret(),
        token.access_token().secret()
    );

    // Introspection (RFC 7662).
    let info = oauth
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(client.id.as_str())
    );
    assert_eq!(info.username(), Some(ALICE.0));

    // Revocation (RFC 7009) of the current refresh token.
    oauth
        .revoke_token(StandardRevocableToken::RefreshToken(rotated.clone()))
        .expect("revocation request")
        .request_async(&tls_terminator)
        .await
        .expect("revocation");

    match oauth
        .exchange_refresh_token(&rotated)
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant, "{e:?}")
        }
        other => panic!("expected invalid_grant after revocation, got {other:?}"),
    }
    // The revoked family's access token is no longer active either (RFC 7009 §2.1).
    let info = oauth
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(
        !info.active(),
        "an access token of a revoked grant must be inactive"
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_with_the_oauth2_crate_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let oauth = oauth_client(&app, &client);
    let http = http_client();

    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("transactions:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let params = follow_in_browser(&app, &url).await;
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(csrf.secret().as_str())
    );
    let code = params.get("code").expect("code").clone();

    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    let wrong = PkceCodeVerifier::new(other_verifier.secret().clone());
    match oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(wrong)
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant, "{e:?}")
        }
        other => panic!("expected invalid_grant for a wrong code_verifier, got {other:?}"),
    }
}
