//! The top-level error: every way a command can fail, the exit code each maps to, and the one place
//! that renders the headline, the `Caused by:` chain, the state the world was left in and what to do next.

use std::fmt::Write as _;

use crate::cloud::{CloudError, ErrorKind, SetupError};
use crate::config::ConfigError;

/// Exit codes: part of the user contract (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const BUG: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const ROLLED_BACK: i32 = 3;
    pub const NEEDS_HUMAN: i32 = 4;
    pub const DENIED: i32 = 5;
    pub const BAKE_FAILED: i32 = 6;
    pub const AWS_ERROR: i32 = 7;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    /// AWS cannot be used as configured (region, credentials, an endpoint never reached): found before
    /// any work; the fix is the `Next:` line.
    #[error(transparent)]
    Setup(SetupError),
    /// Checked before anything was changed.
    #[error("{message}")]
    Precondition {
        message: String,
        #[source]
        source: Option<CloudError>,
    },
    #[error("permission denied for {}{}", source.action, region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default())]
    Denied {
        state: String,
        #[source]
        source: CloudError,
        /// The region of the environment the call was made in, when it is not simply the run's own
        /// (`in_region`): a role may be allowed in one region and fenced out of another.
        region: Option<String>,
    },
    #[error("bake of {ami_name} failed: {message}")]
    Bake {
        ami_name: String,
        message: String,
        state: String,
        #[source]
        source: Option<CloudError>,
    },
    /// A copy of the release to another region failed: it could not be made available where it is needed.
    #[error("{message}")]
    Copy { region: String, message: String, state: String },
    #[error("deploy of {release} to {env} failed and was rolled back: {reason}")]
    RolledBack { env: String, release: String, reason: String, state: String },
    #[error("deploy of {release} to {env} failed and the fleet is not verified healthy: {detail}")]
    NeedsHuman { env: String, release: String, detail: String, state: String },
    #[error("interrupted")]
    Interrupted { state: String },
    #[error("an AWS call failed")]
    Cloud {
        state: String,
        #[source]
        source: CloudError,
    },
    /// AWS accepted a change but did not show it taking effect in time (an image still listed after
    /// DeregisterImage, instances not shutting down after TerminateInstances).
    #[error("an AWS change did not take effect: {message}")]
    Unsettled { message: String, state: String },
    /// The work is done but an output file (`--dotenv`) could not be written at the end.
    #[error("{message}")]
    Output { message: String, state: String },
    #[error("internal error (a bug in bakeroll): {0}")]
    Bug(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed cloud call, given the state the world is in at that point.
    pub fn cloud(mut source: CloudError, state: impl Into<String>) -> Self {
        let state = state.into();
        if source.kind == ErrorKind::Setup {
            match source.source.take().map(|s| s.downcast::<SetupError>()) {
                Some(Ok(setup)) => return Self::Setup(*setup),
                Some(Err(other)) => source.source = Some(other),
                None => {}
            }
        }
        match source.kind {
            ErrorKind::Denied => Self::Denied { state, source, region: None },
            _ => Self::Cloud { state, source },
        }
    }

    /// A denial met in `region` of the environment (None: leaves the error as it is) says so.
    pub fn in_region(mut self, region: Option<&str>) -> Self {
        if let (Self::Denied { region: at, .. }, Some(r)) = (&mut self, region) {
            at.get_or_insert_with(|| r.to_string());
        }
        self
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::Precondition { message: message.into(), source: None }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Usage(_) | Self::Setup(_) | Self::Precondition { .. } => exit::USAGE,
            Self::Denied { .. } => exit::DENIED,
            Self::Bake { .. } | Self::Copy { .. } => exit::BAKE_FAILED,
            Self::RolledBack { .. } => exit::ROLLED_BACK,
            Self::NeedsHuman { .. } => exit::NEEDS_HUMAN,
            Self::Interrupted { .. } => exit::INTERRUPTED,
            Self::Cloud { .. } | Self::Unsettled { .. } | Self::Output { .. } => exit::AWS_ERROR,
            Self::Bug(_) => exit::BUG,
        }
    }

    /// The state of an error that carries one, to fill in or extend once cleanup has run.
    pub fn state_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::Denied { state, .. }
            | Self::Bake { state, .. }
            | Self::Copy { state, .. }
            | Self::RolledBack { state, .. }
            | Self::NeedsHuman { state, .. }
            | Self::Interrupted { state }
            | Self::Unsettled { state, .. }
            | Self::Output { state, .. }
            | Self::Cloud { state, .. } => Some(state),
            Self::Config(_) | Self::Usage(_) | Self::Setup(_) | Self::Precondition { .. } | Self::Bug(_) => None,
        }
    }

    /// What the world looks like after this error.
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Config(_) | Self::Usage(_) | Self::Setup(_) | Self::Precondition { .. } => Some("nothing was changed"),
            Self::Denied { state, .. }
            | Self::Bake { state, .. }
            | Self::Copy { state, .. }
            | Self::RolledBack { state, .. }
            | Self::NeedsHuman { state, .. }
            | Self::Interrupted { state }
            | Self::Unsettled { state, .. }
            | Self::Output { state, .. }
            | Self::Cloud { state, .. } => Some(state),
            Self::Bug(_) => None,
        }
    }
}

impl Error {
    /// A setup problem reported through another error (a bake or a precondition that wrapped the
    /// failed first call) is the setup problem: it happened before AWS ever answered, so nothing was
    /// changed, and the fix is the setup's.
    pub fn setup_first(self) -> Self {
        if matches!(self, Self::Setup(_)) {
            return self;
        }
        let mut source = std::error::Error::source(&self);
        while let Some(cause) = source {
            if let Some(setup) = cause.downcast_ref::<CloudError>().and_then(CloudError::setup) {
                let said = causes(setup).join(": ");
                let mut found = SetupError { problem: setup.problem.clone(), fix: setup.fix.clone(), source: None };
                if !said.is_empty() {
                    found = found.with_source(said);
                }
                return Self::Setup(found);
            }
            source = cause.source();
        }
        self
    }
}

impl Error {
    /// How much an operator must worry, most first: the fleet may be broken, the run was cut short, an
    /// AWS call failed, a permission is missing, a deploy was undone safely, the input was wrong.
    fn gravity(&self) -> u8 {
        match self {
            Self::NeedsHuman { .. } | Self::Bug(_) => 0,
            Self::Interrupted { .. } => 1,
            Self::Cloud { .. } | Self::Unsettled { .. } | Self::Output { .. } => 2,
            Self::Denied { .. } => 3,
            Self::Bake { .. } | Self::Copy { .. } => 4,
            Self::RolledBack { .. } => 5,
            Self::Config(_) | Self::Usage(_) | Self::Setup(_) | Self::Precondition { .. } => 6,
        }
    }
}

/// Several groups failed independently (`(group, error)`): the most serious error decides the exit code,
/// and the others join its state so none is hidden.
pub fn most_serious(mut errors: Vec<(String, Error)>) -> Result<()> {
    errors.sort_by_key(|(_, e)| e.gravity());
    let mut iter = errors.into_iter();
    let Some((_, mut first)) = iter.next() else { return Ok(()) };
    let others: Vec<String> = iter.map(|(g, e)| format!("{g}: {e} ({})", e.state().unwrap_or("state unknown"))).collect();
    if let (false, Some(state)) = (others.is_empty(), first.state_mut()) {
        state.push_str(&format!("; also {}", others.join("; ")));
    }
    Err(first)
}

/// The `Caused by:` chain of `err` (its sources, not its own message), each said once: SDK errors
/// repeat their whole chain in their own message, so a cause the line before already said is not news.
/// The same list for the text, the JSON summary and the report.
pub fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !last.contains(&text) {
            out.push(text.clone());
            last = text;
        }
        source = cause.source();
    }
    out
}

/// Renders an error for people: headline, cause chain, state, and (when known) the next command.
pub fn render(err: &Error, next: Option<&str>) -> String {
    let mut out = format!("error: {err}\n");
    for cause in causes(err) {
        let _ = writeln!(out, "  Caused by: {cause}");
    }
    if let Some(state) = err.state() {
        let _ = writeln!(out, "  State: {state}");
    }
    if let Some(next) = next {
        let _ = writeln!(out, "  Next: {next}");
    }
    out
}

/// What to do next when the command itself has no better advice: the generic fixes for missing
/// credentials and denied permissions, which look the same from every command.
pub fn default_next(err: &Error) -> Option<String> {
    match err {
        Error::Setup(setup) => return setup.fix.clone(),
        Error::Config(ConfigError::UnknownEnv { name, defined, chosen_by, .. }) => {
            let fix = match (defined.as_str(), *chosen_by) {
                ("none", _) => format!("add [environments.{name}] to the pipeline file"),
                (_, Some("BAKEROLL_ENV")) => format!("BAKEROLL_ENV is `{name}` where this runs: set it to one of {defined} (or unset it), or pass --env"),
                _ => format!("pass --env with one of {defined}"),
            };
            return Some(fix);
        }
        _ => {}
    }
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(c) = source {
        chain.push_str(&c.to_string());
        source = c.source();
    }
    if chain.contains("no credentials found") || chain.contains("credential provider") {
        return Some(
            "no AWS credentials were found: in GitLab CI set AWS_ROLE_ARN and write the id_token to AWS_WEB_IDENTITY_TOKEN_FILE (README \"GitLab CI: components\"); locally set AWS_PROFILE (run `aws sso login` for SSO profiles)".into(),
        );
    }
    match err {
        Error::Denied { source, region, .. } => {
            let place = region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default();
            let who = match assumed_role(&source.message) {
                Some(role) => format!("role {role} (the role bakeroll assumed; check its policies, and any that fence regions)"),
                None => "the role bakeroll runs as (AWS_ROLE_ARN in CI)".to_string(),
            };
            Some(format!("allow {}{place} for {who}, then run the same command again", source.action))
        }
        _ => None,
    }
}

/// The role of an assumed-role session AWS names in a denial ("User: arn:aws:sts::<account>:assumed-role/
/// <role>/<session> is not authorized to perform: …"), as the role's own ARN.
fn assumed_role(message: &str) -> Option<String> {
    let rest = &message[message.find("arn:aws:sts::")? + "arn:aws:sts::".len()..];
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let role = rest.split('/').next().filter(|r| !r.is_empty() && !r.contains(char::is_whitespace))?;
    (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())).then(|| format!("arn:aws:iam::{account}:role/{role}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_in_another_region_names_the_region_and_the_assumed_role() {
        let said = "User: arn:aws:sts::222222222222:assumed-role/bakeroll-deploy/bakeroll-1 is not authorized to perform: \
                    autoscaling:DescribeAutoScalingGroups with an explicit deny in an identity-based policy";
        let cause = CloudError::service("autoscaling:DescribeAutoScalingGroups", Some("AccessDenied"), said);
        let err = Error::cloud(cause, "nothing was changed").in_region(Some("ap-southeast-1"));
        assert_eq!(err.exit_code(), exit::DENIED);
        assert_eq!(err.to_string(), "permission denied for autoscaling:DescribeAutoScalingGroups in ap-southeast-1");
        assert_eq!(
            default_next(&err).as_deref(),
            Some(
                "allow autoscaling:DescribeAutoScalingGroups in ap-southeast-1 for role arn:aws:iam::222222222222:role/bakeroll-deploy \
                 (the role bakeroll assumed; check its policies, and any that fence regions), then run the same command again"
            )
        );
        // The caller's own identity (a user, or no ARN at all): the role it runs as, as before.
        let plain = Error::cloud(CloudError::service("ec2:CreateImage", Some("UnauthorizedOperation"), "not allowed"), "s").in_region(None);
        assert_eq!(plain.to_string(), "permission denied for ec2:CreateImage");
        assert!(default_next(&plain).unwrap().contains("for the role bakeroll runs as (AWS_ROLE_ARN in CI)"));
    }

    #[test]
    fn render_shows_chain_state_and_next() {
        let cause = CloudError::service("ec2:CreateImage", Some("UnauthorizedOperation"), "not allowed");
        let err = Error::cloud(cause, "build instance i-1 terminated; no image was created");
        assert_eq!(err.exit_code(), exit::DENIED);
        let text = render(&err, Some("ask for ec2:CreateImage"));
        assert_eq!(
            text,
            "error: permission denied for ec2:CreateImage\n  Caused by: ec2:CreateImage failed (UnauthorizedOperation): not allowed\n  State: build instance i-1 terminated; no image was created\n  Next: ask for ec2:CreateImage\n"
        );
    }

    #[test]
    fn render_drops_causes_the_previous_line_already_said() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Dispatch(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("no credentials found in chain")]
        struct Inner;
        // The SDK's message already holds the whole chain below it, as aws-smithy's errors do.
        let cause = CloudError::with_kind("ec2:DescribeImages", ErrorKind::Transient, None, "dispatch failure: no credentials found in chain")
            .with_source(Dispatch(Inner));
        let text = render(&Error::cloud(cause, "nothing was changed"), None);
        assert_eq!(text.matches("Caused by:").count(), 1, "{text}");
        assert!(text.contains("Caused by: ec2:DescribeImages failed"), "{text}");
        assert!(text.ends_with("  State: nothing was changed\n"), "{text}");
    }

    #[test]
    fn the_json_causes_drop_repeats_as_the_text_does() {
        // An invalid region: the SDK's message holds its whole chain, then each level again.
        #[derive(Debug, thiserror::Error)]
        #[error("failed to construct request")]
        struct Construct(#[source] Params);
        #[derive(Debug, thiserror::Error)]
        #[error("endpoint params could not be built")]
        struct Params(#[source] Field);
        #[derive(Debug, thiserror::Error)]
        #[error("invalid value for field: `region` - must be a valid host label")]
        struct Field;
        let whole = "failed to construct request: endpoint params could not be built: invalid value for field: `region` - must be a valid host label";
        let err = Error::cloud(CloudError::with_kind("autoscaling:DescribeAutoScalingGroups", ErrorKind::Invalid, None, whole).with_source(Construct(Params(Field))), "nothing was changed");
        assert_eq!(causes(&err), [format!("autoscaling:DescribeAutoScalingGroups failed: {whole}")]);
        assert_eq!(render(&err, None).matches("Caused by:").count(), 1);
    }

    #[test]
    fn a_setup_problem_is_exit_2_with_its_fix_however_it_was_wrapped() {
        let setup = || SetupError::new("cannot reach AWS at http://127.0.0.1:9", "is the server running?").with_source("connection refused".to_string());
        let cloud = || CloudError::with_kind("ec2:DescribeImages", ErrorKind::Setup, None, "cannot reach AWS").with_source(setup());
        let direct = Error::cloud(cloud(), "build instance terminated");
        assert!(matches!(direct, Error::Setup(_)));
        assert_eq!((direct.exit_code(), direct.state()), (exit::USAGE, Some("nothing was changed")));
        assert_eq!(default_next(&direct).as_deref(), Some("is the server running?"));
        // A bake error that kept the failed call as its source is the setup problem too.
        let wrapped = Error::Bake { ami_name: "a".into(), message: "lookup failed".into(), state: "s".into(), source: Some(cloud()) };
        let found = wrapped.setup_first();
        assert!(matches!(&found, Error::Setup(s) if s.problem.starts_with("cannot reach AWS")), "{found:?}");
        assert_eq!(causes(&found), ["connection refused"]);
        // Anything else is left as it is.
        assert!(matches!(Error::Usage("x".into()).setup_first(), Error::Usage(_)));
    }

    #[test]
    fn generic_next_steps_for_credentials_and_permissions() {
        let denied = Error::cloud(CloudError::service("ec2:CreateImage", Some("UnauthorizedOperation"), "no"), "nothing was changed");
        assert!(default_next(&denied).unwrap().starts_with("allow ec2:CreateImage for the role"));
        let creds = Error::cloud(
            CloudError::with_kind("ec2:DescribeImages", ErrorKind::Transient, None, "dispatch failure: no credentials found in chain"),
            "nothing was changed",
        );
        assert!(default_next(&creds).unwrap().contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
        assert_eq!(default_next(&Error::Usage("x".into())), None);
    }

    #[test]
    fn the_most_serious_error_wins_and_keeps_the_others_in_its_state() {
        let rolled = Error::RolledBack { env: "e".into(), release: "r".into(), reason: "x".into(), state: "a back".into() };
        let human = Error::NeedsHuman { env: "e".into(), release: "r".into(), detail: "x".into(), state: "b unknown".into() };
        let err = most_serious(vec![("a".into(), rolled), ("b".into(), human)]).unwrap_err();
        assert_eq!(err.exit_code(), exit::NEEDS_HUMAN);
        let state = err.state().unwrap();
        assert!(state.starts_with("b unknown; also a: ") && state.contains("a back"), "{state}");
        assert!(most_serious(vec![]).is_ok());
    }

    #[test]
    fn exit_codes_are_distinct_per_contract() {
        let codes = [
            Error::Usage("x".into()).exit_code(),
            Error::RolledBack { env: "e".into(), release: "r".into(), reason: "x".into(), state: "s".into() }.exit_code(),
            Error::NeedsHuman { env: "e".into(), release: "r".into(), detail: "x".into(), state: "s".into() }.exit_code(),
            Error::Interrupted { state: "s".into() }.exit_code(),
            Error::Bug("b".into()).exit_code(),
        ];
        assert_eq!(codes, [2, 3, 4, 130, 1]);
        let transient = CloudError::with_kind("ec2:DescribeImages", ErrorKind::Transient, None, "timeout");
        assert_eq!(Error::cloud(transient, "nothing").exit_code(), exit::AWS_ERROR);
    }
}
