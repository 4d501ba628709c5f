//! End-to-end: the repository's real `.gitlab-ci.yml`, run by gitlab-ci-local in shell mode against
//! the local AWS, with OIDC (a token exchanged for a role by STS, no static keys). Pipeline 1 (the
//! default branch) builds, bakes and deploys staging; a deploy during a deploy freeze fails at once;
//! pipeline 2 triggers the manual production job with the same AMI (production requires_verified_in
//! staging); then the manual rollback job for production, during a freeze; then GitLab's "Rollback
//! environment": the old deploy-production job again, with the bake job's artifacts gone. AMI_ID and
//! RELEASE reach the deploy jobs only through the bake job's dotenv report; the asserts read the world
//! with boto3.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::LocalAws;

const ROLE: &str = "arn:aws:iam::123456789012:role/gitlab-deployer";
/// A JWT-shaped token: the local AWS's STS, like moto's, does not verify signatures.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6c2hvcC9zaG9wOnJlZl90eXBlOmJyYW5jaDpyZWY6bWFpbiJ9.c2ln";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// gitlab-ci-local, installed (pinned) by scripts/install-test-tools; None when it cannot be had here.
fn gitlab_ci_local() -> Option<PathBuf> {
    let installed = Command::new(repo().join("scripts/install-test-tools")).status().is_ok_and(|s| s.success());
    let rsync = Command::new("rsync").arg("--version").output().is_ok_and(|o| o.status.success());
    if installed && rsync {
        return Some(repo().join(".tools/gitlab-ci-local/node_modules/.bin/gitlab-ci-local"));
    }
    let why = if installed { "rsync is not installed (scripts/install-test-tools --system)" } else { "npm is unreachable" };
    // .ci/run installs both first, so in CI this test always runs.
    support::skip("the GitLab pipeline test (e2e_gitlab)", &format!("{why}; `.ci/run` installs what it needs"));
    None
}

/// An application repository using bakeroll: the pipeline, the pipeline file and the provisioning script.
fn app_repo(dir: &Path) -> String {
    // The pipeline includes this project's own CI/CD components (templates/): an application repository
    // would include them from the bakeroll project; gitlab-ci-local resolves the same project's locally.
    for f in [".gitlab-ci.yml", "templates/bake.yml", "templates/deploy.yml", "pipeline/gitlab-local.toml", "scripts/provision-demo.sh"] {
        std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
        std::fs::copy(repo().join(f), dir.join(f)).unwrap();
    }
    let git = |args: &[&str]| {
        let out = Command::new("git").current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "release"]);
    // gitlab-ci-local derives CI_PROJECT_* from the remote; it is never contacted.
    git(&["remote", "add", "origin", "git@gitlab.example.com:shop/shop.git"]);
    git(&["rev-parse", "HEAD"])
}

fn run(tool: &Path, aws: &LocalAws, dir: &Path, args: &[&str]) -> (Output, String) {
    let mut c = Command::new(tool);
    support::scrub(&mut c).current_dir(dir).args(["--force-shell-executor", "--shell-isolation", "--home"]).arg(dir.join(".gcl-home"));
    for v in [
        format!("BAKEROLL_BIN={}", env!("CARGO_BIN_EXE_bakeroll")),
        "BAKEROLL_SELF_TEST=false".into(),
        "BAKEROLL_PIPELINE=pipeline/gitlab-local.toml".into(),
        format!("AWS_BAKE_ROLE_ARN={ROLE}"),
        format!("AWS_DEPLOY_ROLE_ARN={ROLE}"),
        format!("AWS_ID_TOKEN={TOKEN}"),
    ] {
        c.arg("--variable").arg(v);
    }
    c.args(args);
    // The local AWS's endpoint and region, but not its static keys: every job must come through OIDC.
    for (k, v) in &aws.env {
        if !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET") {
            c.env(k, v);
        }
    }
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CI_COMMIT_SHA", "BAKEROLL_ENV"] {
        c.env_remove(var);
    }
    // No ~/.aws files either: credentials come from the token or nowhere.
    std::fs::create_dir_all(dir.join(".home")).unwrap();
    c.env("HOME", dir.join(".home"));
    // The jobs' TMPDIR, where the components write the OIDC token file: checked empty afterwards.
    std::fs::create_dir_all(dir.join(".tmp")).unwrap();
    c.env("TMPDIR", dir.join(".tmp"));
    let out = c.output().expect("run gitlab-ci-local");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("--- gitlab-ci-local {args:?}: {:?}\n{log}", out.status.code());
    let left: Vec<_> = std::fs::read_dir(dir.join(".tmp")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the OIDC token file outlived its job: {left:?}");
    (out, log)
}

fn passed(log: &str, job: &str) -> bool {
    log.lines().any(|l| l.trim_start().starts_with("PASS") && l.split_whitespace().nth(1) == Some(job))
}

fn on_image(state: &Value, image: &str) -> bool {
    let live: Vec<_> = state["instances"].as_array().unwrap().iter().filter(|i| i["lifecycle"] != "Terminating").collect();
    live.len() as u64 == state["desired"].as_u64().unwrap()
        && live.iter().all(|i| {
            i["image"] == image
                && i["lifecycle"] == "InService"
                && state["target_health"].as_object().unwrap().values().all(|t| t[i["id"].as_str().unwrap()] == "healthy")
        })
}

fn artifact(dir: &Path, job: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join(".gitlab-ci-local/artifacts").join(job).join(file))
        .unwrap_or_else(|e| panic!("artifact {job}/{file}: {e}"))
}

#[test]
fn gitlab_pipeline_bakes_once_promotes_the_same_ami_and_rolls_back_production() {
    let Some(tool) = gitlab_ci_local() else { return };
    let aws = LocalAws::start("gitlab");
    let seed = aws.seed();
    let base = seed["base_ami"].as_str().unwrap().to_string();
    let out = aws.helper("second_stack.py", &[aws.dir.join("seed.json").to_str().unwrap()]);
    assert!(out.status.success(), "second stack: {}", String::from_utf8_lossy(&out.stderr));
    let app = tempfile::tempdir().unwrap();
    let sha = app_repo(app.path());

    // A merge-request pipeline (GitLab sets no CI_COMMIT_BRANCH there) only builds, tests and plans.
    // (`test` is switched off here by BAKEROLL_SELF_TEST=false.)
    let (out, _) = run(&tool, &aws, app.path(), &["--list", "--variable", "CI_PIPELINE_SOURCE=merge_request_event", "--unset-variable", "CI_COMMIT_BRANCH"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let stages = ["test", "bake", "staging", "production", "rollback"];
    let jobs: Vec<&str> = table
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|s| stages.contains(&s)))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(jobs, ["build", "dry-run"], "merge-request pipeline:\n{table}");

    // Pipeline 1, default branch: build → bake → staging (automatic); production waits for a person.
    let (out, log) = run(&tool, &aws, app.path(), &[]);
    assert!(out.status.success(), "pipeline 1 failed");
    for job in ["build", "bake", "deploy-staging"] {
        assert!(passed(&log, job), "{job} did not pass");
    }
    assert!(!passed(&log, "deploy-production"), "production is manual");
    let staging = aws.inspect("shop-web");
    let image = staging["images"].as_array().unwrap().iter().find(|i| i["name"] == format!("shop-{sha}")).expect("baked image").clone();
    let ami = image["id"].as_str().unwrap().to_string();
    assert!(on_image(&staging, &ami), "staging not on {ami}: {staging}");
    assert!(on_image(&aws.inspect("shop-web-production"), &base), "production moved before it was promoted");
    // The dotenv report carried the bake's outputs; the deploy used exactly that AMI.
    let dotenv = artifact(app.path(), "bake", ".gitlab-ci-reports/dotenv/bake.env");
    assert!(dotenv.contains(&format!("AMI_ID={ami}\n")) && dotenv.contains(&format!("RELEASE={sha}\n")), "{dotenv}");
    let summary: Value = serde_json::from_str(&artifact(app.path(), "deploy-staging", "summary.json")).unwrap();
    assert_eq!(summary["release"]["ami"], ami.as_str());
    assert!(log.contains(&format!("deploying {ami} (release {sha}) to staging")), "dotenv variables did not reach the job");
    assert!(artifact(app.path(), "deploy-staging", "report.html").contains("id=\"timeline\""));

    // A deploy freeze: the deploy job stops before anything, saying why; nothing moves.
    let (out, log) = run(&tool, &aws, app.path(), &["deploy-staging", "--variable", "CI_DEPLOY_FREEZE=true"]);
    assert!(!out.status.success() && !passed(&log, "deploy-staging"), "deployed during a freeze");
    assert!(log.contains("a deploy freeze is active (CI_DEPLOY_FREEZE is set): not deploying to staging"), "{log}");
    assert!(!log.contains("deploying ami-") && !log.contains("AMI_ID is empty"), "stopped before bakeroll ran");
    assert!(on_image(&aws.inspect("shop-web"), &ami), "staging moved during a freeze");

    // Pipeline 2: a person promotes to production. The bake is reused, staging is left alone.
    let (out, log) = run(&tool, &aws, app.path(), &["--manual", "deploy-production"]);
    assert!(out.status.success(), "pipeline 2 failed");
    assert!(passed(&log, "deploy-production"), "deploy-production did not pass");
    let production = aws.inspect("shop-web-production");
    assert!(on_image(&production, &ami), "production not on {ami}: {production}");
    assert!(on_image(&aws.inspect("shop-web"), &ami), "staging changed");
    let ours = production["images"].as_array().unwrap().iter().filter(|i| i["name"].as_str().is_some_and(|n| n.starts_with("shop-"))).count();
    assert_eq!(ours, 1, "the second pipeline baked again: {production}");
    let summary: Value = serde_json::from_str(&artifact(app.path(), "deploy-production", "summary.json")).unwrap();
    assert_eq!((summary["outcome"].as_str(), summary["env"].as_str(), summary["release"]["ami"].as_str()), (Some("deployed"), Some("production"), Some(ami.as_str())));
    // Promoted because staging verified it (pipeline/gitlab-local.toml: requires_verified_in = ["staging"]).
    assert_eq!(summary["deploy"]["promotion"]["verdict"], "allowed", "{summary}");
    let bake: Value = serde_json::from_str(&artifact(app.path(), "bake", "bake.json")).unwrap();
    assert_eq!(bake["bake"]["reused"], true, "pipeline 2 reused the bake");
    aws.assert_schema_valid(&[&summary, &bake]);

    // Rollback of production, by hand. `bakeroll rollback` comes from another branch: until it is
    // merged this stage is reported as skipped (and the job's failure is checked to be exactly that).
    let has_rollback = Command::new(env!("CARGO_BIN_EXE_bakeroll")).args(["rollback", "--help"]).output().is_ok_and(|o| o.status.success());
    // A freeze holds deploys only: the rollback runs through it.
    let (_, log) = run(&tool, &aws, app.path(), &["rollback-production", "--variable", "CI_DEPLOY_FREEZE=true"]);
    if !has_rollback {
        assert!(log.contains("unrecognized subcommand 'rollback'"), "rollback job failed for another reason");
        eprintln!("SKIPPED rollback stage: this bakeroll has no `rollback` subcommand yet");
        return;
    }
    assert!(passed(&log, "rollback-production"), "rollback-production did not pass");
    assert!(on_image(&aws.inspect("shop-web-production"), &base), "production not back on {base}");
    assert!(on_image(&aws.inspect("shop-web"), &ami), "rolling back production touched staging");

    // GitLab's "Rollback environment" re-runs the old deployment job; by then the bake job's artifacts
    // (its AMI_ID dotenv) have expired. The job deploys its own commit's image all the same.
    std::fs::remove_dir_all(app.path().join(".gitlab-ci-local/artifacts/bake")).expect("the bake job's artifacts");
    let (out, log) = run(&tool, &aws, app.path(), &["deploy-production"]);
    assert!(out.status.success() && passed(&log, "deploy-production"), "the re-run deployment job failed");
    assert!(log.contains(&format!("AMI_ID is empty (the bake job's artifacts are gone): deploying the image baked for commit {sha} to production")), "{log}");
    assert!(on_image(&aws.inspect("shop-web-production"), &ami), "production not on {ami} again");
    let summary: Value = serde_json::from_str(&artifact(app.path(), "deploy-production", "summary.json")).unwrap();
    assert_eq!((summary["release"]["ami"].as_str(), summary["release"]["commit"].as_str()), (Some(ami.as_str()), Some(sha.as_str())), "{summary}");
}
