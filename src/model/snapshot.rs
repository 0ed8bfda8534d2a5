//! A point-in-time copy of one account's state with the stream position it is exact at: what
//! `GET /snapshot`, the parts, and the first message of every stream carry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::events::{AccountBalance, ComplexOrder, CurrentPosition, Order, TradingStatus};
use super::position::{Epoch, Position};
use super::state::AccountState;

/// A point-in-time copy of an account's state, exact at `seq`: `snapshot(seq = N)` plus
/// every event with `seq > N` equals the current state. tastytrade objects are passed
/// through as tastytrade sent them (kebab-case keys, decimal strings, unknown fields), masked.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Snapshot {
    /// The account's public id.
    pub account: String,
    /// Changes whenever the event log starts afresh (each gateway start).
    #[schema(value_type = String)]
    pub epoch: Epoch,
    /// The sequence number this snapshot is exact at.
    pub seq: u64,
    /// When the snapshot was taken.
    pub as_of: DateTime<Utc>,
    /// tastytrade `AccountBalance` (none before the first baseline).
    #[schema(value_type = Option<AccountBalance>, required = true)]
    pub balance: Option<Value>,
    /// tastytrade `CurrentPosition` objects, by symbol.
    #[schema(value_type = Vec<CurrentPosition>)]
    pub positions: Vec<Value>,
    /// Today's orders as `/orders/live` gives them, terminal ones included, by id.
    #[schema(value_type = Vec<Order>)]
    pub orders: Vec<Value>,
    /// tastytrade `ComplexOrder` objects, by id.
    #[schema(value_type = Vec<ComplexOrder>)]
    pub complex_orders: Vec<Value>,
    /// tastytrade `TradingStatus` (none before the first baseline).
    #[schema(value_type = Option<TradingStatus>, required = true)]
    pub trading_status: Option<Value>,
}

impl Snapshot {
    /// A copy of `state`, which is exact at `position`.
    pub fn of(account: &str, position: &Position, state: &AccountState) -> Self {
        Self {
            account: account.to_string(),
            epoch: position.epoch.clone(),
            seq: position.seq,
            as_of: Utc::now(),
            balance: state.balance.clone(),
            positions: state.positions.values().cloned().collect(),
            orders: state.orders.values().cloned().collect(),
            complex_orders: state.complex_orders.values().cloned().collect(),
            trading_status: state.trading_status.clone(),
        }
    }

    /// The position this snapshot is exact at (its id, its ETag).
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.seq,
        }
    }
}
