//! Whether the pipeline's bake can ever become ready as configured: `ready` waits for something the
//! provisioning must do (power off, tag the instance), and a bake whose provisioning cannot do it waits
//! the whole `bake.timeout` (45 minutes by default) before failing. Warnings for `plan` and `bake`; the
//! file still loads (a script may power off in ways not seen here).

use super::{Loaded, Ready};
use crate::core::tags;

/// What in a provisioning script powers the instance off: shell commands and cloud-init's directive.
const POWER_OFF: &[&str] = &["poweroff", "shutdown", "halt", "power_state", "init 0"];

impl Loaded {
    /// Why a bake of this pipeline may never become ready (empty when nothing is seen wrong).
    pub fn bake_warnings(&self) -> Vec<String> {
        let b = &self.pipeline.bake;
        // `build_instance` images an instance that is already provisioned: `ready` is not waited for.
        if b.build_instance.is_some() {
            return Vec::new();
        }
        let timeout = humantime::format_duration(b.timeout.0);
        let Some(path) = &b.user_data else {
            return match b.ready {
                Ready::Stopped => vec![format!(
                    "bake.ready is \"stopped\" but bake.user_data is not set: nothing will power the build instance off, so every bake waits bake.timeout ({timeout}) and fails; set user_data to your provisioning script (ending with `poweroff`), or ready = \"status-ok\" to image the base image as it boots"
                )],
                Ready::Tag => vec![format!(
                    "bake.ready is \"tag\" but bake.user_data is not set: nothing will tag the build instance {}=ok, so every bake waits bake.timeout ({timeout}) and fails; set user_data to a script that tags its instance when done",
                    tags::READY
                )],
                Ready::StatusOk => Vec::new(),
            };
        };
        let full = self.base_dir().join(path);
        let script = match std::fs::read_to_string(&full) {
            Ok(s) => s,
            Err(e) => return vec![format!("bake.user_data: cannot read {}: {e}; the path is relative to the repository root (the pipeline file's directory, or its parent for pipeline/)", full.display())],
        };
        match b.ready {
            Ready::Stopped if !POWER_OFF.iter().any(|p| script.contains(p)) => vec![format!(
                "bake.ready is \"stopped\" but bake.user_data ({}) never seems to power the instance off (no {}): unless it does, every bake waits bake.timeout ({timeout}) and fails",
                path.display(),
                POWER_OFF.join(", ")
            )],
            Ready::Tag if !script.contains(tags::READY) => vec![format!(
                "bake.ready is \"tag\" but bake.user_data ({}) never mentions {}: unless it tags its instance {}=ok, every bake waits bake.timeout ({timeout}) and fails",
                path.display(),
                tags::READY,
                tags::READY
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn loaded(dir: &Path, bake: &str) -> Loaded {
        let source = if bake.contains("build_instance") { "" } else { "base_ami = \"ami-1\"\n" };
        let text = format!("[bake]\n{source}ami_name = \"x-{{commit}}\"\n{bake}\n[environments.e]\nauto_scaling_groups = [\"g\"]\n");
        Loaded::parse(&dir.join("p.toml"), &text).unwrap()
    }

    #[test]
    fn a_bake_that_cannot_become_ready_is_pointed_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.sh"), "#!/bin/sh\nsetup\npoweroff\n").unwrap();
        std::fs::write(dir.path().join("forgets.sh"), "#!/bin/sh\nsetup\n").unwrap();
        std::fs::write(dir.path().join("tags.sh"), "aws ec2 create-tags --tags Key=bakeroll:ready,Value=ok\n").unwrap();
        let warn = |bake: &str| loaded(dir.path(), bake).bake_warnings();
        assert!(warn("")[0].contains("user_data is not set: nothing will power the build instance off"), "{:?}", warn(""));
        assert!(warn("ready = \"tag\"")[0].contains("nothing will tag"));
        assert!(warn("ready = \"status-ok\"").is_empty());
        assert!(warn("user_data = \"good.sh\"").is_empty());
        assert!(warn("user_data = \"forgets.sh\"")[0].contains("never seems to power the instance off"));
        assert!(warn("user_data = \"tags.sh\"\nready = \"tag\"").is_empty());
        assert!(warn("user_data = \"forgets.sh\"\nready = \"tag\"")[0].contains("never mentions bakeroll:ready"));
        assert!(warn("user_data = \"missing.sh\"")[0].contains("cannot read"));
        // An existing instance is imaged as it is: nothing is waited for.
        assert!(warn("build_instance = \"i-1\"").is_empty());
    }
}
