//! What an Auto Scaling group launches from in the fake: a launch-template version, a mixed instances
//! policy (one launch per override, from the override's own template or the policy's) or a launch
//! configuration — resolved to numbered launches, one picked per new instance, and launched. Launch
//! configurations live here too (created by fixtures, read by DescribeLaunchConfigurations).

use tokio::time::Instant;

use super::group_records::{Launch, Origin, Source};
use super::instances::NewInstance;
use super::state::State;
use crate::core::model::*;

impl Source {
    pub fn of(c: &Configuration) -> Self {
        match c {
            Configuration::Template(t) => Self::Template { id: t.id.clone(), version: t.version.clone() },
            Configuration::Mixed(p) => Self::Mixed(p.clone()),
        }
    }
}

impl State {
    fn template_launch(&self, id: &str, version: &str, instance_type: Option<String>) -> Option<Launch> {
        let n = self.templates.get(id)?.resolve(version)?;
        Some(Launch { origin: Origin::Template { id: id.to_string(), version: n }, instance_type })
    }

    /// The numbered launches `source` stands for; None when a template version it names does not exist.
    pub fn resolve_source(&self, source: &Source) -> Option<Vec<Launch>> {
        match source {
            Source::Template { id, version } => Some(vec![self.template_launch(id, version, None)?]),
            Source::Configuration(name) => {
                self.launch_configs.contains_key(name).then(|| vec![Launch { origin: Origin::Configuration(name.clone()), instance_type: None }])
            }
            Source::Mixed(p) if p.overrides.is_empty() => Some(vec![self.template_launch(&p.template.id, &p.template.version, None)?]),
            Source::Mixed(p) => p
                .overrides
                .iter()
                .map(|o| {
                    let t = o.template.as_ref().unwrap_or(&p.template);
                    self.template_launch(&t.id, &t.version, o.instance_type.clone())
                })
                .collect(),
        }
    }

    /// The launch for the group's next instance: the one the fewest of its live members came from (the
    /// policy's order breaks ties) — the fake's stand-in for the allocation strategies.
    pub fn pick_launch(&self, group: &str, launches: &[Launch]) -> Option<Launch> {
        let g = self.groups.get(group)?;
        launches
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| {
                let used = g.live().filter(|m| m.origin == l.origin && self.instance_type_of(&m.id) == l.instance_type).count();
                (used, *i)
            })
            .map(|(_, l)| l.clone())
    }

    pub fn instance_type_of(&self, id: &str) -> Option<String> {
        self.instances.get(id).map(|i| i.instance_type.clone())
    }

    /// Launches the EC2 instance `launch` describes for `group` (not yet a member of anything); the
    /// error is Auto Scaling's activity status message.
    pub fn launch_for_group(&mut self, group: &str, launch: &Launch, at: Instant) -> Result<String, String> {
        let (image_id, instance_type, user_data, mut tags) = match &launch.origin {
            Origin::Template { id, version } => {
                let data = self
                    .templates
                    .get(id)
                    .and_then(|t| t.versions.get(version))
                    .cloned()
                    .ok_or_else(|| format!("Launch template {id} version {version} does not exist."))?;
                let image = data.image_id.ok_or("The launch template version specifies no image id.")?;
                (image, data.instance_type, data.user_data, data.instance_tags)
            }
            Origin::Configuration(name) => {
                let c = self.launch_configs.get(name).cloned().ok_or_else(|| format!("Launch configuration {name} does not exist."))?;
                let image = c.image_id.ok_or("The launch configuration specifies no image id.")?;
                (image, c.instance_type, None, Tags::new())
            }
        };
        tags.insert("aws:autoscaling:groupName".to_string(), group.to_string());
        let instance_type = launch.instance_type.clone().or(instance_type);
        let new = NewInstance {
            image_id: &image_id,
            instance_type: instance_type.as_deref().unwrap_or("t3.micro"),
            user_data: user_data.as_deref(),
            tags,
        };
        self.create_instance(new, at).map_err(|(code, msg)| format!("{msg} ({code}). Launching EC2 instance failed."))
    }

    /// The group's configuration as DescribeAutoScalingGroups shows it, names filled in.
    pub fn source_view(&self, source: &Source) -> (Option<TemplateRef>, Option<MixedPolicy>, Option<String>) {
        let named = |t: &TemplateRef| TemplateRef {
            name: self.templates.get(&t.id).map(|r| r.name.clone()).unwrap_or_default(),
            ..t.clone()
        };
        match source {
            Source::Template { id, version } => {
                (Some(named(&TemplateRef { id: id.clone(), name: String::new(), version: version.clone() })), None, None)
            }
            Source::Mixed(p) => {
                let mut p = p.clone();
                p.template = named(&p.template);
                for o in &mut p.overrides {
                    o.template = o.template.as_ref().map(named);
                }
                (None, Some(p), None)
            }
            Source::Configuration(name) => (None, None, Some(name.clone())),
        }
    }

    /// Each instance's launch source as DescribeAutoScalingGroups reports it.
    pub fn origin_view(&self, origin: &Origin) -> (Option<TemplateRef>, Option<String>) {
        match origin {
            Origin::Template { id, version } => {
                let name = self.templates.get(id).map(|t| t.name.clone()).unwrap_or_default();
                (Some(TemplateRef { id: id.clone(), name, version: version.to_string() }), None)
            }
            Origin::Configuration(name) => (None, Some(name.clone())),
        }
    }
}
