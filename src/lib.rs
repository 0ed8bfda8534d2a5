#![recursion_limit = "256"]
//! tastytrade-gateway: holds tastytrade's Account Streamer for each account and re-serves it,
//! consistently and masked, as REST snapshots, resumable SSE and WebSocket.
//!
//! Layout, in data-flow order (see ARCHITECTURE.md):
//! - [`sim`]: the embedded tastytrade simulator (demo mode's and the tests' upstream).

pub mod sim;
