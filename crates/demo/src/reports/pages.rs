//! The app's pages: one template struct per page, compiled and auto-escaping (bank
//! data and Tessera's error descriptions are text from elsewhere).

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Not connected: what the app does, and the Connect button.
#[derive(Template)]
#[template(path = "welcome.html")]
pub struct WelcomePage<'a> {
    pub csrf: &'a str,
    pub scope: &'a str,
}

pub struct AccountRow {
    pub name: String,
    pub balance: String,
    pub currency: String,
}

pub struct FlowRow {
    pub name: String,
    pub count: usize,
    pub income: String,
    pub spending: String,
    pub net: String,
}

pub struct TransactionRow {
    pub date: String,
    pub description: String,
    pub category: String,
    pub amount: String,
}

/// Connected: the report.
#[derive(Template)]
#[template(path = "report.html")]
pub struct ReportPage {
    pub csrf: String,
    pub scope: String,
    pub notes: Vec<String>,
    pub accounts: Vec<AccountRow>,
    /// The inline SVG, already escaped by its own template.
    pub chart: String,
    pub months: Vec<FlowRow>,
    pub categories: Vec<FlowRow>,
    pub total: FlowRow,
    pub recent: Vec<TransactionRow>,
}

/// A heading, a few paragraphs, maybe a transaction, maybe a Connect button.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub heading: String,
    pub lines: Vec<String>,
    pub transaction: Option<TransactionRow>,
    /// Show the Connect button, with this CSRF token.
    pub connect_csrf: Option<String>,
}

impl MessagePage {
    pub fn new(heading: impl Into<String>, lines: &[&str]) -> Self {
        Self {
            heading: heading.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            transaction: None,
            connect_csrf: None,
        }
    }

    pub fn with_connect(mut self, csrf: &str) -> Self {
        self.connect_csrf = Some(csrf.to_owned());
        self
    }

    pub fn with_line(mut self, line: String) -> Self {
        self.lines.push(line);
        self
    }

    pub fn respond(&self, status: StatusCode) -> Response {
        render(status, self, None)
    }
}

/// Render a page, with a `Set-Cookie` header when a session was just started. The
/// security headers are added to every response by the router.
pub fn render(
    status: StatusCode,
    page: &impl Template,
    set_cookie: Option<HeaderValue>,
) -> Response {
    let body = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut response = (status, Html(body)).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A request that ends on a message page: the status and what to tell the person.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub heading: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, heading: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            heading,
            message: message.into(),
        }
    }
}

/// Internal causes are logged, never shown.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = format!("{e:#}"), "reports request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Please try again.",
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        MessagePage::new(self.heading, &[&self.message]).respond(self.status)
    }
}
