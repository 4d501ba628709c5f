//! Adapters from the AWS SDK for Rust to the domain traits in `crate::cloud`, one file per service.

/// Placeholder until the SDK adapters land.
pub async fn connect(_region: Option<String>) -> crate::cloud::Cloud {
    unimplemented!()
}
