//! The pure decision core: domain model, the health gate and fleet checks, and the rollout state machine.
//! Nothing here imports an AWS SDK crate or sleeps; decisions are returned as data.

pub mod gate;
pub mod health;
pub mod lock;
pub mod model;
pub mod outcome;
pub mod rollout;
pub mod tags;
pub mod releases;
pub mod retention;
