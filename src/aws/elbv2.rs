//! `Elbv2`: the `Elbv2Api` adapter over aws-sdk-elasticloadbalancingv2 (target health of a target group).

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
}

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
