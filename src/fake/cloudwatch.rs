//! CloudWatch alarms as an instance refresh watches them (AlarmSpecification): the alarms exist or
//! not, each is `OK`, `ALARM` or `INSUFFICIENT_DATA`, and only tests change their state (nothing
//! evaluates metrics, as with SetAlarmState on AWS). A refresh refuses to start on an alarm that is
//! missing or not `OK` ("If the alarm state is INSUFFICIENT_DATA or ALARM, you receive an error when
//! you try to start the instance refresh", Auto Scaling user guide, auto rollback); one going to
//! `ALARM` while it runs fails it (`refresh.rs`).

use super::conventions::err;
use super::resource_records::AlarmRec;
use super::state::State;
use super::FakeCloud;
use crate::cloud::{actions, CloudResult};
use crate::core::model::Alarm;

pub(crate) const OK: &str = "OK";
pub(crate) const ALARM: &str = "ALARM";

impl State {
    pub fn describe_alarms(&self, names: &[String]) -> Vec<Alarm> {
        names
            .iter()
            .filter_map(|n| {
                let a = self.alarms.get(n)?;
                Some(Alarm { name: n.clone(), state: a.state.clone(), reason: Some(a.reason.clone()) })
            })
            .collect()
    }

    /// The first of `names` in ALARM.
    pub fn alarm_firing<'a>(&self, names: &'a [String]) -> Option<&'a String> {
        names.iter().find(|n| self.alarms.get(*n).is_some_and(|a| a.state == ALARM))
    }

    /// StartInstanceRefresh's check of its AlarmSpecification.
    pub fn check_alarms_at_start(&self, names: &[String]) -> CloudResult<()> {
        const A: &str = actions::START_REFRESH.name;
        for n in names {
            match self.alarms.get(n) {
                None => return Err(err(A, "ValidationError", format!("The CloudWatch alarm {n} specified in AlarmSpecification does not exist."))),
                Some(a) if a.state != OK => {
                    let msg = format!("The CloudWatch alarm {n} is in {} state. Alarms must be in OK state to start an instance refresh.", a.state);
                    return Err(err(A, "ValidationError", msg));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl FakeCloud {
    /// Creates an alarm in `OK` (PutMetricAlarm, as far as a refresh can tell).
    pub fn add_alarm(&self, name: &str) {
        self.set_alarm_state(name, OK);
    }

    /// SetAlarmState: `OK`, `ALARM` or `INSUFFICIENT_DATA`; creates the alarm if it does not exist.
    pub fn set_alarm_state(&self, name: &str, state: &str) {
        let reason = format!("Set to {state} by the test (SetAlarmState)");
        self.with(|s| s.alarms.insert(name.to_string(), AlarmRec { state: state.to_string(), reason }));
    }

    /// Puts an alarm into ALARM (or back to OK); a refresh watching it fails while it is in ALARM.
    pub fn set_alarm(&self, name: &str, in_alarm: bool) {
        self.set_alarm_state(name, if in_alarm { ALARM } else { OK });
    }
}
