//! Event types as a type: the ones the gateway knows by name (tastytrade's, the two removal
//! events a resync emits, and the gateway's own `status`), and any other text passed through
//! through. Upstream names it once from the frame; everything after matches on the enum.

use std::fmt;

/// What an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    AccountBalance,
    CurrentPosition,
    Order,
    ComplexOrder,
    TradingStatus,
    ExternalTransaction,
    UnderlyingYearGainSummary,
    OrderChain,
    QuoteAlert,
    PublicWatchlists,
    UserMessage,
    /// A terminal order left tastytrade's `/orders/live` (a new trading day), found by a resync.
    OrderRemoved,
    /// Likewise for a complex order.
    ComplexOrderRemoved,
    /// The gateway's own: the account's upstream link changed state.
    Status,
    /// A type the gateway does not know: passed through (made safe for SSE lines by the
    /// frame parser, and masked like the data by the account).
    Other(String),
}

/// Every named kind with its wire text, in one table (parsing and printing both read it).
const NAMED: [(EventKind, &str); 14] = [
    (EventKind::AccountBalance, "AccountBalance"),
    (EventKind::CurrentPosition, "CurrentPosition"),
    (EventKind::Order, "Order"),
    (EventKind::ComplexOrder, "ComplexOrder"),
    (EventKind::TradingStatus, "TradingStatus"),
    (EventKind::ExternalTransaction, "ExternalTransaction"),
    (
        EventKind::UnderlyingYearGainSummary,
        "UnderlyingYearGainSummary",
    ),
    (EventKind::OrderChain, "OrderChain"),
    (EventKind::QuoteAlert, "QuoteAlert"),
    (EventKind::PublicWatchlists, "PublicWatchlists"),
    (EventKind::UserMessage, "UserMessage"),
    (EventKind::OrderRemoved, "OrderRemoved"),
    (EventKind::ComplexOrderRemoved, "ComplexOrderRemoved"),
    (EventKind::Status, "status"),
];

impl EventKind {
    /// The kind a type name means (an unknown name is `Other`, kept as it is).
    pub fn named(name: &str) -> Self {
        NAMED
            .iter()
            .find(|(_, text)| *text == name)
            .map(|(kind, _)| kind.clone())
            .unwrap_or_else(|| Self::Other(name.to_string()))
    }

    /// The wire name (SSE `event:` line, envelope `type`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => NAMED
                .iter()
                .find(|(kind, _)| kind == known)
                .map(|(_, text)| *text)
                .unwrap_or_default(),
        }
    }

    /// Whether events of this kind belong to the user (one socket carries them for every
    /// account) rather than to an account.
    pub fn is_user_event(&self) -> bool {
        matches!(
            self,
            Self::QuoteAlert | Self::PublicWatchlists | Self::UserMessage
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_pass_through() {
        for (kind, text) in NAMED.iter() {
            assert_eq!(&EventKind::named(text), kind);
            assert_eq!(kind.as_str(), *text);
        }
        let other = EventKind::named("NewThing");
        assert_eq!(other, EventKind::Other("NewThing".into()));
        assert_eq!(other.as_str(), "NewThing");
    }
}
