//! Harness for end-to-end tests: a local AWS per test (scripts/local-aws with its own state dir and
//! port, time scale 0.01), the real bakeroll binary run against it over HTTP, and an independent
//! boto3 reader of the resulting state. The server is stopped when the harness is dropped.

#![allow(dead_code)]

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
        let base = std::env::var_os("BAKEROLL_E2E_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = local_aws(&dir).arg("up").output().expect("run scripts/local-aws up");
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

    /// Runs the real binary from the repo root against this local AWS.
    pub fn bakeroll(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bakeroll"));
        c.current_dir(&self.repo).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        for var in ["CI_COMMIT_SHA", "CI_JOB_ID", "BAKEROLL_ENV"] {
            c.env_remove(var);
        }
        let out = c.output().expect("run bakeroll");
        eprintln!("--- bakeroll {args:?} exit {:?}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
        out
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
