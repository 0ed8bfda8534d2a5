//! The masking policy, in one place. Every upstream object is masked once, before it enters
//! an account's state or event log, so snapshots, streams and replays are masked alike: any
//! string anywhere in the object (known field, nested, unknown) that holds an account number
//! has the number replaced by `***` + its last four characters.
//!
//! An account number is found two ways: every configured number, in any ASCII case; and
//! anything shaped like a tastytrade account number (a digit, two letters, five digits, as
//! `5WT31842`), so numbers of accounts the gateway does not serve are caught too. In event
//! data the shape's letters must be upper case (tastytrade writes them so; a lower-case
//! match would mangle hex ids such as `1ab23456-…`); in diagnostics (log lines, error texts,
//! status fields) any case is masked, since a false hit there costs nothing.
//!
//! Log lines pass through [`diagnostic`] on their way out (see `telemetry`), with every number
//! any gateway of this process was configured with ([`register`]).

use std::sync::{OnceLock, RwLock};

use serde_json::Value;

/// Masks account numbers: the ones it was built with, and the account-number shape.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// (full number in ASCII lower case, masked form), longest first so that a number
    /// containing another wins.
    numbers: Vec<(String, String)>,
    /// The first bytes of the numbers, both cases, as a bit set: a string with none of them
    /// cannot hold a configured number, and most keys and values are rejected by one pass.
    first_bytes: [u64; 4],
}

/// Which letters the account-number shape accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ShapeCase {
    /// Upper case only (event data).
    Upper,
    /// Any case (diagnostics).
    Any,
}

/// `***` followed by the last four characters of `number`.
pub fn mask_number(number: &str) -> String {
    let tail: String = number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***{tail}")
}

/// Length of the account-number shape: a digit, two letters, five digits.
const SHAPE_LEN: usize = 8;

/// Whether `bytes[at..]` starts with the account-number shape, standing alone (no letter or
/// digit right before or after it). Hand-written rather than a regex: it runs over every
/// string of every upstream event (criterion bench `ingest`), in one pass with no allocation.
fn shape_at(bytes: &[u8], at: usize, case: ShapeCase) -> bool {
    let Some(candidate) = bytes.get(at..at + SHAPE_LEN) else {
        return false;
    };
    let letter = |b: u8| match case {
        ShapeCase::Upper => b.is_ascii_uppercase(),
        ShapeCase::Any => b.is_ascii_alphabetic(),
    };
    let alone_before = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
    let alone_after = bytes
        .get(at + SHAPE_LEN)
        .is_none_or(|b| !b.is_ascii_alphanumeric());
    alone_before
        && alone_after
        && candidate[0].is_ascii_digit()
        && letter(candidate[1])
        && letter(candidate[2])
        && candidate[3..].iter().all(u8::is_ascii_digit)
}

impl Masker {
    pub fn new<'a>(numbers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut masker = Self::default();
        masker.add(numbers);
        masker
    }

    /// Adds more numbers to mask.
    pub fn add<'a>(&mut self, numbers: impl IntoIterator<Item = &'a str>) {
        self.numbers.extend(
            numbers
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(|n| (n.to_ascii_lowercase(), mask_number(n))),
        );
        self.numbers
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        self.numbers.dedup_by(|a, b| a.0 == b.0);
        self.first_bytes = [0; 4];
        let firsts: Vec<u8> = self
            .numbers
            .iter()
            .filter_map(|(full, _)| full.bytes().next())
            .collect();
        for byte in firsts {
            for b in [byte.to_ascii_lowercase(), byte.to_ascii_uppercase()] {
                self.first_bytes[usize::from(b / 64)] |= 1 << (b % 64);
            }
        }
    }

    fn may_hold_a_number(&self, text: &str) -> bool {
        text.bytes()
            .any(|b| self.first_bytes[usize::from(b / 64)] & (1 << (b % 64)) != 0)
    }

    /// The byte ranges of `text` that hold an account number, in order, not overlapping.
    fn ranges(&self, text: &str, case: ShapeCase) -> Vec<(usize, usize, String)> {
        let bytes = text.as_bytes();
        let mut found: Vec<(usize, usize, String)> = Vec::new();
        let overlaps = |found: &[(usize, usize, String)], start: usize, end: usize| {
            found.iter().any(|(s, e, _)| start < *e && *s < end)
        };
        if !self.numbers.is_empty() && self.may_hold_a_number(text) {
            // Compared in place, ASCII case-insensitively: no lower-cased copy of every
            // string that merely holds a number's first byte (this runs on every event).
            for (full, masked) in &self.numbers {
                let full = full.as_bytes();
                let mut start = 0;
                while start + full.len() <= bytes.len() {
                    let end = start + full.len();
                    if bytes[start..end].eq_ignore_ascii_case(full) && !overlaps(&found, start, end)
                    {
                        found.push((start, end, masked.clone()));
                        start = end;
                    } else {
                        start += 1;
                    }
                }
            }
        }
        if bytes.len() >= SHAPE_LEN {
            for at in 0..=bytes.len() - SHAPE_LEN {
                if shape_at(bytes, at, case) && !overlaps(&found, at, at + SHAPE_LEN) {
                    found.push((at, at + SHAPE_LEN, mask_number(&text[at..at + SHAPE_LEN])));
                }
            }
        }
        found.sort_by_key(|(start, _, _)| *start);
        found
    }

    fn mask_with(&self, text: &str, case: ShapeCase) -> Option<String> {
        let ranges = self.ranges(text, case);
        if ranges.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        for (start, end, masked) in ranges {
            out.push_str(&text[from..start]);
            out.push_str(&masked);
            from = end;
        }
        out.push_str(&text[from..]);
        Some(out)
    }

    /// Masks every string in `value`, in place, keys included.
    pub fn mask_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Some(masked) = self.mask_str(text) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_value(item)),
            Value::Object(map) => {
                let keys_hit = map.keys().any(|k| self.mask_str(k).is_some());
                if keys_hit {
                    let entries = std::mem::take(map);
                    for (key, mut item) in entries {
                        self.mask_value(&mut item);
                        map.insert(self.mask_str(&key).unwrap_or(key), item);
                    }
                } else {
                    map.values_mut().for_each(|item| self.mask_value(item));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// The masked form of `text` (event data) if it holds an account number, else `None`.
    pub fn mask_str(&self, text: &str) -> Option<String> {
        self.mask_with(text, ShapeCase::Upper)
    }

    /// `text` (event data) with every account number masked (a copy when nothing matches).
    pub fn mask_text(&self, text: &str) -> String {
        self.mask_str(text).unwrap_or_else(|| text.to_string())
    }

    /// `text` (a log line, an error or status text) with every account number masked,
    /// the shape in any case.
    pub fn mask_diagnostic(&self, text: &str) -> String {
        self.mask_with(text, ShapeCase::Any)
            .unwrap_or_else(|| text.to_string())
    }
}

fn process_masker() -> &'static RwLock<Masker> {
    static MASKER: OnceLock<RwLock<Masker>> = OnceLock::new();
    MASKER.get_or_init(Default::default)
}

/// Makes every later [`diagnostic`] mask `numbers` too (each gateway registers its accounts
/// at start).
pub fn register<'a>(numbers: impl IntoIterator<Item = &'a str>) {
    process_masker()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .add(numbers);
}

/// `text` with every account number this process knows of, and every account-number shape,
/// masked: for log lines and any other diagnostic text.
pub fn diagnostic(text: &str) -> String {
    process_masker()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .mask_diagnostic(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_string_that_holds_a_number() {
        let masker = Masker::new(["5WT31842", "5WU09822"]);
        let mut value = json!({
            "account-number": "5WT31842",
            "nested": {"note": "moved from 5WU09822 to 5WT31842", "list": ["5WT31842", 3]},
            "5WT31842": "as a key",
            "other": "5WX00000",
            "glued": "x5WT31842y",
            "lower": "5wt31842",
            "id": "1ab23456-0000",
        });
        masker.mask_value(&mut value);
        assert_eq!(
            value,
            json!({
                "account-number": "***1842",
                "nested": {"note": "moved from ***9822 to ***1842", "list": ["***1842", 3]},
                "***1842": "as a key",
                "other": "***0000",
                "glued": "x***1842y",
                "lower": "***1842",
                "id": "1ab23456-0000",
            })
        );
    }

    #[test]
    fn diagnostics_mask_any_case_and_unknown_numbers() {
        let masker = Masker::new(["ABCDE12"]);
        assert_eq!(
            masker.mask_diagnostic(
                r#"invalid type: string "5wt31842", expected abcde12 or 9ZZ00001"#
            ),
            r#"invalid type: string "***1842", expected ***DE12 or ***0001"#
        );
        assert_eq!(
            masker.mask_diagnostic("5WT318421 5W31842"),
            "5WT318421 5W31842"
        );
        assert_eq!(
            masker.mask_diagnostic("/accounts/5WT31842/x"),
            "/accounts/***1842/x"
        );
    }

    #[test]
    fn registered_numbers_reach_log_masking() {
        register(["QQ7777777"]);
        assert_eq!(
            diagnostic("account qq7777777 refused"),
            "account ***7777 refused"
        );
    }

    #[test]
    fn mask_number_keeps_last_four() {
        assert_eq!(mask_number("5WT31842"), "***1842");
        assert_eq!(mask_number("12"), "***12");
    }
}
