//! The engines of `rewind` as a library: configuration, versions, health,
//! rollback and coordination, plus the dashboard and the demo that drive
//! them. The binary in `main.rs` and the tests use this crate.

pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod logging;
