//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of every route.
//!
//! Written by hand as JSON beside this file, because a reviewer reads a
//! document more easily than code that builds one; a router test checks
//! that it parses and lists every route in [`super::route_table`]. Only the
//! server URL changes at run time, to the configured base path.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::state::Shared;

const DOCUMENT: &str = include_str!("openapi.json");

/// The document with its server URL set to `base` ("" for the root).
pub fn document_for(base: &str) -> Value {
    // The file is ours and checked by a test; an unparsable one would be a
    // bug caught before release, so an empty object is fallback enough.
    let mut doc: Value = serde_json::from_str(DOCUMENT).unwrap_or_else(|_| json!({}));
    let url = if base.is_empty() { "/" } else { base };
    doc["servers"] = json!([{ "url": url }]);
    doc
}

pub async fn document(State(app): State<Shared>) -> Json<Value> {
    Json(document_for(&app.base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_takes_the_base_path() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(document_for("/swarmer")["servers"][0]["url"], "/swarmer");
    }
}
