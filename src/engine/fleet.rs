//! One-off reads of a group and its fleet (preflight, status, a verification outside a watch): the group
//! with its warm pool's instances, the images its members run (EC2) and the health of every target
//! group, each asked once and concurrently.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use super::Ctx;
use crate::cloud::CloudError;
use crate::core::health::HealthByGroup;
use crate::core::model::{Group, GroupInstance};

/// DescribeAutoScalingGroups and, for a group with a warm pool, DescribeWarmPool: the group with its
/// pool's instances (what every check of a fleet needs: a pool on the old image is the old release).
pub async fn describe_group(ctx: &Ctx, name: &str) -> Result<Option<Group>, CloudError> {
    let Some(mut g) = ctx.cloud.autoscaling.describe_group(name).await? else { return Ok(None) };
    with_pool(ctx, &mut g, None).await?;
    Ok(Some(g))
}

/// Fills in the group's warm-pool instances: `fetched` if they were asked for already, else asks now.
pub async fn with_pool(ctx: &Ctx, g: &mut Group, fetched: Option<Vec<GroupInstance>>) -> Result<(), CloudError> {
    if let Some(pool) = g.warm_pool.as_mut() {
        pool.instances = Some(match fetched {
            Some(i) => i,
            None => ctx.cloud.autoscaling.describe_warm_pool(&g.name).await?,
        });
    }
    Ok(())
}

/// Every target group's health, all at once.
pub async fn target_health(ctx: &Ctx, arns: &[String]) -> Result<HealthByGroup, CloudError> {
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
