//! `Ec2`: the `Ec2Api` adapter over aws-sdk-ec2 (images, build instances, snapshots, tags) and the
//! launch-template calls, which live in `ec2/templates.rs`. SDK → domain conversions are in `ec2/convert.rs`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceStatusSummary, InstanceType, ResourceType, SummaryStatus,
};
use aws_sdk_ec2::operation::create_image::builders::CreateImageFluentBuilder;
use aws_sdk_ec2::operation::create_tags::builders::CreateTagsFluentBuilder;
use aws_sdk_ec2::operation::delete_tags::builders::DeleteTagsFluentBuilder;
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::Client;
use base64::prelude::{Engine as _, BASE64_STANDARD};

use super::error::{from_sdk, missing, SdkResultExt};
use crate::cloud::{actions, CallLedger, CloudError, CloudResult, DryRunOp, Ec2Api, ErrorKind};
use crate::core::model::*;

mod convert;
mod copies;
mod template_data;
mod templates;

use convert::{decode_console, filter, filter_values, image, instance, non_empty, tag_spec, tags_to_sdk};

/// States that count as "not terminated" for `find_instances`.
const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

pub struct Ec2 {
    client: Client,
    calls: CallLedger,
}

impl Ec2 {
    pub fn new(client: Client, calls: CallLedger) -> Self {
        Self { client, calls }
    }

    /// The RunInstances request for a build instance, shared by the real call and its DryRun.
    fn run_instances(&self, spec: &LaunchSpec) -> RunInstancesFluentBuilder {
        // The SDK fills RunInstances' ClientToken itself, so its own retries never launch a second instance.
        let mut req = self
            .client
            .run_instances()
            .client_token(super::client_token())
            .image_id(&spec.image_id)
            .instance_type(InstanceType::from(spec.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .set_subnet_id(spec.subnet_id.clone())
            .set_security_group_ids(non_empty(&spec.security_group_ids));
        if let Some(profile) = &spec.iam_instance_profile {
            let p = IamInstanceProfileSpecification::builder();
            let p = if profile.starts_with("arn:") { p.arn(profile) } else { p.name(profile) };
            req = req.iam_instance_profile(p.build());
        }
        if let Some(user_data) = &spec.user_data {
            req = req.user_data(BASE64_STANDARD.encode(user_data));
        }
        if !spec.tags.is_empty() {
            // Tag the root volume too, so a leaked volume can be traced back to its bake.
            req = req
                .tag_specifications(tag_spec(ResourceType::Instance, &spec.tags))
                .tag_specifications(tag_spec(ResourceType::Volume, &spec.tags));
        }
        req
    }

    fn create_image_request(
        &self,
        instance_id: &str,
        name: &str,
        description: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> CreateImageFluentBuilder {
        let mut req = self
            .client
            .create_image()
            .instance_id(instance_id)
            .name(name)
            .description(description)
            .no_reboot(no_reboot);
        // Image only: moto answers HTTP 500 to a `snapshot` tag specification; the engine tags the
        // snapshots with CreateTags once the image is available (AWS accepts either way).
        if !tags.is_empty() {
            req = req.tag_specifications(tag_spec(ResourceType::Image, tags));
        }
        req
    }

    fn create_tags_request(&self, resource_ids: &[String], tags: &Tags) -> CreateTagsFluentBuilder {
        self.client.create_tags().set_resources(Some(resource_ids.to_vec())).set_tags(Some(tags_to_sdk(tags)))
    }

    /// DeleteTags by key alone: "If you omit Value, we delete the tag regardless of its value."
    fn delete_tags_request(&self, resource_ids: &[String], keys: &[String]) -> DeleteTagsFluentBuilder {
        let tags = keys.iter().map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build()).collect();
        self.client.delete_tags().set_resources(Some(resource_ids.to_vec())).set_tags(Some(tags))
    }

    /// DescribeInstances over every page for the given filters.
    async fn instances_matching(&self, filters: Vec<Filter>) -> CloudResult<Vec<Instance>> {
        const A: &str = actions::DESCRIBE_INSTANCES.name;
        self.calls.record(A);
        let pages =
            self.client.describe_instances().set_filters(Some(filters)).into_paginator().send().try_collect().await;
        let mut out = Vec::new();
        for page in pages.cloud(A)? {
            for reservation in page.reservations() {
                for i in reservation.instances() {
                    out.push(instance(A, i)?);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Ec2Api for Ec2 {
    async fn find_images(&self, f: &ImageFilter) -> CloudResult<Vec<Image>> {
        const A: &str = actions::DESCRIBE_IMAGES.name;
        self.calls.record(A);
        let mut req = self.client.describe_images().set_image_ids(non_empty(&f.ids)).set_owners(non_empty(&f.owners));
        if let Some(name) = &f.name {
            req = req.filters(filter("name", name));
        }
        for (k, v) in &f.tags {
            req = req.filters(filter(&format!("tag:{k}"), v));
        }
        let images = req.into_paginator().items().send().try_collect().await.cloud(A)?;
        images.iter().map(|i| image(A, i)).collect()
    }

    async fn launch_instance(&self, spec: &LaunchSpec) -> CloudResult<Instance> {
        const A: &str = actions::RUN_INSTANCES.name;
        self.calls.record(A);
        let out = self.run_instances(spec).send().await.cloud(A)?;
        let first = out.instances().first().ok_or_else(|| missing(A, "Instances"))?;
        instance(A, first)
    }

    async fn describe_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The instance-id *filter* rather than InstanceIds: with InstanceIds one unknown (or not yet
        // visible, EC2 being eventually consistent) id fails the whole call with InvalidInstanceID.NotFound;
        // a filter simply leaves it out, which is what the trait promises.
        self.instances_matching(vec![filter_values("instance-id", ids)]).await
    }

    async fn find_instances(&self, tags: &Tags) -> CloudResult<Vec<Instance>> {
        let mut filters: Vec<Filter> = tags.iter().map(|(k, v)| filter(&format!("tag:{k}"), v)).collect();
        filters.push(filter_values("instance-state-name", &LIVE_STATES.map(String::from)));
        self.instances_matching(filters).await
    }

    async fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>> {
        const A: &str = actions::DESCRIBE_INSTANCE_STATUS.name;
        self.calls.record(A);
        // IncludeAllInstances: without it a pending instance is simply absent from the answer.
        let out = match self.client.describe_instance_status().instance_ids(id).include_all_instances(true).send().await
        {
            Ok(out) => out,
            // A just-launched instance may not be visible yet: "no status yet", not a failure.
            Err(e) => match from_sdk(A, e) {
                e if e.kind == ErrorKind::NotFound => return Ok(None),
                e => return Err(e),
            },
        };
        let Some(status) = out.instance_statuses().first() else { return Ok(None) };
        let ok = |s: Option<&InstanceStatusSummary>| s.and_then(|s| s.status()) == Some(&SummaryStatus::Ok);
        Ok(Some(ok(status.instance_status()) && ok(status.system_status())))
    }

    async fn console_output(&self, id: &str) -> CloudResult<String> {
        const A: &str = actions::GET_CONSOLE_OUTPUT.name;
        self.calls.record(A);
        // Latest=true (the live buffer) works only on Nitro instances; others refuse it with an error such as
        // UnsupportedOperation, so ask again for the last-boot snapshot.
        let out = match self.client.get_console_output().instance_id(id).latest(true).send().await {
            Ok(out) => out,
            Err(e) => match from_sdk(A, e) {
                e if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Other) => {
                    self.client.get_console_output().instance_id(id).send().await.cloud(A)?
                }
                e => return Err(e),
            },
        };
        Ok(out.output().map(decode_console).unwrap_or_default())
    }

    async fn create_image(
        &self,
        instance_id: &str,
        name: &str,
        description: &str,
        no_reboot: bool,
        tags: &Tags,
    ) -> CloudResult<String> {
        const A: &str = actions::CREATE_IMAGE.name;
        self.calls.record(A);
        let out = self.create_image_request(instance_id, name, description, no_reboot, tags).send().await.cloud(A)?;
        out.image_id().map(str::to_string).ok_or_else(|| missing(A, "ImageId"))
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        const A: &str = actions::CREATE_TAGS.name;
        if resource_ids.is_empty() || tags.is_empty() {
            return Ok(()); // nothing to do; AWS would reject the empty list
        }
        self.calls.record(A);
        self.create_tags_request(resource_ids, tags).send().await.cloud(A)?;
        Ok(())
    }

    async fn delete_tags(&self, resource_ids: &[String], keys: &[String]) -> CloudResult<()> {
        const A: &str = actions::DELETE_TAGS.name;
        if resource_ids.is_empty() || keys.is_empty() {
            return Ok(()); // nothing to do (an empty Tag list would delete every tag)
        }
        self.calls.record(A);
        self.delete_tags_request(resource_ids, keys).send().await.cloud(A)?;
        Ok(())
    }

    async fn enable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        const A: &str = actions::ENABLE_IMAGE_PROTECTION.name;
        self.calls.record(A);
        // Without cooldown: prune, the only one to turn it off again, does so right before deregistering.
        self.client.enable_image_deregistration_protection().image_id(image_id).with_cooldown(false).send().await.cloud(A)?;
        Ok(())
    }

    async fn disable_deregistration_protection(&self, image_id: &str) -> CloudResult<()> {
        const A: &str = actions::DISABLE_IMAGE_PROTECTION.name;
        self.calls.record(A);
        self.client.disable_image_deregistration_protection().image_id(image_id).send().await.cloud(A)?;
        Ok(())
    }

    async fn terminate_instances(&self, ids: &[String]) -> CloudResult<()> {
        const A: &str = actions::TERMINATE_INSTANCES.name;
        if ids.is_empty() {
            return Ok(());
        }
        self.calls.record(A);
        self.client.terminate_instances().set_instance_ids(Some(ids.to_vec())).send().await.cloud(A)?;
        Ok(())
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        const A: &str = actions::DEREGISTER_IMAGE.name;
        self.calls.record(A);
        self.client.deregister_image().image_id(image_id).send().await.cloud(A)?;
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        const A: &str = actions::DELETE_SNAPSHOT.name;
        self.calls.record(A);
        self.client.delete_snapshot().snapshot_id(snapshot_id).send().await.cloud(A)?;
        Ok(())
    }

    async fn find_snapshots(&self, tags: &Tags) -> CloudResult<Vec<Snapshot>> {
        const A: &str = actions::DESCRIBE_SNAPSHOTS.name;
        self.calls.record(A);
        let filters: Vec<Filter> = tags.iter().map(|(k, v)| filter(&format!("tag:{k}"), v)).collect();
        let found = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .cloud(A)?;
        found
            .iter()
            .map(|s| {
                let id = s.snapshot_id().ok_or_else(|| missing(A, "SnapshotId"))?.to_string();
                Ok(Snapshot { id, tags: convert::tags_from_sdk(s.tags()) })
            })
            .collect()
    }

    async fn launch_template_versions(&self, template_id: &str, versions: &[String]) -> CloudResult<Vec<LtVersion>> {
        templates::versions(&self.client, &self.calls, template_id, versions).await
    }

    async fn create_launch_template_version(
        &self,
        template_id: &str,
        source_version: i64,
        image_id: &str,
        description: &str,
    ) -> CloudResult<LtVersion> {
        templates::create_version(&self.client, &self.calls, template_id, source_version, image_id, description).await
    }

    async fn set_default_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        templates::set_default(&self.client, &self.calls, template_id, version).await
    }

    async fn launch_template_data(&self, template_id: &str, version: i64) -> CloudResult<Option<TemplateData>> {
        templates::data(&self.client, &self.calls, template_id, version).await
    }

    async fn find_launch_template(&self, name: &str) -> CloudResult<Option<TemplateInfo>> {
        templates::find(&self.client, &self.calls, name).await
    }

    async fn create_launch_template(&self, name: &str, data: &TemplateData, description: &str) -> CloudResult<LtVersion> {
        templates::create_template(&self.client, &self.calls, name, data, description).await
    }

    async fn delete_launch_template_version(&self, template_id: &str, version: i64) -> CloudResult<()> {
        templates::delete_version(&self.client, &self.calls, template_id, version).await
    }

    async fn check_permission(&self, op: &DryRunOp) -> CloudResult<()> {
        let a = op.action().name;
        self.calls.record(a);
        let c = &self.client;
        match op {
            DryRunOp::RunInstances(spec) => dry_run(a, self.run_instances(spec).dry_run(true).send().await),
            DryRunOp::CreateImage { instance_id, name, description, no_reboot, tags } => {
                let req = self.create_image_request(instance_id, name, description, *no_reboot, tags);
                dry_run(a, req.dry_run(true).send().await)
            }
            DryRunOp::CreateTags { resource_ids, tags } => {
                dry_run(a, self.create_tags_request(resource_ids, tags).dry_run(true).send().await)
            }
            DryRunOp::TerminateInstances { ids } => {
                dry_run(a, c.terminate_instances().set_instance_ids(Some(ids.clone())).dry_run(true).send().await)
            }
            DryRunOp::DeregisterImage { image_id } => {
                dry_run(a, c.deregister_image().image_id(image_id).dry_run(true).send().await)
            }
            DryRunOp::DeleteSnapshot { snapshot_id } => {
                dry_run(a, c.delete_snapshot().snapshot_id(snapshot_id).dry_run(true).send().await)
            }
            DryRunOp::CreateLaunchTemplateVersion { template_id, source_version, image_id, description } => {
                let req = templates::create_version_request(c, template_id, *source_version, image_id, description);
                dry_run(a, req.dry_run(true).send().await)
            }
            DryRunOp::ModifyLaunchTemplate { template_id, default_version } => {
                dry_run(a, templates::set_default_request(c, template_id, *default_version).dry_run(true).send().await)
            }
            DryRunOp::CreateLaunchTemplate { name, data, description } => {
                dry_run(a, templates::create_template_request(c, name, data, description).dry_run(true).send().await)
            }
            DryRunOp::DeleteLaunchTemplateVersion { template_id, version } => {
                dry_run(a, templates::delete_version_request(c, template_id, *version).dry_run(true).send().await)
            }
            DryRunOp::DeleteTags { resource_ids, keys } => dry_run(a, self.delete_tags_request(resource_ids, keys).dry_run(true).send().await),
            DryRunOp::EnableImageDeregistrationProtection { image_id } => {
                let req = c.enable_image_deregistration_protection().image_id(image_id).with_cooldown(false);
                dry_run(a, req.dry_run(true).send().await)
            }
            DryRunOp::DisableImageDeregistrationProtection { image_id } => {
                dry_run(a, c.disable_image_deregistration_protection().image_id(image_id).dry_run(true).send().await)
            }
        }
    }
}

/// A DryRun answer: `DryRunOperation` is the yes. A success means the endpoint ignored DryRun and
/// really did it, which must never pass as a permission check.
fn dry_run<T, E>(action: &str, result: Result<T, aws_sdk_ec2::error::SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>) -> CloudResult<()>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Err(e) => match from_sdk(action, e) {
            e if e.kind == ErrorKind::DryRunOk => Ok(()),
            e => Err(e),
        },
        Ok(_) => Err(CloudError::with_kind(
            action,
            ErrorKind::Other,
            Some("DryRunIgnored"),
            "the endpoint performed the request instead of a dry run",
        )),
    }
}
