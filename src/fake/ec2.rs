//! EC2 images and snapshots: DescribeImages filters, CreateImage (pending → available, one snapshot per image),
//! CreateTags and DeleteTags, deregistration protection, DeregisterImage and DeleteSnapshot, with EC2's error codes.

use crate::cloud::actions;
use std::collections::BTreeSet;

use tokio::time::Instant;

use super::conventions::{err, glob, ACCOUNT};
use super::instances::not_found as instance_not_found;
use super::resource_records::{Health, ImageRec, SnapshotRec};
use super::state::State;
use crate::cloud::{CloudError, CloudResult};
use crate::core::model::*;

impl State {
    /// Registers an image and its snapshot. `ready_at` None means available at once (fixtures).
    pub fn insert_image(&mut self, name: &str, owner: &str, tags: Tags, ready_at: Option<Instant>) -> String {
        let id = self.next_id("ami");
        let snapshot_id = self.next_id("snap");
        self.snapshots
            .insert(snapshot_id.clone(), SnapshotRec { tags: Tags::new() });
        let rec = ImageRec {
            id: id.clone(),
            name: name.to_string(),
            owner: owner.to_string(),
            state: if ready_at.is_some() {
                ImageState::Pending
            } else {
                ImageState::Available
            },
            created: self.now,
            ready_at,
            will_fail: false,
            tags,
            snapshot_id,
            state_reason: None,
            inherited: None,
            architecture: "x86_64".to_string(),
            kms_key: None,
            protected: false,
        };
        self.images.insert(id.clone(), rec);
        id
    }

    pub fn step_images(&mut self, t: Instant) {
        let wake = &self.wake;
        for img in self.images.values_mut() {
            if img.state == ImageState::Pending && img.ready_at.is_some_and(|at| wake.due(at, t)) {
                if img.will_fail {
                    img.state = ImageState::Failed;
                    img.state_reason = Some("Server.InternalError: Internal error on snapshot creation".into());
                } else {
                    img.state = ImageState::Available;
                }
            }
        }
    }

    pub fn image_view(&self, img: &ImageRec) -> Image {
        Image {
            id: img.id.clone(),
            name: img.name.clone(),
            state: img.state.clone(),
            creation_date: self.iso(img.created),
            tags: img.tags.clone(),
            snapshot_ids: vec![img.snapshot_id.clone()],
            state_reason: img.state_reason.clone(),
            architecture: Some(img.architecture.clone()),
            owner: Some(img.owner.clone()),
            encrypted: img.kms_key.is_some(),
            protection: if img.protected { Protection::Enabled } else { Protection::Disabled },
        }
    }

    /// Deregistered images are not listed; asking for an id EC2 never had is an error, as in EC2.
    pub fn find_images(&self, f: &ImageFilter) -> CloudResult<Vec<Image>> {
        for id in &f.ids {
            if !id.starts_with("ami-") {
                return Err(err(
                    actions::DESCRIBE_IMAGES.name,
                    "InvalidAMIID.Malformed",
                    format!("Invalid id: \"{id}\""),
                ));
            }
            if !self.images.contains_key(id) {
                return Err(image_not_found(actions::DESCRIBE_IMAGES.name, id));
            }
        }
        let owner_ok = |img: &ImageRec| {
            f.owners.is_empty()
                || f.owners
                    .iter()
                    .any(|o| *o == img.owner || (o == "self" && img.owner == ACCOUNT))
        };
        Ok(self
            .images
            .values()
            .filter(|img| img.state != ImageState::Deregistered)
            .filter(|img| f.ids.is_empty() || f.ids.contains(&img.id))
            .filter(|img| owner_ok(img))
            .filter(|img| f.name.as_deref().is_none_or(|pat| glob(pat, &img.name)))
            .filter(|img| {
                f.tags
                    .iter()
                    .all(|(k, v)| img.tags.get(k).is_some_and(|have| glob(v, have)))
            })
            .map(|img| self.image_view(img))
            .collect())
    }

    /// Tags go on the image only: the engine must tag the snapshot itself (moto rejects snapshot tags in
    /// CreateImage, so an adapter may not send them).
    /// The description is accepted and not modelled (the domain `Image` has none).
    pub fn create_image(&mut self, instance_id: &str, name: &str, no_reboot: bool, tags: &Tags) -> CloudResult<String> {
        const A: &str = actions::CREATE_IMAGE.name;
        let inst = self
            .instances
            .get(instance_id)
            .ok_or_else(|| instance_not_found(A, instance_id))?;
        if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
            let msg = format!("The instance '{instance_id}' is not in a state from which it can be imaged.");
            return Err(err(A, "IncorrectInstanceState", msg));
        }
        let name_ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
        if !(3..=128).contains(&name.len()) || !name_ok {
            let msg = format!("AMI names must be 3-128 characters of letters, numbers and ()[] ./-'@_ : {name:?}");
            return Err(err(A, "InvalidAMIName.Malformed", msg));
        }
        if let Some(other) = self
            .images
            .values()
            .find(|i| i.name == name && i.owner == ACCOUNT && i.state != ImageState::Deregistered)
        {
            return Err(err(
                A,
                "InvalidAMIName.Duplicate",
                format!("AMI name {name} is already in use by AMI {}", other.id),
            ));
        }
        validate_tags(A, tags)?;
        let (inherited, running) = (self.instance_health(instance_id), inst.state == InstanceState::Running);
        let arch = self.images.get(&inst.image_id).map_or_else(|| "x86_64".to_string(), |i| i.architecture.clone());
        let ready_at = Some(self.now + self.timings.image_available);
        let id = self.insert_image(name, ACCOUNT, tags.clone(), ready_at);
        let fail = self.faults.fail_new_images;
        let img = self.images.get_mut(&id).expect("just inserted");
        img.will_fail = fail;
        img.inherited = (inherited != Health::Healthy).then_some(inherited);
        img.architecture = arch;
        if running && !no_reboot {
            if let Some(i) = self.instances.get_mut(instance_id) {
                i.console.push("reboot: Restarting system (CreateImage)".to_string());
            }
        }
        Ok(id)
    }

    /// All or nothing, like EC2: every resource must exist and stay within 50 tags before any is tagged.
    pub fn create_tags(&mut self, ids: &[String], tags: &Tags) -> CloudResult<()> {
        const A: &str = actions::CREATE_TAGS.name;
        validate_tags(A, tags)?;
        for id in ids {
            let have = self.taggable(A, id)?;
            if have.keys().chain(tags.keys()).collect::<BTreeSet<_>>().len() > 50 {
                return Err(err(A, "TagLimitExceeded", format!("{id} would have more than 50 tags")));
            }
        }
        for id in ids {
            let target = match id.split('-').next() {
                Some("ami") => self.images.get_mut(id).map(|i| &mut i.tags),
                Some("snap") => self.snapshots.get_mut(id).map(|s| &mut s.tags),
                _ => self.instances.get_mut(id).map(|i| &mut i.tags),
            };
            target
                .expect("checked above")
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(())
    }

    /// DeleteTags by key, all or nothing like CreateTags; a key the resource does not have is no error.
    pub fn delete_tags(&mut self, ids: &[String], keys: &[String]) -> CloudResult<()> {
        const A: &str = actions::DELETE_TAGS.name;
        for id in ids {
            self.taggable(A, id)?;
        }
        for id in ids {
            let target = match id.split('-').next() {
                Some("ami") => self.images.get_mut(id).map(|i| &mut i.tags),
                Some("snap") => self.snapshots.get_mut(id).map(|s| &mut s.tags),
                _ => self.instances.get_mut(id).map(|i| &mut i.tags),
            };
            let tags = target.expect("checked above");
            for k in keys {
                tags.remove(k);
            }
        }
        Ok(())
    }

    /// Enable/DisableImageDeregistrationProtection (without cooldown): only the owner may, as EC2 says.
    pub fn set_protection(&mut self, action: &str, id: &str, on: bool) -> CloudResult<()> {
        match self.images.get_mut(id) {
            Some(img) if img.state == ImageState::Deregistered => {
                Err(err(action, "InvalidAMIID.Unavailable", format!("The image id '[{id}]' is no longer available")))
            }
            Some(img) if img.owner != ACCOUNT => Err(err(action, "AuthFailure", format!("Not authorized for image:{id}"))),
            Some(img) => {
                img.protected = on;
                Ok(())
            }
            None => Err(image_not_found(action, id)),
        }
    }

    fn taggable(&self, action: &str, id: &str) -> CloudResult<&Tags> {
        match id.split('-').next() {
            Some("ami") => self
                .images
                .get(id)
                .filter(|i| i.state != ImageState::Deregistered)
                .map(|i| &i.tags)
                .ok_or_else(|| image_not_found(action, id)),
            Some("snap") => self
                .snapshots
                .get(id)
                .map(|s| &s.tags)
                .ok_or_else(|| snapshot_not_found(action, id)),
            Some("i") => self
                .instances
                .get(id)
                .map(|i| &i.tags)
                .ok_or_else(|| instance_not_found(action, id)),
            _ => Err(err(action, "InvalidID", format!("The ID '{id}' is not valid"))),
        }
    }

    /// Refused while deregistration protection is on (the local AWS's `OperationNotPermitted`, see
    /// scripts/emulator/README.md: AWS documents no code for it).
    pub fn deregister_image(&mut self, id: &str) -> CloudResult<()> {
        match self.images.get_mut(id) {
            Some(img) if img.state != ImageState::Deregistered && img.protected => Err(err(
                actions::DEREGISTER_IMAGE.name,
                "OperationNotPermitted",
                format!("The image {id} cannot be deregistered because deregistration protection is enabled"),
            )),
            Some(img) if img.state != ImageState::Deregistered => {
                img.state = ImageState::Deregistered;
                Ok(())
            }
            _ => Err(image_not_found(actions::DEREGISTER_IMAGE.name, id)),
        }
    }

    pub fn delete_snapshot(&mut self, id: &str) -> CloudResult<()> {
        const A: &str = actions::DELETE_SNAPSHOT.name;
        if !self.snapshots.contains_key(id) {
            return Err(snapshot_not_found(A, id));
        }
        if let Some(img) = self
            .images
            .values()
            .find(|i| i.snapshot_id == id && i.state != ImageState::Deregistered)
        {
            return Err(err(
                A,
                "InvalidSnapshot.InUse",
                format!("The snapshot {id} is currently in use by {}", img.id),
            ));
        }
        self.snapshots.remove(id);
        Ok(())
    }
}

impl State {
    /// Every snapshot is this account's (fixture base images included, as moto's catalogue snapshots are).
    pub fn find_snapshots(&self, tags: &Tags) -> Vec<Snapshot> {
        self.snapshots
            .iter()
            .filter(|(_, s)| tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
            .map(|(id, s)| Snapshot { id: id.clone(), tags: s.tags.clone() })
            .collect()
    }
}

/// EC2's tag rules: the `aws:` prefix is reserved, keys up to 128 and values up to 256 characters.
fn validate_tags(action: &str, tags: &Tags) -> CloudResult<()> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(err(
                action,
                "InvalidParameterValue",
                format!("Tag {k:?}={v:?} is not allowed"),
            ));
        }
    }
    Ok(())
}

fn image_not_found(action: &str, id: &str) -> CloudError {
    err(
        action,
        "InvalidAMIID.NotFound",
        format!("The image id '[{id}]' does not exist"),
    )
}

fn snapshot_not_found(action: &str, id: &str) -> CloudError {
    err(
        action,
        "InvalidSnapshot.NotFound",
        format!("The snapshot '{id}' does not exist."),
    )
}
