//! What `bakeroll init` needs to know about existing groups before a pipeline file exists: each
//! group's launch template and the image it launches, its target groups, its capacity — or why bakeroll
//! cannot deploy it. Read-only; takes a bare `Cloud` because there is no pipeline (no `Ctx`) yet.

use crate::cloud::{Cloud, CloudError};
use crate::core::health::tg_name;
use crate::core::model::{Image, ImageFilter};
use crate::core::tags;
use crate::error::{Error, Result};

/// One group as found.
#[derive(Debug, Clone)]
pub struct Found {
    pub group: String,
    pub template_id: String,
    pub template_name: String,
    /// As the group stores it: a number, `$Latest` or `$Default`.
    pub version_ref: String,
    pub image: Option<Image>,
    pub target_groups: Vec<String>,
    pub desired: i32,
}

fn unchanged(e: CloudError) -> Error {
    Error::cloud(e, "nothing was changed")
}

/// Reads each group; the first one bakeroll cannot use is an error naming it and why.
pub async fn groups(cloud: &Cloud, names: &[String], region: Option<&str>) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for name in names {
        let group = cloud.autoscaling.describe_group(name).await.map_err(unchanged)?.ok_or_else(|| {
            let region = region.map(|r| format!(" in region {r}")).unwrap_or_default();
            Error::precondition(format!("Auto Scaling group {name} not found{region} (is the region right? pass --region)"))
        })?;
        let template = super::preflight::deployable_template(name, &group)?;
        let versions = cloud.ec2.launch_template_versions(&template.id, std::slice::from_ref(&template.version)).await.map_err(unchanged)?;
        let image_id = versions.first().and_then(|v| v.image_id.clone());
        let image = match &image_id {
            Some(id) => cloud.ec2.find_images(&ImageFilter { ids: vec![id.clone()], ..Default::default() }).await.map_err(unchanged)?.into_iter().next(),
            None => None,
        };
        out.push(Found {
            group: name.clone(),
            template_id: template.id,
            template_name: template.name,
            version_ref: template.version,
            image,
            target_groups: group.target_group_arns.iter().map(|a| tg_name(a).to_string()).collect(),
            desired: group.desired_capacity,
        });
    }
    Ok(out)
}

/// The base image a first bake should start from: the image the running release was baked from (its
/// `bakeroll:source-ami` tag), else the running image itself — a bake then builds on what runs today.
pub fn base_image(found: &[Found]) -> Option<String> {
    let image = found.iter().find_map(|f| f.image.as_ref())?;
    Some(image.tags.get(tags::SOURCE_AMI).filter(|s| s.starts_with("ami-")).cloned().unwrap_or_else(|| image.id.clone()))
}
