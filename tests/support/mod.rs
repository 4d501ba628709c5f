//! Harness for end-to-end tests: a local AWS per test (scripts/local-aws with its own state dir and
//! port, time scale 0.01), the real bakeroll binary run against it over HTTP with a scrubbed
//! environment, and an independent boto3 reader of the resulting state (scripts/harness/read_state.py,
//! kept running for the test's life). The server and the reader are stopped when the harness is dropped.

#![allow(dead_code)]

pub mod faultproxy;
mod reader;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

pub struct LocalAws {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub repo: PathBuf,
    reader: Mutex<Option<reader::Reader>>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a variable of the test process's environment is kept from what a test runs (bakeroll, the
/// local AWS, the boto3 helpers): every `AWS_*` (credentials, profile, config files, retry settings: the
/// local AWS's `export` lines set what a run needs), `CI` and `CI_*` / `GITLAB_*` (bakeroll reads the
/// job's commit, id and URLs from them), `BAKEROLL_*` (settings of the binary: a test sets the ones it
/// means), `LOCAL_AWS_*` (server settings such as LOCAL_AWS_DENY) but the shared virtualenv and
/// forkserver (both only make servers start faster), `RUST_LOG`.
/// scripts/harness/local_aws.py `scrubbed` applies the same rule to the Python tools.
pub fn scrubbed(name: &str) -> bool {
    name != "LOCAL_AWS_VENV"
        && name != "LOCAL_AWS_FORKSERVER"
        && (name == "CI"
            || name == "RUST_LOG"
            || ["AWS_", "CI_", "GITLAB_", "BAKEROLL_", "LOCAL_AWS_"].iter().any(|p| name.starts_with(p)))
}

/// Removes from `c`'s environment every variable `scrubbed` names (set them again afterwards as needed).
pub fn scrub(c: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(scrubbed) {
            c.env_remove(&name);
        }
    }
    c
}

fn local_aws(dir: &Path) -> Command {
    let mut c = Command::new(repo().join("scripts/local-aws"));
    scrub(&mut c).env("LOCAL_AWS_DIR", dir).env("LOCAL_AWS_TIME_SCALE", "0.01");
    c
}

impl LocalAws {
    /// Starts a local AWS in a fresh state dir under $BAKEROLL_E2E_DIR (swept by scripts/test) or the temp dir.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, &[])
    }

    /// Like `start`, with server settings such as `LOCAL_AWS_DENY` (read by `up`).
    pub fn start_with(name: &str, settings: &[(&str, &str)]) -> Self {
        let base = std::env::var_os("BAKEROLL_E2E_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = local_aws(&dir).arg("up").envs(settings.iter().copied()).output().expect("run scripts/local-aws up");
        assert!(out.status.success(), "local-aws up failed: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>();
        assert!(env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"), "no endpoint in {env:?}");
        Self { dir, env, repo: repo(), reader: Mutex::new(None) }
    }

    fn endpoint(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.as_str()).expect("endpoint")
    }

    pub fn seed(&self) -> Value {
        self.seed_shapes(&[])
    }

    /// `seed` with `--shape` for each of `shapes` (launch-configuration, mixed-instances, warm-pool):
    /// the default stack plus those groups, healthy (and warmed) when it returns.
    pub fn seed_shapes(&self, shapes: &[&str]) -> Value {
        let mut c = local_aws(&self.dir);
        c.arg("seed");
        for s in shapes {
            c.args(["--shape", s]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "seed failed: {}", String::from_utf8_lossy(&out.stderr));
        self.seed_json()
    }

    /// `seed` with other arguments (`--account 222222222222 --region ap-southeast-1`: the storefront stack
    /// once more, in another account or region; seed.json's `stacks`).
    pub fn seed_with(&self, args: &[&str]) -> Value {
        let out = local_aws(&self.dir).arg("seed").args(args).output().unwrap();
        assert!(out.status.success(), "seed {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        self.seed_json()
    }

    /// What `seed` wrote (seed.json), without seeding again.
    pub fn seed_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("seed.json")).expect("seeded")).unwrap()
    }

    /// The real binary from the repo root against this local AWS, not yet run, in a scrubbed environment:
    /// for tests that need another environment (CI set, no static keys, a terminal), which they set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        scrub(&mut c).current_dir(&self.repo).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs the real binary from the repo root against this local AWS.
    pub fn bakeroll(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run bakeroll");
        eprintln!("--- bakeroll {args:?} exit {:?}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
        self.assert_calls_in_policy(args, &out.stdout);
        out
    }

    /// Starts the real binary in the background (to kill it mid-way); stdout and stderr are discarded.
    pub fn bakeroll_spawn(&self, args: &[&str]) -> std::process::Child {
        let mut c = self.command(args);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn bakeroll")
    }

    /// Every AWS action a run reports in its JSON summary's `api_calls` must be granted by what
    /// `bakeroll iam-policy` prints for the same pipeline: checked after every end-to-end run.
    fn assert_calls_in_policy(&self, args: &[&str], stdout: &[u8]) {
        let Ok(summary) = serde_json::from_slice::<Value>(stdout) else { return };
        let Some(calls) = summary["api_calls"].as_object() else { return };
        let pipeline = args.windows(2).find(|w| w[0] == "--pipeline").map_or("pipeline/bakeroll.toml", |w| w[1]);
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        let out = scrub(&mut c).current_dir(&self.repo).args(["--pipeline", pipeline, "--output", "json", "iam-policy"]).output().expect("run bakeroll iam-policy");
        let summary: Value = serde_json::from_slice(&out.stdout).expect("iam-policy prints a JSON summary");
        // The caller's policy, and each deploy role's (api_calls counts the calls of every account).
        let roles = summary["deploy_roles"].as_array().cloned().unwrap_or_default();
        let policies: Vec<&Value> = std::iter::once(&summary["policy"]).chain(roles.iter().map(|r| &r["policy"])).collect();
        let allowed: Vec<&str> = policies
            .iter()
            .flat_map(|p| p["Statement"].as_array().expect("Statement"))
            .flat_map(|s| s["Action"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        for action in calls.keys() {
            assert!(allowed.contains(&action.as_str()), "{action} was called by {args:?} but `iam-policy` does not grant it");
        }
    }

    /// The state once the world has settled by itself (a build instance just terminated by a real bake
    /// is still `shutting-down` for a moment): two dumps in a row that agree. Any later difference is then
    /// the command's doing, not the clock's.
    pub fn settled_dump(&self) -> Value {
        let mut last = self.dump();
        for _ in 0..10 {
            let next = self.dump();
            if next == last {
                return next;
            }
            eprintln!("local AWS still settling: {:?}", differing(&last, &next));
            last = next;
        }
        panic!("the local AWS never settled");
    }

    /// moto's whole state (what `scripts/local-aws dump` prints: `GET /moto-api/data.json`, read here
    /// straight from the server), normalised for before/after comparisons: only `elbv2.FakeHealthStatus`
    /// is dropped, because moto's dump lists every model object ever built and each DescribeTargetHealth
    /// answer builds new ones — a read, not state.
    pub fn dump(&self) -> Value {
        let body = http_get(self.endpoint(), "/moto-api/data.json");
        let mut state: Value = serde_json::from_slice(&body).expect("the dump is JSON");
        if let Some(elbv2) = state.get_mut("elbv2").and_then(Value::as_object_mut) {
            elbv2.remove("FakeHealthStatus");
        }
        state
    }

    /// A Python program against this local AWS, not yet given its arguments: `scripts/local-aws python`
    /// (the local AWS's virtualenv, boto3 in it; forked from scripts/test's forkserver when there is one,
    /// which saves about half a CPU second per program) in a scrubbed environment plus the local AWS's.
    pub fn python(&self) -> Command {
        let mut c = Command::new(self.repo.join("scripts/local-aws"));
        scrub(&mut c).arg("python").envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// A boto3 helper (`tests/support/<script>` with `args`) against this local AWS.
    pub fn helper(&self, script: &str, args: &[&str]) -> Output {
        self.python().arg(self.repo.join("tests/support").join(script)).args(args).output().expect("run a tests/support helper")
    }

    /// The group's state, read with boto3 (an independent client): scripts/harness/read_state.py, one
    /// process kept for the test's life.
    pub fn inspect(&self, group: &str) -> Value {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if reader.is_none() {
            let mut c = self.python();
            c.arg(self.repo.join("scripts/harness/read_state.py")).arg("--serve");
            *reader = Some(reader::Reader::start(c));
        }
        let answer = reader.as_mut().unwrap().read(group);
        assert!(answer.get("error").is_none(), "inspect {group} failed: {}", answer["error"]);
        answer
    }

    /// Validates JSON summaries against docs/summary.schema.json (python jsonschema, local AWS venv).
    pub fn assert_schema_valid(&self, summaries: &[&Value]) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = self.python();
        c.arg(self.repo.join("tests/support/validate_summary.py")).arg(self.repo.join("docs/summary.schema.json"));
        for (n, s) in summaries.iter().enumerate() {
            let path = dir.path().join(format!("summary-{n}.json"));
            std::fs::write(&path, s.to_string()).unwrap();
            c.arg(path);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "summary does not match docs/summary.schema.json:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        if let Some(r) = self.reader.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            r.stop();
        }
        let _ = local_aws(&self.dir).arg("down").output();
        // Nothing left in TMPDIR — unless the test failed: then the server log is worth reading
        // (scripts/test moves what failed tests kept out of TMPDIR and says where).
        if std::thread::panicking() {
            eprintln!("local AWS state kept for inspection: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `GET path` of a local server (`endpoint` = http://127.0.0.1:PORT): the body of a 200 answer.
fn http_get(endpoint: &str, path: &str) -> Vec<u8> {
    let addr = endpoint.strip_prefix("http://").expect("an http:// endpoint");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the local AWS");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]);
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    answer.split_off(split + 4)
}

/// A test that cannot run here says so where the user sees it: in CI (`CI` set, where `.ci/run` installed
/// every tool) it fails; elsewhere it is written to `$BAKEROLL_SKIPPED` (scripts/test lists that file in
/// its final summary) and to stderr.
pub fn skip(test: &str, why: &str) {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!ci, "{test} cannot run in CI: {why}");
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("BAKEROLL_SKIPPED") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Every instance still in the fleet (Terminating ones have left it) is InService, on `image`, and
/// healthy in every target group, at desired capacity. `state` is `LocalAws::inspect`'s answer.
pub fn assert_fleet_on(state: &Value, image: &str) {
    let instances: Vec<_> = state["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] != "Terminating").collect();
    assert_eq!(instances.len() as u64, state["desired"].as_u64().unwrap(), "{state}");
    for i in instances {
        assert_eq!(i["image"], image, "instance {} not on {image}: {state}", i["id"]);
        assert_eq!(i["lifecycle"], "InService", "{state}");
        for (tg, targets) in state["target_health"].as_object().unwrap() {
            assert_eq!(targets[i["id"].as_str().unwrap()], "healthy", "{} in {tg}: {state}", i["id"]);
        }
    }
}

/// The leak judge of the Rust tests (scripts/reliability/verdict.py `leaks` is the Python tools'): nothing
/// bakeroll made is left unaccounted for in `state` (`inspect`'s answer): every build instance is going,
/// every launch-template version it marked was rolled out by some refresh, and the deploy lock is released.
pub fn assert_nothing_left(state: &Value) {
    for b in state["build_instances"].as_array().unwrap() {
        assert!(matches!(b["state"].as_str(), Some("shutting-down" | "terminated")), "build instance left: {state}");
    }
    let rolled: Vec<String> =
        state["refreshes"].as_array().unwrap().iter().filter_map(|r| r["desired_version"].as_str().map(str::to_string)).collect();
    for v in state["lt_versions"].as_array().unwrap() {
        if v["description"].as_str().is_some_and(|d| d.starts_with("bakeroll:release")) {
            assert!(rolled.contains(&v["number"].to_string()), "version {} never rolled out: {state}", v["number"]);
        }
    }
    assert!(state["group_tags"].get("bakeroll:lock").is_none(), "deploy lock left behind: {state}");
}

/// Names of the top-level sections that differ, to make a failed comparison readable.
pub fn differing(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return vec!["<root>".into()] };
    let mut out = Vec::new();
    for (service, models) in b {
        for (model, v) in models.as_object().into_iter().flatten() {
            if a.get(service).and_then(|m| m.get(model)) != Some(v) {
                out.push(format!("{service}.{model}"));
            }
        }
    }
    for (service, models) in a {
        for model in models.as_object().into_iter().flatten().map(|(k, _)| k) {
            if b.get(service).and_then(|m| m.get(model)).is_none() {
                out.push(format!("{service}.{model} (new)"));
            }
        }
    }
    out
}
