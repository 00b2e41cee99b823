//! The OpenAPI 3 document of the admin API: generated from the handlers'
//! `#[utoipa::path]` attributes (the same list that routes them, see `mod.rs`) and
//! served without authentication at `GET /admin/openapi.json`. It describes the API;
//! it holds no data. A copy is kept in `docs/admin-openapi.json`.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, ResponseBuilder, Type};
use utoipa::Modify;

use super::problem::{self, Problem};

/// The security scheme every operation requires unless it says otherwise.
const SCHEME: &str = "admin_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tessera admin API",
        version = "1",
        description = "Manage Tessera's clients, users and scope catalog. Every operation but \
            this document needs `Authorization: Bearer <admin API token>`; create a token with \
            `tessera admin-token create --name NAME`. Errors are RFC 7807 problem details \
            (`application/problem+json`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
    tags(
        (name = "clients", description = "OAuth clients and their secrets"),
        (name = "users", description = "The people who sign in at Tessera"),
        (name = "scopes", description = "The scope catalog shown on consent pages"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An admin API token from `tessera admin-token create`"))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Document the 401 of every operation that needs the token (all but those that set
/// their own `security`), once, as a shared response.
pub fn add_unauthorized(doc: &mut utoipa::openapi::OpenApi) {
    let response = ResponseBuilder::new()
        .description("No admin API token, or one that is unknown or revoked")
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(problem::CHALLENGE))
                .build(),
        )
        .content(
            problem::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    doc.components
        .get_or_insert_with(Default::default)
        .responses
        .insert("Unauthorized".into(), response.into());
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            if operation.security.is_none() {
                operation.responses.responses.insert(
                    "401".into(),
                    Ref::new("#/components/responses/Unauthorized").into(),
                );
            }
        }
    }
}

/// Make sure the problem schema is there even if no operation names it.
pub fn add_problem_schema(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::{PartialSchema, ToSchema};
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .entry(Problem::name().into_owned())
        .or_insert_with(Problem::schema);
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&super::openapi())
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the document: {e}\"}}"))
});

#[utoipa::path(
    get, path = "/openapi.json", operation_id = "get_openapi_document", tag = "meta",
    security(()),
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
