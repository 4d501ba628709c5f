//! End-to-end on the local AWS, the group shapes teams run (`scripts/local-aws seed --shape …`), with the
//! real binary and an independent boto3 reader (tests/support/fleet_world.py): `adopt` of a
//! launch-configuration group keeps every instance and every field, then ships; a mixed-instances group
//! ships a good release and rolls a broken one back to its previous policy; a ship on a group with a
//! warm pool leaves the pool on the new image; Standby and protected instances under `Ignore` are
//! reported by id and never counted as verified.

mod support;


use serde_json::Value;
use support::LocalAws;

/// pipeline/local.toml deploying `group`, with `extra` lines in its environment (user_data made
/// absolute so the file can live in the state dir).
fn pipeline(aws: &LocalAws, name: &str, group: &str, extra: &str) -> String {
    let mut text = std::fs::read_to_string(aws.repo.join("pipeline/local.toml")).unwrap();
    let script = aws.repo.join("scripts/provision-demo.sh");
    text = text.replace("user_data = \"scripts/provision-demo.sh\"", &format!("user_data = \"{}\"", script.display()));
    let groups = "auto_scaling_groups = [\"shop-web\"]";
    assert!(text.contains(groups));
    text = text.replace(groups, &format!("auto_scaling_groups = [\"{group}\"]\n{extra}"));
    let path = aws.dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn world(aws: &LocalAws, args: &[&str]) -> Value {
    let out = aws.helper("fleet_world.py", args);
    assert!(out.status.success(), "fleet_world.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Images of the group's instances that are still in it (not Terminating), sorted.
fn member_images(fleet: &Value) -> Vec<String> {
    let mut v: Vec<String> = fleet["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["lifecycle"] != "Terminating")
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn adopt_keeps_every_instance_and_every_field_of_the_configuration_then_ships() {
    let aws = LocalAws::start("fleets-adopt");
    let seed = aws.seed_shapes(&["launch-configuration"]);
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let lc = world(&aws, &["full-configuration", "shop-lc", &aws.dir.join("seed.json").to_string_lossy()]);
    let p = pipeline(&aws, "adopt", "shop-lc", "");
    let before = world(&aws, &["adoption", "shop-lc"]);
    assert_eq!(before["launch_configuration"], "shop-lc-full");
    assert_eq!(before["instances"].as_array().unwrap().len(), 2);

    // deploy refuses a launch-configuration group, naming it and adopt; nothing changes.
    let out = aws.bakeroll(&["--pipeline", &p, "deploy", "--ami", &base]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shop-lc") && stderr(&out).contains("bakeroll adopt"), "{}", stderr(&out));

    // The dry run lists the calls and changes nothing.
    let dry = aws.bakeroll(&["--pipeline", &p, "adopt", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0));
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("ec2:CreateLaunchTemplate") && plan.contains("autoscaling:UpdateAutoScalingGroup"), "{plan}");
    assert!(plan.contains("allowed (EC2 DryRun)"), "{plan}");
    assert_eq!(world(&aws, &["adoption", "shop-lc"]), before, "a dry run changes nothing");

    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    aws.assert_schema_valid(&[&s]);
    assert_eq!(s["command"], "adopt");
    assert_eq!(s["groups"][0]["outcome"], "adopted");
    assert!(s["groups"][0]["delete_command"].as_str().unwrap().contains("--launch-configuration-name shop-lc-full"));
    let after = world(&aws, &["adoption", "shop-lc"]);
    assert_eq!(after["instances"], before["instances"], "the same instance ids: nothing was replaced");
    assert_eq!(after["launch_configuration"], Value::Null);
    assert_eq!(after["launch_template"]["LaunchTemplateName"], "shop-lc");
    assert_eq!(after["launch_template"]["Version"], "1");
    let t = &after["template_v1"]["data"];
    assert!(after["template_v1"]["description"].as_str().unwrap().starts_with("bakeroll:adopted launch-configuration=shop-lc-full"));
    // Field by field, as AWS reports the configuration and the template.
    assert_eq!(t["ImageId"], lc["ImageId"]);
    assert_eq!(t["InstanceType"], lc["InstanceType"]);
    assert_eq!(t["KeyName"], lc["KeyName"]);
    assert_eq!(t["UserData"], lc["UserData"]);
    assert_eq!(t["IamInstanceProfile"]["Name"], lc["IamInstanceProfile"]);
    assert_eq!(t["Monitoring"]["Enabled"], lc["InstanceMonitoring"]["Enabled"]);
    assert_eq!(t["EbsOptimized"], lc["EbsOptimized"]);
    assert_eq!(t["Placement"]["Tenancy"], lc["PlacementTenancy"]);
    for k in ["HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint"] {
        assert_eq!(t["MetadataOptions"][k], lc["MetadataOptions"][k], "MetadataOptions.{k}");
    }
    let (tb, lb) = (&t["BlockDeviceMappings"][0], &lc["BlockDeviceMappings"][0]);
    assert_eq!(tb["DeviceName"], lb["DeviceName"]);
    for k in ["VolumeSize", "VolumeType", "Encrypted", "DeleteOnTermination"] {
        assert_eq!(tb["Ebs"][k], lb["Ebs"][k], "BlockDeviceMappings.Ebs.{k}");
    }
    let nic = &t["NetworkInterfaces"][0];
    assert_eq!(nic["AssociatePublicIpAddress"], lc["AssociatePublicIpAddress"]);
    assert_eq!(nic["Groups"], lc["SecurityGroups"], "the security groups go with the public IP on the primary interface");

    // Idempotent.
    let again = aws.bakeroll(&["--pipeline", &p, "adopt"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already adopted"));
    assert_eq!(world(&aws, &["adoption", "shop-lc"]), after);

    // Then it ships like any template group.
    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "ship", "--commit", "ad0pt01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ami = summary(&out)["bake"]["ami_id"].as_str().unwrap().to_string();
    let fleet = world(&aws, &["fleet", "shop-lc"]);
    assert_eq!(member_images(&fleet), vec![ami; 2], "{fleet}");
}

#[test]
fn a_mixed_instances_group_ships_and_a_broken_release_rolls_back_to_the_previous_policy() {
    let aws = LocalAws::start("fleets-mixed");
    aws.seed_shapes(&["mixed-instances"]);
    let p = pipeline(&aws, "mixed", "shop-mixed", "");
    let before = world(&aws, &["fleet", "shop-mixed"]);
    let policy = |f: &Value| f["mixed_instances_policy"].clone();

    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "ship", "--commit", "m1xed01"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    aws.assert_schema_valid(&[&s]);
    assert_eq!(s["deploy"]["groups"][0]["mixed_instances"], true);
    let good = s["bake"]["ami_id"].as_str().unwrap().to_string();
    let version = s["deploy"]["groups"][0]["new_version"].clone();
    let shipped = world(&aws, &["fleet", "shop-mixed"]);
    assert_eq!(member_images(&shipped), vec![good.clone(); 2], "{shipped}");
    assert_eq!(shipped["launch_template"], Value::Null, "still a policy, no top-level template");
    // The whole policy was carried over: overrides and distribution unchanged, only the version moved.
    let (was, now) = (policy(&before), policy(&shipped));
    assert_eq!(now["LaunchTemplate"]["Overrides"], was["LaunchTemplate"]["Overrides"]);
    assert_eq!(now["InstancesDistribution"], was["InstancesDistribution"]);
    assert_eq!(now["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"], version.to_string().trim_matches('"'));

    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "ship", "--commit", "badm1x1", "--tag", "local-aws:health=unhealthy"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let s = summary(&out);
    aws.assert_schema_valid(&[&s]);
    assert_eq!(s["outcome"], "rolled-back");
    let back = world(&aws, &["fleet", "shop-mixed"]);
    assert_eq!(member_images(&back), vec![good; 2], "back on the previous release: {back}");
    assert_eq!(policy(&back), now, "the previous policy, as it was");
}

#[test]
fn a_ship_on_a_group_with_a_warm_pool_leaves_the_pool_on_the_new_image() {
    let aws = LocalAws::start("fleets-warm");
    let seed = aws.seed_shapes(&["warm-pool"]);
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let p = pipeline(&aws, "warm", "shop-warm", "");
    let before = world(&aws, &["fleet", "shop-warm"]);
    let pool_images = |f: &Value| -> Vec<String> {
        let mut v: Vec<String> = f["warm_pool"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| !i["lifecycle"].as_str().unwrap().contains("Terminat"))
            .map(|i| i["image"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(pool_images(&before), vec![base.clone(); 2]);

    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "ship", "--commit", "warm001"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    aws.assert_schema_valid(&[&s]);
    let ami = s["bake"]["ami_id"].as_str().unwrap().to_string();
    let after = world(&aws, &["fleet", "shop-warm"]);
    assert_eq!(member_images(&after), vec![ami.clone(); 2]);
    assert_eq!(pool_images(&after), vec![ami.clone(); 2], "the pool would otherwise bring the old release back: {after}");
    let reported = s["deploy"]["groups"][0]["warm_pool"].as_array().expect("the summary shows the pool").clone();
    assert_eq!(reported.len(), 2);
    assert!(reported.iter().all(|i| i["image"] == ami.as_str()), "{reported:?}");

    let st = aws.bakeroll(&["--pipeline", &p, "--output", "json", "status"]);
    assert_eq!(st.status.code(), Some(0));
    let st = summary(&st);
    aws.assert_schema_valid(&[&st]);
    assert_eq!(st["groups"][0]["healthy"], true);
    assert_eq!(st["groups"][0]["warm_pool"].as_array().unwrap().len(), 2);
}

#[test]
fn standby_and_protected_instances_under_ignore_are_reported_by_id_and_never_verified() {
    let aws = LocalAws::start("fleets-standby");
    let seed = aws.seed();
    let old = seed["base_ami"].as_str().unwrap().to_string();
    let left = world(&aws, &["standby-and-protect", "shop-web"]);
    let (standby, protected) = (left["standby"].as_str().unwrap().to_string(), left["protected"].as_str().unwrap().to_string());
    let p = pipeline(&aws, "standby", "shop-web", "standby_instances = \"Ignore\"\nscale_in_protected_instances = \"Ignore\"");

    let out = aws.bakeroll(&["--pipeline", &p, "--output", "json", "ship", "--commit", "stby001"]);
    assert_eq!(out.status.code(), Some(0), "what the settings asked for: {}", stderr(&out));
    let s = summary(&out);
    aws.assert_schema_valid(&[&s]);
    let ami = s["bake"]["ami_id"].as_str().unwrap().to_string();
    let mut listed: Vec<(String, String, String)> = s["deploy"]["groups"][0]["left_behind"]
        .as_array()
        .expect("left_behind in the summary")
        .iter()
        .map(|l| (l["id"].as_str().unwrap().into(), l["image"].as_str().unwrap().into(), l["because"].as_str().unwrap().into()))
        .collect();
    listed.sort();
    let mut want = vec![
        (standby.clone(), old.clone(), "standby_instances = \"Ignore\"".to_string()),
        (protected.clone(), old.clone(), "scale_in_protected_instances = \"Ignore\"".to_string()),
    ];
    want.sort();
    assert_eq!(listed, want);
    assert!(stderr(&out).contains(&standby), "preflight names the Standby instance: {}", stderr(&out));
    // AWS agrees: both really are on the old image, every other member on the new one.
    let fleet = world(&aws, &["fleet", "shop-web"]);
    for i in fleet["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] != "Terminating") {
        let id = i["id"].as_str().unwrap();
        let expect = if id == standby || id == protected { &old } else { &ami };
        assert_eq!(i["image"], expect.as_str(), "{id}: {fleet}");
    }

    // Text and status say so too.
    let text = aws.bakeroll(&["--pipeline", &p, "status"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains(&format!("left on {old}: {standby}")) && text.contains(&protected), "{text}");
    let st = summary(&aws.bakeroll(&["--pipeline", &p, "--output", "json", "status"]));
    aws.assert_schema_valid(&[&st]);
    assert_eq!(st["groups"][0]["left_behind"].as_array().unwrap().len(), 2);
}
