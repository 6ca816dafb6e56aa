//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the core's Rust types: served at
//! `/openapi.json` and checked in as `crates/server/openapi.json`, which a test keeps fresh.

use crate::routes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Model Manager",
        description = "Find, download, verify, activate and manage local AI models: the same operations as the \
            Model Manager app and `mm`. Errors are `{code, message}` with a stable code. Live events: \
            `GET /mm/v1/events` (Server-Sent Events `download-progress` and `model-lifecycle`, resumable with \
            `Last-Event-ID`). Off loopback, every request needs `Authorization: Bearer <token>`.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::health,
        routes::import,
        routes::cancel_imports,
        routes::events,
        routes::settings,
        routes::update_settings,
    ),
    components(schemas(
        mm_core::download::DownloadEvent,
        mm_core::library::SortKey,
        mm_core::model::ModelType,
        mm_core::model::ModelStatus,
        mm_core::model::ModelSource,
    ))
)]
struct ApiDoc;

/// The bearer token every request carries when the server has one; the answers every operation may give (`400`
/// for a path, query or body that does not parse, `401` without the server's token); and no body for a `204`.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |what: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorPayload"))).build();
            ResponseBuilder::new().description(what).content("application/json", content).build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if let Some(utoipa::openapi::RefOr::T(none)) = responses.get_mut("204") {
                    none.content.clear();
                }
                responses.entry("400".into()).or_insert_with(|| error("The path, query or body is not valid").into());
                responses.entry("401".into()).or_insert_with(|| error("The server's token is missing or wrong").into());
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Optional: a server on loopback without a token takes requests without one.
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::default(),
            utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new()),
        ]);
    }
}

/// The document, as JSON.
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(<crate::operations::Documented as OpenApi>::openapi());
    BearerToken.modify(&mut doc);
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    serde_json::to_value(&doc).expect("the OpenAPI document serialises")
}

/// The document as checked in: pretty JSON with a final newline.
pub fn pretty() -> String {
    serde_json::to_string_pretty(&document()).expect("the OpenAPI document serialises") + "\n"
}
