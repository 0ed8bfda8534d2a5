//! The masking policy, in one place. Every upstream object is masked once, before it enters
//! an account's state or journal, so snapshots, streams and replays are masked alike: any
//! string anywhere in the object (known field, nested, unknown) that holds a configured
//! account number has the number replaced by `***` + its last four characters.

use serde_json::Value;

/// Masks the account numbers it was built with.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// (full number, masked form), longest first so that a number containing another wins.
    numbers: Vec<(String, String)>,
    /// The first bytes of the numbers, as a bit set: a string with none of them cannot hold
    /// a number, and most keys and values are rejected by this one pass over their bytes.
    first_bytes: [u64; 4],
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

impl Masker {
    pub fn new<'a>(numbers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut numbers: Vec<(String, String)> = numbers
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(|n| (n.to_string(), mask_number(n)))
            .collect();
        numbers.sort_by_key(|(full, _)| std::cmp::Reverse(full.len()));
        numbers.dedup();
        let mut first_bytes = [0u64; 4];
        for byte in numbers.iter().filter_map(|(full, _)| full.bytes().next()) {
            first_bytes[usize::from(byte / 64)] |= 1 << (byte % 64);
        }
        Self {
            numbers,
            first_bytes,
        }
    }

    fn may_hold_a_number(&self, text: &str) -> bool {
        text.bytes()
            .any(|b| self.first_bytes[usize::from(b / 64)] & (1 << (b % 64)) != 0)
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

    /// The masked form of `text` if it contains an account number, else `None`.
    pub fn mask_str(&self, text: &str) -> Option<String> {
        if !self.may_hold_a_number(text) {
            return None;
        }
        let mut out: Option<String> = None;
        for (full, masked) in &self.numbers {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(full.as_str()) {
                out = Some(current.replace(full.as_str(), masked));
            }
        }
        out
    }

    /// `text` with every account number masked (a copy when nothing matches).
    pub fn mask_text(&self, text: &str) -> String {
        self.mask_str(text).unwrap_or_else(|| text.to_string())
    }
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
        });
        masker.mask_value(&mut value);
        assert_eq!(
            value,
            json!({
                "account-number": "***1842",
                "nested": {"note": "moved from ***9822 to ***1842", "list": ["***1842", 3]},
                "***1842": "as a key",
                "other": "5WX00000",
            })
        );
    }

    #[test]
    fn mask_number_keeps_last_four() {
        assert_eq!(mask_number("5WT31842"), "***1842");
        assert_eq!(mask_number("12"), "***12");
    }
}
