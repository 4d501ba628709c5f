//! `CloudWatch`: the `CloudWatchApi` adapter over aws-sdk-cloudwatch (the state of the alarms an
//! environment's refreshes watch through AlarmSpecification, and the load balancers' metrics the metric
//! gate reads with GetMetricData).

use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, Dimension, Metric as SdkMetric, MetricAlarm, MetricDataQuery, MetricDataResult, MetricStat, ScanBy};
use aws_sdk_cloudwatch::Client;

use super::error::SdkResultExt;
use crate::cloud::{actions, CallLedger, CloudResult, CloudWatchApi};
use crate::core::metrics::{balancer_dimension, target_group_dimension, MetricRequest, Series, SeriesKey, NAMESPACE, PERIOD_SECS, QUERIES_PER_CALL};
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

    async fn metric_data(&self, req: &MetricRequest) -> CloudResult<Vec<Series>> {
        const A: &str = actions::GET_METRIC_DATA.name;
        let mut out: Vec<Series> = req.series.iter().map(|key| Series { key: key.clone(), points: vec![] }).collect();
        for (c, chunk) in req.series.chunks(QUERIES_PER_CALL).enumerate() {
            let queries: Vec<MetricDataQuery> = chunk.iter().enumerate().map(|(i, key)| query(MetricRequest::query_id(i), key)).collect();
            let mut token = None;
            loop {
                self.calls.record(A);
                let page = self
                    .client
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(DateTime::from_millis(req.start_ms))
                    .end_time(DateTime::from_millis(req.end_ms))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .cloud(A)?;
                for r in page.metric_data_results() {
                    if let Some(n) = r.id().and_then(|id| id.strip_prefix('q')).and_then(|n| n.parse::<usize>().ok()).filter(|n| *n < chunk.len()) {
                        out[c * QUERIES_PER_CALL + n].points.extend(points(r));
                    }
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

/// One series as a GetMetricData query: the metric of the target group behind the load balancer, the
/// dimension values being the final portions of the ARNs.
fn query(id: String, key: &SeriesKey) -> MetricDataQuery {
    let metric = SdkMetric::builder()
        .namespace(NAMESPACE)
        .metric_name(key.metric.name())
        .dimensions(Dimension::builder().name("LoadBalancer").value(balancer_dimension(&key.load_balancer)).build())
        .dimensions(Dimension::builder().name("TargetGroup").value(target_group_dimension(&key.target_group)).build())
        .build();
    let stat = MetricStat::builder().metric(metric).period(PERIOD_SECS).stat(key.metric.stat()).build();
    MetricDataQuery::builder().id(id).metric_stat(stat).return_data(true).build()
}

/// (Unix ms, value) of each datapoint; a timestamp the SDK cannot express in ms is dropped.
fn points(r: &MetricDataResult) -> Vec<(i64, f64)> {
    r.timestamps().iter().zip(r.values()).filter_map(|(t, v)| Some((t.to_millis().ok()?, *v))).collect()
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

    use crate::core::metrics::Metric;

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

    #[test]
    fn a_series_is_queried_by_the_arns_final_portions_and_its_points_kept() {
        let key = SeriesKey {
            load_balancer: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/shop-alb/50dc".into(),
            target_group: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-web/73e2".into(),
            metric: Metric::LatencyP99,
        };
        let q = query("q3".into(), &key);
        let stat = q.metric_stat().unwrap();
        let m = stat.metric().unwrap();
        assert_eq!((q.id(), stat.stat(), stat.period()), (Some("q3"), Some("p99"), Some(60)));
        assert_eq!((m.namespace(), m.metric_name()), (Some("AWS/ApplicationELB"), Some("TargetResponseTime")));
        let dims: Vec<(&str, &str)> = m.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, vec![("LoadBalancer", "app/shop-alb/50dc"), ("TargetGroup", "targetgroup/shop-web/73e2")]);
        let r = MetricDataResult::builder().id("q3").timestamps(DateTime::from_millis(60_000)).values(0.42).build();
        assert_eq!(points(&r), vec![(60_000, 0.42)]);
    }
}
