//! Launch-template versions for `Ec2`: list (all pages), create from a source version with a new image,
//! make a version the default, and delete one; and for `adopt`: find a template by name, create one,
//! read a version's data.

use aws_sdk_ec2::operation::create_launch_template::builders::CreateLaunchTemplateFluentBuilder;
use aws_sdk_ec2::operation::create_launch_template_version::builders::CreateLaunchTemplateVersionFluentBuilder;
use aws_sdk_ec2::operation::delete_launch_template_versions::builders::DeleteLaunchTemplateVersionsFluentBuilder;
use aws_sdk_ec2::operation::modify_launch_template::builders::ModifyLaunchTemplateFluentBuilder;
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_ec2::Client;

use super::convert::{lt_version, truncate_chars};
use super::template_data;
use crate::aws::error::{missing, SdkResultExt};
use crate::cloud::{actions, CallLedger, CloudError, CloudResult};
use crate::core::model::{LtVersion, TemplateData, TemplateInfo};

/// The API maximum for MaxResults. AWS pages at its own size without it; moto stops at 15 and sends
/// no NextToken, so asking for 200 also makes plain moto return up to 200 versions.
const PAGE_SIZE: i32 = 200;

/// The API's limit on VersionDescription.
const DESCRIPTION_MAX_CHARS: usize = 255;

pub(super) async fn versions(
    client: &Client,
    calls: &CallLedger,
    template_id: &str,
    versions: &[String],
) -> CloudResult<Vec<LtVersion>> {
    const A: &str = actions::DESCRIBE_LT_VERSIONS.name;
    calls.record(A);
    let mut req = client.describe_launch_template_versions().launch_template_id(template_id);
    if versions.is_empty() {
        req = req.max_results(PAGE_SIZE);
    } else {
        req = req.set_versions(Some(versions.to_vec()));
    }
    // The paginator follows NextToken until it is absent or empty (and stops on a repeated token).
    let found = req.into_paginator().items().send().try_collect().await.cloud(A)?;
    found.iter().map(|v| lt_version(A, v)).collect()
}

/// The CreateLaunchTemplateVersion request, shared by the real call and its DryRun.
pub(super) fn create_version_request(
    client: &Client,
    template_id: &str,
    source_version: i64,
    image_id: &str,
    description: &str,
) -> CreateLaunchTemplateVersionFluentBuilder {
    // With SourceVersion, AWS copies that version and overrides only what LaunchTemplateData sets.
    client
        .create_launch_template_version()
        .client_token(crate::aws::client_token())
        .launch_template_id(template_id)
        .source_version(source_version.to_string())
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(image_id).build())
        .version_description(truncate_chars(description, DESCRIPTION_MAX_CHARS))
}

pub(super) async fn create_version(
    client: &Client,
    calls: &CallLedger,
    template_id: &str,
    source_version: i64,
    image_id: &str,
    description: &str,
) -> CloudResult<LtVersion> {
    const A: &str = actions::CREATE_LT_VERSION.name;
    calls.record(A);
    let out = create_version_request(client, template_id, source_version, image_id, description).send().await.cloud(A)?;
    if let Some(w) = out.warning() {
        // AWS creates the version but warns about invalid parameters in it; keep the operator informed.
        for e in w.errors() {
            tracing::warn!(
                template_id,
                code = e.code().unwrap_or_default(),
                "launch template version warning: {}",
                e.message().unwrap_or_default()
            );
        }
    }
    let version = out.launch_template_version().ok_or_else(|| missing(A, "LaunchTemplateVersion"))?;
    lt_version(A, version)
}

/// The ModifyLaunchTemplate request that makes `version` the default, shared with its DryRun.
pub(super) fn set_default_request(client: &Client, template_id: &str, version: i64) -> ModifyLaunchTemplateFluentBuilder {
    client.modify_launch_template().launch_template_id(template_id).default_version(version.to_string())
}

pub(super) async fn set_default(
    client: &Client,
    calls: &CallLedger,
    template_id: &str,
    version: i64,
) -> CloudResult<()> {
    const A: &str = actions::MODIFY_LT.name;
    calls.record(A);
    set_default_request(client, template_id, version).send().await.cloud(A)?;
    Ok(())
}

/// One version's launch data; None when the version does not exist.
pub(super) async fn data(client: &Client, calls: &CallLedger, template_id: &str, version: i64) -> CloudResult<Option<TemplateData>> {
    const A: &str = actions::DESCRIBE_LT_VERSIONS.name;
    calls.record(A);
    let out = client.describe_launch_template_versions().launch_template_id(template_id).versions(version.to_string()).send().await;
    match out.cloud(A) {
        Ok(o) => Ok(o.launch_template_versions().first().and_then(|v| v.launch_template_data()).map(template_data::response)),
        Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The template with this exact name. A filter, not LaunchTemplateNames: an unknown name is then an
/// empty answer, not an error.
pub(super) async fn find(client: &Client, calls: &CallLedger, name: &str) -> CloudResult<Option<TemplateInfo>> {
    const A: &str = actions::DESCRIBE_LTS.name;
    calls.record(A);
    let filter = aws_sdk_ec2::types::Filter::builder().name("launch-template-name").values(name).build();
    let out = client.describe_launch_templates().filters(filter).send().await.cloud(A)?;
    Ok(out.launch_templates().iter().find(|t| t.launch_template_name() == Some(name)).map(|t| TemplateInfo {
        id: t.launch_template_id().unwrap_or_default().to_string(),
        name: name.to_string(),
        default_version: t.default_version_number(),
        latest_version: t.latest_version_number(),
    }))
}

/// The CreateLaunchTemplate request, shared by the real call and its DryRun.
pub(super) fn create_template_request(client: &Client, name: &str, data: &TemplateData, description: &str) -> CreateLaunchTemplateFluentBuilder {
    client
        .create_launch_template()
        .client_token(crate::aws::client_token())
        .launch_template_name(name)
        .version_description(truncate_chars(description, DESCRIPTION_MAX_CHARS))
        .launch_template_data(template_data::request(data))
}

pub(super) async fn create_template(client: &Client, calls: &CallLedger, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion> {
    const A: &str = actions::CREATE_LT.name;
    calls.record(A);
    let out = create_template_request(client, name, data, description).send().await.cloud(A)?;
    let t = out.launch_template().ok_or_else(|| missing(A, "LaunchTemplate"))?;
    Ok(LtVersion {
        template_id: t.launch_template_id().ok_or_else(|| missing(A, "LaunchTemplateId"))?.to_string(),
        template_name: t.launch_template_name().unwrap_or(name).to_string(),
        number: t.latest_version_number().unwrap_or(1),
        image_id: data.image_id.clone(),
        description: Some(description.to_string()),
        is_default: true,
        created: crate::aws::iso8601(t.create_time()),
    })
}

/// The DeleteLaunchTemplateVersions request for one version, shared with its DryRun.
pub(super) fn delete_version_request(client: &Client, template_id: &str, version: i64) -> DeleteLaunchTemplateVersionsFluentBuilder {
    client.delete_launch_template_versions().launch_template_id(template_id).versions(version.to_string())
}

/// Deletes one version. EC2 answers per version; a version that no longer exists counts as deleted
/// (a retry after a lost answer finds it gone).
pub(super) async fn delete_version(client: &Client, calls: &CallLedger, template_id: &str, version: i64) -> CloudResult<()> {
    const A: &str = actions::DELETE_LT_VERSIONS.name;
    calls.record(A);
    let out = delete_version_request(client, template_id, version).send().await.cloud(A)?;
    match out.unsuccessfully_deleted_launch_template_versions().iter().find_map(|f| f.response_error()) {
        None => Ok(()),
        Some(e) if e.code().is_some_and(|c| c.as_str() == "launchTemplateVersionDoesNotExist") => Ok(()),
        Some(e) => Err(CloudError::service(A, e.code().map(|c| c.as_str()), e.message().unwrap_or_default())),
    }
}
