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

/// Every named kind with its wire text, in one table: `named` and `as_str` are generated
/// from it as `match`es (ingest names and prints a kind per event; a `match` on the name is
/// what the `ingest` bench's "frame -> published" row wants, not a scan of the table).
macro_rules! named_kinds {
    ($($variant:ident => $name:literal),* $(,)?) => {
        impl EventKind {
            /// The wire names of every named kind (metrics label only these).
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The kind a type name means (an unknown name is `Other`, kept as it is).
            pub fn named(name: &str) -> Self {
                match name {
                    $($name => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }

            /// The wire name (SSE `event:` line, envelope `type`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Other(name) => name,
                }
            }
        }

        #[cfg(test)]
        const NAMED: &[(EventKind, &str)] = &[$((EventKind::$variant, $name)),*];
    };
}

named_kinds! {
    AccountBalance => "AccountBalance",
    CurrentPosition => "CurrentPosition",
    Order => "Order",
    ComplexOrder => "ComplexOrder",
    TradingStatus => "TradingStatus",
    ExternalTransaction => "ExternalTransaction",
    UnderlyingYearGainSummary => "UnderlyingYearGainSummary",
    OrderChain => "OrderChain",
    QuoteAlert => "QuoteAlert",
    PublicWatchlists => "PublicWatchlists",
    UserMessage => "UserMessage",
    OrderRemoved => "OrderRemoved",
    ComplexOrderRemoved => "ComplexOrderRemoved",
    Status => "status",
}

impl EventKind {
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
        assert_eq!(EventKind::NAMES.len(), NAMED.len());
        for (kind, text) in NAMED.iter() {
            assert_eq!(&EventKind::named(text), kind);
            assert_eq!(kind.as_str(), *text);
        }
        let other = EventKind::named("NewThing");
        assert_eq!(other, EventKind::Other("NewThing".into()));
        assert_eq!(other.as_str(), "NewThing");
    }
}
