//! `CloudWatch`: the `CloudWatchApi` adapter over aws-sdk-cloudwatch (the state of the alarms an
//! environment's refreshes watch through AlarmSpecification).

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm};
use aws_sdk_cloudwatch::Client;

use super::error::SdkResultExt;
use crate::cloud::{actions, CallLedger, CloudResult, CloudWatchApi};
use crate::core::model::Alarm;

/// DescribeAlarms takes at most 100 names a call; AlarmSpecification holds at most 10.
const NAMES_PER_CALL: usize = 100;

pub struct CloudWatch {
    client: Client,
    calls: CallLedger,
}

impl CloudWatch {
    pub fn new(client: Client, calls: CallLedger) -> Self {
        Self { client, calls }
    }
}

#[async_trait]
impl CloudWatchApi for CloudWatch {
    async fn describe_alarms(&self, names: &[String]) -> CloudResult<Vec<Alarm>> {
        const A: &str = actions::DESCRIBE_ALARMS.name;
        let mut alarms = Vec::new();
        for chunk in names.chunks(NAMES_PER_CALL) {
            self.calls.record(A);
            // Both types: AlarmSpecification accepts composite alarms too, and DescribeAlarms returns
            // only metric alarms unless asked.
            let out = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .send()
                .await
                .cloud(A)?;
            alarms.extend(out.metric_alarms().iter().filter_map(metric));
            alarms.extend(out.composite_alarms().iter().filter_map(composite));
        }
        Ok(alarms)
    }
}

fn metric(a: &MetricAlarm) -> Option<Alarm> {
    Some(Alarm {
        name: a.alarm_name()?.to_string(),
        state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
        reason: a.state_reason().map(str::to_string),
    })
}

fn composite(a: &CompositeAlarm) -> Option<Alarm> {
    Some(Alarm {
        name: a.alarm_name()?.to_string(),
        state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
        reason: a.state_reason().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::types::StateValue;

    use super::*;

    #[test]
    fn maps_name_state_and_reason_of_both_alarm_types() {
        let m = MetricAlarm::builder().alarm_name("web-5xx").state_value(StateValue::Alarm).state_reason("Threshold Crossed").build();
        let got = metric(&m).unwrap();
        assert_eq!((got.name.as_str(), got.state.as_str(), got.reason.as_deref()), ("web-5xx", "ALARM", Some("Threshold Crossed")));
        assert!(got.firing());
        let c = CompositeAlarm::builder().alarm_name("web-any").state_value(StateValue::Ok).build();
        let got = composite(&c).unwrap();
        assert_eq!((got.state.as_str(), got.firing()), ("OK", false));
        assert!(metric(&MetricAlarm::builder().build()).is_none(), "an alarm without a name names nothing");
    }
}
