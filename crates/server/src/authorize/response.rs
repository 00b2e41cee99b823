//! The authorization response and error response, sent to the client's redirect URI
//! in the query (RFC 6749 §4.1.2, §4.1.2.1), always with `iss` (RFC 9207 §2).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_protocol::RedirectUri;

use crate::error::OAuthError;

/// Redirect the browser to `to` with the given parameters added to its query.
/// `after_post` selects 303 (RFC 9700 §4.11: never 307 after a form post) over 302.
pub fn redirect(to: &RedirectUri, params: &[(&str, &str)], after_post: bool) -> Response {
    let mut url = to.url().clone();
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = status.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Send an error to the client (RFC 6749 §4.1.2.1).
pub fn error_redirect(
    issuer: &str,
    to: &RedirectUri,
    state: Option<&str>,
    error: &OAuthError,
    after_post: bool,
) -> Response {
    error.log();
    let mut params = vec![("error", error.code().as_str())];
    if let Some(d) = error.description() {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect(to, &params, after_post)
}
