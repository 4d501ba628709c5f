//! Launch-template versions for `Ec2`: list (all pages), create from a source version with a new image,
//! make a version the default, and delete one.

use aws_sdk_ec2::operation::create_launch_template_version::builders::CreateLaunchTemplateVersionFluentBuilder;
use aws_sdk_ec2::operation::delete_launch_template_versions::builders::DeleteLaunchTemplateVersionsFluentBuilder;
use aws_sdk_ec2::operation::modify_launch_template::builders::ModifyLaunchTemplateFluentBuilder;
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_ec2::Client;

use super::convert::{lt_version, truncate_chars};
use crate::aws::error::{missing, SdkResultExt};
use crate::cloud::{actions, CallLedger, CloudError, CloudResult};
use crate::core::model::LtVersion;

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
