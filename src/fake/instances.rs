//! EC2 instances: launch, the pending → running → (stopping → stopped | shutting-down → terminated) lifecycle
//! driven by virtual time, the build instance's user-data run, console output and status checks.

use crate::cloud::actions;
use tokio::time::Instant;

use super::conventions::iso8601;
use super::resource_records::InstanceRec;
use super::state::State;
use crate::cloud::{CloudError, CloudResult};
use crate::core::model::*;

/// What to launch; shared by RunInstances and Auto Scaling launches.
pub(crate) struct NewInstance<'a> {
    pub image_id: &'a str,
    pub instance_type: &'a str,
    pub user_data: Option<&'a str>,
    pub tags: Tags,
}

impl State {
    /// Launches an instance in `pending`. Errors are (code, message) so each caller can name its own action.
    pub fn create_instance(&mut self, new: NewInstance<'_>, at: Instant) -> Result<String, (&'static str, String)> {
        match self.images.get(new.image_id) {
            None => {
                return Err((
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{}]' does not exist", new.image_id),
                ))
            }
            Some(img) if img.state == ImageState::Deregistered => {
                return Err((
                    "InvalidAMIID.NotFound",
                    format!("The image id '[{}]' does not exist", new.image_id),
                ))
            }
            Some(img) if img.state != ImageState::Available => {
                return Err((
                    "InvalidAMIID.Unavailable",
                    format!("The image {} is not available", new.image_id),
                ))
            }
            Some(_) => {}
        }
        let id = self.next_id("i");
        let user_data = new.user_data.map(str::to_string);
        let powers_off = user_data.as_deref().is_some_and(powers_off);
        let rec = InstanceRec {
            id: id.clone(),
            image_id: new.image_id.to_string(),
            instance_type: if new.instance_type.is_empty() {
                "m1.small"
            } else {
                new.instance_type
            }
            .to_string(),
            state: InstanceState::Pending,
            next: Some((at + self.timings.instance_running, InstanceState::Running)),
            launched: at,
            running_since: None,
            status_ok_at: None,
            terminated_at: None,
            tags: new.tags,
            user_data,
            powers_off,
            hang: powers_off && self.faults.hang_all_provisioning,
            console: Vec::new(),
        };
        self.instances.insert(id.clone(), rec);
        Ok(id)
    }

    /// Fixture shortcut: an instance that has been running and passing status checks for a while.
    pub fn force_running(&mut self, id: &str, at: Instant) {
        let lines = boot_lines(&self.iso(at));
        if let Some(i) = self.instances.get_mut(id) {
            i.state = InstanceState::Running;
            i.next = None;
            i.running_since = Some(at);
            i.status_ok_at = Some(at);
            i.console = lines;
        }
    }

    pub fn step_instances(&mut self, t: Instant) {
        let (stopping, visible, provisioning) = (
            self.timings.stopping,
            self.timings.terminated_visible,
            self.timings.provisioning,
        );
        let (status_ok, unix) = (self.timings.status_ok, self.unix(t));
        let wake = &self.wake;
        self.instances
            .retain(|_, i| i.terminated_at.is_none_or(|at| !wake.due(at + visible, t)));
        for i in self.instances.values_mut() {
            if let Some((at, next)) = i.next.clone() {
                if wake.due(at, t) {
                    i.next = None;
                    i.state = next.clone();
                    match next {
                        InstanceState::Running => {
                            i.running_since = Some(t);
                            i.status_ok_at = Some(t + status_ok);
                            i.console = boot_lines(&iso8601(unix));
                            i.console.extend(echo_lines(i.user_data.as_deref().unwrap_or_default()));
                        }
                        InstanceState::Terminated => i.terminated_at = Some(t),
                        InstanceState::Stopped => i.running_since = None,
                        _ => {}
                    }
                }
            }
            let done_provisioning = i.running_since.is_some_and(|since| wake.due(since + provisioning, t));
            if i.state == InstanceState::Running && i.powers_off && !i.hang && done_provisioning {
                // The script's last command powers off; instance-initiated shutdown behaviour `stop` is the default.
                i.state = InstanceState::Stopping;
                i.next = Some((t + stopping, InstanceState::Stopped));
                let stamp = iso8601(unix);
                i.console.push(format!(
                    "Cloud-init v. 22.2.2 finished at {stamp}. Datasource DataSourceEc2."
                ));
                i.console.push("[  OK  ] Reached target Power-Off.".to_string());
                i.console.push("reboot: Power down".to_string());
            }
        }
    }

    fn instance_or_err(&self, action: &str, id: &str) -> CloudResult<&InstanceRec> {
        self.instances.get(id).ok_or_else(|| not_found(action, id))
    }

    pub fn instance_view(&self, i: &InstanceRec) -> Instance {
        Instance {
            id: i.id.clone(),
            state: i.state.clone(),
            image_id: i.image_id.clone(),
            launch_time: Some(self.unix(i.launched)),
            tags: i.tags.clone(),
        }
    }

    pub fn launch_instance(&mut self, spec: &LaunchSpec) -> CloudResult<Instance> {
        let new = NewInstance {
            image_id: &spec.image_id,
            instance_type: &spec.instance_type,
            user_data: spec.user_data.as_deref(),
            tags: spec.tags.clone(),
        };
        let id = self
            .create_instance(new, self.now)
            .map_err(|(code, msg)| CloudError::service(actions::RUN_INSTANCES.name, Some(code), msg))?;
        Ok(self.instance_view(&self.instances[&id]))
    }

    pub fn describe_instances(&self, ids: &[String]) -> Vec<Instance> {
        ids.iter()
            .filter_map(|id| self.instances.get(id))
            .map(|i| self.instance_view(i))
            .collect()
    }

    /// Instances not shutting down or terminated that carry every tag.
    pub fn find_instances(&self, tags: &Tags) -> Vec<Instance> {
        self.instances
            .values()
            .filter(|i| !i.state.is_gone() && tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
            .map(|i| self.instance_view(i))
            .collect()
    }

    /// None when the instance is not running (DescribeInstanceStatus lists only running instances by default),
    /// Some(false) while its checks are initializing.
    pub fn instance_status_ok(&self, id: &str) -> CloudResult<Option<bool>> {
        let i = self.instance_or_err(actions::DESCRIBE_INSTANCE_STATUS.name, id)?;
        if i.state != InstanceState::Running {
            return Ok(None);
        }
        Ok(Some(i.status_ok_at.is_some_and(|at| at <= self.now)))
    }

    pub fn console_output(&self, id: &str) -> CloudResult<String> {
        let i = self.instance_or_err(actions::GET_CONSOLE_OUTPUT.name, id)?;
        Ok(i.console.iter().map(|l| format!("{l}\n")).collect())
    }

    /// All or nothing, like EC2: one unknown id fails the whole call.
    pub fn terminate_instances(&mut self, ids: &[String], at: Instant) -> CloudResult<()> {
        for id in ids {
            self.instance_or_err(actions::TERMINATE_INSTANCES.name, id)?;
        }
        for id in ids {
            self.terminate_instance(id, at);
        }
        Ok(())
    }

    /// StopInstances on a running instance (a warm pool's `Stopped` state).
    pub fn stop_instance(&mut self, id: &str, at: Instant) {
        let delay = self.timings.stopping;
        if let Some(i) = self.instances.get_mut(id).filter(|i| i.state == InstanceState::Running) {
            i.state = InstanceState::Stopping;
            i.next = Some((at + delay, InstanceState::Stopped));
        }
    }

    pub fn terminate_instance(&mut self, id: &str, at: Instant) {
        let delay = self.timings.shutting_down;
        if let Some(i) = self.instances.get_mut(id) {
            if !i.state.is_gone() {
                i.state = InstanceState::ShuttingDown;
                i.next = Some((at + delay, InstanceState::Terminated));
                i.running_since = None;
            }
        }
    }
}

pub(crate) fn not_found(action: &str, id: &str) -> CloudError {
    CloudError::service(
        action,
        Some("InvalidInstanceID.NotFound"),
        format!("The instance ID '{id}' does not exist"),
    )
}

/// True when the script's last command powers the machine off (`poweroff`, `shutdown -h now`, ...).
fn powers_off(user_data: &str) -> bool {
    let last = user_data
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'));
    last.is_some_and(|l| {
        l.ends_with("poweroff")
            || l == "halt -p"
            || (l.starts_with("shutdown") && (l.contains("-h") || l.contains("-P") || l.contains("--poweroff")))
    })
}

fn boot_lines(stamp: &str) -> Vec<String> {
    vec![
        "[    0.000000] Linux version 6.1.119-129.201.amzn2023.x86_64 (bakeroll fake cloud)".to_string(),
        "[    2.481516] systemd[1]: Starting cloud-init.service - Initial cloud-init job...".to_string(),
        format!("Cloud-init v. 22.2.2 running 'modules:final' at {stamp}. Up 9.02 seconds."),
    ]
}

/// What the script's `echo` lines print: cloud-init tees user-data output to the console, which is how a test
/// can check that the tail of a failed bake's console reaches the user.
fn echo_lines(user_data: &str) -> Vec<String> {
    user_data
        .lines()
        .filter_map(|l| l.trim().strip_prefix("echo "))
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_scripts_that_power_off() {
        assert!(powers_off("#!/bin/bash\nyum -y update\npoweroff\n"));
        assert!(powers_off("set -e\nshutdown -h now\n# done\n"));
        assert!(powers_off("systemctl poweroff"));
        assert!(!powers_off("#!/bin/bash\nshutdown -r now\n"));
        assert!(!powers_off("poweroff\necho after"));
    }

    #[test]
    fn echo_lines_strip_quotes() {
        assert_eq!(
            echo_lines("echo \"BAKE-MARKER ok\"\nls\n  echo 'two'\n"),
            vec!["BAKE-MARKER ok", "two"]
        );
    }
}
