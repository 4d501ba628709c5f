//! `bakeroll iam-policy`: print the least-privilege IAM policies this pipeline needs (`crate::iam`
//! derives them from the action table the adapters use): the policy of the identity that runs bakeroll
//! and, for each environment's deploy role in another account, the role's own policy and trust policy.
//! Reads only the pipeline file; no AWS call.

use super::{Finished, Global, Output};
use crate::config::{Environment, Loaded};
use crate::error::Error;
use crate::iam::{generate, trust_policy, Identity, PolicyInput, RolePolicies};
use crate::summary::{Details, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print only this deploy role's permissions policy (a `role_arn` of the pipeline file), as one document.
    #[arg(long, value_name = "ARN")]
    pub role: Option<String>,
    /// With --role: print the role's trust policy instead.
    #[arg(long, requires = "role")]
    pub trust: bool,
    /// The identity that runs bakeroll (its role's ARN), trusted by the deploy roles' trust policies;
    /// without it they name a placeholder to replace.
    #[arg(long, value_name = "ARN")]
    pub principal: Option<String>,
}

/// Where the resources are: one region when everything is in the bake region, else any.
fn region_of(bake_region: &Option<String>, envs: &[&Environment]) -> Option<String> {
    let elsewhere = envs.iter().flat_map(|e| e.regions.iter().flatten()).any(|r| Some(r) != bake_region.as_ref());
    if elsewhere { None } else { bake_region.clone() }
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let loaded = match Loaded::load(&global.pipeline) {
        Ok(l) => Loaded { env_chosen_by: global.env_from, ..l },
        Err(e) => return Finished::early("iam-policy", e.into()),
    };
    // One environment when asked for (--env / $BAKEROLL_ENV: a role per environment), else all of them.
    let envs: Vec<&Environment> = match &global.env {
        Some(name) => match loaded.environment(Some(name)) {
            Ok((_, env)) => vec![env],
            Err(e) => return Finished::early("iam-policy", Error::from(e)),
        },
        None => loaded.pipeline.environments.values().collect(),
    };
    let bake_region = loaded.pipeline.region.clone();
    let base = |identity, groups: Vec<String>, envs: &[&Environment]| PolicyInput {
        pipeline: loaded.name(),
        region: region_of(&bake_region, envs),
        groups,
        instance_profile: loaded.pipeline.bake.iam_instance_profile.clone(),
        roles: envs.iter().filter_map(|e| e.role_arn.clone()).collect(),
        identity,
    };
    // The caller bakes and copies for every environment, and deploys those without a role itself.
    let own: Vec<&Environment> = envs.iter().copied().filter(|e| e.role_arn.is_none()).collect();
    let caller = generate(&base(Identity::Caller { deploys: !own.is_empty() }, own.iter().flat_map(|e| e.group_names()).collect(), &envs));
    let mut roles: Vec<RolePolicies> = Vec::new();
    // Each document's notes: the caller's, then per role (its policy's, its trust policy's).
    let mut role_notes: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut arns: Vec<&String> = envs.iter().filter_map(|e| e.role_arn.as_ref()).collect();
    arns.sort();
    arns.dedup();
    for arn in arns {
        let with: Vec<&Environment> = envs.iter().copied().filter(|e| e.role_arn.as_ref() == Some(arn)).collect();
        let policy = generate(&PolicyInput { roles: vec![], ..base(Identity::DeployRole, with.iter().flat_map(|e| e.group_names()).collect(), &with) });
        let external = with.iter().find_map(|e| e.external_id.as_deref());
        let trust = trust_policy(args.principal.as_deref(), external);
        let account = crate::config::role_account(arn).map(str::to_string);
        roles.push(RolePolicies { role_arn: arn.clone(), account, policy: policy.document, trust_policy: trust.document });
        role_notes.push((policy.notes, trust.notes));
    }
    let mut summary = Summary::new("iam-policy");
    summary.pipeline = Some(loaded.path.display().to_string());
    let mut notes = caller.notes.clone();
    for n in role_notes.iter().flat_map(|(p, t)| p.iter().chain(t)) {
        if !notes.contains(n) {
            notes.push(n.clone());
        }
    }
    let chosen = match &args.role {
        None => None,
        Some(arn) => match roles.iter().position(|r| &r.role_arn == arn) {
            Some(i) => {
                let (policy, trust) = &role_notes[i];
                notes = if args.trust { trust.clone() } else { policy.clone() };
                Some(if args.trust { roles[i].trust_policy.clone() } else { roles[i].policy.clone() })
            }
            None => {
                let known: Vec<&str> = roles.iter().map(|r| r.role_arn.as_str()).collect();
                let listed = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                let e = Error::Usage(format!("--role {arn} is no environment's `role_arn` in {} (they are: {listed})", loaded.path.display()));
                return Finished::early("iam-policy", e);
            }
        },
    };
    let policy = chosen.clone().unwrap_or_else(|| caller.document.clone());
    summary.details = Some(Details::IamPolicy { policy, notes: notes.clone(), deploy_roles: (!roles.is_empty()).then(|| roles.clone()) });
    if global.output == Output::Text {
        crate::display::dry_run::print_notes(&notes);
    }
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let text = match (chosen, roles.is_empty()) {
        (Some(one), _) => pretty(&one),
        (None, true) => pretty(&caller.document),
        // Several documents: each under a line saying whose it is (--role ARN prints one alone).
        (None, false) => {
            let mut parts = vec![format!("# the identity that runs bakeroll (bake account): permissions policy\n{}", pretty(&caller.document))];
            for r in &roles {
                let account = r.account.as_deref().unwrap_or("?");
                parts.push(format!("# deploy role {} (account {account}): permissions policy (--role)\n{}", r.role_arn, pretty(&r.policy)));
                parts.push(format!("# deploy role {} (account {account}): trust policy (--role --trust)\n{}", r.role_arn, pretty(&r.trust_policy)));
            }
            parts.join("\n")
        }
    };
    Finished { summary, text: Some(text), result: Ok(()), next: None }
}
