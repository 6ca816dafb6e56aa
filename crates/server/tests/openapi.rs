//! The checked-in OpenAPI document matches the handlers and the Rust types.

use std::path::PathBuf;

#[test]
fn checked_in_openapi_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = mm_server::openapi::pretty();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: run `UPDATE_OPENAPI=1 cargo test -p mm-server --test openapi` and commit the result",
        path.display()
    );
}

#[test]
fn the_document_is_openapi_3_1_and_documents_every_error_with_the_error_shape() {
    let doc = mm_server::openapi::document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{} paths", paths.len());
    for (path, operations) in paths {
        for (method, op) in operations.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorPayload", "{method} {path} {status}");
                }
            }
        }
    }
    // The event stream is described too.
    assert!(doc["paths"]["/mm/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"].is_object());
    // The hub token can be set, and is never part of what the settings return.
    let view = &doc["components"]["schemas"]["SettingsView"]["properties"];
    assert!(view.get("token").is_none() && view.get("tokenHint").is_some(), "{view}");
    assert!(doc["components"]["schemas"]["SettingsPatch"]["properties"].get("token").is_some());
}
