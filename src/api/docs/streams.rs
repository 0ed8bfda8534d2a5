//! The OpenAPI schemas of what the streams carry: one envelope schema per event type with
//! its typed `data` (built from the envelope's own schema, so the fields are written once),
//! their union, and the WebSocket messages both ways. SSE and WebSocket send these; the
//! document is all a client generator needs to type them.

use utoipa::openapi::schema::{AnyOfBuilder, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Components, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::model::Envelope;

/// Event type -> the schema of its `data` and the name of its envelope schema.
const TYPED_EVENTS: &[(&str, &str, &str)] = &[
    ("AccountBalance", "Balance", "BalanceEvent"),
    ("CurrentPosition", "Position", "PositionEvent"),
    ("Order", "Order", "OrderEvent"),
    ("ComplexOrder", "ComplexOrder", "ComplexOrderEvent"),
    ("TradingStatus", "TradingStatus", "TradingStatusEvent"),
    ("OrderRemoved", "RemovedObject", "OrderRemovedEvent"),
    (
        "ComplexOrderRemoved",
        "RemovedObject",
        "ComplexOrderRemovedEvent",
    ),
    (
        "ExternalTransaction",
        "ExternalTransaction",
        "ExternalTransactionEvent",
    ),
    (
        "UnderlyingYearGainSummary",
        "UnderlyingYearGainSummary",
        "UnderlyingYearGainSummaryEvent",
    ),
    ("OrderChain", "OrderChain", "OrderChainEvent"),
    ("QuoteAlert", "QuoteAlert", "QuoteAlertEvent"),
    (
        "PublicWatchlists",
        "PublicWatchlist",
        "PublicWatchlistsEvent",
    ),
    ("status", "UpstreamStatus", "StatusEvent"),
];

/// What `OrderRemoved` / `ComplexOrderRemoved` carry: the id of an object that left
/// tastytrade's lists (a terminal order after the trading day rolled).
#[derive(ToSchema)]
#[allow(dead_code)] // describes a payload; the gateway builds it as JSON
pub struct RemovedObject {
    #[schema(value_type = crate::model::wire_schema::IdText)]
    id: String,
}

/// A WebSocket `snapshot` or `reset` message: one account's state, to replace what the
/// client holds for it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a message; ws.rs serialises it
pub struct WsSnapshot {
    /// `snapshot` at the start, `reset` when the resume position could not be served.
    #[schema(rename = "type")]
    kind: String,
    /// The account's public id.
    account: String,
    /// `<epoch>-<seq>`: resume from here.
    id: String,
    seq: u64,
    data: crate::model::Snapshot,
}

/// A WebSocket `ack` of a subscribe or unsubscribe.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a message; ws.rs builds it as JSON
pub struct WsAck {
    #[schema(rename = "type")]
    kind: String,
    /// The request's `id`, echoed.
    id: Option<serde_json::Value>,
    /// `subscribe` or `unsubscribe`.
    op: String,
    /// The accounts subscribed (subscribe only).
    accounts: Option<Vec<String>>,
    /// The event types subscribed (subscribe only; none: all).
    types: Option<Vec<String>>,
}

/// A WebSocket `pong`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a message; ws.rs builds it as JSON
pub struct WsPong {
    #[schema(rename = "type")]
    kind: String,
    id: Option<serde_json::Value>,
}

/// A WebSocket `error`: the request was refused; the connection stays open.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a message; ws.rs builds it as JSON
pub struct WsError {
    #[schema(rename = "type")]
    kind: String,
    id: Option<serde_json::Value>,
    /// Stable, machine-readable (`bad_request`, `unknown_account`, ...).
    code: String,
    message: String,
}

/// `token_expiring`: the socket's token (JWT) expires at `expires_at` (epoch seconds); send
/// `{"op":"refresh","token":...}` before then, or the socket closes with 4001.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a message; ws.rs builds it as JSON
pub struct WsTokenExpiring {
    #[schema(rename = "type")]
    kind: String,
    expires_at: u64,
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// A string that can only be one of `values` (one value: a literal type in generated code).
fn one_of_strings(values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// The envelope's own schema as an object, to specialise.
fn envelope() -> Object {
    match Envelope::schema() {
        RefOr::T(Schema::Object(object)) => object,
        _ => unreachable!("Envelope derives an object schema"),
    }
}

/// `Envelope` with `type` fixed to `kind` and `data` typed as `data`.
fn typed_envelope(kind: &str, data: &str) -> Schema {
    let mut object = envelope();
    object.description = Some(format!(
        "Event `{kind}`: the envelope of every event, with `data` a `{data}`."
    ));
    object
        .properties
        .insert("type".into(), one_of_strings(&[kind]));
    object.properties.insert("data".into(), reference(data));
    Schema::Object(object)
}

/// `schema` with its `type` property limited to `values`.
fn with_type(schema: RefOr<Schema>, values: &[&str]) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = schema else {
        return schema;
    };
    object
        .properties
        .insert("type".into(), one_of_strings(values));
    RefOr::T(Schema::Object(object))
}

fn any_of(names: impl IntoIterator<Item = String>, description: &str) -> Schema {
    let mut union = AnyOfBuilder::new().description(Some(description));
    for name in names {
        union = union.item(reference(&name));
    }
    Schema::AnyOf(union.build())
}

/// Registers the typed `data` of the events no route returns on its own.
fn add_event_data(components: &mut Components) {
    use crate::model::events::{
        ExternalTransaction, OrderChain, PublicWatchlist, QuoteAlert, UnderlyingYearGainSummary,
    };
    for (name, schema) in [
        (ExternalTransaction::name(), ExternalTransaction::schema()),
        (
            UnderlyingYearGainSummary::name(),
            UnderlyingYearGainSummary::schema(),
        ),
        (OrderChain::name(), OrderChain::schema()),
        (QuoteAlert::name(), QuoteAlert::schema()),
        (PublicWatchlist::name(), PublicWatchlist::schema()),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
}

/// Adds the stream schemas to `components`.
pub fn add(components: &mut Components) {
    for (kind, data, name) in TYPED_EVENTS {
        components
            .schemas
            .insert((*name).into(), typed_envelope(kind, data).into());
    }
    let mut other = envelope();
    other.description =
        Some("An event of any other type, passed through as tastytrade sent it.".into());
    components
        .schemas
        .insert("OtherEvent".into(), Schema::Object(other).into());
    let events = TYPED_EVENTS
        .iter()
        .map(|(_, _, name)| name.to_string())
        .chain(["OtherEvent".to_string()]);
    components.schemas.insert(
        "StreamEvent".into(),
        any_of(
            events,
            "One event of an account's stream: SSE `data:` of `event: <type>`, or a WebSocket message.",
        )
        .into(),
    );
    components.schemas.insert(
        "SseData".into(),
        any_of(
            ["Snapshot".into(), "StreamEvent".into()],
            "What an SSE `data:` line holds: a `Snapshot` for `event: snapshot` and `event: reset`, else a `StreamEvent`.",
        )
        .into(),
    );
    components.schemas.insert(
        "WsServerMessage".into(),
        any_of(
            [
                "WsAck",
                "WsSnapshot",
                "WsPong",
                "WsError",
                "WsTokenExpiring",
                "StreamEvent",
            ]
            .map(String::from),
            "A message the gateway sends on `/v1/ws`.",
        )
        .into(),
    );
    add_event_data(components);
    for (name, schema) in [
        (
            "WsSnapshot",
            with_type(WsSnapshot::schema(), &["snapshot", "reset"]),
        ),
        ("WsAck", with_type(WsAck::schema(), &["ack"])),
        ("WsPong", with_type(WsPong::schema(), &["pong"])),
        ("WsError", with_type(WsError::schema(), &["error"])),
        (
            "WsTokenExpiring",
            with_type(WsTokenExpiring::schema(), &["token_expiring"]),
        ),
        ("RemovedObject", RemovedObject::schema()),
        ("WsClientMessage", crate::api::ws::ClientMessage::schema()),
    ] {
        components.schemas.insert(name.into(), schema);
    }
    let mut needed = Vec::new();
    crate::api::ws::ClientMessage::schemas(&mut needed);
    WsSnapshot::schemas(&mut needed);
    RemovedObject::schemas(&mut needed);
    for (name, schema) in needed {
        components.schemas.entry(name).or_insert(schema);
    }
}

#[cfg(test)]
mod tests {
    use super::TYPED_EVENTS;
    use crate::model::EventKind;

    /// The typed envelopes name kinds the model knows; every named kind has one but
    /// `UserMessage`, whose shape tastytrade does not document (it stays an `OtherEvent`).
    #[test]
    fn typed_events_cover_the_models_named_kinds() {
        let typed: Vec<&str> = TYPED_EVENTS.iter().map(|(kind, _, _)| *kind).collect();
        for kind in &typed {
            assert!(
                EventKind::NAMES.contains(kind),
                "{kind} is not a named kind"
            );
        }
        let untyped: Vec<&str> = EventKind::NAMES
            .iter()
            .copied()
            .filter(|name| !typed.contains(name))
            .collect();
        assert_eq!(untyped, vec!["UserMessage"]);
    }
}
