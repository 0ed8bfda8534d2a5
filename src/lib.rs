#![recursion_limit = "256"]
//! tastytrade-gateway: holds tastytrade's Account Streamer for each account and re-serves it,
//! consistently and masked, as REST snapshots, resumable Server-Sent Events and WebSocket.
//!
//! The modules in data-flow order (ARCHITECTURE.md has the picture). An upstream frame
//! becomes an SSE byte like this:
//! 1. [`upstream`]: `session` signs in, `rest` reads the baseline, `streamer` holds one
//!    socket per account; `wire` splits a frame into notifications. Each one is named as a
//!    [`model::EventKind`], checked against its typed model, and handed to the account's
//!    `sink::AccountSink` (upstream knows no account internals).
//! 2. [`account`]: `Account::ingest` masks it ([`mask`]), normalises it and appends it to
//!    the event log; a REST baseline is diffed against the log's snapshot into `resync`
//!    events. `registry` names accounts by public id.
//! 3. [`log`]: the `EventLog` trait. `ring` (the embedded default) applies the event to the
//!    state fold ([`model::state`]), gives it the next position ([`model::Position`]),
//!    serialises it once into shared SSE bytes (`Published`), keeps it in a bounded history
//!    and broadcasts it.
//! 4. [`api`]: `feed` turns a log subscription (start + live events) into a subscriber's
//!    items; `sse` and `ws` write them (the SSE frame is the shared bytes as they are);
//!    `parts`, `accounts`, `health`, `metrics` and the dashboard read snapshots and status.
//!
//! Around them: [`config`] (flags, environment, file), [`startup`] (builds and runs it all,
//! in steps; the tests start it on `127.0.0.1:0`), `shutdown` (the one stop signal), `serve`
//! (the accept loop), [`telemetry`] and [`metrics`]. The simulator is its own crate,
//! `tastytrade-sim`, re-exported as [`sim`] for demo mode.

pub mod account;
pub mod api;
pub mod cluster;
pub mod config;
pub mod log;
pub mod mask;
pub mod metrics;
pub mod model;
mod serve;
mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod upstream;

pub use tastytrade_sim as sim;
