//! `bakeroll adopt`: every group of an environment that runs a launch configuration moves to a launch
//! template with the same settings — AWS's migration path ("Migrate your Auto Scaling groups to launch
//! templates"): CreateLaunchTemplate named after the group, version 1 the configuration field by field
//! (`core::adopt::translate`), read back and compared, then UpdateAutoScalingGroup onto that version,
//! which replaces no instance, and a check that the group reports it with the same instances. Safe to
//! repeat: a group already on its adopted template is left alone, and a run cut off between creating
//! the template and switching the group finds its own template again (its mark) and finishes. The
//! launch configuration is never deleted (the command to do it is reported).

use serde::Serialize;

use super::wait::{Check, Poller, WaitError, Waited};
use super::Ctx;
use crate::cloud::{CloudError, Wait};
use crate::core::settings::EnvSettings;
use crate::core::adopt::{delete_command, differences, format_mark, need, template_name, translate, Need};
use crate::core::model::{Configuration, Group, TemplateInfo, TemplateRef};
use crate::error::{Error, Result};
use crate::events::Stage;

/// How long the group may take to report its new template after UpdateAutoScalingGroup, and how often
/// to look (the change is immediate on AWS; a read may lag a moment).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What became of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdoptOutcome {
    /// Moved to its new template in this run.
    Adopted,
    /// Already on the template an earlier adopt made: nothing changed.
    AlreadyAdopted,
    /// Runs a launch template (or a mixed instances policy) of its own: nothing to adopt.
    NotAConfiguration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdoptReport {
    pub group: String,
    pub launch_configuration: Option<String>,
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    /// The version the group launches from now (1 once adopted).
    pub version: Option<i64>,
    pub outcome: AdoptOutcome,
    /// True when an earlier, interrupted adopt had created the template and this run switched the group.
    pub resumed: bool,
    /// Fields of the configuration a template cannot carry (adopted anyway only with `--force`).
    pub not_carried: Vec<String>,
    /// The group's instances before and after: the same ids (no instance is replaced).
    pub instances: Vec<String>,
    /// Deletes the launch configuration once nothing uses it (adopt leaves it in place).
    pub delete_command: Option<String>,
}

/// Adopts every group of `env`, one after another; the first failure stops (the groups before it are
/// adopted, the ones after untouched).
pub async fn adopt(ctx: &Ctx, env: &EnvSettings, force: bool) -> (Vec<AdoptReport>, Result<()>) {
    let mut out = Vec::new();
    for name in &env.group_names() {
        match adopt_group(ctx, name, force).await {
            Ok(r) => out.push(r),
            Err(mut e) => {
                let done: Vec<&str> = out.iter().filter(|r| r.outcome == AdoptOutcome::Adopted).map(|r| r.group.as_str()).collect();
                if let (Some(state), false) = (e.state_mut(), done.is_empty()) {
                    state.push_str(&format!("; adopted before it: {}", done.join(", ")));
                }
                return (out, Err(e));
            }
        }
    }
    (out, Ok(()))
}

fn unchanged(e: CloudError) -> Error {
    Error::cloud(e, "nothing was changed")
}

async fn adopt_group(ctx: &Ctx, name: &str, force: bool) -> Result<AdoptReport> {
    ctx.events.phase(name, Stage::Preflight, format!("reading group {name} and its launch configuration"));
    let group = ctx
        .cloud
        .autoscaling
        .describe_group(name)
        .await
        .map_err(unchanged)?
        .ok_or_else(|| Error::precondition(format!("Auto Scaling group {name} not found")))?;
    let instances: Vec<String> = group.instances.iter().map(|i| i.id.clone()).collect();
    let tname = template_name(name).map_err(Error::precondition)?;
    let existing = ctx.cloud.ec2.find_launch_template(&tname).await.map_err(unchanged)?;
    let mark = match &existing {
        Some(t) => ctx.cloud.ec2.launch_template_versions(&t.id, &["1".to_string()]).await.map_err(unchanged)?.into_iter().next().and_then(|v| v.description),
        None => None,
    };
    let report = |outcome, t: Option<&TemplateInfo>, lc: Option<String>| AdoptReport {
        group: name.to_string(),
        delete_command: lc.as_deref().map(delete_command),
        launch_configuration: lc,
        template_id: t.map(|t| t.id.clone()),
        template_name: t.map(|t| t.name.clone()),
        version: group.template().and_then(|t| t.numbered_version()),
        outcome,
        resumed: false,
        not_carried: vec![],
        instances: instances.clone(),
    };
    let (lc_name, template) = match need(&group, existing.as_ref(), mark.as_deref()) {
        Need::AlreadyAdopted { template } => {
            ctx.events.info(name, format!("{name} is already adopted: it launches from launch template {} ({})", template.name, template.id));
            let lc = mark.as_deref().and_then(crate::core::adopt::parse_mark).map(|(lc, _)| lc);
            return Ok(report(AdoptOutcome::AlreadyAdopted, Some(&template), lc));
        }
        Need::NotAConfiguration => {
            let what = if group.mixed_instances.is_some() { "a mixed instances policy" } else { "a launch template" };
            ctx.events.info(name, format!("{name} already runs {what}: nothing to adopt"));
            return Ok(report(AdoptOutcome::NotAConfiguration, None, None));
        }
        Need::NameTaken { template, configuration } => {
            return Err(Error::precondition(format!(
                "group {name} runs launch configuration {configuration}, but the name {} is taken by launch template {}, which the group does \
                 not use and bakeroll adopt did not create for it; rename or delete that template, then run `bakeroll adopt` again",
                template.name, template.id
            )));
        }
        Need::Resume { configuration, template } => (configuration, Some(template)),
        Need::Create { configuration, .. } => (configuration, None),
    };
    let lc = ctx
        .cloud
        .autoscaling
        .describe_launch_configuration(&lc_name)
        .await
        .map_err(unchanged)?
        .ok_or_else(|| Error::precondition(format!("launch configuration {lc_name} of group {name} not found")))?;
    let translation = translate(&lc);
    if !translation.not_carried.is_empty() {
        let list = translation.not_carried.join("; ");
        if !force {
            return Err(Error::precondition(format!(
                "launch configuration {lc_name} of group {name} sets what a launch template cannot carry: {list}; pass --force to adopt without it"
            )));
        }
        ctx.events.warn(name, format!("adopting without what a launch template cannot carry (--force): {list}"));
    }
    let resumed = template.is_some();
    let template = match template {
        Some(t) => {
            ctx.events.info(name, format!("launch template {} ({}) was created by an earlier adopt: finishing it", t.name, t.id));
            t
        }
        None => {
            ctx.events.phase(name, Stage::Template, format!("creating launch template {tname} from launch configuration {lc_name}"));
            let v = ctx.cloud.ec2.create_launch_template(&tname, &translation.data, &format_mark(&lc_name, name)).await.map_err(unchanged)?;
            TemplateInfo { id: v.template_id, name: v.template_name, default_version: Some(1), latest_version: Some(1) }
        }
    };
    let created = format!("launch template {} ({}) created, group {name} still on launch configuration {lc_name}", template.name, template.id);
    // Verify after write: every field must read back as sent before any group launches from it.
    let got = ctx.cloud.ec2.launch_template_data(&template.id, 1).await.map_err(|e| Error::cloud(e, created.clone()))?;
    let diff = got.as_ref().map(|g| differences(&translation.data, g));
    match diff {
        Some(d) if d.is_empty() => {}
        other => {
            let what = other.map_or("version 1 does not exist".to_string(), |d| format!("{} differ from the launch configuration", d.join(", ")));
            return Err(Error::Unsettled {
                message: format!("launch template {} read back wrong: {what}", template.id),
                state: format!("{created}; delete the template (`aws ec2 delete-launch-template --launch-template-id {}`) and run adopt again", template.id),
            });
        }
    }
    switch(ctx, name, &template, &created).await?;
    verify(ctx, &group, &template, &instances).await?;
    ctx.events.info(name, format!("{name} launches from launch template {} version 1; no instance was replaced", template.name));
    Ok(AdoptReport {
        version: Some(1),
        resumed,
        not_carried: translation.not_carried,
        ..report(AdoptOutcome::Adopted, Some(&template), Some(lc_name))
    })
}

/// UpdateAutoScalingGroup onto version 1: "Existing instances are not affected."
async fn switch(ctx: &Ctx, name: &str, t: &TemplateInfo, created: &str) -> Result<()> {
    ctx.events.phase(name, Stage::Switch, format!("pointing {name} at launch template {} version 1 (no instance is replaced)", t.name));
    let config = Configuration::Template(TemplateRef { id: t.id.clone(), name: t.name.clone(), version: "1".into() });
    ctx.cloud.autoscaling.set_group_configuration(name, &config).await.map_err(|e| Error::cloud(e, created.to_string()))
}

/// The group must report the template (and no launch configuration) with the instances it had.
async fn verify(ctx: &Ctx, before: &Group, t: &TemplateInfo, instances: &[String]) -> Result<()> {
    let name = &before.name;
    let what = format!("group {name} to report launch template {} version 1 with the same {} instances", t.id, instances.len());
    let wait = Wait { what, every: SETTLE_POLL, timeout: SETTLE };
    let mut poller = Poller::start(&*ctx.cloud.clock, &wait);
    let ended = loop {
        let seen = ctx.cloud.autoscaling.describe_group(name).await.map(|g| match g {
            None => Check::Failed(format!("group {name} disappeared")),
            Some(g) => match problem(&g, t, instances) {
                None => Check::Ready(()),
                Some(p) => Check::NotYet(p),
            },
        });
        if let Some(ended) = poller.after(seen).await {
            break ended;
        }
    };
    let state = format!("group {name} was pointed at launch template {} version 1", t.id);
    match ended {
        Ok(Waited::Ready(())) | Ok(Waited::Unobserved { .. }) => Ok(()),
        Err(WaitError::Cloud(e)) => Err(Error::cloud(e, state)),
        Err(WaitError::TimedOut { last, .. } | WaitError::Failed(last)) => {
            Err(Error::Unsettled { message: format!("group {name} does not show the adoption: {last}"), state })
        }
    }
}

/// What keeps the group from showing the adoption, if anything.
fn problem(g: &Group, t: &TemplateInfo, before: &[String]) -> Option<String> {
    let on = g.launch_template.as_ref().filter(|lt| lt.id == t.id && lt.version == "1");
    if on.is_none() || g.launch_configuration.is_some() {
        return Some(format!("it reports {:?} / launch configuration {:?}", g.launch_template, g.launch_configuration));
    }
    let now: Vec<&str> = g.instances.iter().map(|i| i.id.as_str()).collect();
    let gone: Vec<&str> = before.iter().map(String::as_str).filter(|id| !now.contains(id)).collect();
    (!gone.is_empty()).then(|| format!("instances {} are no longer in the group", gone.join(", ")))
}
