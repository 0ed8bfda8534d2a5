//! Fuzzes the two `Last-Event-ID` parsers: one account's `<epoch>-<seq>`
//! (`api::sse::parse_event_id`) and the combined `<epoch>-<id>.<seq>.<id>.<seq>`
//! (`api::feed::parse_combined_id`). Neither may panic, and what either reads must read the
//! same again once written back out in its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tastytrade_gateway::api::feed::parse_combined_id;
use tastytrade_gateway::api::sse::parse_event_id;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Some((epoch, seq)) = parse_event_id(text) {
        let again = format!("{epoch}-{seq}");
        assert_eq!(
            parse_event_id(&again),
            Some((epoch, seq)),
            "{text:?} -> {again:?}"
        );
    }

    let resume = parse_combined_id(text);
    if let Some((_, (epoch, _))) = resume.iter().next() {
        for (id, (their_epoch, _)) in &resume {
            assert_eq!(their_epoch, epoch, "one epoch per combined id");
            assert!(!id.is_empty() && !id.contains('.'), "id {id:?}");
        }
        let positions: Vec<String> = resume
            .iter()
            .map(|(id, (_, seq))| format!("{id}.{seq}"))
            .collect();
        let again = format!("{epoch}-{}", positions.join("."));
        assert_eq!(parse_combined_id(&again), resume, "{text:?} -> {again:?}");
    }
});
