#![recursion_limit = "256"]
//! tastytrade-gateway: holds tastytrade's Account Streamer for each account and re-serves it,
//! consistently and masked, as REST snapshots and resumable Server-Sent Events.
//!
//! Layout, in data-flow order (see ARCHITECTURE.md):
//! - [`sim`]: the embedded tastytrade simulator (demo mode's and the tests' upstream).
//! - [`upstream`]: auth, REST baseline, frame parsing, one streamer task per account.
//! - [`account`]: per-account state + journal + broadcast bus; resyncs become events.
//! - [`mask`]: the masking policy, applied once before anything enters an account.
//! - [`api`]: the axum surface (REST, SSE, health, OpenAPI + Swagger UI).
//! - [`config`] and [`app`]: settings from flags/env, and wiring it all together.

pub mod account;
pub mod api;
pub mod config;
pub mod log;
pub mod mask;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod shutdown;
pub use tastytrade_sim as sim;
pub mod startup;
pub mod telemetry;
pub mod upstream;
