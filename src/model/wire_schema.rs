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

/// A schema type that is a string or a number form of one value.
macro_rules! string_or_number {
    ($(#[$doc:meta])* $name:ident: $number:expr, $description:literal, $example:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string_or($number, $description, $example)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

string_or_number!(
    /// Money, quantities and prices: a decimal string (`"220.5"`, `"NaN"` for none) or a
    /// JSON number. Read it with a decimal type, never a binary float.
    DecimalText: Type::Number,
    "A decimal as tastytrade sends it: a string (`\"220.5\"`, `\"NaN\"` for none) or a JSON number. Parse it as a decimal, never as a binary float.",
    "220.5"
);

string_or_number!(
    /// Ids: a string or an integer for the same object (compare them as text).
    IdText: Type::Integer,
    "An id as tastytrade sends it: an integer or a string for the same object (`301001` and `\"301001\"` are one id). Compare ids as text.",
    "301001"
);

string_or_number!(
    /// Times: an RFC 3339 string or epoch milliseconds.
    WireTime: Type::Integer,
    "A time as tastytrade sends it: an RFC 3339 string or epoch milliseconds.",
    "2026-12-01T14:30:00.000+00:00"
);
