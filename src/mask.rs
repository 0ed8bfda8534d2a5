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

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// Masks account numbers: the ones it was built with, and the account-number shape.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// (full number in ASCII lower case, masked form); pattern `i` of `matcher` is entry `i`.
    numbers: Vec<(String, String)>,
    /// Every number at once, ASCII case-insensitively, the longest at a place winning (a
    /// number containing another): one pass over a string however many numbers there are.
    /// A pass per number was a third of the gateway's CPU at 5,000 accounts (bench
    /// `accounts-5k`, profiled with `perf record`; bench/RESULTS.md).
    matcher: Option<AhoCorasick>,
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
        // Building can fail only past the automaton's size limits (millions of numbers);
        // masking then still catches each number by its shape.
        self.matcher = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(self.numbers.iter().map(|(full, _)| full))
            .ok();
    }

    /// The byte ranges of `text` that hold an account number, in order, not overlapping.
    fn ranges(&self, text: &str, case: ShapeCase) -> Vec<(usize, usize, String)> {
        let bytes = text.as_bytes();
        let mut found: Vec<(usize, usize, String)> = Vec::new();
        let overlaps = |found: &[(usize, usize, String)], start: usize, end: usize| {
            found.iter().any(|(s, e, _)| start < *e && *s < end)
        };
        if let Some(matcher) = self.matcher.as_ref().filter(|_| !self.numbers.is_empty()) {
            for hit in matcher.find_iter(text) {
                let masked = &self.numbers[hit.pattern().as_usize()].1;
                found.push((hit.start(), hit.end(), masked.clone()));
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
    fn a_number_containing_another_is_masked_whole_among_thousands() {
        let many: Vec<String> = (0..5_000).map(|k| format!("9GA{k:05}")).collect();
        let mut masker = Masker::new(many.iter().map(String::as_str));
        masker.add(["9GA0000123"]);
        assert_eq!(
            masker.mask_text("to 9ga00001 and 9GA0000123, not 9GA05000"),
            "to ***0001 and ***0123, not ***5000"
        );
        assert_eq!(masker.mask_text("9GA04999x"), "***4999x");
    }

    #[test]
    fn mask_number_keeps_last_four() {
        assert_eq!(mask_number("5WT31842"), "***1842");
        assert_eq!(mask_number("12"), "***12");
    }
}
