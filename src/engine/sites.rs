//! The pipeline's places as `prune` and `gc` read them: per region, the bake account's cloud (the images
//! and their copies live there) and every environment's groups in that region, each group read through
//! its own environment's account. Retention is pipeline-wide: an image one environment no longer needs
//! may be another's rollback target, in another region or account.

use std::collections::BTreeMap;

use super::releases::{read_group, GroupState};
use super::Ctx;
use crate::core::settings::EnvSettings;
use crate::error::Result;

/// One environment and the context of its regions and account (`cli::Session::context_for`).
pub struct EnvContext {
    pub env: EnvSettings,
    pub ctx: Ctx,
}

/// A group as retention sees it: the name the release knows it by (`group@region` over several regions),
/// and the context it was read through (its region's deploy cloud: its instances are read there too).
pub struct SiteGroup {
    pub scope: String,
    pub ctx: Ctx,
    pub state: GroupState,
}

/// One region: the bake account's context there, and every group of every environment in it.
pub struct Site {
    /// None: the bake region.
    pub region: Option<String>,
    /// Its cloud is the bake account's in `region`: the pipeline's images (copies, in other regions).
    pub bake: Ctx,
    pub groups: Vec<SiteGroup>,
}

impl Site {
    /// ` in ap-southeast-1`, or nothing for the bake region: appended where a reader must tell regions apart.
    pub fn label(&self) -> String {
        self.region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default()
    }
}

/// The bake region (`base`'s: the releases are baked there, whether or not a group runs there) and every
/// region any environment rolls out to, each with its groups, the bake region first. A missing group is
/// skipped with a warning: nothing can be in use through a group that does not exist.
pub async fn read_sites(base: &Ctx, envs: &[EnvContext]) -> Result<Vec<Site>> {
    let mut sites: BTreeMap<Option<String>, Site> = BTreeMap::new();
    sites.insert(None, Site { region: None, bake: base.clone(), groups: Vec::new() });
    for EnvContext { env, ctx } in envs {
        for region in env.placement.rollout_regions() {
            sites.entry(region.clone()).or_insert_with(|| Site {
                bake: Ctx { cloud: ctx.bake_cloud(region.as_deref()), ..ctx.clone() },
                region,
                groups: Vec::new(),
            });
        }
        for scope in env.group_names() {
            let settings = env.group(&scope);
            let place = ctx.place(settings.region.as_deref());
            let name = &settings.name;
            match read_group(&place, &env.name, name).await? {
                Some(state) => {
                    let site = sites.get_mut(&settings.region).expect("every group's region is one of its environment's");
                    site.groups.push(SiteGroup { scope, ctx: place, state });
                }
                None => {
                    let region = settings.region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default();
                    ctx.events.warn(&scope, format!("Auto Scaling group {name} (environment {}){region} not found; skipped", env.name));
                }
            }
        }
    }
    Ok(sites.into_values().collect())
}

/// Every environment of `ctx`'s pipeline read through `ctx` itself: its places must already be those of
/// every environment (one placement for all, as in a pipeline of one region and account). The CLI
/// connects each environment on its own (`cli::Session::every_environment`).
pub async fn read_all(ctx: &Ctx) -> Result<Vec<Site>> {
    let p = &ctx.pipeline;
    let region = p.pipeline.region.as_deref();
    let envs: Vec<EnvContext> = p.pipeline.environments.iter().map(|(n, e)| EnvContext { env: e.settings(n, region), ctx: ctx.clone() }).collect();
    read_sites(ctx, &envs).await
}
