//! What one poll of the release driver sees, for every group in flight at once, with as few calls as AWS
//! allows and all of them concurrently: one DescribeAutoScalingGroups naming every group, one
//! DescribeInstanceRefreshes per group whose refresh is still running, and one DescribeTargetHealth per
//! distinct target group (groups that share a target group share the call) — at most 1 + G + T calls for
//! G groups and T target groups, whatever the fleets' size. (A group with a warm pool costs one
//! DescribeWarmPool more.) Each group's description names its instances' launch-template versions, which
//! name their images (the releases' versions are known), so EC2 is asked only about instances on another
//! version (once each, for all groups in one call: an instance never changes image) and once to confirm a
//! verification. DescribeAlarms is called only when a refresh failed or AWS rolled it back, to name the
//! alarm that stopped it. The metric gate's datapoints come in one GetMetricData for every target group
//! any rollout asks about (`Rollout::metric_ask`): 1 + G + T + 1 calls in all. A failed metric call fails
//! no observation: the gate hears of it and the health gate goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;

use super::fleet::{target_health, with_pool};
use super::Ctx;
use crate::cloud::actions;
use crate::cloud::CloudError;
use crate::core::health::{by_instance, tg_name, HealthByGroup};
use crate::core::metrics::{MetricRequest, MetricsSeen};
use crate::core::model::{Alarm, Group, GroupInstance, Refresh};
use crate::core::rollout::{may_be_an_alarm, Observation, Rollout};
use crate::events::FleetInstance;

/// What one group in flight asks of a poll.
pub struct Ask<'a> {
    pub group: &'a str,
    pub template_id: &'a str,
    pub rollout: &'a Rollout,
    /// The group's target groups as last seen (the poll follows changes).
    pub target_groups: &'a [String],
    /// The group had a warm pool when last seen.
    pub warm_pool: bool,
    /// Elapsed since the group's rollout began.
    pub now: Duration,
}

/// What one poll saw of one group, and what to ask about it next time.
pub struct Seen {
    pub observation: Observation,
    pub target_groups: Vec<String>,
    pub warm_pool: bool,
}

/// What the poll remembers between looks: images EC2 reported, by instance id.
#[derive(Default)]
pub struct Sight {
    images: BTreeMap<String, String>,
}

impl Sight {
    /// One observation of every group in `asks` (in order). `alarms`: the environment's alarms.
    pub async fn observe(&mut self, ctx: &Ctx, alarms: &[String], asks: &[Ask<'_>]) -> Result<Vec<Seen>, CloudError> {
        let asg = &ctx.cloud.autoscaling;
        let names: Vec<String> = asks.iter().map(|a| a.group.to_string()).collect();
        let refreshes = join_all(asks.iter().map(|a| async move {
            match a.rollout.watched_refresh().filter(|id| !id.is_empty() && a.rollout.needs_refresh_status()) {
                Some(id) => Ok(asg.describe_instance_refreshes(a.group, &[id.to_string()]).await?.into_iter().next()),
                None => Ok::<Option<Refresh>, CloudError>(None),
            }
        }));
        let pools = join_all(asks.iter().map(|a| async move {
            match a.warm_pool {
                true => asg.describe_warm_pool(a.group).await.map(Some),
                false => Ok(None),
            }
        }));
        let tgs: Vec<String> = distinct(asks.iter().flat_map(|a| a.target_groups.iter()));
        let wall = ctx.cloud.clock.wall_ms();
        let wants: Vec<bool> = asks.iter().map(|a| a.rollout.metric_ask(wall).is_some()).collect();
        let (refreshes, groups, health, pools, metrics) =
            tokio::join!(refreshes, asg.describe_groups(&names), target_health(ctx, &tgs), pools, metric_data(ctx, asks, wall));
        let (groups, mut health) = (groups?, health?);

        let mut views = Vec::with_capacity(asks.len());
        for ((ask, refresh), pool) in asks.iter().zip(refreshes).zip(pools) {
            let mut group = groups.iter().find(|g| g.name == ask.group).cloned().ok_or_else(|| {
                let msg = format!("group {} disappeared", ask.group);
                CloudError::service(actions::DESCRIBE_GROUPS.name, Some("ValidationError"), msg)
            })?;
            // A pool created since the last poll is asked about now, and with the group from now on.
            with_pool(ctx, &mut group, pool?).await?;
            views.push((refresh?, group));
        }
        // A target group added to a group since the last poll: fetched now, and with the others from now on.
        let missing = distinct(views.iter().flat_map(|(_, g)| g.target_group_arns.iter()).filter(|a| !health.contains_key(*a)));
        health.extend(target_health(ctx, &missing).await?);

        self.learn_images(ctx, asks, &views).await?;
        let alarms = self.alarms_if_needed(ctx, alarms, asks, &views).await?;
        let mut seen = Vec::with_capacity(asks.len());
        for (i, (ask, (refresh, group))) in asks.iter().zip(views).enumerate() {
            let confirm = ask.rollout.wants_instance_images();
            let (mut images, _) = ask.rollout.release_images(&group, ask.template_id);
            for inst in group.all_instances() {
                if let Some(image) = self.images.get(&inst.id).filter(|_| confirm || !images.contains_key(&inst.id)) {
                    images.insert(inst.id.clone(), image.clone());
                }
            }
            let mine: HealthByGroup =
                health.iter().filter(|(arn, _)| group.target_group_arns.contains(arn)).map(|(a, t)| (a.clone(), t.clone())).collect();
            let wants_alarms = refresh.as_ref().is_some_and(|r| ask.rollout.reason.is_none() && may_be_an_alarm(&r.status));
            let (target_groups, warm_pool) = (group.target_group_arns.clone(), group.warm_pool.is_some());
            let observation = Observation {
                now: ask.now,
                refresh,
                group,
                images,
                images_confirmed: confirm,
                health: mine,
                alarms: alarms.clone().filter(|_| wants_alarms),
                wall_ms: wall,
                metrics: metrics.clone().filter(|_| wants[i]),
            };
            seen.push(Seen { observation, target_groups, warm_pool });
        }
        Ok(seen)
    }

    /// One DescribeInstances for every instance of every group whose image the launch-template versions
    /// do not tell (and not asked before), or every member of a group whose verification is confirmed.
    async fn learn_images(&mut self, ctx: &Ctx, asks: &[Ask<'_>], views: &[(Option<Refresh>, Group)]) -> Result<(), CloudError> {
        let mut ask_ec2 = BTreeSet::new();
        for (ask, (_, group)) in asks.iter().zip(views) {
            if ask.rollout.wants_instance_images() {
                ask_ec2.extend(group.all_instances().map(|i| i.id.clone()));
            } else {
                let (_, unknown) = ask.rollout.release_images(group, ask.template_id);
                ask_ec2.extend(unknown.into_iter().filter(|id| !self.images.contains_key(id)));
            }
        }
        if !ask_ec2.is_empty() {
            let ids: Vec<String> = ask_ec2.into_iter().collect();
            let from_ec2 = ctx.cloud.ec2.describe_instances(&ids).await?;
            self.images.extend(from_ec2.into_iter().map(|i| (i.id, i.image_id)));
        }
        Ok(())
    }

    /// The environment's alarms, asked once when some group's refresh failed or AWS rolled it back.
    async fn alarms_if_needed(
        &self,
        ctx: &Ctx,
        alarms: &[String],
        asks: &[Ask<'_>],
        views: &[(Option<Refresh>, Group)],
    ) -> Result<Option<Vec<Alarm>>, CloudError> {
        let needed = asks
            .iter()
            .zip(views)
            .any(|(ask, (r, _))| r.as_ref().is_some_and(|r| ask.rollout.reason.is_none() && may_be_an_alarm(&r.status)));
        if alarms.is_empty() || !needed {
            return Ok(None);
        }
        Ok(Some(ctx.cloud.cloudwatch.describe_alarms(alarms).await?))
    }
}

/// One GetMetricData for every series any rollout asks about, from the earliest start any asks for to now.
async fn metric_data(ctx: &Ctx, asks: &[Ask<'_>], wall: i64) -> Option<MetricsSeen> {
    let wanted: Vec<_> = asks.iter().filter_map(|a| a.rollout.metric_ask(wall)).collect();
    let start = wanted.iter().map(|w| w.start_ms).min()?;
    let series: Vec<(String, String)> = wanted.into_iter().flat_map(|w| w.series).collect();
    let req = MetricRequest::of(&series, start, wall);
    Some(match ctx.cloud.cloudwatch.metric_data(&req).await {
        Ok(series) => MetricsSeen::Data(series),
        Err(e) => MetricsSeen::Failed { denied: e.kind == crate::cloud::ErrorKind::Denied, message: e.to_string() },
    })
}

fn distinct<'a>(arns: impl Iterator<Item = &'a String>) -> Vec<String> {
    arns.cloned().collect::<BTreeSet<_>>().into_iter().collect()
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

/// Unused while a group has no pool; kept so callers name the type.
pub type PoolInstances = Vec<GroupInstance>;
