//! The OpenAPI document: its header, its security schemes, the stream schemas and an example
//! on every operation. The routes describe themselves (`#[utoipa::path]` in each handler's
//! file); this module adds what belongs to the document as a whole. Served at
//! `/openapi.json`, checked in as `openapi/openapi.json`, and read by client generators.

mod streams;

use std::sync::LazyLock;

use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, RefOr};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tastytrade-gateway",
        description = "Live tastytrade account data (balances, positions, orders) as REST snapshots, resumable Server-Sent Events and WebSocket. Accounts are addressed by public ids; account numbers are masked everywhere. A gateway started without API keys on loopback (demo mode) answers without credentials.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "This gateway")),
    tags(
        (name = "accounts", description = "Snapshots of account state"),
        (name = "streams", description = "Live, resumable event streams"),
        (name = "health", description = "Liveness, readiness, metrics and the dashboard"),
    )
)]
pub struct ApiDoc;

/// The examples, by operation id: real answers of a demo gateway, shortened.
static EXAMPLES: LazyLock<serde_json::Map<String, Value>> =
    LazyLock::new(|| serde_json::from_str(include_str!("examples.json")).unwrap_or_default());

/// The tastytrade objects the gateway passes through: fields beyond the listed ones come as
/// tastytrade sent them.
const PASSED_THROUGH: [&str; 12] = [
    "Balance",
    "Position",
    "Order",
    "OrderLeg",
    "OrderFill",
    "ComplexOrder",
    "TradingStatus",
    "ExternalTransaction",
    "UnderlyingYearGainSummary",
    "OrderChain",
    "QuoteAlert",
    "PublicWatchlist",
];

/// Completes the document once the router has added the routes and their schemas: the
/// security schemes and stream schemas are added, passed-through objects opened to unknown
/// fields, open operations say they are open, event streams are typed, and each operation
/// gets its example.
pub fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    add_security_schemes(components);
    streams::add(components);
    allow_unknown_fields(components);
    for item in openapi.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
            // An operation that names no scheme is open: say so, rather than leave it to a
            // global default.
            operation.security.get_or_insert_with(Vec::new);
            type_event_streams(operation);
            add_example(operation);
        }
    }
}

fn add_security_schemes(components: &mut Components) {
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer <credential>`: an API key (--api-key NAME:SECRET:IDS) or a short-lived token (JWT, --jwt-secret / --jwt-jwks) whose `accounts` claim scopes it.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "access_token",
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "access_token",
            "The same credential (API key or token) as a query parameter, for EventSource, which cannot send headers. Never logged.",
        ))),
    );
    // A browser's token may also come as an HttpOnly cookie (`--jwt-cookie`).
    components.add_security_scheme(
        "jwt_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "ttgw_token",
            "A token (JWT) your backend set as an HttpOnly cookie; the name is --jwt-cookie.",
        ))),
    );
}

/// Marks the passed-through objects as open to unknown fields, and drops the `default`s
/// their tolerant readers imply: a default describes what the gateway reads in, not what it
/// sends.
fn allow_unknown_fields(components: &mut Components) {
    for name in PASSED_THROUGH {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
            for property in object.properties.values_mut() {
                match property {
                    RefOr::T(Schema::Object(field)) => field.default = None,
                    RefOr::T(Schema::OneOf(field)) => field.default = None,
                    RefOr::T(Schema::Array(field)) => field.default = None,
                    _ => {}
                }
            }
        }
    }
}

/// Puts the operation's example on its first answer with a body (the 200 one; for the
/// WebSocket upgrade, whose 101 has none, its refusal), in every media type it declares.
fn add_example(operation: &mut utoipa::openapi::path::Operation) {
    let Some(example) = operation
        .operation_id
        .as_deref()
        .and_then(|id| EXAMPLES.get(id))
    else {
        return;
    };
    let first_with_body = operation
        .responses
        .responses
        .values_mut()
        .filter_map(|answer| match answer {
            RefOr::T(answer) if !answer.content.is_empty() => Some(answer),
            _ => None,
        })
        .next();
    for content in first_with_body
        .into_iter()
        .flat_map(|a| a.content.values_mut())
    {
        if let RefOr::T(content) = content {
            content.example = Some(example.clone());
        }
    }
}

/// Describes every `text/event-stream` body: text whose `data:` lines are each an
/// `SseData`. OpenAPI 3.2 names that `itemSchema`; the document is 3.1 (what generators
/// and schemathesis read today), so it is said as `x-item-schema`.
fn type_event_streams(operation: &mut utoipa::openapi::path::Operation) {
    for answer in operation.responses.responses.values_mut() {
        if let RefOr::T(answer) = answer
            && let Some(RefOr::T(stream)) = answer.content.get_mut("text/event-stream")
        {
            stream.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Server-Sent Events; each `data:` line is an `SseData` (JSON).",
                    ))
                    .into(),
            );
            let item = json!({"$ref": "#/components/schemas/SseData"});
            stream.extensions = Some(ExtensionsBuilder::new().add("x-item-schema", item).build());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_id_and_an_example() {
        let document = crate::api::openapi();
        for (path, item) in &document.paths.paths {
            let operation = item.get.as_ref().expect("every route is a GET");
            let id = operation.operation_id.as_deref().unwrap_or_default();
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && !id.contains('_'),
                "{path}: operation id `{id}` is not camelCase"
            );
            assert!(EXAMPLES.contains_key(id), "{path}: no example for `{id}`");
        }
        assert_eq!(
            EXAMPLES.len(),
            document.paths.paths.len(),
            "examples.json holds an example for a route that no longer exists"
        );
    }
}
