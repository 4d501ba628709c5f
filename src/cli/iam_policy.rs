//! `bakeroll iam-policy`: print the least-privilege IAM policy this pipeline needs (`crate::iam`
//! derives it from the action table the adapters use). Reads only the pipeline file; no AWS call.

use super::{Finished, Global, Output};
use crate::config::Loaded;
use crate::error::Error;
use crate::iam::{generate, PolicyInput};
use crate::summary::{Details, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub async fn run(global: &Global, _args: Args) -> Finished {
    let loaded = match Loaded::load(&global.pipeline) {
        Ok(l) => Loaded { env_chosen_by: global.env_from, ..l },
        Err(e) => return Finished::early("iam-policy", e.into()),
    };
    // One environment when asked for (--env / $BAKEROLL_ENV: a role per environment), else all of them.
    let envs: Vec<&crate::config::Environment> = match &global.env {
        Some(name) => match loaded.environment(Some(name)) {
            Ok((_, env)) => vec![env],
            Err(e) => return Finished::early("iam-policy", Error::from(e)),
        },
        None => loaded.pipeline.environments.values().collect(),
    };
    // Resources in other regions than the bake region: ARNs for any region then.
    let bake_region = loaded.pipeline.region.clone();
    let elsewhere = envs.iter().flat_map(|e| e.regions.iter().flatten()).any(|r| Some(r) != bake_region.as_ref());
    let input = PolicyInput {
        pipeline: loaded.name(),
        region: if elsewhere { None } else { bake_region },
        groups: envs.iter().flat_map(|e| e.group_names()).collect(),
        instance_profile: loaded.pipeline.bake.iam_instance_profile.clone(),
        roles: envs.iter().filter_map(|e| e.role_arn.clone()).collect(),
    };
    let policy = generate(&input);
    let mut summary = Summary::new("iam-policy");
    summary.pipeline = Some(loaded.path.display().to_string());
    summary.details = Some(Details::IamPolicy { policy: policy.document.clone(), notes: policy.notes.clone() });
    if global.output == Output::Text {
        crate::display::dry_run::print_notes(&policy.notes);
    }
    let text = serde_json::to_string_pretty(&policy.document).unwrap_or_default();
    Finished { summary, text: Some(text), result: Ok(()), next: None }
}
