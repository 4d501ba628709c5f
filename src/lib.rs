//! bakeroll: bake an AMI, roll an Auto Scaling group onto it with an instance refresh gated on target
//! health, and roll back automatically when the new instances are unhealthy.
//!
//! Layout: `core` is the pure decision core (no SDK, no sleeping); `cloud` holds the domain traits;
//! `aws` adapts the SDK to them and `fake` is the in-memory cloud used by tests; `engine` drives the
//! core against a `Cloud`; `cli` owns one module per subcommand; `display` owns all terminal output.

// Errors carry the ids and the state an operator needs; they are built once per failed command, so
// their size (clippy's result_large_err) costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod aws;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod core;
pub mod display;
pub mod engine;
pub mod events;
pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod iam;
pub mod logging;
pub mod summary;
