//! The pure decision core: domain model, health verdicts and the rollout state machine.
//! Nothing here imports an AWS SDK crate or sleeps; decisions are returned as data.

pub mod health;
pub mod lock;
pub mod model;
pub mod rollout;
pub mod tags;
pub mod releases;
pub mod retention;
