//! Fuzzes the two stream-position parsers (`model::position`): one account's `<epoch>-<seq>`
//! (`Position`) and the combined `<epoch>-<id>.<seq>.<id>.<seq>` (`Positions`). Neither may
//! panic, and what either reads must read the same again once written back out by `Display`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tastytrade_gateway::model::{Position, Positions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(position) = text.parse::<Position>() {
        let again = position.to_string();
        assert_eq!(again.parse::<Position>(), Ok(position), "{text:?} -> {again:?}");
    }

    if let Ok(ids) = text.parse::<Positions>() {
        for (id, _) in &ids.accounts {
            assert!(!id.is_empty() && !id.contains('.'), "id {id:?}");
        }
        let again = ids.to_string();
        assert_eq!(again.parse::<Positions>(), Ok(ids), "{text:?} -> {again:?}");
    }
});
