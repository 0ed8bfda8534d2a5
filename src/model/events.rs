//! Typed views of every tastytrade event type of the protocol facts (shared/protocol §1.7,
//! §3.5-§3.7, §6). Every field is optional and read tolerantly (number-or-string ids and
//! quantities, decimal money, any timestamp form, `"NaN"`), so a drifted or partial object
//! still parses. The raw JSON stays the source of truth that is passed through (unknown
//! fields included); these views give the gateway its keys, times and decimals.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::wire_schema::{DecimalText, IdText, WireTime};
use super::wire_types::{de_list, de_opt_decimal, de_opt_millis, de_opt_text};

/// One fill of an order leg (`fill-id` is unique; the gateway never counts one twice).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
#[schema(as = OrderFill)]
pub struct Fill {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub fill_id: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub quantity: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub fill_price: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub filled_at: Option<i64>,
}

/// One leg of an order: instrument, action, quantities and its fills.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
#[schema(as = OrderLeg)]
pub struct Leg {
    pub instrument_type: Option<String>,
    pub symbol: Option<String>,
    pub action: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub quantity: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub remaining_quantity: Option<Decimal>,
    #[serde(deserialize_with = "de_list")]
    #[schema(value_type = Option<Vec<Fill>>, default = json!([]))]
    pub fills: Vec<Fill>,
}

/// A tastytrade order (`Order` events, `/orders/live`), masked. Keyed by `id`; newer `updated-at`
/// wins. Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct Order {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub id: Option<String>,
    pub account_number: Option<String>,
    pub status: Option<String>,
    pub order_type: Option<String>,
    pub time_in_force: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub size: Option<Decimal>,
    pub underlying_symbol: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub price: Option<Decimal>,
    pub price_effect: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub stop_trigger: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub replaces_order_id: Option<String>,
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub replacing_order_id: Option<String>,
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub complex_order_id: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub leg_count: Option<Decimal>,
    #[serde(deserialize_with = "de_list")]
    #[schema(value_type = Option<Vec<Leg>>, default = json!([]))]
    pub legs: Vec<Leg>,
}

impl Order {
    /// Every `fill-id` across the legs.
    pub fn fill_ids(&self) -> impl Iterator<Item = &str> {
        self.legs
            .iter()
            .flat_map(|l| l.fills.iter())
            .filter_map(|f| f.fill_id.as_deref())
    }
}

/// A tastytrade complex order (OCO, OTOCO, ...), masked. Keyed by `id`. Fields not listed are
/// passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct ComplexOrder {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub id: Option<String>,
    pub account_number: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "de_list")]
    #[schema(value_type = Option<Vec<Order>>, default = json!([]))]
    pub orders: Vec<Order>,
    #[schema(default = json!(null))]
    pub trigger_order: Option<Order>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub terminal_at: Option<i64>,
}

/// A tastytrade position (`CurrentPosition`), masked. Keyed by `symbol` + `instrument-type`; a
/// `quantity` of zero closes it. Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
#[schema(as = Position)]
pub struct CurrentPosition {
    pub account_number: Option<String>,
    pub symbol: Option<String>,
    pub instrument_type: Option<String>,
    pub underlying_symbol: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub quantity: Option<Decimal>,
    pub quantity_direction: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub average_open_price: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub close_price: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub multiplier: Option<Decimal>,
    /// `"NaN"` on the wire reads as `None`.
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub fixing_price: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub expires_at: Option<i64>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
}

/// A tastytrade account balance (`AccountBalance`), masked; money as decimals with its sign in the
/// sibling `-effect` field. Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
#[schema(as = Balance)]
pub struct AccountBalance {
    pub account_number: Option<String>,
    pub currency: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub cash_balance: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub net_liquidating_value: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub equity_buying_power: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub derivative_buying_power: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub maintenance_requirement: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub pending_cash: Option<Decimal>,
    pub pending_cash_effect: Option<String>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
}

/// The account's trading status (`TradingStatus`), masked. Fields not listed are passed through as
/// they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct TradingStatus {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub id: Option<String>,
    pub account_number: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub day_trade_count: Option<Decimal>,
    pub is_closing_only: Option<bool>,
    pub is_frozen: Option<bool>,
    pub options_level: Option<String>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub enhanced_fraud_safeguards_enabled_at: Option<i64>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
}

/// A deposit or withdrawal (`ExternalTransaction`), masked. Fields not listed are passed through as
/// they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct ExternalTransaction {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub id: Option<String>,
    pub account_number: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub amount: Option<Decimal>,
    pub amount_effect: Option<String>,
    pub direction: Option<String>,
    pub state: Option<String>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
}

/// A year's realised gain on one underlying (`UnderlyingYearGainSummary`), masked. Fields not
/// listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct UnderlyingYearGainSummary {
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub year: Option<String>,
    pub account_number: Option<String>,
    pub symbol: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub yearly_realized_gain: Option<Decimal>,
    pub yearly_realized_gain_effect: Option<String>,
}

/// An order chain (`OrderChain`), masked. Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct OrderChain {
    /// A string in production frames (tastyware#297), a number in older models.
    #[serde(deserialize_with = "de_opt_text")]
    #[schema(value_type = Option<IdText>)]
    pub id: Option<String>,
    pub account_number: Option<String>,
    pub underlying_symbol: Option<String>,
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub updated_at: Option<i64>,
}

/// A user's quote alert (`QuoteAlert`). Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct QuoteAlert {
    pub alert_external_id: Option<String>,
    pub symbol: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub threshold: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub threshold_numeric: Option<Decimal>,
    /// Epoch milliseconds (tastyware) or a string (swagger).
    #[serde(deserialize_with = "de_opt_millis")]
    #[schema(value_type = Option<WireTime>)]
    pub expires_at: Option<i64>,
}

/// A public watchlist (`PublicWatchlists`). Fields not listed are passed through as they came.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "kebab-case", default)]
pub struct PublicWatchlist {
    pub name: Option<String>,
    pub group_name: Option<String>,
    #[serde(deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<DecimalText>)]
    pub order_index: Option<Decimal>,
    #[serde(deserialize_with = "de_list")]
    #[schema(value_type = Option<Vec<Object>>, default = json!([]))]
    pub watchlist_entries: Vec<Value>,
}

/// One event, typed by its `type`; anything else is `Unknown` and passed through raw.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountEvent {
    Order(Order),
    ComplexOrder(ComplexOrder),
    CurrentPosition(CurrentPosition),
    AccountBalance(AccountBalance),
    TradingStatus(TradingStatus),
    ExternalTransaction(ExternalTransaction),
    UnderlyingYearGainSummary(UnderlyingYearGainSummary),
    OrderChain(OrderChain),
    QuoteAlert(QuoteAlert),
    PublicWatchlists(PublicWatchlist),
    Unknown,
}

impl AccountEvent {
    /// Reads `data` as the event type `kind`. Fails only when the object's shape is broken
    /// (not an object, or a list where an object belongs), never for drifted scalars.
    pub fn parse(kind: &str, data: &Value) -> Result<Self, serde_json::Error> {
        use serde::de::Error;
        if !data.is_object() {
            return Err(serde_json::Error::custom("event data is not an object"));
        }
        Ok(match kind {
            "Order" => Self::Order(Order::deserialize(data)?),
            "ComplexOrder" => Self::ComplexOrder(ComplexOrder::deserialize(data)?),
            "CurrentPosition" => Self::CurrentPosition(CurrentPosition::deserialize(data)?),
            "AccountBalance" => Self::AccountBalance(AccountBalance::deserialize(data)?),
            "TradingStatus" => Self::TradingStatus(TradingStatus::deserialize(data)?),
            "ExternalTransaction" => {
                Self::ExternalTransaction(ExternalTransaction::deserialize(data)?)
            }
            "UnderlyingYearGainSummary" => {
                Self::UnderlyingYearGainSummary(UnderlyingYearGainSummary::deserialize(data)?)
            }
            "OrderChain" => Self::OrderChain(OrderChain::deserialize(data)?),
            "QuoteAlert" => Self::QuoteAlert(QuoteAlert::deserialize(data)?),
            "PublicWatchlists" => Self::PublicWatchlists(PublicWatchlist::deserialize(data)?),
            _ => Self::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captured_order_parses_with_drifted_fields() {
        let order = json!({"id": "270602", "size": "2", "price": "1.25", "price-effect": "Credit", "status": "Filled",
            "updated-at": 1748448002553_i64, "user-id": 99, "leg-count": 2,
            "legs": [{"symbol": "SPY   250620P00500000", "quantity": 2, "remaining-quantity": "0",
                "fills": [{"fill-id": "f1", "quantity": 1, "fill-price": "2.10", "filled-at": "2025-05-28T16:00:01.953+00:00"},
                          {"fill-id": "f2", "quantity": "1", "fill-price": "2.10", "filled-at": "2025-05-28T16:00:02.101Z"}]}],
            "brand-new-field": {"x": 1}});
        let AccountEvent::Order(parsed) = AccountEvent::parse("Order", &order).unwrap() else {
            panic!("an Order")
        };
        assert_eq!(parsed.id.as_deref(), Some("270602"));
        assert_eq!(parsed.user_id.as_deref(), Some("99"));
        assert_eq!(parsed.size, Some(Decimal::from(2)));
        assert_eq!(parsed.updated_at, Some(1748448002553));
        assert_eq!(parsed.fill_ids().collect::<Vec<_>>(), vec!["f1", "f2"]);
        assert_eq!(parsed.legs[0].fills[0].filled_at, Some(1748448001953));
    }

    #[test]
    fn position_nan_and_zero() {
        let p = json!({"symbol": "/6EZ6", "quantity": "0", "quantity-direction": "Zero", "multiplier": 125000, "fixing-price": "NaN", "expires-at": 1751328000000_i64});
        let AccountEvent::CurrentPosition(parsed) =
            AccountEvent::parse("CurrentPosition", &p).unwrap()
        else {
            panic!("a position")
        };
        assert!(crate::model::state::is_closed_position(&p));
        assert_eq!(parsed.fixing_price, None);
        assert_eq!(parsed.multiplier, Some(Decimal::from(125000)));
    }

    #[test]
    fn broken_shapes_fail_and_unknown_types_pass() {
        assert!(AccountEvent::parse("Order", &json!([1])).is_err());
        assert!(AccountEvent::parse("Order", &json!({"legs": "nope"})).is_err());
        assert!(
            AccountEvent::parse("Order", &json!({"legs": null, "user-id": null})).is_ok(),
            "a null list is an empty one"
        );
        assert_eq!(
            AccountEvent::parse("MarginRequirement", &json!({"a": 1})).unwrap(),
            AccountEvent::Unknown
        );
        assert!(
            AccountEvent::parse("TradingStatus", &json!({})).is_ok(),
            "every non-key field is optional"
        );
    }
}
