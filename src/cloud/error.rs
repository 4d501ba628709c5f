//! `CloudError`: one error type for every cloud call, classified by AWS error code so the engine can
//! decide (permission denied → exit 5, conflict → precondition, transient → retry) without SDK types.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// UnauthorizedOperation / AccessDenied: the principal may not do this.
    Denied,
    /// The named resource does not exist.
    NotFound,
    /// The resource is busy (a refresh in progress, no active refresh to roll back, ...).
    Conflict,
    /// Throttling, timeouts, 5xx and connection errors: worth another try.
    Transient,
    /// The request was refused as invalid.
    Invalid,
    /// An EC2 DryRun request that would have succeeded.
    DryRunOk,
    /// AWS could not be used at all as configured (`SetupError` is the source): found at the first
    /// call, before AWS ever answered, so nothing was changed. Never retried.
    Setup,
    Other,
}

/// AWS cannot be used as configured: no region or a malformed one, no credentials the chain can load,
/// an endpoint that never answered. Found before anything was changed; `fix` says what to set.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
pub struct SetupError {
    pub problem: String,
    pub fix: Option<String>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SetupError {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { problem: problem.into(), fix: Some(fix.into()), source: None }
    }

    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub struct CloudError {
    /// IAM action name, e.g. `autoscaling:StartInstanceRefresh`.
    pub action: String,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type CloudResult<T> = Result<T, CloudError>;

impl CloudError {
    /// An error answered by the service, classified from its code.
    pub fn service(action: &str, code: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            action: action.to_string(),
            kind: code.map(classify).unwrap_or(ErrorKind::Other),
            code: code.map(str::to_string),
            message: message.into(),
            source: None,
        }
    }

    pub fn with_kind(action: &str, kind: ErrorKind, code: Option<&str>, message: impl Into<String>) -> Self {
        Self { action: action.to_string(), kind, code: code.map(str::to_string), message: message.into(), source: None }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The configuration problem behind a `Setup` error.
    pub fn setup(&self) -> Option<&SetupError> {
        self.source.as_deref().and_then(|s| s.downcast_ref::<SetupError>())
    }

    /// AWS refused the call for its rate (the account's token bucket is empty), not for what it asked.
    pub fn is_throttling(&self) -> bool {
        self.kind == ErrorKind::Transient && self.code.as_deref().is_some_and(is_throttling_code)
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.action)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Throttling codes of EC2 (`RequestLimitExceeded`), Auto Scaling and ELB (`Throttling`), and the
/// JSON/CBOR protocols (`ThrottlingException`).
fn is_throttling_code(code: &str) -> bool {
    matches!(code, "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" | "RequestThrottled")
}

/// Maps an AWS error code to what it means for us. Codes from the EC2, Auto Scaling and ELBv2 API references.
pub fn classify(code: &str) -> ErrorKind {
    match code {
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure"
        | "Blocked" | "OptInRequired" => ErrorKind::Denied,
        "DryRunOperation" => ErrorKind::DryRunOk,
        "InstanceRefreshInProgress" | "ActiveInstanceRefreshNotFound" | "IrreversibleInstanceRefresh"
        | "ResourceContention" | "ResourceInUse" | "ScalingActivityInProgress" | "IncorrectInstanceState"
        | "InvalidAMIName.Duplicate" | "InvalidSnapshot.InUse" => ErrorKind::Conflict,
        c if is_throttling_code(c) => ErrorKind::Transient,
        "RequestExpired"
        | "ServiceUnavailable" | "Unavailable" | "InternalError" | "InternalFailure" | "InsufficientInstanceCapacity" => {
            ErrorKind::Transient
        }
        "LoadBalancerNotFound" | "TargetGroupNotFound" => ErrorKind::NotFound,
        // A malformed id names nothing that exists: for us the same as not found.
        c if c.ends_with("NotFound") || c.ends_with(".Malformed") => ErrorKind::NotFound,
        "ValidationError" | "InvalidParameterValue" | "InvalidParameterCombination" | "MissingParameter"
        | "InvalidParameter" | "LimitExceeded" => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_meaning() {
        assert_eq!(classify("UnauthorizedOperation"), ErrorKind::Denied);
        assert_eq!(classify("AccessDenied"), ErrorKind::Denied);
        assert_eq!(classify("DryRunOperation"), ErrorKind::DryRunOk);
        assert_eq!(classify("InvalidAMIID.NotFound"), ErrorKind::NotFound);
        assert_eq!(classify("InvalidLaunchTemplateId.NotFound"), ErrorKind::NotFound);
        assert_eq!(classify("InvalidLaunchTemplateId.Malformed"), ErrorKind::NotFound);
        assert_eq!(classify("InstanceRefreshInProgress"), ErrorKind::Conflict);
        assert_eq!(classify("Throttling"), ErrorKind::Transient);
        assert!(CloudError::service("ec2:DescribeInstances", Some("RequestLimitExceeded"), "slow down").is_throttling());
        assert!(!CloudError::service("ec2:DescribeInstances", Some("InternalError"), "oops").is_throttling());
        assert_eq!(classify("ValidationError"), ErrorKind::Invalid);
        assert_eq!(classify("SomethingNew"), ErrorKind::Other);
    }

    #[test]
    fn display_names_action_and_code() {
        let e = CloudError::service("ec2:CreateImage", Some("InvalidAMIName.Duplicate"), "name in use");
        assert_eq!(e.to_string(), "ec2:CreateImage failed (InvalidAMIName.Duplicate): name in use");
        assert_eq!(e.kind, ErrorKind::Conflict);
    }
}
