//! How the wire's drifting scalars are described in the OpenAPI document: decimals, ids and
//! times that tastytrade sends sometimes as strings and sometimes as numbers (shared/protocol
//! §3.4). The gateway passes them through as they came, so a client must accept both forms;
//! these schemas say so, and code generators turn them into `string | number`.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A schema that is one of a string and a number form.
fn string_or(number: Type, description: &str, string_example: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .examples([serde_json::json!(string_example)]),
        )
        .item(ObjectBuilder::new().schema_type(number))
        .description(Some(description))
        .into()
}

/// Money, quantities and prices: a decimal string (`"220.5"`, `"NaN"` for none) or a JSON
/// number. Read it with a decimal type, never a binary float.
pub struct DecimalText;

impl PartialSchema for DecimalText {
    fn schema() -> RefOr<Schema> {
        string_or(
            Type::Number,
            "A decimal as tastytrade sends it: a string (`\"220.5\"`, `\"NaN\"` for none) or a JSON number. Parse it as a decimal, never as a binary float.",
            "220.5",
        )
    }
}

impl ToSchema for DecimalText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DecimalText")
    }
}

/// Ids: a string or an integer for the same object (compare them as text).
pub struct IdText;

impl PartialSchema for IdText {
    fn schema() -> RefOr<Schema> {
        string_or(
            Type::Integer,
            "An id as tastytrade sends it: an integer or a string for the same object (`301001` and `\"301001\"` are one id). Compare ids as text.",
            "301001",
        )
    }
}

impl ToSchema for IdText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("IdText")
    }
}

/// Times: an RFC 3339 string or epoch milliseconds.
pub struct WireTime;

impl PartialSchema for WireTime {
    fn schema() -> RefOr<Schema> {
        string_or(
            Type::Integer,
            "A time as tastytrade sends it: an RFC 3339 string or epoch milliseconds.",
            "2026-12-01T14:30:00.000+00:00",
        )
    }
}

impl ToSchema for WireTime {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WireTime")
    }
}
