//! Integration tests, built as one binary: the CLI against real git
//! repositories and a real HTTP server, dashboard rendering on a test
//! backend, and the dashboard driven through a pseudo-terminal.

mod backup;
mod cli;
mod common;
#[cfg(feature = "failpoints")]
mod crash;
mod e2e;
mod faults;
mod render;
