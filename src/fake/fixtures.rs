//! Test-data builders (controller-rs `fixtures.rs` style): an image or a whole stack — launch template,
//! target groups, and an Auto Scaling group whose instances are already in service and healthy — in one line.

use std::time::Duration;

use super::conventions::ACCOUNT;
use super::group_records::{GroupRec, Lifecycle, MemberRec, Origin, Source};
use super::instances::NewInstance;
use super::alb_metrics::Balancer;
use super::resource_records::{Health, TemplateVersion};
use super::FakeCloud;
use crate::core::model::*;

/// An image to register, available at once. `ImageSpec::named("x")` is owned by this account (`self`).
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: String,
    /// An account id or an alias (`amazon`); owner filter `self` matches this account's images.
    pub owner: String,
    pub tags: Tags,
    /// Application health of instances launched from it (overrides the `local-aws:health` tag).
    pub health: Option<Health>,
    /// `x86_64` (default) or `arm64`.
    pub architecture: Option<String>,
}

impl ImageSpec {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            owner: ACCOUNT.to_string(),
            tags: Tags::new(),
            health: None,
            architecture: None,
        }
    }

    /// An Amazon Linux 2023 base image as `amazon` publishes it.
    pub fn amazon_linux() -> Self {
        Self::named("al2023-ami-2023.6.20260101.0-kernel-6.1-x86_64").owner("amazon")
    }

    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    pub fn health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    pub fn architecture(mut self, arch: impl Into<String>) -> Self {
        self.architecture = Some(arch.into());
        self
    }
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self::amazon_linux()
    }
}

/// A deployed service. Defaults: 3 instances, 1 target group behind an ALB `<group>-alb` (600 requests a
/// minute), a fresh image, the group on version "1", ELB health checks, sizes min = instances,
/// max = 2 × instances, timings from `Timings`.
#[derive(Debug, Clone)]
pub struct StackSpec {
    pub group: String,
    pub instances: u32,
    pub target_groups: u32,
    /// The image of launch-template version 1; None registers `<group>-v1` owned by this account.
    pub image: Option<String>,
    /// What the group points at: `"1"`, `"$Latest"` or `"$Default"`.
    pub version_ref: String,
    pub instance_type: String,
    pub sizes: Option<(i32, i32)>,
    /// The group's DefaultInstanceWarmup (None: the refresh falls back to the grace period).
    pub instance_warmup: Option<Duration>,
    pub health_check_grace: Option<Duration>,
    /// Health check type ELB (default) or EC2 (Auto Scaling then ignores target health, as AWS does).
    pub elb_health_check: bool,
    /// (interval, healthy threshold) of every target group.
    pub health_check: Option<(Duration, u32)>,
    pub deregistration_delay: Option<Duration>,
    /// Target groups of other stacks this group also serves (a canary behind the same target group as
    /// its web tier), after its own.
    pub shared_target_groups: Vec<String>,
    /// What sends to the stack's own target groups; None: an ALB named `<group>-alb` (as the seed has).
    pub balancer: Option<Balancer>,
}

impl StackSpec {
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            instances: 3,
            target_groups: 1,
            image: None,
            version_ref: "1".to_string(),
            instance_type: "t3.micro".to_string(),
            sizes: None,
            instance_warmup: None,
            health_check_grace: None,
            elb_health_check: true,
            health_check: None,
            deregistration_delay: None,
            shared_target_groups: Vec::new(),
            balancer: None,
        }
    }

    /// The stack's target groups are behind this load balancer (`Balancer::Alb("shop-alb")` shared with
    /// another stack makes a canary next to its web tier; `Nlb`, `None`: no ALB metrics).
    pub fn balancer(mut self, balancer: Balancer) -> Self {
        self.balancer = Some(balancer);
        self
    }

    /// The group also registers its instances with `arn`, another stack's target group.
    pub fn join_target_group(mut self, arn: impl Into<String>) -> Self {
        self.shared_target_groups.push(arn.into());
        self
    }

    pub fn instances(mut self, n: u32) -> Self {
        self.instances = n;
        self
    }

    pub fn target_groups(mut self, n: u32) -> Self {
        self.target_groups = n;
        self
    }

    pub fn image(mut self, ami: impl Into<String>) -> Self {
        self.image = Some(ami.into());
        self
    }

    pub fn version_ref(mut self, v: impl Into<String>) -> Self {
        self.version_ref = v.into();
        self
    }

    pub fn instance_warmup(mut self, d: Duration) -> Self {
        self.instance_warmup = Some(d);
        self
    }

    pub fn ec2_health_check(mut self) -> Self {
        self.elb_health_check = false;
        self
    }
}

impl Default for StackSpec {
    fn default() -> Self {
        Self::new("shop-web")
    }
}

/// What `add_stack` created.
#[derive(Debug, Clone, PartialEq)]
pub struct StackIds {
    pub group: String,
    pub template_id: String,
    pub template_name: String,
    pub image_id: String,
    pub target_group_arns: Vec<String>,
    pub instance_ids: Vec<String>,
}

impl FakeCloud {
    pub fn add_image(&self, spec: ImageSpec) -> String {
        self.with(|s| {
            let id = s.insert_image(&spec.name, &spec.owner, spec.tags, None);
            if let Some(arch) = spec.architecture {
                s.images.get_mut(&id).expect("just inserted").architecture = arch;
            }
            if let Some(h) = spec.health {
                s.rules.image.insert(id.clone(), h);
            }
            id
        })
    }

    /// Panics on a spec no test means (duplicate group, unknown image): fixtures fail loudly.
    pub fn add_stack(&self, spec: StackSpec) -> StackIds {
        let image_id = spec
            .image
            .clone()
            .unwrap_or_else(|| self.add_image(ImageSpec::named(format!("{}-v1", spec.group))));
        self.with(|s| {
            assert!(
                !s.groups.contains_key(&spec.group),
                "group {} already exists",
                spec.group
            );
            assert!(s.images.contains_key(&image_id), "unknown image {image_id}");
            let now = s.now;
            let data = TemplateVersion {
                number: 1,
                image_id: Some(image_id.clone()),
                instance_type: Some(spec.instance_type.clone()),
                user_data: Some("#!/bin/bash\nsystemctl start app\n".to_string()),
                security_group_ids: vec!["sg-0fake0000000000001".to_string()],
                instance_tags: Tags::from([("Service".to_string(), spec.group.clone())]),
                description: Some("initial".to_string()),
                created: now,
                extra: TemplateData::default(),
            };
            let template_name = format!("{}-lt", spec.group);
            let template_id = s.insert_template(&template_name, data);
            let (interval, threshold) = spec
                .health_check
                .unwrap_or((s.timings.health_check_interval, s.timings.healthy_threshold));
            let dereg = spec.deregistration_delay.unwrap_or(s.timings.deregistration_delay);
            let mut target_group_arns: Vec<String> = (1..=spec.target_groups)
                .map(|i| s.insert_target_group(&format!("{}-tg{i}", spec.group), interval, threshold, dereg))
                .collect();
            let balancer = match spec.balancer.clone().unwrap_or_else(|| Balancer::Alb(format!("{}-alb", spec.group))) {
                Balancer::Alb(name) => Some(s.load_balancer("app", &name)),
                Balancer::Nlb(name) => Some(s.load_balancer("net", &name)),
                Balancer::None => None,
            };
            for arn in &target_group_arns {
                s.target_groups.get_mut(arn).expect("just made").load_balancer = balancer.clone();
            }
            for arn in &spec.shared_target_groups {
                assert!(s.target_groups.contains_key(arn), "unknown target group {arn}");
                target_group_arns.push(arn.clone());
            }
            let mut members = Vec::new();
            for _ in 0..spec.instances {
                let tags = Tags::from([
                    ("Service".to_string(), spec.group.clone()),
                    ("aws:autoscaling:groupName".to_string(), spec.group.clone()),
                ]);
                let new = NewInstance {
                    image_id: &image_id,
                    instance_type: &spec.instance_type,
                    user_data: None,
                    tags,
                };
                let id = s.create_instance(new, now).expect("fixture image is available");
                s.force_running(&id, now);
                for arn in &target_group_arns {
                    s.register_target(arn, &id, now);
                    let target = s
                        .target_groups
                        .get_mut(arn)
                        .and_then(|tg| tg.targets.get_mut(&id))
                        .expect("registered");
                    (target.state, target.initial_until) = (TargetState::Healthy, now);
                }
                members.push(MemberRec {
                    id,
                    lifecycle: Lifecycle::InService,
                    healthy: true,
                    origin: Origin::Template { id: template_id.clone(), version: 1 },
                    protected: false,
                    in_service_at: Some(now),
                    // In service long before the test: past its grace period already.
                    grace_until: Some(now),
                    terminate_at: None,
                    hook: None,
                });
            }
            let instance_ids = members.iter().map(|m| m.id.clone()).collect();
            let n = spec.instances as i32;
            let (min, max) = spec.sizes.unwrap_or((n, 2 * n));
            s.groups.insert(
                spec.group.clone(),
                GroupRec {
                    name: spec.group.clone(),
                    source: Source::Template { id: template_id.clone(), version: spec.version_ref.clone() },
                    min,
                    max,
                    desired: n,
                    target_groups: target_group_arns.clone(),
                    members,
                    default_warmup: spec.instance_warmup,
                    grace: spec.health_check_grace.unwrap_or(s.timings.health_check_grace),
                    elb_health: spec.elb_health_check,
                    launch_retry_at: None,
                    tags: Default::default(),
                    launch_hook: None,
                    suspended: Default::default(),
                    warm: None,
                },
            );
            // Serving like this since long before the test began (the first record stands for all earlier time).
            s.step_traffic(now);
            StackIds {
                group: spec.group,
                template_id,
                template_name,
                image_id,
                target_group_arns,
                instance_ids,
            }
        })
    }
}
