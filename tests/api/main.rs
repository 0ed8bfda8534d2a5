//! The black-box tests, as one test binary (one link, one process): each module below is an
//! area, and `helpers` is the one set of helpers they share (the demo accounts and
//! timeouts; starting the simulator, the gateway or its binary on 127.0.0.1:0; SSE and
//! WebSocket clients; the leak scan).
//!
//! Tests run in parallel threads of this one process, so none may take process-wide state
//! for its own: the Prometheus recorder and the log masker are shared by every in-process
//! gateway (a test that needs a fresh recorder runs the binary), no test installs a global
//! tracing subscriber (the leak scan captures the logs of its own runtime's threads), and
//! the tests that measure the process's memory run their gateway alone
//! (`TestGateway::start_alone`, `helpers::process`). Two tests are binaries of their own:
//! `tests/hardening_memory.rs` (the process's resident memory must be its alone) and
//! `tests/otlp.rs` (built with `--features otlp` only).

mod helpers;

// The simulator on its own: tastytrade's REST API, Account Streamer and control API.
mod sim_control;
mod sim_rest;
mod sim_streamer;

// The upstream side of the gateway against the simulator.
mod upstream_faults;
mod upstream_pitfalls;
mod upstream_recovery;
mod upstream_soak;
mod upstream_tokens;
mod user_streams;

// Parsers, without sockets.
mod fuzz_regressions;
mod parser_props;

// What consumers see: REST, SSE, WebSocket.
mod gateway_thin_path;
mod streams_lagging;
mod streams_slow;
mod streams_sse;
mod streams_storm;
mod streams_ws;
mod surface;

// Access, hardening and operations.
mod auth_matrix;
mod hardening;
mod jwt_streams;
mod jwt_tokens;
mod leak_scan;
mod operations;

// The binary and the browser.
mod config_file;
mod dashboard_browser;
mod jwt_browser;
mod shutdown;
