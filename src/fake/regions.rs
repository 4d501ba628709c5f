//! Regions in the fake: sibling worlds of one `FakeCloud` sharing its virtual clock, call ledger and
//! timings (`FakeCloud::region`), CopyImage from one world into another (pending for
//! `Timings::image_copy`, the source's tags with it, a ClientToken that returns the first copy, a
//! source tagged `local-aws:copy=fail` failing as the local AWS's does), the launch and create-volume
//! permissions sharing records, and a `Connector` handing out each region's cloud. Accounts are not
//! modelled: a deploy role's cloud is its region's (AssumeRole can be denied with `deny`).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::conventions::{err, ACCOUNT, REGION};
use super::resource_records::SnapshotRec;
use super::state::State;
use super::FakeCloud;
use crate::cloud::{actions, Cloud, CloudResult, Connector, CopyRequest};
use crate::core::model::ImageState;
use crate::core::settings::Role;

/// The tag on a source image whose copies fail (as `scripts/emulator/image_copy.py` reads it).
pub const COPY_TAG: &str = "local-aws:copy";

impl FakeCloud {
    /// The world of `region`: this one for its own region, else a sibling made on first use (same clock,
    /// ledger and timings; ids drawn from another sequence so that no id repeats across regions).
    pub fn region(&self, region: &str) -> FakeCloud {
        if region == self.region {
            return self.clone();
        }
        let mut worlds = self.worlds.lock().expect("fake regions poisoned");
        let state = worlds
            .entry(region.to_string())
            .or_insert_with(|| {
                let timings = self.with(|s| s.timings.clone());
                let mut s = State::new(timings);
                s.start = self.with(|home| home.start);
                s.skip_ids(region);
                Arc::new(Mutex::new(s))
            })
            .clone();
        FakeCloud { state, region: region.to_string(), ..self.clone() }
    }

    /// Whether `image` of this world carries a launch permission for `account`.
    pub fn is_shared(&self, image: &str, account: &str) -> bool {
        self.with(|s| s.shared.contains(&(image.to_string(), account.to_string())))
    }

    /// CopyImage into this world from the world of `req.source_region`.
    pub(crate) fn copy_image_from(&self, req: &CopyRequest) -> CloudResult<String> {
        const A: &str = actions::COPY_IMAGE.name;
        if let Some(id) = self.with(|s| s.copy_tokens.get(&req.client_token).cloned()) {
            return Ok(id);
        }
        let source = self.region(&req.source_region);
        let found = source.with(|s| s.images.get(&req.source_image).map(|i| (i.state.clone(), i.tags.clone(), i.inherited, i.architecture.clone())));
        let Some((state, tags, inherited, architecture)) = found else {
            return Err(err(A, "InvalidAMIID.NotFound", format!("The image id '[{}]' does not exist", req.source_image)));
        };
        if state != ImageState::Available {
            return Err(err(A, "InvalidAMIID.Unavailable", format!("Image {} is not available", req.source_image)));
        }
        self.with(|s| {
            if s.images.values().any(|i| i.name == req.name && i.state != ImageState::Deregistered) {
                return Err(err(A, "InvalidAMIName.Duplicate", format!("AMI name {} is already in use by an AMI", req.name)));
            }
            // CopyImageTags is never asked for: the copy has the request's tags only.
            let ready = s.now + s.timings.image_copy;
            let id = s.insert_image(&req.name, ACCOUNT, req.image_tags.clone(), Some(ready));
            let img = s.images.get_mut(&id).expect("just inserted");
            img.inherited = inherited;
            img.architecture = architecture;
            img.will_fail = tags.get(COPY_TAG).is_some_and(|v| v.starts_with("fail"));
            img.kms_key = req.kms_key_id.clone();
            let snapshot = img.snapshot_id.clone();
            s.snapshots.insert(snapshot, SnapshotRec { tags: req.snapshot_tags.clone() });
            s.copy_tokens.insert(req.client_token.clone(), id.clone());
            Ok(id)
        })
    }

    pub(crate) fn share(&self, image_or_snapshot: &str, account: &str) {
        self.with(|s| s.shared.insert((image_or_snapshot.to_string(), account.to_string())));
    }
}

/// Each region's cloud of one fake (`FakeCloud::region`); the deploy role's is the same world.
pub struct FakeConnector(pub FakeCloud);

#[async_trait]
impl Connector for FakeConnector {
    async fn bake(&self, region: Option<&str>) -> CloudResult<Cloud> {
        Ok(self.0.region(region.unwrap_or(REGION)).cloud())
    }

    async fn deploy(&self, region: Option<&str>, role: Option<&Role>) -> CloudResult<Cloud> {
        if let Some(role) = role {
            self.0.calls.record(actions::ASSUME_ROLE.name);
            self.0.with(|s| s.faults.check(actions::ASSUME_ROLE.name)).map_err(|mut e| {
                e.message = format!("cannot assume role {}: {}", role.arn, e.message);
                e
            })?;
        }
        Ok(self.0.region(region.unwrap_or(REGION)).cloud())
    }
}
