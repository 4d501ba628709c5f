//! Adapters from the AWS SDK for Rust to the domain traits in `crate::cloud`, one file per service.

mod error;
