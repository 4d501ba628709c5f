//! The pure decision core: domain model, the health gate and fleet checks, and the rollout state machine.
//! Nothing here imports an AWS SDK crate or sleeps; decisions are returned as data.

pub mod adopt;
pub mod gate;
pub mod health;
pub mod launch_data;
pub mod lock;
pub mod metric_gate;
pub mod metric_plan;
pub mod metric_verdict;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod promotion;
pub mod rollout;
pub mod tags;
pub mod release;
pub mod releases;
pub mod retention;
pub mod settings;
pub mod shapes;
pub mod targets;
