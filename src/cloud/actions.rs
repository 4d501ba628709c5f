//! Every IAM action bakeroll's cloud calls can need, in one table: the SDK adapters record these names
//! in the `CallLedger`, the dry-run planner checks them, and `bakeroll iam-policy` grants them. A call
//! added to an adapter takes its name from here, so it cannot be missing from the policy.

/// Whether the action reads or changes the world (a dry run makes reads for real, never writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Which resources `iam-policy` lets the action touch; `crate::iam` turns each into statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Describe calls, which have no resource-level permissions: `Resource: "*"`.
    Any,
    /// RunInstances of a build instance: the new instance and volume must carry the pipeline's tags.
    LaunchBuildInstance,
    /// CreateImage: any instance (a `--build-instance` carries none of our tags), the image tagged
    /// with the pipeline at creation.
    CreateImage,
    /// CreateTags: while creating (RunInstances, CreateImage), on snapshots with the pipeline tag, and on
    /// the pipeline's images (the release marks, a revocation).
    Tagging,
    /// Instances tagged `bakeroll:role=build-instance` and `bakeroll:pipeline=<name>`.
    BuildInstances,
    /// Images tagged `bakeroll:pipeline=<name>`.
    PipelineImages,
    /// Snapshots tagged `bakeroll:pipeline=<name>`.
    PipelineSnapshots,
    /// Launch templates: their ids are not in the pipeline file (the groups name them).
    LaunchTemplates,
    /// The Auto Scaling groups of the pipeline's environments, by ARN.
    Groups,
    /// The environments' deploy roles (`role_arn`), by ARN.
    DeployRoles,
}

/// Whose credentials make the call when an environment deploys through another account's role: the
/// bake account (the caller: images, snapshots, build instances, copies, sharing, the release records on
/// images), the deploy account (groups, launch templates, target health, alarms, metrics), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    Bake,
    Deploy,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// The IAM action, e.g. `ec2:CreateImage` (ELBv2's IAM prefix is `elasticloadbalancing`).
    pub name: &'static str,
    pub access: Access,
    /// EC2 accepts `DryRun` for it, so a dry run can prove the permission.
    pub dry_run: bool,
    pub scope: Scope,
    /// Points a group at a launch-template version: AWS then also checks that the caller may
    /// `ec2:RunInstances` with that template (Auto Scaling user guide, "Launch template support").
    pub uses_launch_template: bool,
    pub account: Account,
}

/// A read made in both accounts (EC2's: images and instances are looked at on both sides).
const fn read(name: &'static str) -> Action {
    Action { name, access: Access::Read, dry_run: false, scope: Scope::Any, uses_launch_template: false, account: Account::Both }
}

/// A read of the deploy account's resources only.
const fn deploy_read(name: &'static str) -> Action {
    Action { account: Account::Deploy, ..read(name) }
}

const fn ec2_write(name: &'static str, scope: Scope) -> Action {
    // Launch templates belong to the groups' account; every other EC2 write is on the bake account's images,
    // snapshots and build instances.
    let account = match scope {
        Scope::LaunchTemplates => Account::Deploy,
        _ => Account::Bake,
    };
    Action { name, access: Access::Write, dry_run: true, scope, uses_launch_template: false, account }
}

const fn group_write(name: &'static str, uses_launch_template: bool) -> Action {
    Action { name, access: Access::Write, dry_run: false, scope: Scope::Groups, uses_launch_template, account: Account::Deploy }
}

pub const DESCRIBE_IMAGES: Action = read("ec2:DescribeImages");
pub const DESCRIBE_INSTANCES: Action = read("ec2:DescribeInstances");
pub const DESCRIBE_INSTANCE_STATUS: Action = read("ec2:DescribeInstanceStatus");
/// A read, but of build instances only (it supports resource-level permissions).
pub const GET_CONSOLE_OUTPUT: Action = Action { scope: Scope::BuildInstances, account: Account::Bake, ..read("ec2:GetConsoleOutput") };
pub const DESCRIBE_LT_VERSIONS: Action = deploy_read("ec2:DescribeLaunchTemplateVersions");
/// prune: finds the pipeline's snapshots and checks the ones it deleted are gone.
pub const DESCRIBE_SNAPSHOTS: Action = Action { account: Account::Bake, ..read("ec2:DescribeSnapshots") };
pub const RUN_INSTANCES: Action = ec2_write("ec2:RunInstances", Scope::LaunchBuildInstance);
pub const CREATE_IMAGE: Action = ec2_write("ec2:CreateImage", Scope::CreateImage);
pub const CREATE_TAGS: Action = ec2_write("ec2:CreateTags", Scope::Tagging);
pub const TERMINATE_INSTANCES: Action = ec2_write("ec2:TerminateInstances", Scope::BuildInstances);
pub const DEREGISTER_IMAGE: Action = ec2_write("ec2:DeregisterImage", Scope::PipelineImages);
pub const DELETE_SNAPSHOT: Action = ec2_write("ec2:DeleteSnapshot", Scope::PipelineSnapshots);
pub const CREATE_LT_VERSION: Action = ec2_write("ec2:CreateLaunchTemplateVersion", Scope::LaunchTemplates);
pub const MODIFY_LT: Action = ec2_write("ec2:ModifyLaunchTemplate", Scope::LaunchTemplates);
/// adopt: finds the template named after a group, and creates it from the group's launch configuration.
pub const DESCRIBE_LTS: Action = deploy_read("ec2:DescribeLaunchTemplates");
pub const CREATE_LT: Action = ec2_write("ec2:CreateLaunchTemplate", Scope::LaunchTemplates);
/// Only for a version this run created and never rolled out (an interrupted deploy).
pub const DELETE_LT_VERSIONS: Action = ec2_write("ec2:DeleteLaunchTemplateVersions", Scope::LaunchTemplates);
/// The release marks on the pipeline's images: `revoke --restore`, and a mark replacing the other kind.
pub const DELETE_TAGS: Action = ec2_write("ec2:DeleteTags", Scope::PipelineImages);
/// After a verified deploy: the images the groups run and their rollback targets cannot be deregistered.
pub const ENABLE_IMAGE_PROTECTION: Action = ec2_write("ec2:EnableImageDeregistrationProtection", Scope::PipelineImages);
/// prune: only on an image it is about to deregister.
pub const DISABLE_IMAGE_PROTECTION: Action = ec2_write("ec2:DisableImageDeregistrationProtection", Scope::PipelineImages);

/// Copies of the release to the environment's other regions (tagged with the pipeline as they are made),
/// and sharing each copy and its snapshots with the deploy account.
pub const COPY_IMAGE: Action = ec2_write("ec2:CopyImage", Scope::CreateImage);
pub const SHARE_IMAGE: Action = ec2_write("ec2:ModifyImageAttribute", Scope::PipelineImages);
pub const SHARE_SNAPSHOT: Action = ec2_write("ec2:ModifySnapshotAttribute", Scope::PipelineSnapshots);

pub const DESCRIBE_GROUPS: Action = deploy_read("autoscaling:DescribeAutoScalingGroups");
pub const DESCRIBE_REFRESHES: Action = deploy_read("autoscaling:DescribeInstanceRefreshes");
/// The warm pool's instances (a pool left on the old image brings the old release back).
pub const DESCRIBE_WARM_POOL: Action = deploy_read("autoscaling:DescribeWarmPool");
/// adopt: the launch configuration a group runs.
pub const DESCRIBE_LCS: Action = deploy_read("autoscaling:DescribeLaunchConfigurations");
pub const UPDATE_GROUP: Action = group_write("autoscaling:UpdateAutoScalingGroup", true);
pub const START_REFRESH: Action = group_write("autoscaling:StartInstanceRefresh", true);
/// The deploy lock: a tag on the group (engine/lock.rs).
pub const TAG_GROUP: Action = group_write("autoscaling:CreateOrUpdateTags", false);
pub const UNTAG_GROUP: Action = group_write("autoscaling:DeleteTags", false);
pub const CANCEL_REFRESH: Action = group_write("autoscaling:CancelInstanceRefresh", false);
pub const ROLLBACK_REFRESH: Action = group_write("autoscaling:RollbackInstanceRefresh", false);

pub const DESCRIBE_TARGET_HEALTH: Action = deploy_read("elasticloadbalancing:DescribeTargetHealth");
/// deploy: which load balancer each target group is behind (the metric gate reads ALBs' metrics).
pub const DESCRIBE_TARGET_GROUPS: Action = deploy_read("elasticloadbalancing:DescribeTargetGroups");

/// deploy: checks that the environment's alarms exist, and names the one that stopped a refresh.
pub const DESCRIBE_ALARMS: Action = deploy_read("cloudwatch:DescribeAlarms");
/// deploy: the load balancer's per-minute metrics of the target groups in flight (the metric gate).
pub const GET_METRIC_DATA: Action = deploy_read("cloudwatch:GetMetricData");

/// The deploy role of an environment in another account (`role_arn`), assumed from the caller's
/// credentials when a run connects. A read: it changes nothing, and a dry run needs it to read that account.
pub const ASSUME_ROLE: Action = Action { scope: Scope::DeployRoles, account: Account::Bake, ..read("sts:AssumeRole") };

/// Every action above. A new constant must be added here too (a test checks the adapters use only these).
pub const ALL: &[Action] = &[
    DESCRIBE_IMAGES,
    DESCRIBE_INSTANCES,
    DESCRIBE_INSTANCE_STATUS,
    GET_CONSOLE_OUTPUT,
    DESCRIBE_LT_VERSIONS,
    DESCRIBE_SNAPSHOTS,
    RUN_INSTANCES,
    CREATE_IMAGE,
    CREATE_TAGS,
    TERMINATE_INSTANCES,
    DEREGISTER_IMAGE,
    DELETE_SNAPSHOT,
    CREATE_LT_VERSION,
    MODIFY_LT,
    DESCRIBE_LTS,
    CREATE_LT,
    DELETE_LT_VERSIONS,
    COPY_IMAGE,
    SHARE_IMAGE,
    SHARE_SNAPSHOT,
    DELETE_TAGS,
    ENABLE_IMAGE_PROTECTION,
    DISABLE_IMAGE_PROTECTION,
    DESCRIBE_GROUPS,
    DESCRIBE_REFRESHES,
    DESCRIBE_WARM_POOL,
    DESCRIBE_LCS,
    UPDATE_GROUP,
    START_REFRESH,
    TAG_GROUP,
    UNTAG_GROUP,
    CANCEL_REFRESH,
    ROLLBACK_REFRESH,
    DESCRIBE_TARGET_HEALTH,
    DESCRIBE_TARGET_GROUPS,
    DESCRIBE_ALARMS,
    GET_METRIC_DATA,
    ASSUME_ROLE,
];

/// The table entry for an IAM action name.
pub fn lookup(name: &str) -> Option<&'static Action> {
    ALL.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_iam_shaped() {
        let mut seen = std::collections::BTreeSet::new();
        for a in ALL {
            assert!(seen.insert(a.name), "{} listed twice", a.name);
            let (service, op) = a.name.split_once(':').expect("service:Action");
            assert!(["ec2", "autoscaling", "elasticloadbalancing", "cloudwatch", "sts"].contains(&service), "{}", a.name);
            assert!(op.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && op.chars().all(|c| c.is_ascii_alphanumeric()), "{}", a.name);
            // Only EC2 has DryRun; a read never needs one.
            assert!(!a.dry_run || (service == "ec2" && a.access == Access::Write), "{}", a.name);
        }
    }

    /// The adapters name actions only through this table: an IAM action written as a string literal in
    /// src/aws/ would be a call `iam-policy` does not know about.
    #[test]
    fn adapters_take_action_names_from_the_table() {
        let sources = [
            ("aws/ec2.rs", include_str!("../aws/ec2.rs")),
            ("aws/ec2/templates.rs", include_str!("../aws/ec2/templates.rs")),
            ("aws/ec2/copies.rs", include_str!("../aws/ec2/copies.rs")),
            ("aws/autoscaling.rs", include_str!("../aws/autoscaling.rs")),
            ("aws/elbv2.rs", include_str!("../aws/elbv2.rs")),
            ("aws/cloudwatch.rs", include_str!("../aws/cloudwatch.rs")),
            ("aws/connector.rs", include_str!("../aws/connector.rs")),
        ];
        for (file, text) in sources {
            // Tests inside the adapter files may name actions freely.
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for prefix in ["\"ec2:", "\"autoscaling:", "\"elasticloadbalancing:", "\"cloudwatch:", "\"sts:"] {
                assert!(!code.contains(prefix), "{file} writes an IAM action as a literal ({prefix}...); use crate::cloud::actions");
            }
            assert!(code.contains("actions::"), "{file} should take its action names from crate::cloud::actions");
        }
    }
}
