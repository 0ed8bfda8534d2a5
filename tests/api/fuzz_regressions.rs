//! Inputs that the fuzz targets in `fuzz/` (upstream_frame, last_event_id, ws_client_message)
//! exercise at their edges, kept as plain tests so `cargo test` checks them without a fuzzer:
//! overflowing numbers, empty and lone-separator ids, nesting far past serde_json's recursion
//! limit, and the quirks each parser has (each assertion states what the parser does today).

use serde_json::{Value, json};
use std::collections::HashMap;

use tastytrade_gateway::api::feed::resume_of;
use tastytrade_gateway::api::ws::{ClientMessage, parse_client_message};
use tastytrade_gateway::model::Position;
use tastytrade_gateway::upstream::wire::{self, Frame, FrameError, Notification, Reply};

const DEEP: usize = 10_000;

/// One account's `Last-Event-ID` as `(epoch, seq)`, read by `model::Position`.
fn parse_event_id(text: &str) -> Option<(String, u64)> {
    let position: Position = text.parse().ok()?;
    Some((position.epoch.to_string(), position.seq))
}

/// A `/v1/events` id as `id -> (epoch, seq)`, read as the SSE route reads it.
fn parse_combined_id(text: &str) -> HashMap<String, (String, u64)> {
    resume_of(text)
        .0
        .into_iter()
        .map(|(id, p)| (id, (p.epoch.to_string(), p.seq)))
        .collect()
}

fn only_notification(text: &str) -> Notification {
    match wire::parse(text) {
        (frames, errors) if errors.is_empty() && frames.len() == 1 => match &frames[0] {
            Frame::Notification(n) => n.clone(),
            other => panic!("not a notification: {other:?}"),
        },
        other => panic!("not exactly one frame: {other:?}"),
    }
}

fn only_reply(text: &str) -> Reply {
    match wire::parse(text) {
        (frames, errors) if errors.is_empty() && frames.len() == 1 => match &frames[0] {
            Frame::Reply(r) => r.clone(),
            other => panic!("not a reply: {other:?}"),
        },
        other => panic!("not exactly one frame: {other:?}"),
    }
}

// ---- upstream frames (`upstream::wire::parse`) ----

#[test]
fn frame_nested_ten_thousand_deep_is_not_json_and_does_not_overflow_the_stack() {
    let not_json = (Vec::new(), vec![FrameError::NotJson]);
    assert_eq!(wire::parse(&"[".repeat(DEEP)), not_json);
    let closed = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
    assert_eq!(wire::parse(&closed), not_json);
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEEP), "}".repeat(DEEP));
    assert_eq!(wire::parse(&objects), not_json);
    let in_data = format!(
        r#"{{"type":"Order","data":{}{}}}"#,
        "[".repeat(DEEP),
        "]".repeat(DEEP)
    );
    assert_eq!(wire::parse(&in_data), not_json);
    let in_batch = format!(
        r#"{{"results":[{{"type":"Order","data":{{}}}},{}{}]}}"#,
        "[".repeat(DEEP),
        "]".repeat(DEEP)
    );
    assert_eq!(wire::parse(&in_batch), not_json);
}

#[test]
fn frame_nested_within_the_limit_is_kept() {
    let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let n = only_notification(&format!(r#"{{"type":"Order","data":{nested}}}"#));
    assert_eq!(n.data, serde_json::from_str::<Value>(&nested).unwrap());
}

#[test]
fn frame_empty_blank_and_out_of_range_texts_are_not_json() {
    for text in ["", " ", "\n\t", "1e999", r#"{"type":"Order","data":1e999}"#] {
        assert_eq!(
            wire::parse(text),
            (Vec::new(), vec![FrameError::NotJson]),
            "{text:?}"
        );
    }
    // A lone surrogate escape is rejected by serde_json, so by the parser.
    assert_eq!(
        wire::parse(r#"{"type":"\ud800","data":1}"#).1,
        vec![FrameError::NotJson]
    );
}

#[test]
fn frame_huge_batch_of_junk_reports_every_element() {
    let text = format!("{{\"results\":[{}1]}}", "1,".repeat(DEEP - 1));
    let (frames, errors) = wire::parse(&text);
    assert!(frames.is_empty());
    assert_eq!(errors.len(), DEEP);
    assert!(errors.iter().all(|e| *e == FrameError::NotObject));
}

#[test]
fn frame_results_is_unwrapped_only_when_it_is_a_batch() {
    // Not an array: kept as a field of the reply.
    let reply = only_reply(r#"{"results":{"a":1},"status":"ok","action":"connect"}"#);
    assert!(reply.ok);
    assert_eq!(reply.action, "connect");
    // A `type` beside `results`: one notification, the batch inside it is not unwrapped.
    let n = only_notification(r#"{"results":[{"type":"Order","data":{}}],"type":"X","data":1}"#);
    assert_eq!((n.kind.as_str(), n.data), ("X", json!(1)));
}

#[test]
fn frame_event_types_are_cut_to_64_safe_characters() {
    let long = only_notification(&format!(r#"{{"type":"{}","data":{{}}}}"#, "A".repeat(100)));
    assert_eq!(long.kind, "A".repeat(64));
    let empty = only_notification(r#"{"type":"","data":{}}"#);
    assert_eq!(empty.kind, "Unknown");
    let unicode = only_notification(r#"{"type":"Ördér\r\nevent: x","data":{}}"#);
    assert_eq!(unicode.kind, "_rd_r__event__x");
    // Later duplicate keys win (serde_json's map).
    let duplicate = only_notification(r#"{"type":"A","type":"B","data":1}"#);
    assert_eq!(duplicate.kind, "B");
}

#[test]
fn frame_timestamps_at_the_edges() {
    let at = |ts: &str| {
        only_notification(&format!(
            r#"{{"type":"Order","data":{{}},"timestamp":{ts}}}"#
        ))
        .timestamp
    };
    assert_eq!(at(r#""-9223372036854775808""#), Some(i64::MIN));
    assert_eq!(at("9223372036854775807"), Some(i64::MAX));
    assert_eq!(
        at(r#""9999-12-31T23:59:59.999Z""#),
        Some(253_402_300_799_999)
    );
    assert_eq!(at(r#""not a time""#), None);
    assert_eq!(at("null"), None);
    // Out of i64 range as a float: saturates (`as i64`), no panic.
    assert_eq!(at("1e300"), Some(i64::MAX));
    assert_eq!(at("-1e300"), Some(i64::MIN));
    assert_eq!(at("18446744073709551615"), Some(i64::MAX));
}

#[test]
fn frame_request_ids_out_of_range_are_dropped() {
    let id = |rid: &str| {
        only_reply(&format!(
            r#"{{"status":"ok","action":"heartbeat","request-id":{rid}}}"#
        ))
        .request_id
    };
    assert_eq!(id("18446744073709551615"), Some(u64::MAX));
    assert_eq!(id(r#"" 18446744073709551615 ""#), Some(u64::MAX));
    assert_eq!(id("18446744073709551616"), None);
    assert_eq!(id(r#""18446744073709551616""#), None);
    assert_eq!(id("-1"), None);
    assert_eq!(id("1.5"), None);
    assert_eq!(id(r#""""#), None);
}

// ---- Last-Event-ID (`model::Position`, `api::feed::resume_of` over `model::Positions`) ----

#[test]
fn event_id_seq_past_u64_is_rejected() {
    assert_eq!(parse_event_id("e-99999999999999999999"), None);
    assert_eq!(parse_event_id("e-18446744073709551616"), None);
    assert_eq!(
        parse_event_id("e-18446744073709551615"),
        Some(("e".to_string(), u64::MAX))
    );
}

#[test]
fn event_id_empty_and_lone_dashes() {
    for text in [
        "", " ", "-", "--", "e-", "e- ", "nodash", "e-x", "e- 5", "e-1_0", "e-٣",
    ] {
        assert_eq!(parse_event_id(text), None, "{text:?}");
    }
    // The epoch may be empty: it then matches no account's epoch (a fresh snapshot).
    assert_eq!(parse_event_id("-0"), Some(("".to_string(), 0)));
    // The last `-` splits; a `+` sign is read by `u64::from_str`; outer whitespace is trimmed.
    assert_eq!(parse_event_id("e--1"), Some(("e-".to_string(), 1)));
    assert_eq!(parse_event_id("e-+5"), Some(("e".to_string(), 5)));
    assert_eq!(parse_event_id(" \t e-007 \n"), Some(("e".to_string(), 7)));
}

#[test]
fn combined_id_degenerate_inputs_resume_nothing() {
    for text in [
        "",
        "-",
        "e-",
        "e-.",
        "e-.1",
        "e-a",
        "e-a.",
        "e-a.x",
        "e-a.99999999999999999999",
        "nodash",
    ] {
        assert!(parse_combined_id(text).is_empty(), "{text:?}");
    }
}

#[test]
fn combined_id_quirks() {
    let one = |text: &str| {
        let resume = parse_combined_id(text);
        let mut pairs: Vec<(String, String, u64)> = resume
            .into_iter()
            .map(|(id, (epoch, seq))| (id, epoch, seq))
            .collect();
        pairs.sort();
        pairs
    };
    let e = |id: &str, seq: u64| (id.to_string(), "e".to_string(), seq);
    // A repeated id: the last position wins.
    assert_eq!(one("e-a.1.a.2"), vec![e("a", 2)]);
    // The epoch ends at the first `-`; ids may hold `-`.
    assert_eq!(one("e-roth-ira.7"), vec![e("roth-ira", 7)]);
    // A dangling id and an empty id are skipped, their neighbours kept.
    assert_eq!(one("e-a.1..2.b.3.c"), vec![e("a", 1), e("b", 3)]);
    assert_eq!(one("e-a.+1"), vec![e("a", 1)]);
    assert_eq!(one("e-a.18446744073709551615"), vec![e("a", u64::MAX)]);
}

#[test]
fn combined_id_with_ten_thousand_accounts() {
    let rest: Vec<String> = (0..DEEP).map(|i| format!("a{i}.{i}")).collect();
    let resume = parse_combined_id(&format!("e-{}", rest.join(".")));
    assert_eq!(resume.len(), DEEP);
    assert_eq!(resume.get("a9999"), Some(&("e".to_string(), 9_999)));
}

// ---- WebSocket client messages (`api::ws::parse_client_message`) ----

#[test]
fn ws_nested_ten_thousand_deep_is_an_error_not_a_stack_overflow() {
    // Nested where a value goes: serde_json's recursion limit stops it.
    for text in [
        format!(r#"{{"op":"ping","id":{}}}"#, "[".repeat(DEEP)),
        format!(
            r#"{{"op":"ping","id":{}{}}}"#,
            "[".repeat(DEEP),
            "]".repeat(DEEP)
        ),
        format!(r#"{{"op":"subscribe","id":{}1"#, r#"{"a":"#.repeat(DEEP)),
        format!(r#"{{"op":"subscribe","resume":{}"#, r#"{"a":"#.repeat(DEEP)),
    ] {
        let error = parse_client_message(&text).expect_err("deep nesting");
        assert!(
            error.to_string().contains("recursion limit exceeded"),
            "{error}"
        );
    }
    // Nested at the top: the first element must be the `op` name, so it fails at once.
    for text in [
        "[".repeat(DEEP),
        format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP)),
    ] {
        let error = parse_client_message(&text).expect_err("deep nesting");
        assert!(
            error.to_string().contains("expected variant identifier"),
            "{error}"
        );
    }
}

#[test]
fn ws_array_form_and_duplicate_op() {
    // serde's internally tagged enums also take a sequence: the tag first, then the fields.
    assert!(matches!(
        parse_client_message(r#"["ping",3]"#),
        Ok(ClientMessage::Ping { id: Some(Value::Number(n)) }) if n.as_u64() == Some(3)
    ));
    let error = parse_client_message(r#"{"op":"ping","op":"subscribe"}"#).expect_err("two ops");
    assert!(
        error.to_string().contains("duplicate field `op`"),
        "{error}"
    );
}

#[test]
fn ws_minimal_and_null_fields() {
    assert!(matches!(
        parse_client_message(r#"{"op":"ping"}"#),
        Ok(ClientMessage::Ping { id: None })
    ));
    assert!(matches!(
        parse_client_message(r#"{"op":"unsubscribe","id":null}"#),
        Ok(ClientMessage::Unsubscribe { id: None })
    ));
    match parse_client_message(r#"{"op":"subscribe"}"#) {
        Ok(ClientMessage::Subscribe {
            id: None,
            accounts,
            types: None,
            resume,
        }) => assert!(accounts.is_empty() && resume.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ws_malformed_messages_are_errors() {
    for text in [
        "",
        " ",
        "null",
        "{}",
        "[]",
        r#"{"id":1}"#,
        r#"{"op":"PING"}"#,
        r#"{"op":"pong"}"#,
        r#"{"op":"ping","extra":1}"#,
        r#"{"op":"subscribe","accounts":"main"}"#,
        r#"{"op":"subscribe","resume":{"main":5}}"#,
        r#"{"op":"subscribe","id":1e400}"#,
        r#"{"op":"ping","id":"\ud800"}"#,
        r#"{"op":"ping"} trailing"#,
    ] {
        assert!(parse_client_message(text).is_err(), "{text:?}");
    }
}

#[test]
fn ws_resume_past_u64_parses_as_text_and_is_then_refused() {
    match parse_client_message(r#"{"op":"subscribe","resume":{"main":"e-99999999999999999999"}}"#) {
        Ok(ClientMessage::Subscribe { resume, .. }) => {
            assert_eq!(resume.len(), 1);
            assert_eq!(parse_event_id(&resume["main"]), None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ws_ten_thousand_accounts_are_read() {
    let accounts: Vec<String> = (0..DEEP).map(|i| format!("a{i}")).collect();
    let text = json!({"op": "subscribe", "id": 1, "accounts": accounts}).to_string();
    match parse_client_message(&text) {
        Ok(ClientMessage::Subscribe { accounts, id, .. }) => {
            assert_eq!(accounts.len(), DEEP);
            assert_eq!(id, Some(json!(1)));
        }
        other => panic!("{other:?}"),
    }
}
