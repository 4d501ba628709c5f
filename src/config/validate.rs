//! Validation of a loaded pipeline file: every problem is refused at load time, naming its field
//! (`environments.staging.groups.shop-canary.checkpoints`), before anything touches AWS.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{is_region, ConfigError, Environment, Loaded};
use crate::core::model::{ProtectedInstances, StandbyInstances};

impl Loaded {
    pub(super) fn invalid(&self, field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { path: self.path.clone(), field: field.into(), problem: problem.into() }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(region) = &self.pipeline.region {
            if !is_region(region) {
                return Err(self.invalid("region", format!("is `{region}`, not an AWS region name (e.g. us-east-1, eu-west-2)")));
            }
        }
        let b = &self.pipeline.bake;
        for (k, d) in [("bake.timeout", b.timeout), ("bake.image_timeout", b.image_timeout), ("bake.poll_interval", b.poll_interval)] {
            if d.0.is_zero() {
                return Err(self.invalid(k, "must be more than zero"));
            }
        }
        if b.poll_interval.0 >= b.timeout.0.min(b.image_timeout.0) {
            return Err(self.invalid("bake.poll_interval", "must be shorter than bake.timeout and bake.image_timeout (or the bake checks once and gives up)"));
        }
        let sources = [b.base_ami.is_some(), b.base_ami_filter.is_some(), b.build_instance.is_some()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(self.invalid("bake", "sets more than one of base_ami, base_ami_filter, build_instance; keep exactly one"));
        }
        if !b.ami_name.contains("{commit}") && !b.ami_name.contains("{short_commit}") {
            return Err(self.invalid("bake.ami_name", "must contain {commit} or {short_commit}: the name is what makes a retried bake reuse its image"));
        }
        if b.ami_name.len() > 128 {
            return Err(self.invalid("bake.ami_name", "is longer than the 128 characters EC2 allows"));
        }
        // Refused here rather than by AWS after the build instance ran: the same rule as `--tag`.
        for (key, value) in &b.tags {
            if let Some(why) = crate::core::tags::refused(key) {
                return Err(self.invalid("bake.tags", format!("has the key `{key}`: {why}; choose another key")));
            }
            if key.is_empty() || key.len() > 128 || value.len() > 256 {
                return Err(self.invalid("bake.tags", format!("has `{key}` = `{value}`; EC2 allows keys of 1-128 and values of 0-256 characters")));
            }
        }
        for (name, env) in &self.pipeline.environments {
            self.validate_env(name, env)?;
        }
        self.validate_promotion()
    }

    /// `requires_verified_in`: other environments of this file, each once, and no cycle (an image could
    /// then never enter any environment of the cycle without --force).
    fn validate_promotion(&self) -> Result<(), ConfigError> {
        let envs = &self.pipeline.environments;
        let defined = || envs.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        for (name, env) in envs {
            let field = format!("environments.{name}.requires_verified_in");
            let mut seen = BTreeSet::new();
            for required in &env.requires_verified_in {
                if required == name {
                    return Err(self.invalid(&field, format!("names `{name}` itself; an environment cannot require its own verification")));
                }
                if !envs.contains_key(required) {
                    return Err(self.invalid(&field, format!("names `{required}`, which is not an environment of this file (defined: {})", defined())));
                }
                if !seen.insert(required.as_str()) {
                    return Err(self.invalid(&field, format!("names `{required}` more than once")));
                }
            }
        }
        for name in envs.keys() {
            if let Some(cycle) = self.requirement_cycle(name, &mut vec![name.as_str()]) {
                let field = format!("environments.{name}.requires_verified_in");
                return Err(self.invalid(field, format!("makes a cycle ({}): no image could enter any of them without --force", cycle.join(" requires ")))); 
            }
        }
        Ok(())
    }

    /// A path of requirements from `path`'s last environment back to its first, if there is one.
    fn requirement_cycle<'a>(&'a self, start: &str, path: &mut Vec<&'a str>) -> Option<Vec<String>> {
        let last = *path.last()?;
        for next in &self.pipeline.environments.get(last)?.requires_verified_in {
            if next == start {
                let mut cycle: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if path.contains(&next.as_str()) {
                continue; // a cycle that does not pass through `start`: found from its own start
            }
            path.push(next);
            if let Some(c) = self.requirement_cycle(start, path) {
                return Some(c);
            }
            path.pop();
        }
        None
    }

    /// The environment's groups and waves, then its settings, then each group's settings with its overrides.
    fn validate_env(&self, name: &str, e: &Environment) -> Result<(), ConfigError> {
        let f = |k: &str| format!("environments.{name}.{k}");
        let waves = match (&e.waves, &e.auto_scaling_groups) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(f("waves"), "and auto_scaling_groups are both set; keep exactly one (auto_scaling_groups = [\"a\", \"b\"] means waves = [[\"a\"], [\"b\"]])"))
            }
            (None, None) => return Err(self.invalid(f("auto_scaling_groups"), "is missing; list the environment's groups (or set `waves`)")),
            (Some(w), None) => (w, "waves"),
            (None, Some(g)) if g.is_empty() => return Err(self.invalid(f("auto_scaling_groups"), "is empty; list at least one group")),
            (None, Some(_)) => (&e.waves(), "auto_scaling_groups"),
        };
        let (waves, key) = waves;
        if waves.is_empty() {
            return Err(self.invalid(f(key), "is empty; list at least one wave of groups"));
        }
        let mut seen = BTreeSet::new();
        for (i, wave) in waves.iter().enumerate() {
            if wave.is_empty() {
                return Err(self.invalid(format!("{}[{i}]", f(key)), "is an empty wave; every wave needs at least one group"));
            }
            for g in wave {
                if g.is_empty() || g.len() > 255 {
                    return Err(self.invalid(f(key), format!("names group `{g}`; an Auto Scaling group name has 1-255 characters")));
                }
                if !seen.insert(g.as_str()) {
                    return Err(self.invalid(f(key), format!("lists group `{g}` more than once; a group belongs to one wave")));
                }
            }
        }
        if let Some(g) = e.groups.keys().find(|g| !seen.contains(g.as_str())) {
            let listed: Vec<&str> = seen.iter().copied().collect();
            return Err(self.invalid(
                format!("environments.{name}.groups.{g}"),
                format!("sets settings for a group that is not in the environment's {key} ({})", listed.join(", ")),
            ));
        }
        self.validate_placement(name, e)?;
        self.validate_settings(&f, e)?;
        for g in e.groups.keys() {
            let fg = |k: &str| format!("environments.{name}.groups.{g}.{k}");
            self.validate_settings(&fg, &e.for_group(g))?;
        }
        Ok(())
    }

    /// Regions, role and keys: a region spelled as AWS spells them (each once), the bake region known when
    /// there are others, a role ARN that names a role, an ExternalId only with a role, a key only for a
    /// listed region.
    fn validate_placement(&self, name: &str, e: &Environment) -> Result<(), ConfigError> {
        let f = |k: &str| format!("environments.{name}.{k}");
        let regions = e.regions.clone().unwrap_or_default();
        if e.regions.as_ref().is_some_and(|r| r.is_empty()) {
            return Err(self.invalid(f("regions"), "is empty; list at least one region, or leave it out for the bake region"));
        }
        let mut seen = BTreeSet::new();
        for (i, r) in regions.iter().enumerate() {
            if !is_region(r) {
                return Err(self.invalid(format!("{}[{i}]", f("regions")), format!("is `{r}`, not an AWS region name (e.g. us-east-1, ap-southeast-1)")));
            }
            if !seen.insert(r.as_str()) {
                return Err(self.invalid(f("regions"), format!("lists {r} more than once")));
            }
        }
        let bake = self.pipeline.region.as_deref();
        if bake.is_none() && !regions.is_empty() {
            return Err(self.invalid(
                "region",
                format!("is not set, but environment {name} lists regions: the bake region must be named for the image to be copied from it"),
            ));
        }
        if let Some(arn) = &e.role_arn {
            if super::environment::role_account(arn).is_none() {
                return Err(self.invalid(f("role_arn"), format!("is `{arn}`, not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")));
            }
        }
        if let Some(id) = &e.external_id {
            if e.role_arn.is_none() {
                return Err(self.invalid(f("external_id"), "is set without role_arn; it is only sent when assuming a role"));
            }
            if id.len() < 2 || id.len() > 1224 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)) {
                return Err(self.invalid(f("external_id"), "must be 2-1224 characters of letters, digits and +=,.@:/-_ (as STS allows)"));
            }
        }
        let listed: Vec<&str> = if regions.is_empty() { bake.into_iter().collect() } else { regions.iter().map(String::as_str).collect() };
        for (region, key) in &e.kms_key_ids {
            if !listed.contains(&region.as_str()) {
                return Err(self.invalid(
                    format!("{}.{region}", f("kms_key_ids")),
                    format!("names a region the environment is not in ({})", if listed.is_empty() { "none listed".to_string() } else { listed.join(", ") }),
                ));
            }
            if key.trim().is_empty() {
                return Err(self.invalid(format!("{}.{region}", f("kms_key_ids")), "is empty; give a key id, ARN or alias/NAME"));
            }
        }
        if e.copy_timeout.0.is_zero() {
            return Err(self.invalid(f("copy_timeout"), "must be more than zero"));
        }
        Ok(())
    }

    /// The refresh and gate settings of an environment (or of one group, overrides applied); `f` names a key.
    fn validate_settings(&self, f: &dyn Fn(&str) -> String, e: &Environment) -> Result<(), ConfigError> {
        if !(0..=100).contains(&e.min_healthy_percentage) {
            return Err(self.invalid(f("min_healthy_percentage"), format!("is {}; AWS allows 0-100", e.min_healthy_percentage)));
        }
        if !(100..=200).contains(&e.max_healthy_percentage) {
            return Err(self.invalid(f("max_healthy_percentage"), format!("is {}; AWS allows 100-200", e.max_healthy_percentage)));
        }
        if e.max_healthy_percentage - e.min_healthy_percentage > 100 {
            return Err(self.invalid(f("max_healthy_percentage"), "minus min_healthy_percentage exceeds 100, which AWS rejects"));
        }
        if !e.checkpoints.is_empty() {
            let ascending = e.checkpoints.windows(2).all(|w| w[0] < w[1]);
            let in_range = e.checkpoints.iter().all(|p| (1..=100).contains(p));
            if !ascending || !in_range || e.checkpoints.last() != Some(&100) {
                return Err(self.invalid(f("checkpoints"), "must be strictly ascending percentages in 1-100 ending with 100 (or the refresh never finishes)"));
            }
        }
        let max_aws = Duration::from_secs(172_800);
        for (k, d) in [("checkpoint_delay", e.checkpoint_delay), ("bake_time", e.bake_time)] {
            if d.is_some_and(|d| d.0 > max_aws) {
                return Err(self.invalid(f(k), "exceeds the 48 h (172800 s) AWS allows"));
            }
        }
        if e.alarms.len() > 10 {
            return Err(self.invalid(f("alarms"), "lists more than the 10 alarms AWS allows"));
        }
        if e.unhealthy_threshold == 0 {
            return Err(self.invalid(f("unhealthy_threshold"), "must be at least 1"));
        }
        for (k, d) in [("poll_interval", Some(e.poll_interval)), ("timeout", Some(e.timeout)), ("health_grace", Some(e.health_grace)), ("verify_timeout", e.verify_timeout)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                return Err(self.invalid(f(k), "must be more than zero"));
            }
        }
        if e.poll_interval.0 >= e.health_grace.0.min(e.timeout.0) {
            return Err(self.invalid(f("poll_interval"), "must be shorter than health_grace and timeout (or a new instance is judged before it was ever looked at)"));
        }
        if e.lock_lease.0 < Duration::from_secs(3) {
            return Err(self.invalid(f("lock_lease"), "must be at least 3s (it is renewed every third of it)"));
        }
        let points = e.max_error_rate_increase;
        if !(points.is_finite() && points > 0.0 && points <= 100.0) {
            return Err(self.invalid(f("max_error_rate_increase"), format!("is {points}; write percentage points above 0 and at most 100 (1 = one point: 0.2 % before may become at most 1.2 %)")));
        }
        let ratio = e.max_latency_ratio;
        if !(ratio.is_finite() && ratio > 1.0 && ratio <= 100.0) {
            return Err(self.invalid(f("max_latency_ratio"), format!("is {ratio}; write a ratio above 1 and at most 100 (1.5: the new release may be 50 % slower)")));
        }
        if e.min_requests == 0 || e.min_requests > 10_000_000 {
            return Err(self.invalid(f("min_requests"), format!("is {}; write 1 to 10000000 requests (a verdict on fewer is chance)", e.min_requests)));
        }
        if let Some(v) = e.standby_instances.as_deref().filter(|v| StandbyInstances::parse(v).is_none()) {
            return Err(self.invalid(f("standby_instances"), format!("is {v:?}; AWS allows {}", StandbyInstances::VALUES.join(", "))));
        }
        if let Some(v) = e.scale_in_protected_instances.as_deref().filter(|v| ProtectedInstances::parse(v).is_none()) {
            let allowed = ProtectedInstances::VALUES.join(", ");
            return Err(self.invalid(f("scale_in_protected_instances"), format!("is {v:?}; AWS allows {allowed}")));
        }
        if e.checkpoint_delay.is_some() && e.checkpoints.is_empty() {
            return Err(self.invalid(f("checkpoint_delay"), "is set but checkpoints is not; AWS refuses a CheckpointDelay without CheckpointPercentages"));
        }
        let pauses = e.checkpoint_delay.map_or(Duration::ZERO, |d| d.0 * e.checkpoints.len().saturating_sub(1) as u32);
        if pauses + e.bake_time.map_or(Duration::ZERO, |d| d.0) >= e.timeout.0 {
            return Err(self.invalid(f("timeout"), "is shorter than the checkpoint pauses plus bake_time: every refresh would be rolled back for taking too long"));
        }
        Ok(())
    }
}

