//! `Elbv2`: the `Elbv2Api` adapter over aws-sdk-elasticloadbalancingv2 (target health of a target group,
//! and the load balancers each target group is behind).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription;
use aws_sdk_elasticloadbalancingv2::Client;

use super::error::SdkResultExt;
use crate::cloud::{actions, CallLedger, CloudResult, Elbv2Api};
use crate::core::model::{TargetHealth, TargetState};

pub struct Elbv2 {
    client: Client,
    calls: CallLedger,
}

impl Elbv2 {
    pub fn new(client: Client, calls: CallLedger) -> Self {
        Self { client, calls }
    }
}

#[async_trait]
impl Elbv2Api for Elbv2 {
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        // The IAM service prefix of ELBv2 is `elasticloadbalancing`, not `elbv2`.
        const A: &str = actions::DESCRIBE_TARGET_HEALTH.name;
        self.calls.record(A);
        // Not paginated: one call returns every registered target of the group.
        let out = self.client.describe_target_health().target_group_arn(target_group_arn).send().await.cloud(A)?;
        Ok(out.target_health_descriptions().iter().filter_map(target_health).collect())
    }

    async fn target_group_balancers(&self, target_group_arns: &[String]) -> CloudResult<BTreeMap<String, Vec<String>>> {
        const A: &str = actions::DESCRIBE_TARGET_GROUPS.name;
        let mut out = BTreeMap::new();
        // A release names a handful of target groups; 20 a call stays well inside what the API takes.
        for chunk in target_group_arns.chunks(TARGET_GROUPS_PER_CALL) {
            let mut marker = None;
            loop {
                self.calls.record(A);
                let page = self
                    .client
                    .describe_target_groups()
                    .set_target_group_arns(Some(chunk.to_vec()))
                    .set_marker(marker.take())
                    .send()
                    .await
                    .cloud(A)?;
                for tg in page.target_groups() {
                    if let Some(arn) = tg.target_group_arn() {
                        out.insert(arn.to_string(), tg.load_balancer_arns().to_vec());
                    }
                }
                match page.next_marker() {
                    Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

const TARGET_GROUPS_PER_CALL: usize = 20;

/// A description without a target id identifies nothing the engine could act on, so it is skipped.
fn target_health(d: &TargetHealthDescription) -> Option<TargetHealth> {
    let target = d.target()?;
    let health = d.target_health();
    Some(TargetHealth {
        target_id: target.id()?.to_string(),
        port: target.port(),
        // No state reported yet is what `initial` means: registered, first checks not done.
        state: health.and_then(|h| h.state()).map_or(TargetState::Initial, |s| TargetState::parse(s.as_str())),
        reason: health.and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
        description: health.and_then(|h| h.description()).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticloadbalancingv2::types::{
        TargetDescription, TargetHealth as SdkHealth, TargetHealthReasonEnum, TargetHealthStateEnum,
    };

    use super::*;

    #[test]
    fn maps_state_reason_and_port() {
        let d = TargetHealthDescription::builder()
            .target(TargetDescription::builder().id("i-1").port(8080).build())
            .target_health(
                SdkHealth::builder()
                    .state(TargetHealthStateEnum::Unhealthy)
                    .reason(TargetHealthReasonEnum::FailedHealthChecks)
                    .description("Health checks failed")
                    .build(),
            )
            .build();
        let got = target_health(&d).unwrap();
        assert_eq!((got.target_id.as_str(), got.port), ("i-1", Some(8080)));
        assert_eq!(got.state, TargetState::Unhealthy);
        assert_eq!(got.reason.as_deref(), Some("Target.FailedHealthChecks"));
        assert_eq!(got.description.as_deref(), Some("Health checks failed"));
    }

    #[test]
    fn missing_state_is_initial_and_missing_target_is_skipped() {
        let d = TargetHealthDescription::builder().target(TargetDescription::builder().id("i-2").build()).build();
        assert_eq!(target_health(&d).map(|t| t.state), Some(TargetState::Initial));
        assert!(target_health(&TargetHealthDescription::builder().build()).is_none());
    }
}
