//! Server-rendered pages: one template struct per page, compiled and auto-escaping
//! (client names and URIs are attacker-controlled text). Every page is sent with
//! anti-framing, no-script CSP and no-store headers.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// The login form, shown during an authorization request.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub issuer: &'a str,
    pub client_name: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeView {
    pub name: String,
    pub description: String,
}

/// The consent form: which client asks for what.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub issuer: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeView>,
    pub request: &'a str,
    pub csrf: &'a str,
}

/// An error that is shown to the person and not sent to the client.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub issuer: &'a str,
    pub message: &'a str,
}

/// The stylesheet, served from `/assets/tessera.css` so that the CSP needs no inline styles.
pub const STYLESHEET: &str = include_str!("../../templates/tessera.css");

/// Content-Security-Policy of every page: no scripts at all, no framing.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Render a page with the security headers and optional cookies.
pub fn render(status: StatusCode, page: &impl Template, cookies: &[HeaderValue]) -> Response {
    let body = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for c in cookies {
        headers.append(header::SET_COOKIE, c.clone());
    }
    response
}

/// Render the error page.
pub fn error(issuer: &str, status: StatusCode, message: &str) -> Response {
    render(status, &ErrorPage { issuer, message }, &[])
}
