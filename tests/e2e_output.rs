//! End-to-end: what people and tools read, from the real binary against the local AWS. A failing
//! ship in CI mode (GitLab section markers, NDJSON events, a JSON summary valid against
//! docs/summary.schema.json, an HTML report rendered in headless Chromium); a good ship on a
//! terminal (tmux) draws progress bars; OIDC web identity with no static keys deploys.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::LocalAws;

const PIPELINE: &str = "pipeline/local.toml";

/// Debian's chromium (installed by `.ci/run`); outside CI a missing browser skips the render check.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        support::skip("the report rendering check (e2e_output)", "chromium is not installed (scripts/install-test-tools --system installs it)");
    }
    found
}

/// Headless Chromium with the flags that keep it off the network; returns (DOM after layout, PNG path).
fn render(browser: &Path, html: &Path, out_dir: &Path) -> (String, PathBuf) {
    let png = out_dir.join("report.png");
    let base = |profile: &str| {
        let mut c = Command::new(browser);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            .args(["--no-first-run", "--disable-sync", "--disable-quic", "--hide-scrollbars", "--window-size=1160,1000"])
            .arg(format!("--user-data-dir={}", out_dir.join(profile).display()));
        c
    };
    let url = format!("file://{}", html.display());
    let dom = base("profile-dom").arg("--dump-dom").arg(&url).output().expect("run chromium");
    assert!(dom.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = base("profile-shot").arg(format!("--screenshot={}", png.display())).arg(&url).output().expect("run chromium");
    assert!(shot.status.success(), "chromium --screenshot: {}", String::from_utf8_lossy(&shot.stderr));
    (String::from_utf8_lossy(&dom.stdout).into_owned(), png)
}

#[test]
fn failing_ship_in_ci_reports_sections_events_schema_and_a_rendered_timeline() {
    let aws = LocalAws::start("output-fail");
    let seed = aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let (report, events) = (dir.path().join("report.html"), dir.path().join("events.ndjson"));
    let out = aws
        .command(&["--pipeline", PIPELINE, "--output", "json", "--report", report.to_str().unwrap(), "--events", events.to_str().unwrap()])
        .args(["ship", "--commit", "broken7", "--tag", "local-aws:health=unhealthy"])
        .env("CI", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr.contains("Next: nothing to undo: local is verified back on ami-"), "{stderr}");

    // CI mode: plain timestamped lines inside GitLab collapsible sections, one per phase, all closed.
    let starts = stderr.matches("\x1b[0Ksection_start:").count();
    let ends = stderr.matches("\x1b[0Ksection_end:").count();
    assert!(starts >= 5 && starts == ends, "{starts} sections opened, {ends} closed");
    assert!(stderr.contains("section_start:") && stderr.contains(":shop-web_rollback[collapsed=false]\r\x1b[0K"), "no rollback section");
    assert!(!stderr.contains("[=====") && !stderr.contains("\r\x1b[2K"), "bars in CI output");

    // The summary is valid against the documented schema (and so is a precondition failure's).
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    let not_found = aws.command(&["--pipeline", PIPELINE, "--output", "json", "deploy", "--ami", "ami-0000000000000dead"]).output().unwrap();
    assert_eq!(not_found.status.code(), Some(2));
    aws.assert_schema_valid(&[&summary, &serde_json::from_slice(&not_found.stdout).unwrap()]);

    // The event stream: one stamped JSON object per line; the fleet samples saw the broken instances
    // on the new AMI go unhealthy, and the last sample has the whole fleet back on the old image.
    let lines: Vec<Value> = std::fs::read_to_string(&events).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().all(|l| l["schema"] == "bakeroll.event/v1" && l["ts"].is_string() && l["event"].is_string()));
    let ami = summary["bake"]["ami_id"].as_str().unwrap();
    let fleets: Vec<&Value> = lines.iter().filter(|l| l["event"] == "fleet").collect();
    let broken: Vec<String> = fleets
        .iter()
        .flat_map(|f| f["instances"].as_array().unwrap())
        .filter(|i| i["image"] == ami && i["health"].as_object().unwrap().values().any(|s| s == "unhealthy"))
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!broken.is_empty(), "no unhealthy new instance in the event stream");
    let last = fleets.last().unwrap()["instances"].as_array().unwrap();
    let old = seed["base_ami"].as_str().unwrap();
    assert!(last.iter().filter(|i| i["lifecycle"] == "InService").all(|i| i["image"] == old), "{last:?}");

    // The report, as a browser shows it: every instance, the rollback marker and its reason.
    let Some(browser) = chromium() else { return };
    let (dom, png) = render(&browser, &report, dir.path());
    let ids: std::collections::BTreeSet<&str> =
        fleets.iter().flat_map(|f| f["instances"].as_array().unwrap()).map(|i| i["id"].as_str().unwrap()).collect();
    for id in &ids {
        assert!(dom.contains(&format!("data-instance=\"{id}\"")), "{id} not drawn");
    }
    assert!(dom.contains("id=\"rollback-marker-shop-web\""), "no rollback marker");
    let reason = dom.split("id=\"rollback-reason-shop-web\"").nth(1).expect("rollback reason shown");
    assert!(broken.iter().any(|id| reason[..reason.find("</p>").unwrap()].contains(id.as_str())), "reason does not name the instance");
    assert!(dom.contains("class=\"badge rolled-back\""));
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size > 20_000, "screenshot is {size} bytes");
    if std::env::var_os("BAKEROLL_UPDATE_DOCS").is_some() {
        std::fs::copy(&png, aws.repo.join("docs/report-rollback.png")).unwrap();
        std::fs::copy(&report, aws.repo.join("docs/report-rollback.html")).unwrap();
    }
}

#[test]
fn good_ship_on_a_terminal_draws_progress_bars() {
    if Command::new("tmux").arg("-V").output().is_err() {
        support::skip("the progress-bar terminal test (e2e_output)", "tmux is not installed (Debian package tmux)");
        return;
    }
    let aws = LocalAws::start("output-tty");
    aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("exit-code");
    // The command runs in a tmux pane (a real pseudo-terminal) with the local AWS's environment.
    // tmux hands the pane the environment of the test process: scrubbed here as the harness scrubs it.
    let scrub: Vec<String> = std::env::vars().map(|(k, _)| k).filter(|k| support::scrubbed(k)).collect();
    let mut script = if scrub.is_empty() { String::new() } else { format!("unset {}\n", scrub.join(" ")) };
    for (k, v) in &aws.env {
        script.push_str(&format!("export {k}='{v}'\n"));
    }
    script.push_str(&format!(
        "cd '{}' && '{}' --pipeline {PIPELINE} ship --commit tty1; echo $? > '{}'\nsleep 60\n",
        aws.repo.display(),
        env!("CARGO_BIN_EXE_bakeroll"),
        done.display()
    ));
    std::fs::write(dir.path().join("run.sh"), script).unwrap();
    // The server's socket inside the test's own temporary directory (removed with it): with `-L` tmux
    // would leave one under /tmp/tmux-UID, which no test may leave behind.
    let socket = dir.path().join("tmux.sock");
    let tmux = |args: &[&str]| Command::new("tmux").arg("-S").arg(&socket).args(args).output().unwrap();
    let run = format!("bash {}", dir.path().join("run.sh").display());
    assert!(tmux(&["new-session", "-d", "-x", "180", "-y", "40", &run]).status.success());
    let mut screens = Vec::new();
    let started = Instant::now();
    while !done.exists() && started.elapsed() < Duration::from_secs(180) {
        screens.push(String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned());
        std::thread::sleep(Duration::from_millis(100));
    }
    screens.push(String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned());
    tmux(&["kill-server"]);
    let code = std::fs::read_to_string(&done).unwrap_or_default();
    assert_eq!(code.trim(), "0", "ship did not finish with 0; last screen:\n{}", screens.last().unwrap());
    // A bar line: the group, a bar, a percentage and healthy/total per target group.
    let bar = screens.iter().flat_map(|s| s.lines()).find(|l| {
        l.contains("shop-web [") && l.contains('%') && l.contains("shop-web-admin") && l.contains("healthy")
    });
    assert!(bar.is_some(), "no progress bar seen; last screen:\n{}", screens.last().unwrap());
    let full = screens.iter().flat_map(|s| s.lines()).any(|l| l.contains("shop-web [==============================] 100%"));
    assert!(full, "the bar never reached 100%");
    // No plain CI lines on a terminal.
    assert!(!screens.iter().any(|s| s.contains("Z [shop-web] refreshing")), "plain lines on a terminal");
}

#[test]
fn oidc_web_identity_deploys_without_static_keys() {
    let aws = LocalAws::start("output-oidc");
    let seed = aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("gitlab-id-token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6c2hvcC9zaG9wIn0.c2ln").unwrap();
    let oidc = |args: &[&str], with_token: bool| {
        let mut c = aws.command(args);
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"] {
            c.env_remove(var);
        }
        c.env("HOME", dir.path());
        if with_token {
            c.env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gitlab-deployer")
                .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
                .env("AWS_ROLE_SESSION_NAME", "gitlab-test");
        }
        c.output().unwrap()
    };
    // Without the token there are no credentials at all: a configuration problem, found before any
    // work (exit 2, nothing changed).
    let none = oidc(&["--pipeline", PIPELINE, "ship", "--commit", "oidc1"], false);
    assert_eq!(none.status.code(), Some(2), "{}", String::from_utf8_lossy(&none.stderr));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(stderr.starts_with("error: no AWS credentials found"), "{stderr}");
    assert!(stderr.contains("Next: in GitLab CI set AWS_ROLE_ARN") && stderr.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{stderr}");
    assert_eq!(stderr.matches("Caused by:").count(), 1, "the SDK's chain is said once: {stderr}");
    assert!(aws.inspect("shop-web")["images"].as_array().unwrap().is_empty(), "something was baked without credentials");

    let out = oidc(&["--pipeline", PIPELINE, "--output", "json", "ship", "--commit", "oidc1"], true);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = aws.inspect("shop-web");
    let ami = summary["bake"]["ami_id"].as_str().unwrap();
    assert_ne!(ami, seed["base_ami"].as_str().unwrap());
    let live: Vec<_> = state["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] == "InService").collect();
    assert_eq!(live.len(), 3, "{state}");
    assert!(live.iter().all(|i| i["image"] == ami), "fleet not on {ami}: {state}");
}
