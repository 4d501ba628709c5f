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
/// The base image a bake started from.
pub const SOURCE_AMI: &str = "bakeroll:source-ami";
/// `ok` / `failed`, set by a provisioning script on its own instance when `ready = "tag"`.
pub const READY: &str = "bakeroll:ready";
/// The deploy lock on each group of an environment (see `core::lock`).
pub const LOCK: &str = "bakeroll:lock";
