//! End-to-end: what bakeroll tells a person at 2 a.m. is true. Every exit path (0, 2, 3, 4, 5, 6, 7,
//! 130 and a refused command line) prints one JSON summary valid against docs/summary.schema.json with
//! the same failure fields, and ends `--events` with an outcome line; configuration problems (no
//! credentials, no or a malformed region, an endpoint nothing answers at) are exit 2 with the fix, the
//! SDK's logs quiet and colourless; reserved tag keys are refused before anything happens; messages say
//! where an environment and a region came from; init writes a pipeline that bakes and plan warns about
//! one that cannot; the report reads on one clock; --help and the man page carry the exit codes and
//! the environment variables. The real binary, against a local AWS where AWS is involved.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::LocalAws;

const PIPELINE: &str = "pipeline/local.toml";

/// The environment of a run that must not reach AWS: nothing listens on port 9, instance metadata is
/// off, static keys and a region are set, and HOME holds no AWS profile.
fn dead_env(home: &Path) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", home.to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The binary with only `env` (no inherited AWS or CI settings), from the repository root.
fn bare(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Run {
    let out: Output = c.output().expect("run bakeroll");
    let r = Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() };
    eprintln!("--- exit {:?}\n{}", r.code, r.stderr);
    r
}

impl Run {
    /// stdout is exactly one JSON object.
    fn json(&self) -> Value {
        let v: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", self.stdout));
        assert!(v.is_object(), "{v}");
        v
    }
}

/// The last line of an events file: the outcome.
fn last_event(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let last = text.lines().last().expect("at least the outcome line");
    serde_json::from_str(last).unwrap()
}

/// A failure's summary carries the same fields whatever failed, and the stream says the same.
fn assert_uniform_failure(s: &Value, code: i32, env: Option<&str>, events: &Path) {
    assert_eq!(s["exit_code"], code, "{s}");
    assert!(s["outcome"].is_string(), "no outcome: {s}");
    for key in ["message", "causes", "state", "next"] {
        assert!(s["error"].get(key).is_some(), "error.{key} missing: {s}");
    }
    assert!(s["api_calls"].is_object() && s["seconds"].is_number(), "{s}");
    if let Some(env) = env {
        assert_eq!(s["env"], env, "{s}");
    }
    let last = last_event(events);
    assert_eq!((last["event"].as_str(), &last["exit_code"], &last["outcome"]), (Some("outcome"), &s["exit_code"], &s["outcome"]), "{last}");
    assert_eq!(last["error"]["message"], s["error"]["message"], "{last}");
}

/// pipeline/local.toml with `from` replaced by `to` (user_data made absolute: the copy lives elsewhere).
fn variant(aws: &LocalAws, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let provision = aws.repo.join("scripts/provision-demo.sh");
    let mut text = std::fs::read_to_string(aws.repo.join(PIPELINE))
        .unwrap()
        .replace("user_data = \"scripts/provision-demo.sh\"", &format!("user_data = {:?}", provision.to_str().unwrap()));
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let path = aws.dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_for(aws: &LocalAws, what: &str, mut ok: impl FnMut(&Value) -> bool) {
    let start = Instant::now();
    loop {
        if ok(&aws.inspect("shop-web")) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_exit_path_prints_one_summary_valid_against_the_schema_and_ends_the_event_stream() {
    let aws = LocalAws::start("msg-exits");
    let seed = aws.seed();
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut events = || {
        n += 1;
        dir.path().join(format!("events-{n}.ndjson"))
    };
    let mut summaries: Vec<Value> = Vec::new();
    let json = |e: &Path| vec!["--output".to_string(), "json".into(), "--events".into(), e.to_str().unwrap().to_string()];
    let cmd = |e: &Path, args: &[&str]| {
        let mut all: Vec<String> = json(e);
        all.extend(args.iter().map(|s| s.to_string()));
        aws.command(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // A command line clap refuses: still one JSON object, and the stream's one line.
    let e = events();
    let r = run(cmd(&e, &["--pipeline", PIPELINE, "deploy"]));
    assert_eq!(r.code, Some(2));
    let s = r.json();
    assert_eq!((s["command"].as_str(), s["outcome"].as_str()), (Some("deploy"), Some("not-started")));
    assert!(s["error"]["message"].as_str().unwrap().contains("--ami <AMI_ID>|--commit <SHA>"), "{s}");
    assert!(r.stderr.contains("Usage: bakeroll deploy"), "clap's own message stays on stderr: {}", r.stderr);
    assert_uniform_failure(&s, 2, Some("local"), &e);
    summaries.push(s);

    // A missing pipeline file, an unknown group, an unknown AMI: the same fields (issue 16's three shapes).
    let e = events();
    let r = run(cmd(&e, &["--pipeline", "pipeline/nope.toml", "deploy", "--ami", &base]));
    let s = r.json();
    assert_uniform_failure(&s, 2, None, &e);
    assert_eq!(s["outcome"], "not-started");
    summaries.push(s);

    let typo = variant(&aws, "typo", &[("auto_scaling_groups = [\"shop-web\"]", "auto_scaling_groups = [\"shop-wbe\"]")]);
    let e = events();
    let r = run(cmd(&e, &["--pipeline", typo.to_str().unwrap(), "deploy", "--ami", &base]));
    let s = r.json();
    assert_uniform_failure(&s, 2, Some("local"), &e);
    summaries.push(s);

    let e = events();
    let r = run(cmd(&e, &["--pipeline", PIPELINE, "deploy", "--ami", "ami-0000000000000dead"]));
    let s = r.json();
    assert_uniform_failure(&s, 2, Some("local"), &e);
    summaries.push(s);

    // Setup problems are exit 2 too, with the same fields.
    let e = events();
    let mut c = cmd(&e, &["--pipeline", PIPELINE, "status"]);
    c.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env("HOME", dir.path());
    let r = run(c);
    let s = r.json();
    assert_uniform_failure(&s, 2, None, &e);
    assert_eq!(s["error"]["message"], "no AWS credentials found");
    summaries.push(s);

    let e = events();
    let mut c = cmd(&e, &["--pipeline", PIPELINE, "ship", "--commit", "unreach1"]);
    c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let r = run(c);
    let s = r.json();
    assert_uniform_failure(&s, 2, Some("local"), &e);
    assert!(s["error"]["message"].as_str().unwrap().starts_with("cannot reach AWS at http://127.0.0.1:9"), "{s}");
    summaries.push(s);

    // Successes: status and iam-policy carry the keys every summary has.
    for args in [&["--pipeline", PIPELINE, "status"][..], &["--pipeline", PIPELINE, "iam-policy"][..]] {
        let e = events();
        let r = run(cmd(&e, args));
        assert_eq!(r.code, Some(0));
        let s = r.json();
        assert!(s.get("error").is_none() && s["pipeline"] == PIPELINE, "{s}");
        assert_eq!((last_event(&e)["event"].as_str(), last_event(&e)["exit_code"].as_i64()), (Some("outcome"), Some(0)));
        summaries.push(s);
    }

    // 6: a bake whose provisioning never finishes.
    std::fs::write(aws.dir.join("stuck.sh"), "#!/bin/sh\necho provisioning\n# local-aws:fail-provisioning\n").unwrap();
    let stuck_script = aws.dir.join("stuck.sh");
    let stuck = variant(&aws, "stuck", &[("timeout = \"60s\"", "timeout = \"3s\"")]);
    let text = std::fs::read_to_string(&stuck).unwrap().replace(aws.repo.join("scripts/provision-demo.sh").to_str().unwrap(), stuck_script.to_str().unwrap());
    std::fs::write(&stuck, text).unwrap();
    let e = events();
    let r = run(cmd(&e, &["--pipeline", stuck.to_str().unwrap(), "bake", "--commit", "stuck01"]));
    assert_eq!(r.code, Some(6), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 6, None, &e);
    assert_eq!(s["outcome"], "failed", "a build instance was launched (and terminated): something happened");
    summaries.push(s);

    // 7: the image is baked but the dotenv file cannot be written at the end.
    let e = events();
    let r = run(cmd(&e, &["--pipeline", PIPELINE, "bake", "--commit", "good001", "--dotenv", "/nonexistent/dir/bake.env"]));
    assert_eq!(r.code, Some(7), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 7, None, &e);
    assert_eq!(s["outcome"], "baked", "the command's own word stays");
    let good = s["bake"]["ami_id"].as_str().unwrap().to_string();
    summaries.push(s);

    // 3: a release that fails its health checks, with the report (one clock, said).
    let report = dir.path().join("report.html");
    let e = events();
    let mut c = cmd(&e, &["--pipeline", PIPELINE, "--report", report.to_str().unwrap(), "ship", "--commit", "broken1", "--tag", "local-aws:health=unhealthy"]);
    c.env("CI", "true");
    let r = run(c);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 3, Some("local"), &e);
    let broken = s["bake"]["ami_id"].as_str().unwrap().to_string();
    assert!(!s["error"]["message"].as_str().unwrap().contains(" at +"), "no clock reading in the reason: {s}");
    summaries.push(s);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<dt>times</dt><dd>+seconds since bakeroll started ("), "the report says its clock");
    let log = html.split("id=\"log\"").nth(1).unwrap();
    assert!(!log.contains(" at +"), "a log line carries a second clock: {log}");
    let evidence = html.split("id=\"evidence-shop-web\"").nth(1).expect("the evidence table");
    let first_row = evidence.split("<tr><td>").nth(1).expect("a row of evidence");
    assert!(first_row.starts_with('+'), "{first_row}");

    // 130: interrupted during a refresh (held at its checkpoint for an AWS hour, 36 s here, so the signal
    // cannot miss it); the summary is printed once the fleet is back.
    let paused = variant(&aws, "paused", &[("checkpoint_delay = \"30s\"", "checkpoint_delay = \"3600s\""), ("timeout = \"3m\"", "timeout = \"2h\"")]);
    let e = events();
    let mut c = cmd(&e, &["--pipeline", paused.to_str().unwrap(), "deploy", "--ami", &good]);
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(&aws, "a refresh in progress", |st| st["refreshes"].as_array().unwrap().iter().any(|r| r["status"] == "InProgress"));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let r = Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() };
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 130, Some("local"), &e);
    summaries.push(s);

    // 4: the previous release is broken too (its image tagged so), so the rollback cannot be verified.
    let tag = aws
        .python()
        .arg("-c")
        .arg(format!("import boto3; boto3.client('ec2').create_tags(Resources=['{base}'], Tags=[{{'Key': 'local-aws:health', 'Value': 'unhealthy'}}])"))
        .output()
        .unwrap();
    assert!(tag.status.success(), "{}", String::from_utf8_lossy(&tag.stderr));
    let short = variant(&aws, "short-verify", &[("health_grace = \"20s\"", "health_grace = \"20s\"\nverify_timeout = \"3s\"")]);
    let e = events();
    let r = run(cmd(&e, &["--pipeline", short.to_str().unwrap(), "deploy", "--ami", &broken, "--force"]));
    assert_eq!(r.code, Some(4), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 4, Some("local"), &e);
    assert_eq!(s["outcome"], "failed");
    summaries.push(s);

    aws.assert_schema_valid(&summaries.iter().collect::<Vec<_>>());
}

#[test]
fn a_refused_permission_is_exit_5_with_the_same_failure_fields() {
    let aws = LocalAws::start_with("msg-denied", &[("LOCAL_AWS_DENY", "ec2:RunInstances")]);
    aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    let r = run(aws.command(&["--pipeline", PIPELINE, "--output", "json", "--events", events.to_str().unwrap(), "bake", "--commit", "deny001"]));
    assert_eq!(r.code, Some(5), "{}", r.stderr);
    let s = r.json();
    assert_uniform_failure(&s, 5, None, &events);
    assert!(r.stderr.contains("Next: allow ec2:RunInstances"), "{}", r.stderr);
    aws.assert_schema_valid(&[&s]);
}

#[test]
fn configuration_problems_are_exit_2_with_the_fix_and_the_sdk_stays_quiet() {
    let home = tempfile::tempdir().unwrap();
    let dead = dead_env(home.path());
    let without = |vars: &[&str]| -> Vec<(String, String)> { dead.iter().filter(|(k, _)| !vars.contains(&k.as_str())).cloned().collect() };
    let no_region = home.path().join("no-region.toml");
    std::fs::write(&no_region, std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PIPELINE)).unwrap().replace("region = \"us-east-1\"\n", "")).unwrap();
    let quiet = |r: &Run| {
        assert!(!r.stderr.contains('\x1b'), "colour codes on a non-terminal: {:?}", r.stderr);
        assert!(!r.stderr.contains("WARN") && !r.stderr.contains("aws_config"), "the SDK's own logs without -v: {}", r.stderr);
        assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", r.stderr);
    };

    // No credentials, with instance metadata enabled (pointed at a closed local port): what a laptop or a
    // misconfigured runner sees. Before: exit 7, no Next, the SDK's WARN lines in colour.
    let mut env = without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED", "AWS_REGION"]);
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), "http://127.0.0.1:9".into()));
    let r = run(bare(&env, &["--pipeline", PIPELINE, "status"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.starts_with("error: no AWS credentials found\n"), "{}", r.stderr);
    assert!(r.stderr.contains("Next: in GitLab CI set AWS_ROLE_ARN") && r.stderr.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "{}", r.stderr);
    quiet(&r);
    // ... and with a profile named, the fix names the profile.
    let mut env = without(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    env.push(("AWS_PROFILE".into(), "nightly".into()));
    let r = run(bare(&env, &["--pipeline", PIPELINE, "status"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("Next: AWS_PROFILE is `nightly`") && r.stderr.contains("aws sso login --profile nightly"), "{}", r.stderr);

    // No region anywhere (the pipeline file has none, nor the environment; metadata at a closed port).
    let mut env = without(&["AWS_REGION", "AWS_EC2_METADATA_DISABLED"]);
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), "http://127.0.0.1:9".into()));
    let r = run(bare(&env, &["--pipeline", no_region.to_str().unwrap(), "status"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.starts_with("error: no AWS region"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("Next: set `region` in {} (e.g. eu-west-1), or AWS_REGION", no_region.display())), "{}", r.stderr);
    quiet(&r);

    // A malformed region: named with where it came from; the JSON's causes say nothing twice.
    let mut env = without(&["AWS_REGION"]);
    env.push(("AWS_REGION".into(), "eu west 1".into()));
    let r = run(bare(&env, &["--pipeline", no_region.to_str().unwrap(), "--output", "json", "status"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("error: the AWS region `eu west 1` (from AWS_REGION) is not a region name"), "{}", r.stderr);
    let s = r.json();
    let causes: Vec<&str> = s["error"]["causes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(causes.iter().all(|c| causes.iter().filter(|d| d.contains(c)).count() == 1), "{causes:?}");
    let r = run(bare(&dead, &["--pipeline", PIPELINE, "init", "shop-web", "--region", "eu west", "--dry-run"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("(from --region)") && r.stderr.contains("Next: set --region to a region such as eu-west-1"), "{}", r.stderr);

    // An endpoint nothing answers at: exit 2 in seconds, naming the variable, not exit 7 after a minute.
    let started = Instant::now();
    let r = run(bare(&dead, &["--pipeline", PIPELINE, "status"]));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(r.stderr.starts_with("error: cannot reach AWS at http://127.0.0.1:9: no answer after 3 attempts"), "{}", r.stderr);
    assert!(r.stderr.contains("Next: AWS_ENDPOINT_URL points bakeroll at http://127.0.0.1:9"), "{}", r.stderr);
    assert_eq!(r.stderr.matches("Caused by:").count(), 1, "{}", r.stderr);
    quiet(&r);

    // -v shows the SDK's logs, still without colour codes when stderr is not a terminal.
    let r = run(bare(&dead, &["-v", "--pipeline", PIPELINE, "status"]));
    assert!(r.stderr.contains("aws_smithy_runtime"), "-v shows the SDK's logs: {}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "colour codes on a non-terminal with -v");
}

#[test]
fn reserved_tag_keys_are_refused_naming_the_flag_or_the_field_before_any_call() {
    let home = tempfile::tempdir().unwrap();
    let dead = dead_env(home.path());
    for (args, names) in [
        (&["ship", "--commit", "tag0001", "--tag", "aws:owner=me"][..], "aws:owner"),
        (&["bake", "--commit", "tag0001", "--tag", "bakeroll:commit=fake"][..], "bakeroll:commit"),
        (&["plan", "--commit", "tag0001", "--tag", "bakeroll:pipeline=other"][..], "bakeroll:pipeline"),
        (&["bake", "--commit", "tag0001", "--tag", "AWS:x=y"][..], "AWS:x"),
    ] {
        let mut all = vec!["--pipeline", PIPELINE, "--output", "json"];
        all.extend_from_slice(args);
        let r = run(bare(&dead, &all));
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("for '--tag <KEY=VALUE>'") && r.stderr.contains(names) && r.stderr.contains("choose another key"), "{}", r.stderr);
        assert!(!r.stderr.contains("cannot reach AWS"), "it called AWS: {}", r.stderr);
        assert_eq!(r.json()["outcome"], "not-started");
    }
    // The same keys in the pipeline file's bake.tags: refused when it loads, naming the field.
    let path = home.path().join("tags.toml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PIPELINE)).unwrap();
    for key in ["bakeroll:ready", "aws:cloudformation:stack-name", "bakeroll:ci-job-id"] {
        std::fs::write(&path, text.replace("tags = { app = \"shop\" }", &format!("tags = {{ app = \"shop\", \"{key}\" = \"x\" }}"))).unwrap();
        let r = run(bare(&dead, &["--pipeline", path.to_str().unwrap(), "ship", "--commit", "tag0001"]));
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert!(r.stderr.contains("`bake.tags` has the key") && r.stderr.contains(key), "{}", r.stderr);
        assert!(!r.stderr.contains("cannot reach AWS"), "it called AWS: {}", r.stderr);
    }
    // A tag of the user's own passes the same checks (and then needs AWS: the dead endpoint answers).
    let r = run(bare(&dead, &["--pipeline", PIPELINE, "bake", "--commit", "tag0001", "--tag", "local-aws:health=ok"]));
    assert!(r.stderr.contains("cannot reach AWS"), "{}", r.stderr);
}

#[test]
fn a_commit_that_is_not_one_names_where_it_came_from() {
    let home = tempfile::tempdir().unwrap();
    let mut env = dead_env(home.path());
    env.push(("CI_COMMIT_SHA".into(), "not a sha!".into()));
    // The variable, not a --commit that was never given.
    let r = run(bare(&env, &["--pipeline", PIPELINE, "ship"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("error: CI_COMMIT_SHA `not a sha!` is not a commit id"), "{}", r.stderr);
    let r = run(bare(&env, &["--pipeline", PIPELINE, "ship", "--commit", "x;y"]));
    assert!(r.stderr.contains("error: --commit `x;y` is not a commit id"), "{}", r.stderr);
}

#[test]
fn messages_name_what_was_chosen_and_how_and_init_writes_a_pipeline_that_bakes() {
    let aws = LocalAws::start("msg-names");
    aws.seed();

    // The environment: whether it came from BAKEROLL_ENV or --env, and the fix for each.
    let mut c = aws.command(&["--pipeline", PIPELINE, "deploy", "--ami", "ami-0123456789abcdef0"]);
    c.env("BAKEROLL_ENV", "prod");
    let r = run(c);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no environment named `prod` (from BAKEROLL_ENV; defined: local)"), "{}", r.stderr);
    assert!(r.stderr.contains("Next: BAKEROLL_ENV is `prod` where this runs: set it to one of local (or unset it), or pass --env"), "{}", r.stderr);
    let r = run(aws.command(&["--pipeline", PIPELINE, "--env", "prod", "status"]));
    assert!(r.stderr.contains("(from --env; defined: local)") && r.stderr.contains("Next: pass --env with one of local"), "{}", r.stderr);

    // status gives the region hint ship gives.
    let typo = variant(&aws, "typo", &[("auto_scaling_groups = [\"shop-web\"]", "auto_scaling_groups = [\"shop-wbe\"]")]);
    let r = run(aws.command(&["--pipeline", typo.to_str().unwrap(), "status"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("Auto Scaling group shop-wbe (environment local) not found in region us-east-1 (is `region` right?)"), "{}", r.stderr);

    // init --region eu-west-1 for a group that is elsewhere: says the region came from the flag.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline").join("shop.toml");
    let p = file.to_str().unwrap();
    let r = run(aws.command(&["--pipeline", p, "init", "shop-web", "--region", "eu-west-1"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("shop-web not found in region eu-west-1 (from --region; is it the group's region?)"), "{}", r.stderr);
    assert!(!r.stderr.contains("pass --region"), "{}", r.stderr);

    // init without a provisioning script writes a file whose bake can finish, and says what to fill in.
    let r = run(aws.command(&["--pipeline", p, "init", "shop-web", "--region", "us-east-1", "--environment", "local"]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("(environment local, from --environment: shop-web)"), "{}", r.stdout);
    assert!(r.stdout.contains("still to fill in: bake.user_data, your provisioning script"), "{}", r.stdout);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("\nready = \"status-ok\"\n") && written.contains("# user_data = "), "{written}");
    let plan = run(aws.command(&["--pipeline", p, "plan", "--commit", "init001"]));
    assert_eq!(plan.code, Some(0));
    assert!(!plan.stderr.contains("warning:"), "{}", plan.stderr);
    let ship = run(aws.command(&["--pipeline", p, "--no-progress", "ship", "--commit", "init001"]));
    assert_eq!(ship.code, Some(0), "the first ship with init's file succeeds: {}", ship.stderr);

    // plan warns about a bake that cannot become ready (ready = "stopped", no user_data), in text and JSON.
    let stuck = variant(&aws, "no-script", &[]);
    let text = std::fs::read_to_string(&stuck).unwrap();
    let text: String = text.lines().filter(|l| !l.starts_with("user_data")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&stuck, text).unwrap();
    let r = run(aws.command(&["--pipeline", stuck.to_str().unwrap(), "plan", "--commit", "plan001"]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("warning: bake.ready is \"stopped\" but bake.user_data is not set"), "{}", r.stderr);
    let r = run(aws.command(&["--pipeline", stuck.to_str().unwrap(), "--output", "json", "plan", "--commit", "plan001"]));
    let notes = r.json()["plan"]["notes"].clone();
    assert!(notes[0]["scope"] == "pipeline" && notes[0]["message"].as_str().unwrap().contains("every bake waits bake.timeout"), "{notes}");
}

#[test]
fn help_and_the_man_page_carry_the_exit_codes_and_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let dead = dead_env(home.path());
    let help = run(bare(&dead, &["--help"]));
    assert_eq!(help.code, Some(0));
    for part in ["Exit codes:", "    3  the deploy failed and was rolled back", "  130  interrupted", "Environment:", "BAKEROLL_ENV", "BAKEROLL_HTTP_ATTEMPT_TIMEOUT", "CI_COMMIT_SHA", "AWS_ENDPOINT_URL"] {
        assert!(help.stdout.contains(part), "{part} missing from --help:\n{}", help.stdout);
    }
    let man = run(bare(&dead, &["man"]));
    assert_eq!(man.code, Some(0));
    for part in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", "\\fB130\\fR", "BAKEROLL_ENV"] {
        assert!(man.stdout.contains(part), "{part} missing from the man page");
    }
    assert!(!man.stdout.contains(".SH EXTRA"), "the sections replace clap_mangen's generic one");
    let dir = tempfile::tempdir().unwrap();
    let r = run(bare(&dead, &["man", "--dir", dir.path().to_str().unwrap()]));
    assert_eq!(r.code, Some(0));
    assert!(std::fs::read_to_string(dir.path().join("bakeroll.1")).unwrap().contains(".SH \"EXIT STATUS\""));
}
