//! Tests for the pipeline file: the documented example parses, and every bad input names its field.

use super::*;
use crate::core::model::{ProtectedInstances, StandbyInstances};

const EXAMPLE: &str = r#"
region = "ap-south-1"
[bake]
base_ami_filter = { owners = ["amazon"], name = "al2023-ami-*-x86_64" }
instance_type = "c6g.large"
subnet_id = "subnet-1"
user_data = "scripts/provision.sh"
ready = "stopped"
ami_name = "shop-{commit}"
timeout = "45m"
tags = { app = "shop" }
[environments.staging]
auto_scaling_groups = ["shop-staging"]
min_healthy_percentage = 100
max_healthy_percentage = 200
instance_warmup = "90s"
checkpoints = [50, 100]
checkpoint_delay = "2m"
bake_time = "5m"
skip_matching = true
alarms = []
poll_interval = "5s"
unhealthy_threshold = 2
health_grace = "5m"
timeout = "60m"
"#;

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    Loaded::parse(Path::new("pipeline/bakeroll.toml"), text)
}

#[test]
fn documented_example_parses_with_durations() {
    let l = parse(EXAMPLE).expect("example parses");
    let (name, env) = l.environment(None).unwrap();
    assert_eq!(name, "staging");
    assert_eq!(env.instance_warmup, Some(Dur(Duration::from_secs(90))));
    assert_eq!(env.checkpoint_delay, Some(Dur(Duration::from_secs(120))));
    assert_eq!(l.pipeline.bake.ready, Ready::Stopped);
    assert_eq!(l.pipeline.bake.timeout.0, Duration::from_secs(45 * 60));
    assert_eq!(l.name(), "bakeroll");
    assert_eq!(l.base_dir(), PathBuf::from(""));
    let prefs = env.refresh_prefs();
    assert!(prefs.auto_rollback);
    assert_eq!(prefs.checkpoints, vec![50, 100]);
}

#[test]
fn unknown_key_is_rejected_with_line() {
    let text = EXAMPLE.replace("skip_matching = true", "skip_matching = true\nskip_matchin = false");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("pipeline/bakeroll.toml"), "{err}");
    assert!(err.contains("skip_matchin"), "{err}");
    assert!(err.contains("line 21"), "{err}");
}

#[test]
fn bad_duration_names_value() {
    let err = parse(&EXAMPLE.replace("\"90s\"", "\"90 parsecs\"")).unwrap_err().to_string();
    assert!(err.contains("90 parsecs"), "{err}");
    assert!(err.contains("line 16"), "{err}");
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        ("max_healthy_percentage = 200", "max_healthy_percentage = 250", "environments.staging.max_healthy_percentage"),
        ("min_healthy_percentage = 100", "min_healthy_percentage = 50", "environments.staging.max_healthy_percentage"),
        ("checkpoints = [50, 100]", "checkpoints = [50, 90]", "environments.staging.checkpoints"),
        ("checkpoints = [50, 100]", "checkpoints = [100, 50]", "environments.staging.checkpoints"),
        ("ami_name = \"shop-{commit}\"", "ami_name = \"shop\"", "bake.ami_name"),
        ("unhealthy_threshold = 2", "unhealthy_threshold = 0", "environments.staging.unhealthy_threshold"),
        ("bake_time = \"5m\"", "bake_time = \"49h\"", "environments.staging.bake_time"),
        ("auto_scaling_groups = [\"shop-staging\"]", "auto_scaling_groups = []", "environments.staging.auto_scaling_groups"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nstandby_instances = \"Sometimes\"", "environments.staging.standby_instances"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nscale_in_protected_instances = \"ignore\"", "environments.staging.scale_in_protected_instances"),
    ];
    for (from, to, field) in cases {
        let err = parse(&EXAMPLE.replace(from, to)).unwrap_err().to_string();
        assert!(err.contains(field), "{to}: {err}");
    }
}

#[test]
fn standby_and_protected_settings_reach_the_refresh_preferences_as_aws_spells_them() {
    let text = EXAMPLE.replace("timeout = \"60m\"", "timeout = \"60m\"\nstandby_instances = \"Ignore\"\nscale_in_protected_instances = \"Refresh\"");
    let l = parse(&text).unwrap();
    let p = l.environment(None).unwrap().1.refresh_prefs();
    assert_eq!((p.standby_instances, p.scale_in_protected_instances), (Some(StandbyInstances::Ignore), Some(ProtectedInstances::Refresh)));
    assert_eq!(p.left_alone(), crate::core::model::LeftAlone { standby: true, protected: false });
    // Unset: nothing is sent and AWS's default (Wait) applies.
    let p = parse(EXAMPLE).unwrap().environment(None).unwrap().1.refresh_prefs();
    assert_eq!((p.standby_instances, p.scale_in_protected_instances), (None, None));
}

#[test]
fn two_image_sources_are_rejected() {
    let text = EXAMPLE.replace("instance_type", "base_ami = \"ami-1\"\ninstance_type");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("more than one of base_ami"), "{err}");
}

#[test]
fn environment_choice() {
    let two = format!("{EXAMPLE}\n[environments.production]\nauto_scaling_groups = [\"shop-prod\"]\n");
    let l = parse(&two).unwrap();
    assert!(matches!(l.environment(None), Err(ConfigError::AmbiguousEnv { .. })));
    assert_eq!(l.environment(Some("production")).unwrap().0, "production");
    let err = l.environment(Some("prod")).unwrap_err().to_string();
    assert!(err.contains("`prod`") && err.contains("production, staging"), "{err}");
    // Defaults apply to a minimal environment.
    let (_, prod) = l.environment(Some("production")).unwrap();
    assert_eq!((prod.min_healthy_percentage, prod.max_healthy_percentage), (100, 200));
    assert!(prod.skip_matching && prod.set_default_version);
}

#[test]
fn base_dir_is_repo_root_for_pipeline_dir() {
    let l = Loaded::parse(Path::new("/repo/pipeline/local.toml"), EXAMPLE).unwrap();
    assert_eq!(l.base_dir(), PathBuf::from("/repo"));
    assert_eq!(l.name(), "local");
}

/// Each bad setting is refused at load time, naming its field, before anything touches AWS.
#[test]
fn zero_and_contradictory_settings_name_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("[bake]\n", "[bake]\npoll_interval = \"0s\"\n", "bake.poll_interval"),
        ("timeout = \"45m\"", "timeout = \"0s\"", "bake.timeout"),
        ("[bake]\n", "[bake]\nimage_timeout = \"0s\"\n", "bake.image_timeout"),
        ("[bake]\n", "[bake]\npoll_interval = \"50m\"\n", "bake.poll_interval"),
        ("timeout = \"60m\"", "timeout = \"0s\"", "environments.staging.timeout"),
        ("health_grace = \"5m\"", "health_grace = \"0s\"", "environments.staging.health_grace"),
        ("poll_interval = \"5s\"", "poll_interval = \"0s\"", "environments.staging.poll_interval"),
        ("poll_interval = \"5s\"", "poll_interval = \"10m\"", "environments.staging.poll_interval"),
        ("checkpoints = [50, 100]\n", "", "environments.staging.checkpoint_delay"),
        ("timeout = \"60m\"", "timeout = \"6m\"", "environments.staging.timeout"),
        ("health_grace = \"5m\"", "health_grace = \"5m\"\nverify_timeout = \"0s\"", "environments.staging.verify_timeout"),
        ("region = \"ap-south-1\"", "region = \"us-east-7a\"", "region"),
        ("region = \"ap-south-1\"", "region = \"US-EAST-1\"", "region"),
        ("health_grace = \"5m\"", "health_grace = \"5m\"\nhealth = \"elb\"", "health"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmetrics = \"on\"", "metrics"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_error_rate_increase = 0", "environments.staging.max_error_rate_increase"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_error_rate_increase = -1.5", "environments.staging.max_error_rate_increase"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_error_rate_increase = 101", "environments.staging.max_error_rate_increase"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_error_rate_increase = nan", "environments.staging.max_error_rate_increase"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_latency_ratio = 1.0", "environments.staging.max_latency_ratio"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmax_latency_ratio = 0.5", "environments.staging.max_latency_ratio"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmin_requests = 0", "environments.staging.min_requests"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmin_requests = -5", "min_requests"),
        ("timeout = \"60m\"", "timeout = \"60m\"\nmin_requests = \"many\"", "min_requests"),
        ("timeout = \"60m\"", "timeout = \"60m\"\n[environments.staging.groups.shop-staging]\nmax_latency_ratio = 0.9", "environments.staging.groups.shop-staging.max_latency_ratio"),
    ];
    for (from, to, field) in cases {
        assert!(EXAMPLE.contains(from), "{from}");
        let text = EXAMPLE.replacen(from, to, 1);
        let err = parse(&text).expect_err(to).to_string();
        assert!(err.contains(&format!("`{field}`")) || err.contains(field), "{to}: {err}");
    }
    assert_eq!(parse(EXAMPLE).unwrap().pipeline.environments["staging"].health, HealthSource::TargetGroups);
    let ec2 = EXAMPLE.replace("health_grace = \"5m\"", "health_grace = \"5m\"\nhealth = \"ec2\"");
    assert_eq!(parse(&ec2).unwrap().pipeline.environments["staging"].health, HealthSource::Ec2);
    let metrics = parse(&EXAMPLE.replace("timeout = \"60m\"", "timeout = \"60m\"\nmetrics = \"off\"\nmax_error_rate_increase = 0.5\nmax_latency_ratio = 2\nmin_requests = 500"));
    let settings = metrics.unwrap().pipeline.environments["staging"].group_settings("shop-staging").rollout.metrics;
    assert_eq!(settings.mode, crate::core::metric_verdict::MetricsMode::Off);
    assert_eq!((settings.max_error_rate_increase, settings.max_latency_ratio, settings.min_requests), (0.005, 2.0, 500));
    let defaults = parse(EXAMPLE).unwrap().pipeline.environments["staging"].group_settings("shop-staging").rollout.metrics;
    assert_eq!(defaults, crate::core::metric_verdict::MetricParams::default(), "on by default, with the documented defaults");
    for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-5"] {
        assert!(is_region(ok), "{ok}");
    }
}

#[test]
fn a_wrong_region_is_named_where_nothing_is_found() {
    let l = parse(EXAMPLE).unwrap();
    assert_eq!(l.region_hint(), " in region ap-south-1 (is `region` right?)");
}

#[test]
fn syntax_errors_name_the_line_and_its_key_in_one_line() {
    let err = parse(&EXAMPLE.replace("[bake]", "[bake]\ninstnace_type = \"t3.micro\"")).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("(`instnace_type = \"t3.micro\"`): unknown field `instnace_type`, expected one of"), "{err}");
}

#[test]
fn reserved_tag_keys_in_bake_tags_are_refused_naming_the_field() {
    for (tags, names) in [
        ("tags = { \"aws:owner\" = \"me\" }", "aws:owner"),
        ("tags = { \"bakeroll:commit\" = \"x\" }", "bakeroll:commit"),
        ("tags = { \"bakeroll:ready\" = \"ok\" }", "bakeroll:ready"),
        ("tags = { \"bakeroll:ci-job-id\" = \"1\" }", "bakeroll:ci-job-id"),
    ] {
        let err = parse(&EXAMPLE.replace("tags = { app = \"shop\" }", tags)).unwrap_err().to_string();
        assert!(err.contains("`bake.tags`") && err.contains(names) && err.contains("choose another key"), "{err}");
    }
    let long = format!("tags = {{ app = \"{}\" }}", "x".repeat(257));
    let err = parse(&EXAMPLE.replace("tags = { app = \"shop\" }", &long)).unwrap_err().to_string();
    assert!(err.contains("`bake.tags`") && err.contains("0-256"), "{err}");
    assert!(parse(&EXAMPLE.replace("tags = { app = \"shop\" }", "tags = { \"local-aws:health\" = \"unhealthy\" }")).is_ok());
}

/// The example's environment with three groups in two waves and a canary that overrides its own settings.
fn with_waves(waves: &str, groups: &str) -> String {
    EXAMPLE.replace("auto_scaling_groups = [\"shop-staging\"]", waves) + groups
}

const TIERS: &str = "waves = [[\"shop-canary\"], [\"shop-web\", \"shop-worker\"]]";
const CANARY: &str = "\n[environments.staging.groups.shop-canary]\ncheckpoints = [100]\nbake_time = \"10m\"\nunhealthy_threshold = 1\n";

#[test]
fn waves_and_per_group_overrides_resolve_into_settings() {
    let l = parse(&with_waves(TIERS, CANARY)).expect("waves parse");
    let s = l.settings(None).unwrap();
    assert_eq!(s.name, "staging");
    assert_eq!(s.waves, vec![vec!["shop-canary".to_string()], vec!["shop-web".to_string(), "shop-worker".to_string()]]);
    assert_eq!(s.group_names(), ["shop-canary", "shop-web", "shop-worker"]);
    assert_eq!(s.wave_of("shop-worker"), Some(2));
    let canary = s.group("shop-canary");
    assert_eq!(canary.prefs.checkpoints, vec![100]);
    assert_eq!(canary.prefs.bake_time, Some(Duration::from_secs(600)));
    assert_eq!(canary.rollout.gate.unhealthy_threshold, 1);
    // What the canary does not set comes from the environment; the others get the environment's.
    assert_eq!(canary.prefs.instance_warmup, Some(Duration::from_secs(90)));
    let web = s.group("shop-web");
    assert_eq!((web.prefs.checkpoints.clone(), web.rollout.gate.unhealthy_threshold), (vec![50, 100], 2));
    assert_eq!(web.prefs.bake_time, Some(Duration::from_secs(300)));
    assert!(web.prefs.auto_rollback && !web.rollback_prefs().auto_rollback);
}

#[test]
fn auto_scaling_groups_means_one_wave_per_group() {
    let l = parse(&EXAMPLE.replace("[\"shop-staging\"]", "[\"a\", \"b\"]")).unwrap();
    assert_eq!(l.settings(None).unwrap().waves, vec![vec!["a".to_string()], vec!["b".to_string()]]);
}

#[test]
fn bad_waves_and_group_settings_name_their_field() {
    let cases = [
        (with_waves(&format!("{TIERS}\nauto_scaling_groups = [\"x\"]"), ""), "environments.staging.waves", "both set"),
        (with_waves("", ""), "environments.staging.auto_scaling_groups", "missing"),
        (with_waves("waves = []", ""), "environments.staging.waves", "empty"),
        (with_waves("waves = [[\"a\"], []]", ""), "environments.staging.waves[1]", "empty wave"),
        (with_waves("waves = [[\"a\"], [\"b\", \"a\"]]", ""), "environments.staging.waves", "more than once"),
        (with_waves(TIERS, "\n[environments.staging.groups.shop-api]\nbake_time = \"1m\"\n"), "environments.staging.groups.shop-api", "not in the environment's waves"),
        (with_waves(TIERS, "\n[environments.staging.groups.shop-canary]\ncheckpoints = [50]\n"), "environments.staging.groups.shop-canary.checkpoints", "ending with 100"),
        (with_waves(TIERS, "\n[environments.staging.groups.shop-canary]\nunhealthy_threshold = 0\n"), "environments.staging.groups.shop-canary.unhealthy_threshold", "at least 1"),
        (with_waves(TIERS, "\n[environments.staging.groups.shop-canary]\nbake_time = \"2h\"\n"), "environments.staging.groups.shop-canary.timeout", "shorter than"),
    ];
    for (text, field, problem) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(&format!("`{field}`")) && err.contains(problem), "{field}: {err}");
    }
}

#[test]
fn unknown_keys_of_a_group_are_refused_with_their_line() {
    // Polling, alarms and the lock belong to the environment: a group cannot set them.
    for key in ["poll_interval = \"1s\"", "alarms = []", "lock_lease = \"1m\"", "bake_tme = \"1m\""] {
        let text = with_waves(TIERS, &format!("\n[environments.staging.groups.shop-canary]\n{key}\n"));
        let err = parse(&text).unwrap_err().to_string();
        let name = key.split(' ').next().unwrap();
        assert!(err.contains(&format!("unknown field `{name}`")), "{key}: {err}");
    }
}

/// EXAMPLE plus `production` (and `qa`), each with `requires_verified_in` as given (TOML arrays).
fn with_promotion(production: &str, staging: &str, qa: &str) -> String {
    let staging = if staging.is_empty() { String::new() } else { format!("requires_verified_in = {staging}\n") };
    let example = EXAMPLE.replace("auto_scaling_groups = [\"shop-staging\"]", &format!("auto_scaling_groups = [\"shop-staging\"]\n{staging}"));
    format!(
        "{example}[environments.production]\nauto_scaling_groups = [\"shop-prod\"]\nrequires_verified_in = {production}\n[environments.qa]\nauto_scaling_groups = [\"shop-qa\"]\nrequires_verified_in = {qa}\n"
    )
}

#[test]
fn requires_verified_in_reaches_the_settings_and_bad_ones_are_refused_naming_the_field() {
    let l = parse(&with_promotion(r#"["staging", "qa"]"#, "", "[]")).expect("a promotion chain loads");
    assert_eq!(l.settings(Some("production")).unwrap().requires_verified_in, ["staging", "qa"]);
    assert!(l.settings(Some("staging")).unwrap().requires_verified_in.is_empty());
    let field = "environments.production.requires_verified_in";
    let cases = [
        (with_promotion(r#"["stagin"]"#, "", "[]"), field, "`stagin`, which is not an environment of this file (defined: production, qa, staging)"),
        (with_promotion(r#"["production"]"#, "", "[]"), field, "names `production` itself"),
        (with_promotion(r#"["staging", "staging"]"#, "", "[]"), field, "more than once"),
        // production → staging → qa → production: whichever it starts from, the field of the first one named.
        (with_promotion(r#"["staging"]"#, r#"["qa"]"#, r#"["production"]"#), field, "a cycle (production requires staging requires qa requires production)"),
        (with_promotion("[]", r#"["qa"]"#, r#"["staging"]"#), "environments.qa.requires_verified_in", "a cycle (qa requires staging requires qa)"),
    ];
    for (text, field, says) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(says), "{err}");
    }
}

const REGIONS: &str = "regions = [\"ap-south-1\", \"ap-southeast-1\"]\nrole_arn = \"arn:aws:iam::222222222222:role/bakeroll-deploy\"\nkms_key_ids = { \"ap-southeast-1\" = \"alias/ami\" }\n";

#[test]
fn regions_and_a_role_resolve_into_region_waves_and_a_placement() {
    let text = with_waves(&format!("{TIERS}\n{REGIONS}"), "");
    let s = parse(&text).unwrap().settings(None).unwrap();
    // The bake region (the file's ap-south-1) first, then ap-southeast-1: each region's waves in order.
    assert_eq!(
        s.waves,
        vec![
            vec!["shop-canary@ap-south-1".to_string()],
            vec!["shop-web@ap-south-1".to_string(), "shop-worker@ap-south-1".to_string()],
            vec!["shop-canary@ap-southeast-1".to_string()],
            vec!["shop-web@ap-southeast-1".to_string(), "shop-worker@ap-southeast-1".to_string()],
        ]
    );
    let web = s.group("shop-web@ap-southeast-1");
    assert_eq!((web.name.as_str(), web.region.as_deref()), ("shop-web", Some("ap-southeast-1")));
    assert_eq!(s.group("shop-web@ap-south-1").region, None, "the bake region's groups use the bake region's cloud");
    let role = s.placement.role.clone().unwrap();
    assert_eq!((role.account.as_str(), role.external_id), ("222222222222", None));
    assert_eq!(s.placement.copy_regions(), ["ap-southeast-1"]);
    assert_eq!(s.placement.copy_timeout, Duration::from_secs(45 * 60));
    // One region only (the default): plain group names, nothing to copy.
    let one = parse(EXAMPLE).unwrap().settings(None).unwrap();
    assert_eq!(one.waves, vec![vec!["shop-staging".to_string()]]);
    assert!(one.placement.copy_regions().is_empty() && one.placement.role.is_none());
}

#[test]
fn bad_regions_roles_and_keys_name_their_field() {
    let env = |extra: &str| with_waves(&format!("{TIERS}\n{extra}"), "");
    let cases = [
        (env("regions = [\"ap-south-1\", \"Mumbai\"]"), "environments.staging.regions[1]", "not an AWS region name"),
        (env("regions = [\"ap-south-1\", \"ap-south-1\"]"), "environments.staging.regions", "more than once"),
        (env("regions = []"), "environments.staging.regions", "is empty"),
        (env("role_arn = \"arn:aws:iam::2222:role/x\""), "environments.staging.role_arn", "not an IAM role ARN"),
        (env("role_arn = \"arn:aws:iam::222222222222:user/x\""), "environments.staging.role_arn", "not an IAM role ARN"),
        (env("external_id = \"abc\""), "environments.staging.external_id", "without role_arn"),
        (env("regions = [\"ap-south-1\"]\nkms_key_ids = { \"eu-west-1\" = \"alias/ami\" }"), "environments.staging.kms_key_ids.eu-west-1", "not in"),
        (env("copy_timeout = \"0s\""), "environments.staging.copy_timeout", "more than zero"),
        (env("regions = [\"ap-south-1\", \"eu-west-1\"]").replace("region = \"ap-south-1\"\n", ""), "`region`", "bake region must be named"),
    ];
    for (text, field, problem) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(problem), "{field}: {err}");
    }
}
