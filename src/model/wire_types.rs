//! Tolerant readers for the value shapes tastytrade's wire drifts between (shared/protocol
//! §3.4, pitfalls 10-14): numbers that arrive as JSON numbers or strings, decimal money that
//! carries its sign in a sibling `-effect` field, `"NaN"`, and three timestamp forms.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A decimal given as a string (`"100.29"`, `"4337.831401355"`, `"1e3"`) or a JSON number.
/// `"NaN"` and other non-numbers read as `None`, never as an error.
pub fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            s.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(s).ok())
        }
        Value::Number(n) => {
            let text = n.to_string();
            text.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(&text).ok())
        }
        _ => None,
    }
}

/// The sign tastytrade puts in `<field>-effect`: Debit is negative, Credit positive, None zero-signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Debit,
    Credit,
    None,
}

impl Effect {
    pub fn parse(value: Option<&Value>) -> Option<Self> {
        match value?.as_str()? {
            "Debit" => Some(Self::Debit),
            "Credit" => Some(Self::Credit),
            "None" => Some(Self::None),
            _ => None,
        }
    }
}

/// `object[field]` as a signed decimal, using `object[field-effect]` for the sign
/// (a magnitude with `Debit` is negative). Without an effect, the value as given.
pub fn signed_money(object: &Value, field: &str) -> Option<Decimal> {
    let magnitude = decimal(object.get(field)?)?;
    Some(
        match Effect::parse(object.get(format!("{field}-effect").as_str())) {
            Some(Effect::Debit) => -magnitude.abs(),
            Some(Effect::Credit) => magnitude.abs(),
            Some(Effect::None) | None => magnitude,
        },
    )
}

/// serde helper: an optional decimal from a number or a string; unreadable values are `None`.
pub fn de_opt_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(decimal))
}

/// serde helper: an optional id or count from a number or a string, kept as text.
pub fn de_opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// serde helper: a list where `null` reads as empty, like an absent one (pitfall 11); anything
/// else that is not a list is still an error (a broken shape).
pub fn de_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// serde helper: an optional time as epoch milliseconds, from an integer or any ISO form.
pub fn de_opt_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(epoch_millis))
}

/// A non-negative integer given as a number or a numeric string.
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A time as epoch milliseconds: an integer (or numeric string), or an ISO-8601 string with
/// `Z`, `+00:00` or `+0000`.
pub fn epoch_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(ms) = s.parse::<i64>() {
                return Some(ms);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
                .ok()
                .map(|t| t.timestamp_millis())
        }
        _ => None,
    }
}

/// An object id as text, whether the wire carries it as a number or a string.
pub fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_from_every_drifted_form() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(decimal(&json!("100.29")), Some(d("100.29")));
        assert_eq!(decimal(&json!("4337.831401355")), Some(d("4337.831401355")));
        assert_eq!(decimal(&json!(125000)), Some(d("125000")));
        assert_eq!(decimal(&json!(0.85)), Some(d("0.85")));
        assert_eq!(decimal(&json!("1e3")), Some(d("1000")));
        assert_eq!(decimal(&json!("NaN")), None);
        assert_eq!(decimal(&json!(null)), None);
    }

    #[test]
    fn effects_sign_the_magnitude() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let order = json!({"price": "1.25", "price-effect": "Debit", "value": "3", "value-effect": "Credit", "pending-cash": "2.0", "pending-cash-effect": "None", "bare": "-4"});
        assert_eq!(signed_money(&order, "price"), Some(d("-1.25")));
        assert_eq!(signed_money(&order, "value"), Some(d("3")));
        assert_eq!(signed_money(&order, "pending-cash"), Some(d("2.0")));
        assert_eq!(signed_money(&order, "bare"), Some(d("-4")));
        assert_eq!(signed_money(&order, "missing"), None);
    }
}
