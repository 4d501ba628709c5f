//! End-to-end: `bakeroll init` against the local AWS — the file it writes for the seeded stack loads,
//! names what it found, and a ship with it works; it never overwrites; a group on a launch
//! configuration or a missing group is exit 2 naming it and the way forward, with no file written.

mod support;


use support::LocalAws;

#[test]
fn init_writes_a_pipeline_that_ships_and_refuses_what_it_cannot_use() {
    let aws = LocalAws::start("init");
    let seed = aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline").join("shop.toml");
    let p = path.to_str().unwrap();
    let provision = aws.repo.join("scripts/provision-demo.sh");
    let args = ["--pipeline", p, "init", "shop-web", "--region", "us-east-1", "--environment", "local", "--user-data", provision.to_str().unwrap()];

    let dry = aws.bakeroll(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(dry.status.code(), Some(0));
    let text = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(!path.exists(), "--dry-run writes nothing");
    let base = seed["base_ami"].as_str().unwrap();
    for expected in ["auto_scaling_groups = [\"shop-web\"]", "[environments.local]", base, "shop-web-admin", "region = \"us-east-1\""] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    let wrote = aws.bakeroll(&args);
    assert_eq!(wrote.status.code(), Some(0), "{}", String::from_utf8_lossy(&wrote.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the file is what the dry run printed");
    let again = aws.bakeroll(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    let ship = aws.bakeroll(&["--pipeline", p, "--no-progress", "ship", "--commit", "init001"]);
    assert_eq!(ship.status.code(), Some(0), "a ship with the written file works");
    let state = aws.inspect("shop-web");
    let ami = state["lt_versions"].as_array().unwrap().iter().max_by_key(|v| v["number"].as_i64()).unwrap()["image"].as_str().unwrap().to_string();
    assert_ne!(ami, base);
    support::assert_fleet_on(&state, &ami);

    let out = aws.helper("launch_configuration_group.py", &[aws.dir.join("seed.json").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lc_path = dir.path().join("lc.toml");
    let lc = aws.bakeroll(&["--pipeline", lc_path.to_str().unwrap(), "init", "shop-lc", "--region", "us-east-1"]);
    assert_eq!(lc.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&lc.stderr);
    assert!(stderr.contains("shop-lc") && stderr.contains("launch configuration") && stderr.contains("bakeroll adopt"), "{stderr}");
    assert!(!lc_path.exists());

    let missing = aws.bakeroll(&["--pipeline", lc_path.to_str().unwrap(), "init", "no-such-group", "--region", "us-east-1"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-group not found in region us-east-1"));
    assert!(!lc_path.exists());
}
