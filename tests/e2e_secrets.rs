//! End-to-end: secrets never reach an output. The commands a pipeline runs (bake, deploy, ship, plan,
//! status, rollback) run with `-v -v`, `--events`, `--report` and `--output json`, first with static
//! keys and a session token, then with GitLab-style OIDC (a web identity token file, no keys), all set to
//! recognisable markers, and with user data holding a marker; no marker (nor the user data's base64) may
//! appear in stdout, stderr, the events file, the report or the dotenv file.

mod support;

use std::path::Path;
use std::process::Command;

use support::LocalAws;

const ACCESS_KEY: &str = "AKIAMARKERACCESSKEY7";
const SECRET_KEY: &str = "SecretMarkerKey/abcdefghijklmnopqrstuvwxyz12";
const SESSION_TOKEN: &str = "SessionMarkerToken0123456789abcdefghijklmnopqrstuvwxyzSESSIONEND";
const OIDC_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJPSURDTUFSS0VSIn0.OidcMarkerSignature0123456789";
const USER_DATA_MARKER: &str = "UserDataMarkerPassw0rd";

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { T[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

struct Scene {
    aws: LocalAws,
    dir: tempfile::TempDir,
    pipeline: String,
    user_data: String,
}

fn scene(name: &str) -> Scene {
    let aws = LocalAws::start(name);
    aws.seed();
    let dir = tempfile::tempdir().unwrap();
    let user_data = format!("#!/bin/sh\necho 'db_password={USER_DATA_MARKER}' > /etc/app.env\npoweroff\n");
    let script = dir.path().join("provision.sh");
    std::fs::write(&script, &user_data).unwrap();
    let text = std::fs::read_to_string(aws.repo.join("pipeline/local.toml"))
        .unwrap()
        .replace("\"scripts/provision-demo.sh\"", &format!("{:?}", script.display().to_string()));
    let pipeline = dir.path().join("secrets.toml");
    std::fs::write(&pipeline, text).unwrap();
    Scene { pipeline: pipeline.display().to_string(), aws, dir, user_data }
}

/// Runs one command with every output on; returns everything it wrote, and its exit code.
fn run(s: &Scene, n: usize, creds: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let events = s.dir.path().join(format!("events-{n}.ndjson"));
    let report = s.dir.path().join(format!("report-{n}.html"));
    let mut all = vec!["-v", "-v", "--no-progress", "--output", "json", "--pipeline", &s.pipeline];
    let (ev, rep) = (events.display().to_string(), report.display().to_string());
    all.extend(["--events", &ev, "--report", &rep]);
    all.extend_from_slice(args);
    let mut c: Command = s.aws.command(&all);
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        c.env_remove(var);
    }
    c.envs(creds.iter().map(|(k, v)| (*k, v.as_str())));
    let out = c.output().expect("run bakeroll");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    for f in [&events, &report, &s.dir.path().join(format!("dotenv-{n}"))] {
        text.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    eprintln!("--- {args:?} exit {:?}: {} bytes of output", out.status.code(), text.len());
    (out.status.code(), text)
}

fn assert_clean(s: &Scene, what: &str, text: &str, secrets: &[&str]) {
    let encoded = base64(s.user_data.as_bytes());
    for secret in secrets.iter().copied().chain([USER_DATA_MARKER, encoded.as_str()]) {
        if let Some(at) = text.find(secret) {
            let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
            panic!("{what} printed a secret ({secret}):\n…{}", &text[from..(at + secret.len() + 100).min(text.len())]);
        }
    }
    assert!(text.contains("ami-"), "{what}: the outputs were captured (they name an AMI): {}", &text[..text.len().min(500)]);
}

/// bake, ship (a good release, then a broken one that rolls back), deploy, plan, status, rollback.
fn every_command(s: &Scene, creds: &[(&str, String)], secrets: &[&str]) {
    let dotenv = |n: usize| s.dir.path().join(format!("dotenv-{n}")).display().to_string();
    let commands: Vec<(Vec<String>, i32)> = vec![
        (vec!["bake".into(), "--commit".into(), "sec0001".into(), "--dotenv".into(), dotenv(0)], 0),
        (vec!["ship".into(), "--commit".into(), "sec0002".into(), "--dotenv".into(), dotenv(1)], 0),
        (vec!["deploy".into(), "--commit".into(), "sec0001".into(), "--dotenv".into(), dotenv(2)], 0),
        (vec!["ship".into(), "--commit".into(), "sec0003".into(), "--tag".into(), "local-aws:health=unhealthy".into()], 3),
        (vec!["plan".into(), "--commit".into(), "sec0004".into()], 0),
        (vec!["status".into()], 0),
        (vec!["rollback".into()], 0),
    ];
    for (n, (args, code)) in commands.iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, text) = run(s, n, creds, &args);
        assert_eq!(got, Some(*code), "{args:?}:\n{}", &text[text.len().saturating_sub(3000)..]);
        assert_clean(s, &format!("{args:?}"), &text, secrets);
    }
}

#[test]
fn static_keys_session_tokens_and_user_data_never_reach_an_output() {
    let s = scene("secrets-keys");
    let creds = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_string()),
    ];
    every_command(&s, &creds, &[ACCESS_KEY, SECRET_KEY, SESSION_TOKEN]);
}

#[test]
fn oidc_tokens_never_reach_an_output() {
    let s = scene("secrets-oidc");
    let token = s.dir.path().join("id_token");
    std::fs::write(&token, OIDC_TOKEN).unwrap();
    assert!(Path::new(&token).exists());
    let creds = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/bakeroll-deploy".to_string()),
        ("AWS_ROLE_SESSION_NAME", "secrets-test".to_string()),
    ];
    // The secret part of a JWT is all of it; its signature alone must not show either.
    every_command(&s, &creds, &[OIDC_TOKEN, "OidcMarkerSignature0123456789"]);
}
