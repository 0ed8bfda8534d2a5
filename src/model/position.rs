//! Stream positions: where a subscriber is in an account's event log. One account's position
//! is `<epoch>-<seq>` (SSE ids, WebSocket resume, ETags, snapshots); a stream over several
//! accounts carries all of them in one id, `<epoch>-<id>.<seq>.<id>.<seq>`, or, over many
//! accounts, one place in the whole log's order, `<epoch>-~<order>~<set>.<id>.<seq>` (only
//! the accounts not at that place named). All are written and read here, and nowhere else.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The history an event log's positions count in. It changes whenever the log starts afresh
/// (each start of the in-process ring), so a position from another history is recognised and
/// answered with a reset, never misread. It holds no `-` and no `.` (ids split on them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// `text` as an epoch, if it holds no `-` or `.` and is not empty.
    pub fn new(text: &str) -> Option<Self> {
        let valid = !text.is_empty() && !text.contains(['-', '.']);
        valid.then(|| Self(text.into()))
    }

    /// A new epoch from the current time: base-36 milliseconds, so later epochs sort later.
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self::from_millis(millis)
    }

    /// The epoch of a history that began at `millis` (epoch ms), written as [`Epoch::now`].
    pub fn from_millis(millis: u64) -> Self {
        Self(base36(millis).into())
    }

    /// An epoch read from a client's position, as it is: one that is not ours (even a
    /// malformed one) is answered with a reset, so reading must not reject it.
    fn read(text: &str) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl serde::Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One account's position: the `seq` of the last event seen, in `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: Epoch,
    pub seq: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

/// Why a text is not a stream position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("resume positions are \"<epoch>-<seq>\", as in event ids")]
pub struct BadPosition;

impl FromStr for Position {
    type Err = BadPosition;

    /// Reads `<epoch>-<seq>`; surrounding blanks are ignored.
    fn from_str(text: &str) -> Result<Self, BadPosition> {
        let (epoch, seq) = text.trim().rsplit_once('-').ok_or(BadPosition)?;
        Ok(Self {
            epoch: Epoch::read(epoch),
            seq: seq.parse().map_err(|_| BadPosition)?,
        })
    }
}

/// The positions of a stream over several accounts, in one epoch: `(public id, seq)` in the
/// stream's order. Public ids hold no `.` (aliases and derived ids are checked for that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positions {
    pub epoch: Epoch,
    pub accounts: Vec<(String, u64)>,
}

impl Positions {
    /// The position of `account`, if this id carries one (the last, if it names it twice).
    pub fn get(&self, account: &str) -> Option<Position> {
        self.accounts
            .iter()
            .rev()
            .find(|(id, _)| id == account)
            .map(|(_, seq)| Position {
                epoch: self.epoch.clone(),
                seq: *seq,
            })
    }
}

impl Positions {
    /// `<epoch>-<id>.<seq>...` of positions held elsewhere, without copying them into a
    /// `Positions` (a `/v1/events` subscriber writes one per event it sends).
    pub fn id_of(epoch: &Epoch, accounts: &[(String, u64)]) -> String {
        use fmt::Write;
        let mut id = format!("{epoch}-");
        for (i, (account, seq)) in accounts.iter().enumerate() {
            let dot = if i == 0 { "" } else { "." };
            let _ = write!(id, "{dot}{account}.{seq}");
        }
        id
    }
}

/// The position of a stream over many accounts read in the whole log's order:
/// `<epoch>-~<order>~<set>`, every account at that place, then `.<id>.<seq>` for each
/// account whose position is not (it got a snapshot or an event out of that order). `set`
/// is a digest of the stream's accounts: the place holds only for the same accounts. Its
/// length does not grow with the accounts, as [`Positions`]' does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedPositions {
    pub epoch: Epoch,
    /// The place in the log's order every account not named in `accounts` is at.
    pub order: u64,
    pub set: String,
    /// Named accounts; one whose seq could not be read is named at `u64::MAX` (a position
    /// from the future: it gets a reset, never a guess).
    pub accounts: Vec<(String, u64)>,
}

impl OrderedPositions {
    /// `<epoch>-~<order>~<set>.<id>.<seq>...` of positions held elsewhere.
    pub fn id_of<'a>(
        epoch: &Epoch,
        order: u64,
        set: &str,
        accounts: impl Iterator<Item = (&'a str, u64)>,
    ) -> String {
        use fmt::Write;
        let mut id = format!("{epoch}-~{order}~{set}");
        for (account, seq) in accounts {
            let _ = write!(id, ".{account}.{seq}");
        }
        id
    }

    /// The place in the log's order, as a position of that order.
    pub fn watermark(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.order,
        }
    }
}

impl FromStr for OrderedPositions {
    type Err = BadPosition;

    /// Reads `<epoch>-~<order>~<set>.<id>.<seq>...`; a pair whose seq is not a number
    /// names its account at `u64::MAX` (a reset for it, never a guess).
    fn from_str(text: &str) -> Result<Self, BadPosition> {
        let (epoch, rest) = text.trim().split_once('-').ok_or(BadPosition)?;
        let rest = rest.strip_prefix('~').ok_or(BadPosition)?;
        let mut parts = rest.split('.');
        let first = parts.next().ok_or(BadPosition)?;
        let (order, set) = first.split_once('~').ok_or(BadPosition)?;
        let order = order.parse().map_err(|_| BadPosition)?;
        let parts: Vec<&str> = parts.collect();
        let accounts = parts
            .chunks(2)
            .filter(|pair| !pair[0].is_empty())
            .map(|pair| {
                let seq = pair.get(1).and_then(|seq| seq.parse().ok());
                (pair[0].to_string(), seq.unwrap_or(u64::MAX))
            })
            .collect();
        Ok(Self {
            epoch: Epoch::read(epoch),
            order,
            set: set.to_string(),
            accounts,
        })
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::id_of(&self.epoch, &self.accounts))
    }
}

impl FromStr for Positions {
    type Err = BadPosition;

    /// Reads `<epoch>-<id>.<seq>.<id>.<seq>`; pairs that are not `<id>.<number>` are skipped,
    /// so one damaged pair costs only that account a reset.
    fn from_str(text: &str) -> Result<Self, BadPosition> {
        let (epoch, rest) = text.trim().split_once('-').ok_or(BadPosition)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let accounts = parts
            .chunks(2)
            .filter_map(|pair| match pair {
                [id, seq] if !id.is_empty() => Some((id.to_string(), seq.parse().ok()?)),
                _ => None,
            })
            .collect();
        Ok(Self {
            epoch: Epoch::read(epoch),
            accounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(text: &str) -> Option<(String, u64)> {
        let p: Position = text.parse().ok()?;
        Some((p.epoch.to_string(), p.seq))
    }

    #[test]
    fn one_account_positions_split_at_the_last_dash() {
        assert_eq!(position("k3x9-41"), Some(("k3x9".into(), 41)));
        assert_eq!(position(" k3x9-41 "), Some(("k3x9".into(), 41)));
        assert_eq!(
            position("a-b-7"),
            Some(("a-b".into(), 7)),
            "a foreign epoch, read as is"
        );
        assert_eq!(position("nodash"), None);
        assert_eq!(position("e-x"), None);
        let p = Position {
            epoch: Epoch::new("k3x9").unwrap(),
            seq: 41,
        };
        assert_eq!(p.to_string().parse::<Position>(), Ok(p));
    }

    #[test]
    fn several_account_positions_round_trip() {
        let ids: Positions = "mwts9jr5-individual.41.roth-ira.7".parse().unwrap();
        assert_eq!(ids.epoch.as_str(), "mwts9jr5");
        assert_eq!(ids.get("individual").map(|p| p.seq), Some(41));
        assert_eq!(ids.get("roth-ira").map(|p| p.seq), Some(7));
        assert_eq!(ids.accounts.len(), 2);
        assert_eq!(ids.to_string(), "mwts9jr5-individual.41.roth-ira.7");
        assert!("garbage".parse::<Positions>().is_err());
        let damaged: Positions = "e-a.x.b.2".parse().unwrap();
        assert_eq!(damaged.accounts, vec![("b".to_string(), 2)]);
    }

    #[test]
    fn ordered_positions_round_trip() {
        let epoch = Epoch::new("mwts9jr5").unwrap();
        let id = OrderedPositions::id_of(&epoch, 977, "0a1b", [("roth-ira", 7)].into_iter());
        assert_eq!(id, "mwts9jr5-~977~0a1b.roth-ira.7");
        let read: OrderedPositions = id.parse().unwrap();
        assert_eq!((read.order, read.set.as_str()), (977, "0a1b"));
        assert_eq!(read.accounts, vec![("roth-ira".to_string(), 7)]);
        assert_eq!(read.watermark().to_string(), "mwts9jr5-977");
        let bare: OrderedPositions = "e-~5~ff".parse().unwrap();
        assert!(bare.accounts.is_empty() && bare.order == 5);
        assert!("e-individual.4".parse::<OrderedPositions>().is_err());
        assert!("e-~x~ff".parse::<OrderedPositions>().is_err());
        assert!("e-~5".parse::<OrderedPositions>().is_err(), "no set");
        let damaged: OrderedPositions = "e-~9~ff.a.x.b.2.c".parse().unwrap();
        let named = [("a", u64::MAX), ("b", 2), ("c", u64::MAX)].map(|(a, s)| (a.to_string(), s));
        assert_eq!(
            damaged.accounts, named,
            "unreadable seqs reset their accounts"
        );
    }

    #[test]
    fn epochs_sort_by_time_and_hold_no_separator() {
        let epoch = Epoch::now();
        assert!(Epoch::new(epoch.as_str()).is_some());
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36), "10");
        assert!(Epoch::new("a.b").is_none() && Epoch::new("").is_none());
    }
}
