//! End-to-end: the bad-input corpus. Each case is a pipeline file, a command line or a cloud
//! precondition that bakeroll must refuse: exit 2 (5 for a missing permission), one error headline
//! naming the field or resource (`names`), the fix said in the message (`fix`, in the headline or the
//! `Next:` line), and nothing changed. Load-time and command-line cases run against an endpoint where
//! nothing listens (any AWS call would end in "cannot reach AWS"); cloud cases run on one local AWS holding every
//! precondition at once (tests/support/preconditions.py), whose whole state (`scripts/local-aws dump`)
//! must be the same afterwards as before (after each case with BAKEROLL_CORPUS_PER_CASE=1). With
//! BAKEROLL_CORPUS_OUT=FILE each case's outcome is appended to FILE as a JSON line
//! (scripts/reliability/run sets both and puts them in RELIABILITY.md).

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::LocalAws;

/// A pipeline file: pipeline/local.toml with some keys set (`Some`) or removed (`None`) per section
/// (`""` = top level, `bake`, `local` = `[environments.local]`), or a text of its own.
enum Pipe {
    Local(&'static [(&'static str, &'static str, Option<&'static str>)]),
    Text(&'static str),
    Missing,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Pipeline,
    Cli,
    Cloud,
    Denied,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline file",
            Kind::Cli => "command line",
            Kind::Cloud => "cloud precondition",
            Kind::Denied => "permission",
        }
    }
}

struct Case {
    name: &'static str,
    kind: Kind,
    pipe: Pipe,
    /// `{pipeline}` is the written pipeline file, `{tmp}` a scratch directory, `{foreign}` an AMI id.
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    exit: i32,
    names: &'static str,
    fix: &'static str,
}

const fn case(name: &'static str, kind: Kind, pipe: Pipe, args: &'static [&'static str], exit: i32, names: &'static str, fix: &'static str) -> Case {
    Case { name, kind, pipe, args, env: &[], exit, names, fix }
}

use Kind::*;
use Pipe::*;

const SHIP: &[&str] = &["--pipeline", "{pipeline}", "ship", "--commit", "badin01"];
const BAKE: &[&str] = &["--pipeline", "{pipeline}", "bake", "--commit", "badin01"];

const LOAD_TIME: &[Case] = &[
    case("unknown key", Pipeline, Local(&[("bake", "instnace_type", Some("\"t3.micro\""))]), SHIP, 2, "instnace_type", "expected one of `base_ami`"),
    case("TOML syntax error", Pipeline, Text("region = \"us-east-1\"\n[bake\n"), SHIP, 2, "line 2, column 6", "expected `]`"),
    case("missing pipeline file", Pipeline, Missing, SHIP, 2, "nope.toml", "--pipeline"),
    case("bake.poll_interval = \"0s\"", Pipeline, Local(&[("bake", "poll_interval", Some("\"0s\""))]), SHIP, 2, "bake.poll_interval", "more than zero"),
    case("bake.timeout = \"0s\"", Pipeline, Local(&[("bake", "timeout", Some("\"0s\""))]), SHIP, 2, "bake.timeout", "more than zero"),
    case("bake.image_timeout = \"0s\"", Pipeline, Local(&[("bake", "image_timeout", Some("\"0s\""))]), SHIP, 2, "bake.image_timeout", "more than zero"),
    case("bake.poll_interval not below bake.timeout", Pipeline, Local(&[("bake", "poll_interval", Some("\"2m\""))]), SHIP, 2, "bake.poll_interval", "shorter than bake.timeout"),
    case("timeout = \"0s\"", Pipeline, Local(&[("local", "timeout", Some("\"0s\""))]), SHIP, 2, "environments.local.timeout", "more than zero"),
    case("health_grace = \"0s\"", Pipeline, Local(&[("local", "health_grace", Some("\"0s\""))]), SHIP, 2, "environments.local.health_grace", "more than zero"),
    case("poll_interval = \"0s\"", Pipeline, Local(&[("local", "poll_interval", Some("\"0s\""))]), SHIP, 2, "environments.local.poll_interval", "more than zero"),
    case("verify_timeout = \"0s\"", Pipeline, Local(&[("local", "verify_timeout", Some("\"0s\""))]), SHIP, 2, "environments.local.verify_timeout", "more than zero"),
    case("checkpoint_delay without checkpoints", Pipeline, Local(&[("local", "checkpoints", None)]), SHIP, 2, "environments.local.checkpoint_delay", "checkpoints"),
    case("checkpoints not ascending", Pipeline, Local(&[("local", "checkpoints", Some("[100, 50]"))]), SHIP, 2, "environments.local.checkpoints", "ascending"),
    case("checkpoints not ending at 100", Pipeline, Local(&[("local", "checkpoints", Some("[25, 50]"))]), SHIP, 2, "environments.local.checkpoints", "ending with 100"),
    case("min_healthy_percentage 101", Pipeline, Local(&[("local", "min_healthy_percentage", Some("101"))]), SHIP, 2, "environments.local.min_healthy_percentage", "0-100"),
    case("max_healthy_percentage 99", Pipeline, Local(&[("local", "max_healthy_percentage", Some("99"))]), SHIP, 2, "environments.local.max_healthy_percentage", "100-200"),
    case("max - min above 100", Pipeline, Local(&[("local", "min_healthy_percentage", Some("50"))]), SHIP, 2, "environments.local.max_healthy_percentage", "exceeds 100"),
    case("unhealthy_threshold 0", Pipeline, Local(&[("local", "unhealthy_threshold", Some("0"))]), SHIP, 2, "environments.local.unhealthy_threshold", "at least 1"),
    case("no groups", Pipeline, Local(&[("local", "auto_scaling_groups", Some("[]"))]), SHIP, 2, "environments.local.auto_scaling_groups", "at least one group"),
    case("eleven alarms", Pipeline, Local(&[("local", "alarms", Some("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]"))]), SHIP, 2, "environments.local.alarms", "10 alarms"),
    case("bake_time over 48 h", Pipeline, Local(&[("local", "bake_time", Some("\"49h\"")), ("local", "timeout", Some("\"60h\""))]), SHIP, 2, "environments.local.bake_time", "48 h"),
    case("timeout shorter than the pauses", Pipeline, Local(&[("local", "timeout", Some("\"30s\""))]), SHIP, 2, "environments.local.timeout", "checkpoint pauses plus bake_time"),
    case("lock_lease 1s", Pipeline, Local(&[("local", "lock_lease", Some("\"1s\""))]), SHIP, 2, "environments.local.lock_lease", "at least 3s"),
    case("metrics = \"on\"", Pipeline, Local(&[("local", "metrics", Some("\"on\""))]), SHIP, 2, "metrics", "`auto` or `off`"),
    case("max_error_rate_increase 0", Pipeline, Local(&[("local", "max_error_rate_increase", Some("0"))]), SHIP, 2, "environments.local.max_error_rate_increase", "percentage points above 0"),
    case("max_latency_ratio 1", Pipeline, Local(&[("local", "max_latency_ratio", Some("1"))]), SHIP, 2, "environments.local.max_latency_ratio", "a ratio above 1"),
    case("min_requests 0", Pipeline, Local(&[("local", "min_requests", Some("0"))]), SHIP, 2, "environments.local.min_requests", "1 to 10000000"),
    case("not a duration", Pipeline, Local(&[("local", "health_grace", Some("\"5 parsecs\""))]), SHIP, 2, "health_grace", "90s"),
    case("ready = \"maybe\"", Pipeline, Local(&[("bake", "ready", Some("\"maybe\""))]), SHIP, 2, "maybe", "stopped"),
    case("ami_name without {commit}", Pipeline, Local(&[("bake", "ami_name", Some("\"shop\""))]), SHIP, 2, "bake.ami_name", "{commit}"),
    case("two base image sources", Pipeline, Local(&[("bake", "base_ami", Some("\"ami-0123456789abcdef0\""))]), SHIP, 2, "`bake`", "keep exactly one"),
    case("invalid region", Pipeline, Local(&[("", "region", Some("\"us-east-one\""))]), SHIP, 2, "us-east-one", "e.g. us-east-1"),
    case("no environment", Pipeline, Local(&[("local", "__section__", None)]), SHIP, 2, "environments", "[environments.staging]"),
    case("two environments, no --env", Pipeline, Text(TWO_ENVS), SHIP, 2, "several environments", "--env"),
    case("unknown --env", Cli, Local(&[]), &["--pipeline", "{pipeline}", "--env", "prod", "ship", "--commit", "badin01"], 2, "`prod`", "defined: local"),
    case("--commit not a commit id", Cli, Local(&[]), &["--pipeline", "{pipeline}", "ship", "--commit", "bad commit!"], 2, "bad commit!", "letters, digits"),
    case("deploy --commit not a commit id", Cli, Local(&[]), &["--pipeline", "{pipeline}", "deploy", "--commit", "x;rm -rf"], 2, "x;rm -rf", "letters, digits"),
    case("--tag without =", Cli, Local(&[]), &["--pipeline", "{pipeline}", "ship", "--commit", "badin01", "--tag", "app"], 2, "--tag", "KEY=VALUE"),
    case("deploy without a release", Cli, Local(&[]), &["--pipeline", "{pipeline}", "deploy"], 2, "required arguments were not provided", "--ami <AMI_ID>|--commit <SHA>"),
    case("--dotenv with --dry-run", Cli, Local(&[]), &["--pipeline", "{pipeline}", "ship", "--dry-run", "--dotenv", "x.env"], 2, "--dotenv", "Usage"),
    case("unwritable --dotenv", Cli, Local(&[]), &["--pipeline", "{pipeline}", "ship", "--commit", "badin01", "--dotenv", "/nonexistent/dir/bake.env"], 2, "--dotenv /nonexistent/dir/bake.env", "cannot write"),
    case("unwritable --report", Cli, Local(&[]), &["--pipeline", "{pipeline}", "--report", "/nonexistent/dir/r.html", "ship", "--commit", "badin01"], 2, "--report /nonexistent/dir/r.html", "cannot write"),
    case("unwritable --events", Cli, Local(&[]), &["--pipeline", "{pipeline}", "--events", "/nonexistent/dir/e.ndjson", "ship", "--commit", "badin01"], 2, "--events /nonexistent/dir/e.ndjson", "cannot write"),
    case("gc --older-than not a duration", Cli, Local(&[]), &["--pipeline", "{pipeline}", "gc", "--older-than", "soon"], 2, "--older-than", "2h"),
    case("unknown command", Cli, Local(&[]), &["--pipeline", "{pipeline}", "shipit"], 2, "shipit", "ship"),
    case("requires_verified_in an unknown environment", Pipeline, Local(&[("local", "requires_verified_in", Some("[\"staging\"]"))]), SHIP, 2, "environments.local.requires_verified_in", "not an environment of this file (defined: local)"),
    case("requires_verified_in itself", Pipeline, Local(&[("local", "requires_verified_in", Some("[\"local\"]"))]), SHIP, 2, "environments.local.requires_verified_in", "cannot require its own verification"),
    case("requires_verified_in in a cycle", Pipeline, Text(PROMOTION_CYCLE), SHIP, 2, "environments.production.requires_verified_in", "makes a cycle (production requires staging requires production)"),
    case("revoke without --reason", Cli, Local(&[]), &["--pipeline", "{pipeline}", "revoke", "badin01"], 2, "required arguments were not provided", "--reason <TEXT>"),
    case("revoke with an empty --reason", Cli, Local(&[]), &["--pipeline", "{pipeline}", "revoke", "badin01", "--reason", " "], 2, "--reason is empty", "say why"),
    case("revoke a launch-template version", Cli, Local(&[]), &["--pipeline", "{pipeline}", "revoke", "3", "--reason", "bad"], 2, "`3`", "by its commit (7 or more characters) or its AMI id"),
];

const PROMOTION_CYCLE: &str = "[bake]\nbase_ami = \"ami-0123456789abcdef0\"\nami_name = \"shop-{commit}\"\n\
    [environments.staging]\nauto_scaling_groups = [\"a\"]\nrequires_verified_in = [\"production\"]\n\
    [environments.production]\nauto_scaling_groups = [\"b\"]\nrequires_verified_in = [\"staging\"]\n";

const TWO_ENVS: &str = "[bake]\nbase_ami = \"ami-0123456789abcdef0\"\nami_name = \"shop-{commit}\"\n\
    [environments.staging]\nauto_scaling_groups = [\"a\"]\n[environments.production]\nauto_scaling_groups = [\"b\"]\n";

const ATTEMPT_TIMEOUT_CASE: Case = Case {
    name: "BAKEROLL_HTTP_ATTEMPT_TIMEOUT=soon",
    kind: Cli,
    pipe: Local(&[]),
    args: SHIP,
    env: &[("BAKEROLL_HTTP_ATTEMPT_TIMEOUT", "soon")],
    exit: 2,
    names: "BAKEROLL_HTTP_ATTEMPT_TIMEOUT",
    fix: "unset it",
};

const CLOUD: &[Case] = &[
    case("group not found", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-nope\"]"))]), SHIP, 2, "shop-nope not found", "region"),
    case("wrong region: the group", Cloud, Local(&[("", "region", Some("\"us-west-2\""))]), SHIP, 2, "in region us-west-2", "is `region` right?"),
    case("wrong region: the base image", Cloud, Local(&[("", "region", Some("\"us-west-2\"")), ("bake", "base_ami_filter", Some("{ owners = [\"self\"], name = \"shop-base-*\" }"))]), BAKE, 2, "us-west-2", "is `region` right?"),
    // The groups are checked before the image: in the wrong region the group is what is missing first.
    case("wrong region: deploy --commit", Cloud, Local(&[("", "region", Some("\"us-west-2\""))]), &["--pipeline", "{pipeline}", "deploy", "--commit", "c0ffee9"], 2, "shop-web not found in region us-west-2", "is `region` right?"),
    case("commit never baked", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "deploy", "--commit", "c0ffee9"], 2, "no image baked for commit c0ffee9", "bakeroll bake --commit c0ffee9"),
    case("AMI not found", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "deploy", "--ami", "ami-0123456789abcdef0"], 2, "ami-0123456789abcdef0 not found", "is `region` right?"),
    case("group in no target group", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-notg\"]"))]), SHIP, 2, "shop-notg is in no target group", "health = \"ec2\""),
    case("group on a launch configuration", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-lc\"]"))]), SHIP, 2, "shop-lc runs launch configuration shop-lc", "bakeroll adopt"),
    case("two deploys of one environment", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-locked\"]"))]), SHIP, 2, "holds group shop-locked", "Wait for it"),
    case("ship onto an unhealthy fleet", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-sick\"]"))]), SHIP, 2, "shop-sick is not healthy", "--force"),
    case("ship with a refresh in flight", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-busy\"]")), ("local", "health", Some("\"ec2\""))]), SHIP, 2, "shop-busy has instance refresh", "wait for it to finish"),
    case("deploy with a refresh in flight", Cloud, Local(&[("local", "auto_scaling_groups", Some("[\"shop-busy\"]")), ("local", "health", Some("\"ec2\""))]), &["--pipeline", "{pipeline}", "deploy", "--ami", "{base}"], 2, "shop-busy has instance refresh", "wait for it to finish"),
    case("an image of the name not baked by the pipeline", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "bake", "--commit", "foreign1"], 2, "shop-foreign1", "change bake.ami_name"),
    case("deploy of a commit never baked", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "deploy", "--commit", "neverbaked1"], 2, "neverbaked1", "bakeroll bake --commit neverbaked1"),
    case("--build-instance not found", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "bake", "--commit", "badin01", "--build-instance", "i-0123456789abcdef0"], 2, "i-0123456789abcdef0 not found", "--build-instance"),
    case("bake.user_data missing", Cloud, Local(&[("bake", "user_data", Some("\"/nonexistent/provision.sh\""))]), BAKE, 2, "bake.user_data: cannot read /nonexistent/provision.sh", "relative to the repository root"),
    case("rollback to an unknown version", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "rollback", "--to", "99"], 2, "99", "bakeroll history"),
    case("rollback to an unknown AMI", Cloud, Local(&[]), &["--pipeline", "{pipeline}", "rollback", "--to", "ami-0123456789abcdef0"], 2, "ami-0123456789abcdef0", "bakeroll history"),
];

const DENIED: &[Case] = &[
    case("ship without ec2:RunInstances", Denied, Local(&[]), SHIP, 5, "ec2:RunInstances", "allow ec2:RunInstances"),
    case("bake --dry-run without ec2:RunInstances", Denied, Local(&[]), &["--pipeline", "{pipeline}", "bake", "--commit", "badin01", "--dry-run"], 5, "ec2:RunInstances", "`bakeroll iam-policy` prints the policy"),
    case("deploy without autoscaling:CreateOrUpdateTags (the lock)", Denied, Local(&[]), &["--pipeline", "{pipeline}", "deploy", "--ami", "{base}"], 5, "autoscaling:CreateOrUpdateTags", "allow autoscaling:CreateOrUpdateTags"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `pipe` as text: local.toml edited, with user_data made absolute (the file is written elsewhere).
fn pipeline_text(pipe: &Pipe) -> Option<String> {
    let edits = match pipe {
        Text(t) => return Some(t.to_string()),
        Missing => return None,
        Local(edits) => edits,
    };
    let base = std::fs::read_to_string(repo().join("pipeline/local.toml")).unwrap();
    let script = repo().join("scripts/provision-demo.sh");
    let mut lines: Vec<String> =
        base.replace("\"scripts/provision-demo.sh\"", &format!("{:?}", script.display().to_string())).lines().map(str::to_string).collect();
    for (section, key, value) in edits.iter() {
        let header = match *section {
            "" => None,
            "local" => Some("[environments.local]".to_string()),
            s => Some(format!("[{s}]")),
        };
        let start = header.as_ref().map_or(0, |h| lines.iter().position(|l| l.trim() == h).expect("section") + 1);
        let end = lines.iter().skip(start).position(|l| l.starts_with('[')).map_or(lines.len(), |p| start + p);
        if *key == "__section__" {
            lines.drain(start - 1..end);
            continue;
        }
        let at = lines[start..end].iter().position(|l| l.split('=').next().is_some_and(|k| k.trim() == *key)).map(|p| start + p);
        match (at, value) {
            (Some(i), Some(v)) => lines[i] = format!("{key} = {v}"),
            (Some(i), None) => {
                lines.remove(i);
            }
            (None, Some(v)) => lines.insert(start, format!("{key} = {v}")),
            (None, None) => {}
        }
    }
    Some(lines.join("\n") + "\n")
}

struct Outcome {
    exit: Option<i32>,
    headline: String,
    message: String,
}

fn run_case(c: &Case, n: usize, tmp: &Path, env: &[(String, String)], base: &str, foreign: &str) -> Outcome {
    let pipeline = tmp.join(format!("case{n}.toml"));
    let path = match pipeline_text(&c.pipe) {
        Some(text) => {
            std::fs::write(&pipeline, text).unwrap();
            pipeline.display().to_string()
        }
        None => tmp.join("nope.toml").display().to_string(),
    };
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.replace("{pipeline}", &path).replace("{tmp}", &tmp.display().to_string()).replace("{base}", base).replace("{foreign}", foreign))
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
    support::scrub(&mut cmd).current_dir(tmp).args(&args).envs(env.iter().map(|(k, v)| (k, v))).envs(c.env.iter().copied());
    let out = cmd.output().expect("run bakeroll");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let headline = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or("").trim_start_matches("error:").trim().to_string();
    Outcome { exit: out.status.code(), headline, message: stderr }
}

/// What is wrong with an outcome, if anything.
fn judge(c: &Case, o: &Outcome) -> Vec<String> {
    let mut wrong = Vec::new();
    if o.exit != Some(c.exit) {
        wrong.push(format!("exit {:?}, expected {}", o.exit, c.exit));
    }
    if !o.headline.contains(c.names) {
        wrong.push(format!("the headline does not name `{}`", c.names));
    }
    let next = o.message.lines().find(|l| l.trim_start().starts_with("Next:")).unwrap_or("");
    let tip = o.message.lines().filter(|l| l.trim_start().starts_with("tip:") || l.starts_with("Usage:")).collect::<Vec<_>>().join(" ");
    if !(o.headline.contains(c.fix) || next.contains(c.fix) || tip.contains(c.fix)) {
        wrong.push(format!("no fix `{}` in the headline or Next:", c.fix));
    }
    let headlines = o.message.lines().filter(|l| l.starts_with("error:")).count();
    if headlines != 1 {
        wrong.push(format!("{headlines} error headlines"));
    }
    wrong
}

fn record(c: &Case, o: &Outcome, unchanged: &str) {
    let Some(path) = std::env::var_os("BAKEROLL_CORPUS_OUT") else { return };
    let line = json!({"name": c.name, "kind": c.kind.name(), "exit": o.exit, "names": c.names, "headline": o.headline, "unchanged": unchanged});
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} corpus case(s) misbehaved:\n{}", failures.len(), failures.join("\n\n"));
}

// The corpus keeps at least 40 cases: checked when the tests are built (a test could only count these
// constant arrays, and so could never fail once built).
const _: () = assert!(LOAD_TIME.len() + 1 + CLOUD.len() + DENIED.len() >= 40, "the bad-input corpus has fewer than 40 cases");

#[test]
fn load_time_and_command_line_cases_refuse_before_any_aws_call() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: a command that called AWS would end in "cannot reach AWS" (exit 2 with
    // that headline), so the case's own message here also proves nothing was asked of (or changed in) AWS.
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut failures = Vec::new();
    for (n, c) in LOAD_TIME.iter().chain(std::iter::once(&ATTEMPT_TIMEOUT_CASE)).enumerate() {
        let o = run_case(c, n, tmp.path(), &env, "ami-0123456789abcdef0", "");
        let mut wrong = judge(c, &o);
        if o.message.contains("cannot reach AWS") {
            wrong.push("it called AWS".into());
        }
        record(c, &o, "no AWS call");
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n{}", c.name, wrong.join("; "), o.message));
        }
    }
    report(failures);
}


/// Runs `cases` on `aws` (seeded, preconditions built) and compares the whole state with what it was
/// before: after every case with BAKEROLL_CORPUS_PER_CASE=1 (what scripts/reliability/run sets; a dump
/// takes seconds), else once after all of them — bakeroll never deletes what a run before it made, and
/// what it makes and removes again leaves traces (terminated instances, spent version numbers), so a
/// change by any case still shows at the end.
fn cloud_cases(aws: &LocalAws, cases: &[Case], foreign: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let base = aws.seed_json()["base_ami"].as_str().unwrap().to_string();
    let per_case = std::env::var_os("BAKEROLL_CORPUS_PER_CASE").is_some();
    let mut before = aws.settled_dump();
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let o = run_case(c, n, tmp.path(), &aws.env, &base, foreign);
        let mut wrong = judge(c, &o);
        let unchanged = if per_case {
            let after = aws.dump();
            let same = after == before;
            if !same {
                wrong.push("the local AWS's state changed".into());
                before = aws.settled_dump();
            }
            Some(same)
        } else {
            None
        };
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n{}", c.name, wrong.join("; "), o.message));
        }
        outcomes.push((c, o, unchanged));
    }
    let all_same = per_case || aws.dump() == before;
    if !all_same {
        failures.push("the local AWS's state changed during these cases (BAKEROLL_CORPUS_PER_CASE=1 says which)".into());
    }
    for (c, o, unchanged) in &outcomes {
        let said = match unchanged {
            Some(true) => "state dump equal",
            Some(false) => "CHANGED",
            None if all_same => "state dump equal (after all cases)",
            None => "CHANGED (some case)",
        };
        record(c, o, said);
    }
    report(failures);
}

#[test]
fn cloud_preconditions_are_refused_and_change_nothing() {
    let aws = LocalAws::start("corpus-cloud");
    aws.seed();
    let out = aws.helper("preconditions.py", &[aws.dir.join("seed.json").to_str().unwrap()]);
    assert!(out.status.success(), "preconditions: {}", String::from_utf8_lossy(&out.stderr));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    cloud_cases(&aws, CLOUD, made["foreign_image"].as_str().unwrap());
}

#[test]
fn missing_permissions_are_named_and_change_nothing() {
    let aws = LocalAws::start_with("corpus-denied", &[("LOCAL_AWS_DENY", "ec2:RunInstances,autoscaling:CreateOrUpdateTags")]);
    aws.seed();
    // A deploy takes the lock first (CreateOrUpdateTags); a ship is denied at its launch once the lock is
    // allowed: the deny list is the server's, so the ship case runs on a second server.
    cloud_cases(&aws, &DENIED[1..], "");
    let aws = LocalAws::start_with("corpus-denied-run", &[("LOCAL_AWS_DENY", "ec2:RunInstances")]);
    aws.seed();
    cloud_cases(&aws, &DENIED[..1], "");
}
