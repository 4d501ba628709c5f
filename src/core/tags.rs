//! Tag keys bakeroll writes and reads back: the engine tags what it creates with them, and `gc`,
//! `prune`, `history` and the IAM policy's conditions find things by them. Defined once, here, in the
//! lowest layer both the writers and the readers can see.

/// The commit an image, snapshot or build instance belongs to.
pub const COMMIT: &str = "bakeroll:commit";
/// The pipeline (the pipeline file's `name`, else its stem): what scopes `prune`, `gc` and the IAM policy.
pub const PIPELINE: &str = "bakeroll:pipeline";
/// `build-instance` on instances bakeroll launches to bake from.
pub const ROLE: &str = "bakeroll:role";
pub const ROLE_BUILD: &str = "build-instance";
pub const CREATED_BY: &str = "bakeroll:created-by";
/// The base image a bake started from; on a copy of a release in another region, the image it was
/// copied from.
pub const SOURCE_AMI: &str = "bakeroll:source-ami";
/// On a copy: the region of the image it was copied from.
pub const SOURCE_REGION: &str = "bakeroll:source-region";
/// `ok` / `failed`, set by a provisioning script on its own instance when `ready = "tag"`.
pub const READY: &str = "bakeroll:ready";
/// The deploy lock on each group of an environment (see `core::lock`).
pub const LOCK: &str = "bakeroll:lock";
/// `bakeroll:verified:<env>` = when a deploy ended with every group of `<env>` verified on the image
/// (`core::promotion`): what `requires_verified_in` looks for.
pub const VERIFIED_PREFIX: &str = "bakeroll:verified:";
/// `bakeroll:failed:<env>` = when a deploy of the image to `<env>` was convicted and rolled back.
pub const FAILED_PREFIX: &str = "bakeroll:failed:";
/// `bakeroll revoke`: when and why; deploys refuse the image and rollbacks skip it.
pub const REVOKED: &str = "bakeroll:revoked";

/// The key of the verified mark of `env`.
pub fn verified(env: &str) -> String {
    format!("{VERIFIED_PREFIX}{env}")
}

/// The key of the failed mark of `env`.
pub fn failed(env: &str) -> String {
    format!("{FAILED_PREFIX}{env}")
}

/// GitLab CI provenance on images and snapshots: the predefined variable and the key it is written to.
pub const CI_PROVENANCE: &[(&str, &str)] = &[
    ("CI_PIPELINE_ID", "bakeroll:ci-pipeline-id"),
    ("CI_PIPELINE_URL", "bakeroll:ci-pipeline-url"),
    ("CI_JOB_ID", "bakeroll:ci-job-id"),
    ("CI_JOB_URL", "bakeroll:ci-job-url"),
    ("CI_PROJECT_PATH", "bakeroll:ci-project"),
    ("CI_COMMIT_REF_NAME", "bakeroll:ci-ref"),
];

/// Every tag key bakeroll writes, or reads as a signal (`READY`): the one list `--tag` and `bake.tags`
/// are checked against. A user's tag with one of these keys would overwrite the provenance `gc`,
/// `prune`, `history` and the IAM policy's conditions rely on, or (on the build instance) fake the
/// provisioning script's signal.
pub fn written() -> impl Iterator<Item = &'static str> {
    [COMMIT, PIPELINE, ROLE, CREATED_BY, SOURCE_AMI, SOURCE_REGION, READY, LOCK, REVOKED].into_iter().chain(CI_PROVENANCE.iter().map(|(_, key)| *key))
}

/// Prefixes of keys bakeroll writes with an environment's name after them (the release marks).
pub const WRITTEN_PREFIXES: &[&str] = &[VERIFIED_PREFIX, FAILED_PREFIX];

/// Why `key` cannot be a user's tag, if it cannot: AWS reserves the `aws:` prefix (in any case) and
/// refuses it — after a whole bake, for an image tag — and bakeroll's own keys are bakeroll's.
pub fn refused(key: &str) -> Option<&'static str> {
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Some("the `aws:` prefix is reserved for AWS, which refuses tags that use it");
    }
    if key == READY {
        return Some("it is the provisioning script's signal that bakeroll reads (ready = \"tag\"), never set from outside");
    }
    if WRITTEN_PREFIXES.iter().any(|p| key.starts_with(p)) || key == REVOKED {
        return Some("bakeroll writes it itself (the release marks that promotion, revocation and rollback rely on)");
    }
    written().any(|k| k == key).then_some("bakeroll writes it itself (provenance that gc, prune, history and the IAM policy rely on)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_and_bakeroll_keys_are_refused_and_others_pass() {
        let marks = [verified("staging"), failed("production"), REVOKED.to_string()];
        for key in marks.iter().map(String::as_str) {
            assert!(refused(key).unwrap().contains("release marks"), "{key} must be refused");
        }
        for key in ["aws:foo", "AWS:cloudformation:stack-name", "Aws:x", COMMIT, PIPELINE, ROLE, CREATED_BY, SOURCE_AMI, READY, LOCK, "bakeroll:ci-job-id"] {
            assert!(refused(key).is_some(), "{key} must be refused");
        }
        for key in ["app", "local-aws:health", "awsome", "bakeroll:something-else", "Bakeroll:Commit", "Name", "bakeroll:verifiedstaging"] {
            assert_eq!(refused(key), None, "{key} is the user's");
        }
        assert!(refused("aws:foo").unwrap().contains("reserved for AWS"));
        assert!(refused(COMMIT).unwrap().contains("bakeroll writes it itself"));
        // Every provenance key is in the list (the list is the only place they are written down).
        assert!(CI_PROVENANCE.iter().all(|(_, k)| written().any(|w| w == *k)));
    }
}

/// A release record that lives on the image: a verified or failed mark, or the revocation.
pub fn is_mark(key: &str) -> bool {
    key == REVOKED || WRITTEN_PREFIXES.iter().any(|p| key.starts_with(p))
}
