//! Fuzzes the Account Streamer frame parser (`upstream::wire::parse`) with arbitrary text,
//! and every notification it yields through the typed views (`AccountEvent::parse`), as the
//! streamer task does. Neither may panic; a few cheap invariants are checked on the way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tastytrade_gateway::model::events::AccountEvent;
use tastytrade_gateway::upstream::wire::{self, Frame, FrameError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (frames, errors) = wire::parse(text);
    // Text that is not JSON is exactly one `NotJson` and nothing else.
    if errors.contains(&FrameError::NotJson) {
        assert!(frames.is_empty(), "frames from text that is not JSON");
        assert_eq!(errors, vec![FrameError::NotJson]);
    }
    for frame in &frames {
        if let Frame::Notification(n) = frame {
            // The event type goes into SSE `event:` lines and metric labels.
            assert!(!n.kind.is_empty() && n.kind.chars().count() <= 64);
            assert!(
                n.kind
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
                "unsafe event type {:?}",
                n.kind
            );
            let _ = AccountEvent::parse(&n.kind, &n.data);
        }
    }
});
