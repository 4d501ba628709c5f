//! Harness for end-to-end tests: a local AWS per test (scripts/local-aws with its own state dir and
//! port, time scale 0.01), the real bakeroll binary run against it over HTTP, and an independent
//! boto3 reader of the resulting state. The server is stopped when the harness is dropped.

#![allow(dead_code)]

pub mod faultproxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct LocalAws {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub repo: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn local_aws(dir: &Path) -> Command {
    let mut c = Command::new(repo().join("scripts/local-aws"));
    c.env("LOCAL_AWS_DIR", dir).env("LOCAL_AWS_TIME_SCALE", "0.01");
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
        Self { dir, env, repo: repo() }
    }

    pub fn seed(&self) -> Value {
        let out = local_aws(&self.dir).arg("seed").output().unwrap();
        assert!(out.status.success(), "seed failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("seed.json")).unwrap()).unwrap()
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
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("seed.json")).unwrap()).unwrap()
    }

    /// What `seed` wrote (seed.json), without seeding again.
    pub fn seed_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("seed.json")).expect("seeded")).unwrap()
    }

    /// Runs the real binary from the repo root against this local AWS.
    pub fn bakeroll(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        c.current_dir(&self.repo).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        for var in ["CI_COMMIT_SHA", "CI_JOB_ID", "BAKEROLL_ENV"] {
            c.env_remove(var);
        }
        let out = c.output().expect("run bakeroll");
        eprintln!("--- bakeroll {args:?} exit {:?}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
        self.assert_calls_in_policy(args, &out.stdout);
        out
    }

    /// Every AWS action a run reports in its JSON summary's `api_calls` must be granted by what
    /// `bakeroll iam-policy` prints for the same pipeline: checked after every end-to-end run.
    fn assert_calls_in_policy(&self, args: &[&str], stdout: &[u8]) {
        let Ok(summary) = serde_json::from_slice::<Value>(stdout) else { return };
        let Some(calls) = summary["api_calls"].as_object() else { return };
        let pipeline = args.windows(2).find(|w| w[0] == "--pipeline").map_or("pipeline/bakeroll.toml", |w| w[1]);
        let out = Command::new(env!("CARGO_BIN_EXE_bakeroll"))
            .current_dir(&self.repo)
            .args(["--pipeline", pipeline, "iam-policy"])
            .env_remove("BAKEROLL_ENV")
            .output()
            .expect("run bakeroll iam-policy");
        let policy: Value = serde_json::from_slice(&out.stdout).expect("iam-policy prints a JSON document");
        let allowed: Vec<&str> = policy["Statement"]
            .as_array()
            .expect("Statement")
            .iter()
            .flat_map(|s| s["Action"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        for action in calls.keys() {
            assert!(allowed.contains(&action.as_str()), "{action} was called by {args:?} but `iam-policy` does not grant it");
        }
    }

    /// moto's whole state (`scripts/local-aws dump`), normalised for before/after comparisons: only
    /// `elbv2.FakeHealthStatus` is dropped, because moto's dump lists every model object ever built and
    /// each DescribeTargetHealth answer builds new ones — a read, not state.
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

    pub fn dump(&self) -> Value {
        let out = local_aws(&self.dir).arg("dump").output().expect("run scripts/local-aws dump");
        assert!(out.status.success(), "dump failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut state: Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
        if let Some(elbv2) = state.get_mut("elbv2").and_then(Value::as_object_mut) {
            elbv2.remove("FakeHealthStatus");
        }
        state
    }

    /// Starts the real binary in the background (to kill it mid-way); stdout and stderr are discarded.
    pub fn bakeroll_spawn(&self, args: &[&str]) -> std::process::Child {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        c.current_dir(&self.repo).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        for var in ["CI_COMMIT_SHA", "CI_JOB_ID", "BAKEROLL_ENV"] {
            c.env_remove(var);
        }
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn bakeroll")
    }

    pub fn python(&self) -> PathBuf {
        std::env::var_os("LOCAL_AWS_VENV").map(PathBuf::from).unwrap_or_else(|| self.repo.join(".local-aws/venv")).join("bin/python")
    }

    /// The group's state, read with boto3 (an independent client).
    pub fn inspect(&self, group: &str) -> Value {
        let out = Command::new(self.python())
            .arg(self.repo.join("tests/support/read_state.py"))
            .arg(group)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(out.status.success(), "inspect failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = local_aws(&self.dir).arg("down").output();
        // Nothing left in TMPDIR — unless the test failed: then the server log is worth reading.
        if std::thread::panicking() {
            eprintln!("local AWS state kept for inspection: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl LocalAws {
    /// The real binary from the repo root against this local AWS, not yet run: for tests that need
    /// another environment (CI set or not, no static keys, a terminal).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        c.current_dir(&self.repo).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        for var in ["CI_COMMIT_SHA", "CI_JOB_ID", "BAKEROLL_ENV", "CI"] {
            c.env_remove(var);
        }
        c
    }

    /// Validates JSON summaries against docs/summary.schema.json (python jsonschema, local AWS venv).
    pub fn assert_schema_valid(&self, summaries: &[&Value]) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(self.python());
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

/// A test that cannot run here says so where the user sees it: in CI (`CI` set, where `.ci/run` installed
/// every tool) it fails; elsewhere it is written to `$BAKEROLL_SKIPPED` (scripts/test lists that file in
/// its final summary) and to stderr.
pub fn skip(test: &str, why: &str) {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!ci, "{test} cannot run in CI: {why}");
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("BAKEROLL_SKIPPED") {
        use std::io::Write as _;
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
