//! The least-privilege IAM policy a pipeline needs, derived from `crate::cloud::actions` (the table the
//! adapters take their action names from): each action is granted according to its `Scope`, on the
//! pipeline's own resources where IAM can name them (group ARNs, tags bakeroll puts on what it creates).
//!
//! Pure: no AWS call, so a policy can be generated before any credentials exist. Account ids are `*`:
//! an identity policy only ever acts in its own account here (none of these resources has a resource
//! policy that could admit another account), so `*` names the same resources as the real id would.
//! Sources: the Service Authorization Reference pages for EC2, Auto Scaling and ELBv2 (resource types
//! and condition keys per action) and the Auto Scaling user guide's "Launch template support".

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cloud::actions::{Account, Action, Scope, ALL};
use crate::core::tags;

/// What the policy depends on, from the pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    /// `pipeline.name()`: the value of the `bakeroll:pipeline` tag.
    pub pipeline: String,
    /// None: any region (`*`).
    pub region: Option<String>,
    /// The Auto Scaling groups the role may deploy.
    pub groups: Vec<String>,
    /// `bake.iam_instance_profile`, if the build instance gets one.
    pub instance_profile: Option<String>,
    /// The environments' deploy roles (`role_arn`): the caller assumes them.
    pub roles: Vec<String>,
    /// Whose policy this is.
    pub identity: Identity,
}

/// The identity a policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The identity that runs bakeroll, in the bake account: bakes, copies, shares, marks, prunes, and
    /// assumes the deploy roles; `deploys`: it also deploys the groups of environments without a role.
    Caller { deploys: bool },
    /// An environment's deploy role, in the deploy account: its groups and launch templates only.
    DeployRole,
}

impl Identity {
    fn makes(self, action: &Action) -> bool {
        match (self, action.account) {
            (_, Account::Both) => true,
            (Identity::Caller { deploys }, Account::Deploy) => deploys,
            (Identity::Caller { .. }, Account::Bake) => true,
            (Identity::DeployRole, Account::Deploy) => true,
            (Identity::DeployRole, Account::Bake) => false,
        }
    }
}

/// The policy document and the assumptions a human should check.
pub struct Generated {
    pub document: Value,
    pub notes: Vec<String>,
}

struct Arns<'a> {
    region: &'a str,
}

impl Arns<'_> {
    fn ec2(&self, resource: &str) -> String {
        // Images and snapshots have no account in their ARN (AWS owns the namespace).
        let account = if matches!(resource, "image" | "snapshot") { "" } else { "*" };
        format!("arn:aws:ec2:{}:{account}:{resource}/*", self.region)
    }

    fn group(&self, name: &str) -> String {
        format!("arn:aws:autoscaling:{}:*:autoScalingGroup:*:autoScalingGroupName/{name}", self.region)
    }
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>, condition: Option<Value>) -> Value {
    let mut s = json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources });
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

fn tag(key: &str) -> String {
    format!("aws:ResourceTag/{key}")
}

fn request_tag(key: &str) -> String {
    format!("aws:RequestTag/{key}")
}

pub fn generate(input: &PolicyInput) -> Generated {
    let arns = Arns { region: input.region.as_deref().unwrap_or("*") };
    let mut by_scope: BTreeMap<Scope, Vec<&str>> = BTreeMap::new();
    let actions: Vec<&Action> = ALL.iter().filter(|a| input.identity.makes(a)).collect();
    for a in &actions {
        by_scope.entry(a.scope).or_default().push(a.name);
    }
    let pipeline = input.pipeline.as_str();
    let mut notes = Vec::new();
    let mut statements = Vec::new();
    for (scope, actions) in &by_scope {
        let actions = actions.as_slice();
        match scope {
            Scope::Any => statements.push(statement("Read", actions, vec!["*".into()], None)),
            Scope::LaunchBuildInstance => {
                // The new instance and its root volume must be tagged as this pipeline's build instance...
                let tagged = json!({ "StringEquals": {
                    request_tag(tags::ROLE): tags::ROLE_BUILD, request_tag(tags::PIPELINE): pipeline } });
                statements.push(statement("LaunchBuildInstance", actions, vec![arns.ec2("instance"), arns.ec2("volume")], Some(tagged)));
                // ...and may use any image, subnet, security group and network interface to start from.
                let from = ["image", "subnet", "security-group", "network-interface"].map(|r| arns.ec2(r)).to_vec();
                statements.push(statement("LaunchBuildInstanceFrom", actions, from, None));
            }
            Scope::CreateImage => {
                let tagged = json!({ "StringEquals": { request_tag(tags::PIPELINE): pipeline } });
                let res = vec![arns.ec2("instance"), arns.ec2("image"), arns.ec2("snapshot")];
                statements.push(statement("CreateImage", actions, res, Some(tagged)));
            }
            Scope::Tagging => {
                let on_create = json!({ "StringEquals": { "ec2:CreateAction": ["RunInstances", "CreateImage", "CopyImage"] } });
                let res = vec![arns.ec2("instance"), arns.ec2("volume"), arns.ec2("image")];
                statements.push(statement("TagOnCreate", actions, res, Some(on_create)));
                let ours = json!({ "StringEquals": { request_tag(tags::PIPELINE): pipeline } });
                statements.push(statement("TagSnapshots", actions, vec![arns.ec2("snapshot")], Some(ours)));
                // The release marks and revocations: on the pipeline's own images, after they exist.
                let images = json!({ "StringEquals": { tag(tags::PIPELINE): pipeline } });
                statements.push(statement("MarkImages", actions, vec![arns.ec2("image")], Some(images)));
            }
            Scope::BuildInstances => {
                let ours = json!({ "StringEquals": { tag(tags::ROLE): tags::ROLE_BUILD, tag(tags::PIPELINE): pipeline } });
                statements.push(statement("BuildInstances", actions, vec![arns.ec2("instance")], Some(ours)));
            }
            Scope::PipelineImages => {
                let ours = json!({ "StringEquals": { tag(tags::PIPELINE): pipeline } });
                statements.push(statement("PipelineImages", actions, vec![arns.ec2("image")], Some(ours)));
            }
            Scope::PipelineSnapshots => {
                let ours = json!({ "StringEquals": { tag(tags::PIPELINE): pipeline } });
                statements.push(statement("PipelineSnapshots", actions, vec![arns.ec2("snapshot")], Some(ours)));
                notes.push(format!(
                    "snapshots are deleted only when tagged {}={pipeline}: bake tags them once the image is available",
                    tags::PIPELINE
                ));
            }
            Scope::LaunchTemplates => {
                statements.push(statement("LaunchTemplates", actions, vec![arns.ec2("launch-template")], None));
                notes.push("launch-template ids are not in the pipeline file: narrow `launch-template/*` to your groups' templates if you can".into());
            }
            Scope::Groups => {
                let groups = input.groups.iter().map(|g| arns.group(g)).collect();
                statements.push(statement("Groups", actions, groups, None));
            }
            Scope::DeployRoles if input.roles.is_empty() => {}
            Scope::DeployRoles => {
                statements.push(statement("AssumeDeployRoles", actions, input.roles.clone(), None));
                notes.push("each deploy role's trust policy must allow this role (or user) to assume it".into());
            }
        }
    }
    if actions.iter().any(|a| a.uses_launch_template) {
        // Auto Scaling checks that whoever points a group at a launch-template version could launch it.
        let cond = json!({ "ArnLike": { "ec2:LaunchTemplate": arns.ec2("launch-template") } });
        statements.push(statement("UseLaunchTemplates", &["ec2:RunInstances"], vec!["*".into()], Some(cond)));
        notes.push("if your launch templates set an instance profile, also allow iam:PassRole for its role".into());
    }
    if let (Some(profile), Identity::Caller { .. }) = (&input.instance_profile, input.identity) {
        // A profile given by ARN (`arn:aws:iam::1:instance-profile/path/name`) or by name.
        let name = profile.rsplit('/').next().unwrap_or(profile);
        let cond = json!({ "StringEquals": { "iam:PassedToService": "ec2.amazonaws.com" } });
        statements.push(statement("PassBuildInstanceRole", &["iam:PassRole"], vec![format!("arn:aws:iam::*:role/{name}")], Some(cond)));
        notes.push(format!(
            "iam:PassRole assumes the role in instance profile {profile} is also named {name} (as the IAM console creates them); change the Resource if not"
        ));
    }
    Generated { document: json!({ "Version": "2012-10-17", "Statement": statements }), notes }
}

/// A deploy role's two documents, as `iam-policy` reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolePolicies {
    pub role_arn: String,
    pub account: Option<String>,
    pub policy: Value,
    pub trust_policy: Value,
}

/// The trust policy of a deploy role: `principal` (the identity that runs bakeroll in the bake account;
/// None: a placeholder to replace) may assume it, with the environment's `external_id` when it has one.
pub fn trust_policy(principal: Option<&str>, external_id: Option<&str>) -> Generated {
    let mut notes = Vec::new();
    let who = match principal {
        Some(p) => p.to_string(),
        None => {
            notes.push("replace BAKE_ACCOUNT_ID in the trust policy with the account that runs bakeroll, or pass --principal with the ARN of its role".into());
            "arn:aws:iam::BAKE_ACCOUNT_ID:root".to_string()
        }
    };
    let mut s = json!({ "Sid": "BakerollAssumes", "Effect": "Allow", "Principal": { "AWS": who }, "Action": "sts:AssumeRole" });
    if let Some(id) = external_id {
        s["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    Generated { document: json!({ "Version": "2012-10-17", "Statement": [s] }), notes }
}

/// Every action the document allows (for checks: `Action` entries are exact names, never wildcards).
pub fn allowed_actions(document: &Value) -> Vec<String> {
    let mut out: Vec<String> = document["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
