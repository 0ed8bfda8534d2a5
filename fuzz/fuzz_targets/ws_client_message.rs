//! Fuzzes the WebSocket client-message parser (`api::ws::parse_client_message`). It may not
//! panic; the `resume` positions of a subscribe are read as event ids, as the session does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tastytrade_gateway::api::ws::{ClientMessage, parse_client_message};
use tastytrade_gateway::model::Position;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(ClientMessage::Subscribe {
            id,
            accounts,
            types,
            resume,
        }) => {
            let _ = (id, accounts, types);
            for position in resume.values() {
                let _ = position.parse::<Position>();
            }
        }
        Ok(ClientMessage::Unsubscribe { id } | ClientMessage::Ping { id }) => {
            let _ = id;
        }
        Ok(ClientMessage::Refresh { id, token }) => {
            let _ = (id, token);
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
