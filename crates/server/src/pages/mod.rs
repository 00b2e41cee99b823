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
    /// The client asking, or `None` for a sign-in to the account pages.
    pub client_name: Option<&'a str>,
    pub request: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeView {
    pub name: String,
    pub description: String,
    /// The client cannot work without it.
    pub required: bool,
}

/// The consent form: which client asks for what.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub issuer: &'a str,
    pub client_name: &'a str,
    /// The client's registered links and logo (attacker-controlled for dynamic clients).
    pub client_uri: Option<&'a str>,
    pub logo_uri: Option<&'a str>,
    pub policy_uri: Option<&'a str>,
    pub tos_uri: Option<&'a str>,
    /// Registered through RFC 7591: nobody at the bank reviewed it.
    pub unverified: bool,
    pub username: &'a str,
    pub scopes: Vec<ScopeView>,
    /// Lifetimes offered: form value, label, seconds.
    pub durations: &'a [(&'a str, &'a str, Option<i64>)],
    pub request: &'a str,
    pub csrf: &'a str,
}

/// A plain message (e.g. after signing out).
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub issuer: &'a str,
    pub title: &'a str,
    pub text: &'a str,
}

/// One app on the connected apps page.
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<ScopeView>,
    pub granted_at: String,
    pub last_used: String,
    pub until: String,
    pub expired: bool,
}

/// One line of the person's history.
pub struct HistoryView {
    pub at: String,
    pub what: String,
    pub app: String,
    pub by: String,
}

/// The connected apps page.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub issuer: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    pub apps: Vec<AppView>,
    pub history: Vec<HistoryView>,
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

/// The CSP of a page that shows an image from `origin` (a client's logo): that one
/// origin is added to `img-src`, nothing else.
pub fn csp_with_image_origin(origin: Option<&str>) -> String {
    match origin {
        Some(o) => CSP.replace("img-src 'self'", &format!("img-src 'self' {o}")),
        None => CSP.to_owned(),
    }
}

/// Render a page with the security headers and optional cookies.
pub fn render(status: StatusCode, page: &impl Template, cookies: &[HeaderValue]) -> Response {
    render_with_csp(status, page, cookies, CSP)
}

/// [`render`] with a specific Content-Security-Policy.
pub fn render_with_csp(
    status: StatusCode,
    page: &impl Template,
    cookies: &[HeaderValue],
    csp: &str,
) -> Response {
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
        HeaderValue::from_str(csp).unwrap_or_else(|_| HeaderValue::from_static(CSP)),
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

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// Render the error page.
pub fn error(issuer: &str, status: StatusCode, message: &str) -> Response {
    render(status, &ErrorPage { issuer, message }, &[])
}
