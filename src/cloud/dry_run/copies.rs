//! `DryRunApi` for copies and sharing: a copy is planned (a placeholder image, available at once, so
//! later checks of the plan see it), sharing is recorded; nothing is sent. Their permissions stay
//! unverified: the plan does not send them with DryRun.

use async_trait::async_trait;
use serde_json::json;

use super::ec2::{args, effect, DryRunApi};
use super::{planned_id, Change, Permission};
use crate::cloud::{actions, CloudResult, CopyRequest, ImageCopyApi};
use crate::core::model::{Image, ImageState};

#[async_trait]
impl ImageCopyApi for DryRunApi {
    async fn copy_image(&self, req: &CopyRequest) -> CloudResult<String> {
        let nth = self.dry.with_world(|w| w.images.len() + 1);
        let (ami, snap) = (planned_id("ami", nth), planned_id("snap", nth));
        let image = Image {
            id: ami.clone(),
            name: req.name.clone(),
            state: ImageState::Available,
            creation_date: String::new(),
            tags: req.image_tags.clone(),
            snapshot_ids: vec![snap.clone()],
            state_reason: None,
            architecture: None,
            owner: None,
            encrypted: false,
            protection: crate::core::model::Protection::Disabled,
        };
        self.dry.with_world(|w| w.images.push(image));
        let a = args(&[
            ("source_region", json!(req.source_region)),
            ("source_image", json!(req.source_image)),
            ("name", json!(req.name)),
            ("kms_key_id", json!(req.kms_key_id)),
            ("client_token", json!(req.client_token)),
        ]);
        let detail = format!("copy of {} from {}{}", req.source_image, req.source_region, req.kms_key_id.as_ref().map(|k| format!(", encrypted with {k}")).unwrap_or_default());
        let effects = vec![effect(Change::Create, "image", &ami, detail), effect(Change::Create, "snapshot", &snap, "the copy's snapshot")];
        self.dry.write(actions::COPY_IMAGE.name, a, effects, Permission::Unverified, "not sent with DryRun".into());
        Ok(ami)
    }

    async fn share_image(&self, image_id: &str, account: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Change, "image", image_id, format!("launch permission for account {account}"))];
        let a = args(&[("image_id", json!(image_id)), ("account", json!(account))]);
        self.dry.write(actions::SHARE_IMAGE.name, a, effects, Permission::Unverified, "not sent with DryRun".into());
        Ok(())
    }

    async fn share_snapshot(&self, snapshot_id: &str, account: &str) -> CloudResult<()> {
        let effects = vec![effect(Change::Change, "snapshot", snapshot_id, format!("create-volume permission for account {account}"))];
        let a = args(&[("snapshot_id", json!(snapshot_id)), ("account", json!(account))]);
        self.dry.write(actions::SHARE_SNAPSHOT.name, a, effects, Permission::Unverified, "not sent with DryRun".into());
        Ok(())
    }
}
