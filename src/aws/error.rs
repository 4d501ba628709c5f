//! The one place where SDK errors become `CloudError`s: every adapter call ends in `.cloud(ACTION)`.
//!
//! The SDK already parses the service's error code and message into `ErrorMetadata` (for modeled and
//! unmodeled errors alike), so classification is `crate::cloud::error::classify` on that code. What is
//! left here is the errors that carry no code: connection failures, timeouts, unparseable responses
//! and bare HTTP statuses (moto answers unimplemented calls with an HTML 500).

use std::error::Error as StdError;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use crate::cloud::{CloudError, CloudResult, ErrorKind};

/// Converts an SDK error of any of the services into a `CloudError` for `action`.
///
/// `SdkError` and `HttpResponse` are the same smithy types in every service crate, so the EC2 crate's
/// re-exports name them for Auto Scaling, ELBv2 and CloudWatch too.
pub(crate) fn from_sdk<E>(action: &str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind_without_code = match &err {
        // A request we could not even build (missing region, invalid input): retrying cannot help.
        SdkError::ConstructionFailure(_) => ErrorKind::Invalid,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ErrorKind::Transient,
        SdkError::ServiceError(_) => kind_from_status(status),
        // SdkError is non_exhaustive; anything new is reported as is.
        _ => ErrorKind::Other,
    };
    let code = err.code().map(str::to_string);
    let message = match err.message() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => match status {
            Some(s) if code.is_none() => format!("HTTP {s}: {}", source_chain(&err)),
            _ => source_chain(&err),
        },
    };
    // No answer was ever had from AWS and the first connection could not be made: a configuration
    // problem (endpoint, network, region), said as one and not retried (`setup`).
    let connection_failed = matches!(&err, SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout());
    if let (true, Some((endpoint, attempts))) = (connection_failed, super::setup::unreachable()) {
        // One `Caused by:` line: the connector's chain is five short levels of the same failure.
        let setup = super::setup::unreachable_error(&endpoint, attempts).with_source(source_chain(&err));
        return CloudError::with_kind(action, ErrorKind::Setup, None, setup.problem.clone()).with_source(setup);
    }
    let mut cloud = match code.as_deref() {
        Some(c) => CloudError::service(action, Some(c), message),
        None => CloudError::with_kind(action, kind_without_code, None, message),
    };
    // An unknown code on a 5xx answer is still a server-side failure worth retrying.
    if cloud.kind == ErrorKind::Other && status.is_some_and(|s| s >= 500) {
        cloud.kind = ErrorKind::Transient;
    }
    cloud.with_source(err)
}

/// "service error: unhandled error: error parsing XML: no root element": the Display of the error and of
/// each source, which is what `DisplayErrorContext` prints before appending the error's `Debug`. That
/// `Debug` carries the raw HTTP response, body included (moto's HTML error page), so it stays in the
/// `source` we keep rather than in a message meant for one line of output.
fn source_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// What an HTTP status alone says when the body carried no error code. A bare 404 is deliberately not
/// `NotFound`: it means a wrong endpoint (AWS_ENDPOINT_URL with a path), not a missing resource, and
/// callers may read `NotFound` as "already gone" (e.g. during cleanup).
fn kind_from_status(status: Option<u16>) -> ErrorKind {
    match status {
        Some(403) => ErrorKind::Denied,
        Some(429) => ErrorKind::Transient,
        Some(s) if s >= 500 => ErrorKind::Transient,
        Some(400..=499) => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

/// `.cloud(ACTION)` on any SDK call result.
pub(crate) trait SdkResultExt<T> {
    fn cloud(self, action: &str) -> CloudResult<T>;
}

impl<T, E> SdkResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn cloud(self, action: &str) -> CloudResult<T> {
        self.map_err(|e| from_sdk(action, e))
    }
}

/// A response that lacks a field we cannot do without (AWS always sends it; an emulator might not).
pub(crate) fn missing(action: &str, field: &str) -> CloudError {
    CloudError::with_kind(action, ErrorKind::Other, None, format!("the response has no {field}"))
}

#[cfg(test)]
mod tests {
    use aws_sdk_autoscaling::operation::start_instance_refresh::StartInstanceRefreshError;
    use aws_sdk_ec2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ec2::operation::describe_images::DescribeImagesError;

    use super::*;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("valid status"), "".into())
    }

    fn ec2_error(status: u16, code: Option<&str>, message: Option<&str>) -> CloudError {
        let mut meta = ErrorMetadata::builder();
        if let Some(c) = code {
            meta = meta.code(c);
        }
        if let Some(m) = message {
            meta = meta.message(m);
        }
        let err = SdkError::service_error(DescribeImagesError::generic(meta.build()), response(status));
        from_sdk("ec2:DescribeImages", err)
    }

    #[test]
    fn service_codes_are_classified() {
        let e = ec2_error(400, Some("InvalidAMIID.NotFound"), Some("The image id '[ami-1]' does not exist"));
        assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::NotFound, Some("InvalidAMIID.NotFound")));
        assert_eq!(e.message, "The image id '[ami-1]' does not exist");
        assert_eq!(e.action, "ec2:DescribeImages");
        assert!(e.source.is_some());

        assert_eq!(ec2_error(403, Some("UnauthorizedOperation"), None).kind, ErrorKind::Denied);
        assert_eq!(ec2_error(412, Some("DryRunOperation"), Some("would have succeeded")).kind, ErrorKind::DryRunOk);
        assert_eq!(ec2_error(400, Some("RequestLimitExceeded"), None).kind, ErrorKind::Transient);
    }

    #[test]
    fn modeled_errors_keep_their_code() {
        let fault = StartInstanceRefreshError::generic(
            ErrorMetadata::builder().code("InstanceRefreshInProgress").message("busy").build(),
        );
        let e = from_sdk("autoscaling:StartInstanceRefresh", SdkError::service_error(fault, response(400)));
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.is("InstanceRefreshInProgress"));
    }

    #[test]
    fn bare_statuses_without_a_code() {
        // moto's HTML 500 for an unimplemented action.
        let e = ec2_error(500, None, None);
        assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::Transient, None));
        assert!(e.message.starts_with("HTTP 500: service error"), "{}", e.message);
        assert!(!e.message.contains("raw:"), "the raw response stays out of the message: {}", e.message);
        assert_eq!(ec2_error(403, None, None).kind, ErrorKind::Denied);
        assert_eq!(ec2_error(404, None, None).kind, ErrorKind::Invalid);
        assert_eq!(ec2_error(400, None, None).kind, ErrorKind::Invalid);
        // An unknown code on a 5xx is still worth another try.
        assert_eq!(ec2_error(503, Some("SomethingNew"), None).kind, ErrorKind::Transient);
    }

    #[test]
    fn transport_failures_are_transient() {
        let dispatch: SdkError<DescribeImagesError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let e = from_sdk("ec2:DescribeImages", dispatch);
        assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::Transient, None));
        assert!(e.message.contains("connection refused"), "{}", e.message);

        let timeout: SdkError<DescribeImagesError, HttpResponse> = SdkError::timeout_error("attempt timed out");
        assert_eq!(from_sdk("ec2:DescribeImages", timeout).kind, ErrorKind::Transient);

        let build: SdkError<DescribeImagesError, HttpResponse> = SdkError::construction_failure("no region");
        assert_eq!(from_sdk("ec2:DescribeImages", build).kind, ErrorKind::Invalid);
    }
}
