//! The admin REST API under `/admin/`: clients, users and the scope catalog as JSON
//! resources, behind an admin API token, with errors as RFC 7807 problem details.
//!
//! Routes and their OpenAPI documentation come from one list: `routes!` registers each
//! handler under the method and path of its own `#[utoipa::path]` attribute, so a route
//! cannot be added here without being documented (the API tests check it anyway).

pub mod auth;
pub mod clients;
pub mod openapi;
pub mod problem;
pub mod scopes;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Where the admin API is mounted.
pub const PREFIX: &str = "/admin";

/// Largest request body the admin API accepts.
const BODY_LIMIT: usize = 16 * 1024;

/// Every operation that needs an admin API token. One `routes!` per path.
fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(clients::create, clients::list))
        .routes(routes!(clients::show, clients::update, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::show, users::delete))
        .routes(routes!(users::set_password))
        .routes(routes!(scopes::list))
        .routes(routes!(scopes::put, scopes::delete))
}

/// The operations open to anyone: the API's description.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi::document))
}

/// The OpenAPI document of the admin API, paths under [`PREFIX`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .nest(PREFIX, public().merge(protected()))
        .into_openapi();
    openapi::add_unauthorized(&mut doc);
    openapi::add_problem_schema(&mut doc);
    doc
}

/// The admin API's router, to nest at [`PREFIX`].
pub fn router(state: AppState) -> Router<AppState> {
    let protected =
        Router::from(protected()).route_layer(from_fn_with_state(state, auth::require_admin));
    Router::from(public())
        .merge(protected)
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The path of an admin API resource, each segment percent-encoded.
pub fn location(segments: &[&str]) -> String {
    let mut path = PREFIX.to_owned();
    for segment in segments {
        path.push('/');
        for byte in segment.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&byte) {
                path.push(char::from(byte));
            } else {
                path.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    path
}
