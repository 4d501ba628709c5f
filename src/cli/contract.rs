//! The exit codes and the environment variables bakeroll reads, written once for `--help` (after the
//! options) and `bakeroll man` (EXIT STATUS and ENVIRONMENT sections). README "Exit codes" says the same.

use crate::error::exit;

/// Every exit code, with what it means for the world.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (exit::OK, "done; for deploys: every group deployed and verified healthy on the new release"),
    (exit::BUG, "a bug in bakeroll (never used for expected failures)"),
    (exit::USAGE, "bad config, bad arguments, a failed precondition (a release the promotion guard refuses, or a revoked one, among them), or AWS not usable as configured (no region, no credentials, an endpoint that never answered): nothing was changed"),
    (exit::ROLLED_BACK, "the deploy failed and was rolled back; the fleet is verified healthy on the previous release"),
    (exit::NEEDS_HUMAN, "the deploy failed and the rollback failed, or the fleet could not be verified: a human must look (the message says where things stand)"),
    (exit::DENIED, "permission denied (the message names the IAM action)"),
    (exit::BAKE_FAILED, "the bake failed; its build resources were cleaned up and nothing was deployed"),
    (exit::AWS_ERROR, "an AWS call failed for another reason, or an output file could not be written once the work was done"),
    (exit::INTERRUPTED, "interrupted (Ctrl-C, SIGTERM), reported once things are safe: build instance terminated, a refresh in flight rolled back and verified"),
];

/// Every variable bakeroll itself reads, then the AWS SDK's it relies on.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("BAKEROLL_ENV", "the environment when --env is not given"),
    ("BAKEROLL_HTTP_ATTEMPT_TIMEOUT", "seconds one HTTP attempt may take (default 30, at most 3600)"),
    ("CI", "set: plain lines in GitLab collapsible sections instead of progress bars"),
    ("CI_COMMIT_SHA", "the commit when --commit is not given (else `git rev-parse HEAD`)"),
    ("CI_JOB_ID", "recorded in the deploy lock and each release's launch-template version"),
    ("CI_PIPELINE_ID, CI_PIPELINE_URL, CI_JOB_URL, CI_PROJECT_PATH, CI_COMMIT_REF_NAME", "tagged on baked images and snapshots (with CI_JOB_ID) as provenance"),
    ("RUST_LOG", "filters the AWS SDK's own logs (instead of -v)"),
    ("AWS_REGION, AWS_DEFAULT_REGION", "the region when the pipeline file sets no `region`"),
    ("AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN", "credentials, as the AWS SDK reads them (also SSO and credential_process profiles)"),
    ("AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_SESSION_NAME", "web identity (GitLab CI OIDC) credentials"),
    ("AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>", "another endpoint for AWS (a local AWS)"),
    ("AWS_MAX_ATTEMPTS, AWS_RETRY_MODE", "replace bakeroll's retry settings (8 attempts, standard mode)"),
];

/// Appended to `bakeroll --help`.
pub fn after_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text.push_str("\nEnvironment:\n");
    for (vars, meaning) in ENVIRONMENT {
        text.push_str(&format!("  {vars}\n          {meaning}\n"));
    }
    text.trim_end().to_string()
}

/// The man page's EXIT STATUS and ENVIRONMENT sections, as roff.
pub fn man_sections() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_CODES {
        roff.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", escape(meaning)));
    }
    roff.push_str(".SH ENVIRONMENT\n");
    for (vars, meaning) in ENVIRONMENT {
        roff.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", escape(vars), escape(meaning)));
    }
    roff
}

/// Text safe inside a roff paragraph: backslashes doubled, no line starting with a control character.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\\\").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_is_explained_once() {
        let codes: Vec<i32> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 130]);
        let help = after_help();
        assert!(help.contains("  130  interrupted") && help.contains("BAKEROLL_ENV"), "{help}");
        assert!(man_sections().contains(".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\n"));
    }
}
