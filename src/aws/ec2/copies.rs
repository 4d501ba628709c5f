//! `ImageCopyApi` for `Ec2`: CopyImage into this client's region (the tags of the copy and of its
//! snapshots in TagSpecifications, a ClientToken, a KMS key), and the
//! launch and create-volume permissions that share an image with another account.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermission, LaunchPermissionModifications, ResourceType,
};

use super::convert::tag_spec;
use super::Ec2;
use crate::aws::error::{missing, SdkResultExt};
use crate::cloud::{actions, CloudResult, CopyRequest, ImageCopyApi};

#[async_trait]
impl ImageCopyApi for Ec2 {
    async fn copy_image(&self, req: &CopyRequest) -> CloudResult<String> {
        const A: &str = actions::COPY_IMAGE.name;
        self.calls.record(A);
        let mut call = self
            .client
            .copy_image()
            .source_region(&req.source_region)
            .source_image_id(&req.source_image)
            .name(&req.name)
            .description(&req.description)
            .client_token(&req.client_token)
            // The source's tags come in `image_tags` (TagSpecifications), with the copy's own provenance:
            // CopyImageTags would put them on the image only, and carry the source's `bakeroll:source-ami`.
            .copy_image_tags(false)
            .tag_specifications(tag_spec(ResourceType::Image, &req.image_tags))
            .tag_specifications(tag_spec(ResourceType::Snapshot, &req.snapshot_tags));
        if let Some(key) = &req.kms_key_id {
            call = call.encrypted(true).kms_key_id(key);
        }
        let out = call.send().await.cloud(A)?;
        Ok(out.image_id().ok_or_else(|| missing(A, "ImageId"))?.to_string())
    }

    async fn share_image(&self, image_id: &str, account: &str) -> CloudResult<()> {
        const A: &str = actions::SHARE_IMAGE.name;
        self.calls.record(A);
        let add = LaunchPermissionModifications::builder().add(LaunchPermission::builder().user_id(account).build()).build();
        self.client.modify_image_attribute().image_id(image_id).launch_permission(add).send().await.cloud(A)?;
        Ok(())
    }

    async fn share_snapshot(&self, snapshot_id: &str, account: &str) -> CloudResult<()> {
        const A: &str = actions::SHARE_SNAPSHOT.name;
        self.calls.record(A);
        let add = CreateVolumePermissionModifications::builder().add(CreateVolumePermission::builder().user_id(account).build()).build();
        self.client.modify_snapshot_attribute().snapshot_id(snapshot_id).create_volume_permission(add).send().await.cloud(A)?;
        Ok(())
    }
}
