//! What one poll of the refresh watcher sees, with as few calls as AWS allows and all of them at
//! once: DescribeInstanceRefreshes, DescribeAutoScalingGroups and one DescribeTargetHealth per target
//! group, concurrently — 2 + (target groups) calls whatever the fleet's size (while verifying, the
//! refresh has ended and is not asked about). The group's own
//! description names each instance's launch-template version, which names its image (the releases'
//! versions are known), so EC2 is asked only about instances on another version (once each: an
//! instance never changes image) and once to confirm a verification. DescribeAlarms is called only
//! when the refresh failed or AWS rolled it back, to name the alarm that stopped it. A group with a
//! warm pool costs one call more per poll (DescribeWarmPool, with the others).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;

use super::Ctx;
use crate::cloud::CloudError;
use crate::core::health::{by_instance, tg_name, HealthByGroup};
use crate::core::model::{Group, GroupInstance, Refresh};
use crate::core::rollout::{may_be_an_alarm, Observation, Rollout};
use crate::events::FleetInstance;

/// What an observation needs to know besides the rollout.
pub struct Sight<'a> {
    pub group: &'a str,
    pub template_id: &'a str,
    /// The environment's alarms (AlarmSpecification).
    pub alarms: &'a [String],
    /// Target groups fetched with the group: the ones the last description listed.
    pub target_groups: Vec<String>,
    /// The group has a warm pool (as last seen): its instances are fetched with the group.
    pub warm_pool: bool,
    /// Images EC2 reported, by instance id.
    pub images: BTreeMap<String, String>,
}

/// DescribeAutoScalingGroups and, for a group with a warm pool, DescribeWarmPool: the group with its
/// pool's instances (what every check of a fleet needs: a pool on the old image is the old release).
pub async fn describe_group(ctx: &Ctx, name: &str) -> Result<Option<Group>, CloudError> {
    let Some(mut g) = ctx.cloud.autoscaling.describe_group(name).await? else { return Ok(None) };
    with_pool(ctx, &mut g, None).await?;
    Ok(Some(g))
}

/// Fills in the group's warm-pool instances: `fetched` if they were asked for already, else asks now.
async fn with_pool(ctx: &Ctx, g: &mut Group, fetched: Option<Vec<GroupInstance>>) -> Result<(), CloudError> {
    if let Some(pool) = g.warm_pool.as_mut() {
        pool.instances = Some(match fetched {
            Some(i) => i,
            None => ctx.cloud.autoscaling.describe_warm_pool(&g.name).await?,
        });
    }
    Ok(())
}

impl Sight<'_> {
    /// One observation of `rollout`'s refresh, group and fleet.
    pub async fn observe(&mut self, ctx: &Ctx, rollout: &Rollout, now: Duration) -> Result<Observation, CloudError> {
        let asg = &ctx.cloud.autoscaling;
        let refresh_id =
            rollout.watched_refresh().filter(|id| !id.is_empty() && rollout.needs_refresh_status()).map(str::to_string);
        let refresh = async {
            match &refresh_id {
                Some(id) => Ok(asg.describe_instance_refreshes(self.group, std::slice::from_ref(id)).await?.into_iter().next()),
                None => Ok::<Option<Refresh>, CloudError>(None),
            }
        };
        let pool = async {
            match self.warm_pool {
                true => asg.describe_warm_pool(self.group).await.map(Some),
                false => Ok(None),
            }
        };
        let (refresh, group, fetched, pool) =
            tokio::join!(refresh, asg.describe_group(self.group), target_health(ctx, &self.target_groups), pool);
        let (refresh, group, mut health) = (refresh?, group?, fetched?);
        let mut group = group.ok_or_else(|| {
            let msg = format!("group {} disappeared", self.group);
            CloudError::service(crate::cloud::actions::DESCRIBE_GROUPS.name, Some("ValidationError"), msg)
        })?;
        // A pool created since the last poll is asked about now, and with the group from now on.
        with_pool(ctx, &mut group, pool?).await?;
        self.warm_pool = group.warm_pool.is_some();
        // A target group added to the group since the last poll: fetched now, and with the others from now on.
        let missing: Vec<String> = group.target_group_arns.iter().filter(|a| !health.contains_key(*a)).cloned().collect();
        health.extend(target_health(ctx, &missing).await?);
        health.retain(|arn, _| group.target_group_arns.contains(arn));
        self.target_groups = group.target_group_arns.clone();

        let confirm = rollout.wants_instance_images();
        let (mut images, unknown) = rollout.release_images(&group, self.template_id);
        let ask: Vec<String> = if confirm {
            group.all_instances().map(|i| i.id.clone()).collect()
        } else {
            unknown.into_iter().filter(|id| !self.images.contains_key(id)).collect()
        };
        if !ask.is_empty() {
            let from_ec2 = ctx.cloud.ec2.describe_instances(&ask).await?;
            self.images.extend(from_ec2.into_iter().map(|i| (i.id, i.image_id)));
        }
        for inst in group.all_instances() {
            if let Some(image) = self.images.get(&inst.id).filter(|_| confirm || !images.contains_key(&inst.id)) {
                images.insert(inst.id.clone(), image.clone());
            }
        }
        let alarms = match &refresh {
            Some(r) if !self.alarms.is_empty() && rollout.reason.is_none() && may_be_an_alarm(&r.status) => {
                Some(ctx.cloud.cloudwatch.describe_alarms(self.alarms).await?)
            }
            _ => None,
        };
        Ok(Observation { now, refresh, group, images, images_confirmed: confirm, health, alarms })
    }
}

/// Every target group's health, all at once.
async fn target_health(ctx: &Ctx, arns: &[String]) -> Result<HealthByGroup, CloudError> {
    let answers = join_all(arns.iter().map(|arn| ctx.cloud.elbv2.target_health(arn))).await;
    arns.iter().cloned().zip(answers).map(|(arn, r)| r.map(|targets| (arn, targets))).collect()
}

/// Images of the group's members (from EC2) and the health of every target group, for checks made
/// once (preflight, status), where nothing says which release an instance runs.
pub async fn fleet(ctx: &Ctx, g: &Group) -> Result<(BTreeMap<String, String>, HealthByGroup), CloudError> {
    let ids: Vec<String> = g.all_instances().map(|i| i.id.clone()).collect();
    let images = async {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        Ok(ctx.cloud.ec2.describe_instances(&ids).await?.into_iter().map(|i| (i.id, i.image_id)).collect())
    };
    let (images, health) = tokio::join!(images, target_health(ctx, &g.target_group_arns));
    Ok((images?, health?))
}

/// Every instance the group lists (members and those leaving), with its image and per-target-group state.
pub fn fleet_instances(obs: &Observation) -> Vec<FleetInstance> {
    let index = by_instance(&obs.health);
    obs.group
        .instances
        .iter()
        .map(|i| FleetInstance {
            id: i.id.clone(),
            image: obs.images.get(&i.id).cloned(),
            lifecycle: i.lifecycle_state.clone(),
            health: obs
                .health
                .keys()
                .filter_map(|arn| {
                    // The least healthy entry when an instance is registered on several ports.
                    let states: Vec<_> = index.entries(arn, &i.id).iter().map(|t| t.state.to_string()).collect();
                    let worst = ["unhealthy", "initial", "unavailable", "draining", "unused", "healthy"]
                        .into_iter()
                        .find(|s| states.iter().any(|x| x == s))
                        .map(str::to_string)
                        .or_else(|| states.first().cloned())?;
                    Some((tg_name(arn).to_string(), worst))
                })
                .collect(),
        })
        .collect()
}
