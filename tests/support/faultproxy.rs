//! `scripts/faultproxy` in front of a test's local AWS: start it with rules, change them at run time, see
//! which calls are held in it right now and what it logged. Stopped when dropped.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::LocalAws;

pub struct FaultProxy {
    pub dir: PathBuf,
    pub endpoint: String,
    port: u16,
    repo: PathBuf,
}

impl FaultProxy {
    /// A proxy in `aws`'s state dir, fronting it, with these shorthand rules (`RunInstances=throttle@1`).
    pub fn start(aws: &LocalAws, rules: &[&str]) -> Self {
        let dir = aws.dir.join("faultproxy");
        let upstream = aws.env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.clone()).expect("endpoint");
        let mut c = Command::new(aws.repo.join("scripts/faultproxy"));
        c.env("FAULTPROXY_DIR", &dir).args(["up", "--upstream", &upstream, "--lifetime", "900"]);
        for r in rules {
            c.args(["--rule", r]);
        }
        let out = c.output().expect("run scripts/faultproxy up");
        assert!(out.status.success(), "faultproxy up failed: {}", String::from_utf8_lossy(&out.stderr));
        let endpoint = String::from_utf8_lossy(&out.stdout).trim().split_once('=').expect("export line").1.to_string();
        let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        Self { dir, endpoint, port, repo: aws.repo.clone() }
    }

    /// Replaces the rules (fresh counters).
    pub fn rules(&self, rules: &[&str]) {
        let mut c = Command::new(self.repo.join("scripts/faultproxy"));
        c.env("FAULTPROXY_DIR", &self.dir).arg("rules");
        if rules.is_empty() {
            c.arg("-").stdin(std::process::Stdio::piped());
            let mut child = c.stdout(std::process::Stdio::null()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(b"[]").unwrap();
            assert!(child.wait().unwrap().success());
            return;
        }
        for r in rules {
            c.args(["--rule", r]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "faultproxy rules failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn get(&self, path: &str) -> Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the proxy");
        write!(s, "GET /__faultproxy/{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        serde_json::from_str(text.split_once("\r\n\r\n").expect("an HTTP answer").1).expect("JSON")
    }

    /// Calls held in the proxy right now (`GET /__faultproxy/inflight`).
    pub fn inflight(&self) -> Vec<Value> {
        self.get("inflight").as_array().cloned().unwrap_or_default()
    }

    /// Waits until a call of `operation` is held in the proxy; gives up when `gone` says the client exited.
    pub fn wait_held(&self, operation: &str, mut gone: impl FnMut() -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(call) = self.inflight().into_iter().find(|c| c["operation"] == operation && c["fault"] == "delay") {
                return call;
            }
            assert!(!gone(), "bakeroll exited before {operation} was held in the proxy");
            assert!(start.elapsed() < Duration::from_secs(120), "{operation} never held in the proxy");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every request the proxy logged, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("requests.jsonl")).unwrap_or_default();
        let mut all: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).filter(|e: &Value| e.get("operation").is_some()).collect();
        all.sort_by_key(|e| e["seq"].as_u64());
        all
    }

    /// The logged requests of one operation.
    pub fn calls(&self, operation: &str) -> Vec<Value> {
        self.requests().into_iter().filter(|e| e["operation"] == operation).collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = Command::new(self.repo.join("scripts/faultproxy")).env("FAULTPROXY_DIR", &self.dir).arg("down").output();
    }
}
