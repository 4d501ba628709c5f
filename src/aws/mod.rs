//! Adapters from the AWS SDK for Rust to the domain traits in `crate::cloud`, one file per service,
//! and `connect`, which builds the one shared SDK configuration (region, retries, timeouts).

use std::time::Duration;

use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};

mod ec2;
mod error;

pub use ec2::Ec2;

/// Seconds since the Unix epoch (the smithy `DateTime` is the same type in all three service crates).
pub(crate) fn epoch_secs(t: Option<&DateTime>) -> Option<i64> {
    t.map(DateTime::secs)
}

/// ISO-8601 (`2026-11-26T08:00:00Z`), the form EC2 uses for image creation dates.
pub(crate) fn iso8601(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// `Duration` → the whole seconds AWS wants as i32, saturating instead of wrapping.
pub(crate) fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_conversions() {
        let t = DateTime::from_secs(1_764_144_000);
        assert_eq!(epoch_secs(Some(&t)), Some(1_764_144_000));
        assert_eq!(iso8601(Some(&t)).as_deref(), Some("2025-11-26T08:00:00Z"));
        assert_eq!(iso8601(None), None);
        assert_eq!(secs_i32(Duration::from_secs(300)), 300);
        assert_eq!(secs_i32(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
