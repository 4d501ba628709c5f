//! The command line: global options, the subcommand enum, and what every command shares (loading the
//! pipeline, connecting to AWS, choosing the display, handling Ctrl-C/SIGTERM, writing dotenv files).
//! Each subcommand lives in its own module with its clap args and `run`.

pub mod adopt;
pub mod bake;
pub mod deploy;
pub mod ship;
pub mod dry_run;
pub mod iam_policy;
pub mod plan;
pub mod completions;
pub mod contract;
pub mod status;
pub mod history;
pub mod rollback;
pub mod revoke;
pub mod prune;
pub mod gc;
pub mod init;
mod finish;
mod flow;
pub mod outcome;
mod signals;

pub use finish::{argument_error, finish, started};

use std::path::{Path, PathBuf};


use clap::{Parser, Subcommand, ValueEnum};

use crate::cloud::dry_run::DryRun;
use crate::cloud::Cloud;
use crate::config::Loaded;
use crate::core::model::Tags;
use crate::core::settings::EnvSettings;
use crate::display::{self, Display};
use crate::engine::lock::Lock;
use crate::engine::Ctx;
use crate::events::Events;
use crate::error::{Error, Result};
use crate::summary::Summary;

#[derive(Debug, Parser)]
#[command(
    name = "bakeroll",
    version,
    about = "Bake an AMI and roll it out with an instance refresh gated on target health, rolling back automatically",
    after_help = contract::after_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Pipeline file.
    #[arg(long, global = true, default_value = "pipeline/bakeroll.toml", value_name = "PATH")]
    pub pipeline: PathBuf,
    /// Environment to deploy to [default: $BAKEROLL_ENV, else the file's only environment].
    #[arg(long, global = true, env = "BAKEROLL_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// `json` prints one JSON document on stdout at the end; human text goes to stderr.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Plain timestamped lines instead of progress bars (also when CI is set or stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Show the AWS SDK's own logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Also write every progress event as a line of JSON (NDJSON, `bakeroll.event/v1`) to PATH.
    #[arg(long, global = true, value_name = "PATH")]
    pub events: Option<PathBuf>,
    /// Write a self-contained HTML report (outcome, per-instance health timeline) to PATH at the end.
    #[arg(long, global = true, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Where `env` came from (clap's value source), for messages: set by `main` after parsing.
    #[arg(skip)]
    pub env_from: Option<&'static str>,
}

impl Global {
    /// Records where `--env`'s value came from: the flag, or `BAKEROLL_ENV`.
    pub fn note_sources(&mut self, matches: &clap::ArgMatches) {
        self.env_from = match matches.value_source("env") {
            Some(clap::parser::ValueSource::CommandLine) => Some("--env"),
            Some(clap::parser::ValueSource::EnvVariable) => Some("BAKEROLL_ENV"),
            _ => None,
        };
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bake the AMI for a commit and print its id.
    Bake(bake::Args),
    /// Roll an environment's Auto Scaling groups onto an AMI.
    Deploy(deploy::Args),
    /// Bake, then deploy.
    Ship(ship::Args),
    /// What `ship` would do, changing nothing (= `ship --dry-run`).
    Plan(plan::Args),
    /// Print the least-privilege IAM policy this pipeline needs.
    IamPolicy(iam_policy::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (or write all pages with --dir).
    Man(completions::ManArgs),
    /// Put the environment back on an earlier release (default: the one before the current one).
    Rollback(rollback::Args),
    /// Per group: the release it runs, the refresh in flight, health per target group.
    Status(status::Args),
    /// Releases newest first: when, commit, AMI, launch-template version, outcome.
    History(history::Args),
    /// Deregister old AMIs of this pipeline and delete their snapshots (shows the plan without --yes).
    Prune(prune::Args),
    /// Terminate build instances a dead bake left behind (shows them without --yes).
    Gc(gc::Args),
    /// Write a first pipeline file for existing Auto Scaling groups (never over an existing file).
    Init(init::Args),
    /// Move the environment's launch-configuration groups to launch templates (no instance is replaced).
    Adopt(adopt::Args),
    /// Declare a release bad (deploy and ship refuse it, rollback steps over it), or good again with --restore.
    Revoke(revoke::Args),
}

impl Command {
    /// The subcommand's name as typed (`iam-policy`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bake(_) => "bake",
            Self::Deploy(_) => "deploy",
            Self::Ship(_) => "ship",
            Self::Plan(_) => "plan",
            Self::IamPolicy(_) => "iam-policy",
            Self::Completions(_) => "completions",
            Self::Man(_) => "man",
            Self::Rollback(_) => "rollback",
            Self::Status(_) => "status",
            Self::History(_) => "history",
            Self::Prune(_) => "prune",
            Self::Gc(_) => "gc",
            Self::Init(_) => "init",
            Self::Adopt(_) => "adopt",
            Self::Revoke(_) => "revoke",
        }
    }
}

/// Everything a running command holds.
pub struct Session {
    pub ctx: Ctx,
    /// Set by `--dry-run` (see `dry_run::start`): the recording behind `ctx.cloud`. Only the command
    /// line knows a run is a dry run; the engine cannot tell.
    pub dry_run: Option<DryRun>,
    pub signals: signals::Signals,
    pub display: Display,
    pub global_output: Output,
    pub started: tokio::time::Instant,
    /// The HTML report's journal, when `--report` asked for one.
    journal: Option<std::sync::Arc<display::report::Journal>>,
    /// Makes the clouds of the environment's other regions and account.
    connector: std::sync::Arc<dyn crate::cloud::Connector>,
}

impl Session {
    pub async fn open(global: &Global) -> Result<Self> {
        let mut pipeline = Loaded::load(&global.pipeline)?;
        pipeline.env_chosen_by = global.env_from;
        let region = crate::aws::RegionSetting { value: pipeline.pipeline.region.clone(), how_to_set: format!("`region` in {}", pipeline.path.display()) };
        let (cloud, connector): (Cloud, _) = crate::aws::connect(region).await.map_err(Error::Setup)?;
        if let Some(path) = &global.report {
            check_writable(path, "--report")?;
        }
        let mut display = display::Display::new(global.no_progress, global.output == Output::Json);
        if let Some(path) = &global.events {
            let file = display::ndjson::EventsFile::create(path)
                .map_err(|e| Error::Usage(format!("--events {}: cannot write: {e}", path.display())))?;
            display.tap(std::sync::Arc::new(file));
        }
        let journal = global.report.is_some().then(display::report::journal);
        if let Some(journal) = &journal {
            display.tap(journal.clone());
        }
        let ctx = Ctx::new(cloud, Events(display.sink()), pipeline);
        let signals = signals::Signals::listen();
        let connector = std::sync::Arc::new(connector);
        Ok(Self { ctx, dry_run: None, display, signals, global_output: global.output, started: tokio::time::Instant::now(), journal, connector })
    }

    /// Runs `work`. On the first Ctrl-C or SIGTERM (a cancelled GitLab job): work with nothing that must
    /// finish (a bake, reads) is stopped and its build resources cleaned up; a deploy under way is asked
    /// to stop — its refresh is rolled back and the rollback verified, a rollback already under way is
    /// left to finish — and the command then exits 130 saying where things stand. A second signal
    /// exits at once, naming what is still running.
    pub async fn interruptible<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::pin!(work);
        let first = tokio::select! {
            r = &mut work => return r,
            s = self.signals.nth(1) => s,
        };
        if !self.ctx.ledger.deploying() {
            // A call creating something may be in flight (RunInstances, CreateImage,
            // CreateLaunchTemplateVersion): let it land, so that cleanup knows what it made. Dropping
            // it would leave AWS to act on a request whose answer nobody reads.
            tokio::select! {
                r = &mut work => return r.map_err(|e| self.after_stop(e)),
                () = self.ctx.ledger.landed() => {}
                again = self.signals.nth(2) => return Err(Error::Interrupted {
                    state: format!("{again} again: exited at once; {}", self.ctx.ledger.in_flight()),
                }),
            }
        }
        if !self.ctx.ledger.deploying() {
            self.ctx.events.warn("bakeroll", format!("{first} received: stopping and cleaning up"));
            let report = self.ctx.ledger.clean_bake(&self.ctx.cloud).await;
            return Err(Error::Interrupted { state: report.describe() });
        }
        self.ctx.stop.request(first);
        self.ctx.events.warn(
            "bakeroll",
            format!("{first} received: rolling back the refresh in flight and verifying the fleet (a rollback under way is left to finish); send it again to exit at once"),
        );
        tokio::select! {
            r = &mut work => r.map_err(|e| self.after_stop(e)),
            again = self.signals.nth(2) => Err(Error::Interrupted {
                state: format!("{again} again: exited at once; {}", self.ctx.ledger.in_flight()),
            }),
        }
    }
}

impl Session {
    /// For the commands that read (`status`, `history`): `--env` (or $BAKEROLL_ENV) if given, else every
    /// environment of the pipeline file.
    pub fn environments(&self, global: &Global) -> Result<Vec<EnvSettings>> {
        let p = &self.ctx.pipeline;
        let region = p.pipeline.region.as_deref();
        match global.env.as_deref() {
            Some(name) => p.environment(Some(name)).map(|(n, e)| vec![e.settings(&n, region)]).map_err(Into::into),
            // No environment at all: the same error deploy gives.
            None if p.pipeline.environments.is_empty() => p.environment(None).map(|_| Vec::new()).map_err(Into::into),
            None => Ok(p.pipeline.environments.iter().map(|(n, e)| e.settings(n, region)).collect()),
        }
    }

    /// Every environment of the pipeline, whatever `--env` says (retention is pipeline-wide: an image one
    /// environment is done with may be another's rollback target), each with the context of its places.
    pub async fn every_environment(&self) -> Result<Vec<crate::engine::sites::EnvContext>> {
        let p = &self.ctx.pipeline;
        let region = p.pipeline.region.as_deref();
        let mut out = Vec::new();
        for (name, e) in &p.pipeline.environments {
            let env = e.settings(name, region);
            let ctx = self.context_for(&env).await?;
            out.push(crate::engine::sites::EnvContext { env, ctx });
        }
        Ok(out)
    }

    /// The context of `env`'s regions and account (its own places: `status` and `history` read every
    /// environment, each with its own regions and role).
    pub async fn context_for(&self, env: &EnvSettings) -> Result<Ctx> {
        if env.placement.regions.is_empty() && env.placement.role.is_none() {
            return Ok(self.ctx.clone());
        }
        let places = crate::engine::places::connect(&*self.connector, &env.placement, &self.ctx.cloud)
            .await
            .map_err(|e| Error::cloud(e, "nothing was changed"))?;
        let ctx = Ctx { places: self.ctx.places.fresh(), ..self.ctx.clone() };
        ctx.places.set(places);
        Ok(ctx)
    }

    /// A group of the pipeline that must exist; when it does not, the message says where bakeroll looked
    /// (the region, and where that came from), as `ship` and `deploy` do: a wrong region is the likeliest
    /// reason a group that exists is not found.
    pub async fn group_state(&self, ctx: &Ctx, env: &EnvSettings, scope: &str) -> Result<crate::engine::releases::GroupState> {
        let settings = env.group(scope);
        let name = &settings.name;
        let ctx = ctx.place(settings.region.as_deref());
        let hint = match &settings.region {
            Some(r) => format!(" in region {r} (listed in the environment's `regions`)"),
            None => self.ctx.pipeline.region_hint(),
        };
        let env = &env.name;
        crate::engine::releases::read_group(&ctx, env, name).await?.ok_or_else(|| Error::precondition(format!("Auto Scaling group {name} (environment {env}) not found{hint}")))
    }

    /// The environment of this run (`--env`, `$BAKEROLL_ENV` or the file's only one), resolved once into
    /// what the engine takes; the report learns each group's checkpoints from it.
    pub async fn settings(&self, global: &Global) -> Result<EnvSettings> {
        let env = self.ctx.pipeline.settings(global.env.as_deref())?;
        // The environment's regions and account: connected now, so that a role that cannot be assumed
        // stops the run before any work (exit 5 naming the role).
        if !env.placement.regions.is_empty() || env.placement.role.is_some() {
            let places = crate::engine::places::connect(&*self.connector, &env.placement, &self.ctx.cloud)
                .await
                .map_err(|e| Error::cloud(e, "nothing was changed"))?;
            self.ctx.places.set(places);
        }
        if let Some(journal) = &self.journal {
            for (group, s) in &env.groups {
                journal.set_checkpoints(group, s.prefs.checkpoints.clone());
            }
        }
        Ok(env)
    }

    /// Takes the environment's deploy lock (engine::lock) on every group of every wave, unless this is a
    /// dry run, which changes nothing and so needs none.
    pub async fn lock(&self, env: &EnvSettings, commit: Option<&str>) -> Result<Option<Vec<(Option<String>, Lock)>>> {
        if self.dry_run.is_some() {
            return Ok(None);
        }
        // One lock per region, on that region's groups (a group name exists once per region).
        let mut held = Vec::new();
        for region in env.placement.rollout_regions() {
            let groups: Vec<String> = env.groups.values().filter(|g| g.region == region).map(|g| g.name.clone()).collect();
            let ctx = self.ctx.place(region.as_deref());
            let take = crate::engine::lock::take_in(&ctx, region.as_deref(), &env.name, &groups, commit, env.lock_lease);
            match self.interruptible(take).await {
                Ok(lock) => held.push((region, lock)),
                Err(e) => {
                    self.unlock(Some(held)).await;
                    return Err(e.in_region(region.as_deref()));
                }
            }
        }
        Ok(Some(held))
    }

    /// Gives the locks back; a signal while AWS is slow to answer leaves them to their lease instead of
    /// holding the exit up.
    pub async fn unlock(&self, locks: Option<Vec<(Option<String>, Lock)>>) {
        for (region, lock) in locks.into_iter().flatten() {
            let next = self.signals.count() + 1;
            let ctx = self.ctx.place(region.as_deref());
            tokio::select! {
                () = lock.release(&ctx) => {}
                s = self.signals.nth(next) => {
                    self.ctx.events.warn("bakeroll", format!("{s} received while releasing the deploy lock: it expires with its lease"));
                    return;
                }
            }
        }
    }

    /// A deploy error once a stop was requested: rolled back and verified because we were asked to stop
    /// is the interruption's result (exit 130). A fleet not verified stays exit 4; a deploy that
    /// completed before the stop could take effect is reported as what it is.
    pub fn after_stop(&self, e: Error) -> Error {
        match (self.ctx.stop.requested(), e) {
            (Some(_), Error::RolledBack { state, .. }) => Error::Interrupted { state },
            (_, e) => e,
        }
    }
}

/// `--commit`, else `$CI_COMMIT_SHA`, else `git rev-parse HEAD`.
pub fn resolve_commit(flag: Option<&str>) -> Result<String> {
    if let Some(c) = flag.map(str::trim).filter(|c| !c.is_empty()) {
        return validate_commit(c, "--commit");
    }
    if let Ok(c) = std::env::var("CI_COMMIT_SHA") {
        if !c.trim().is_empty() {
            return validate_commit(c.trim(), "CI_COMMIT_SHA");
        }
    }
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output();
    match out {
        Ok(o) if o.status.success() => validate_commit(String::from_utf8_lossy(&o.stdout).trim(), "`git rev-parse HEAD`"),
        _ => Err(Error::Usage("no commit: pass --commit SHA, set CI_COMMIT_SHA, or run inside a git checkout".into())),
    }
}

/// `from`: where the commit came from (`--commit`, `CI_COMMIT_SHA`, git), so the message names what to fix.
fn validate_commit(c: &str, from: &str) -> Result<String> {
    let ok = !c.is_empty() && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
    if ok {
        Ok(c.to_string())
    } else {
        Err(Error::Usage(format!("{from} `{c}` is not a commit id (letters, digits, - _ . only)")))
    }
}

/// What a bake of `commit` (or the default commit) is asked to do: `bake`, `ship` and `plan` build it.
pub fn bake_request(commit: Option<&str>, build_instance: Option<String>, tags: &[(String, String)]) -> Result<crate::engine::bake::BakeRequest> {
    Ok(crate::engine::bake::BakeRequest {
        commit: resolve_commit(commit)?,
        build_instance,
        extra_tags: tags.iter().cloned().collect(),
        provenance: provenance(),
    })
}

/// GitLab CI provenance from its predefined variables, as tags (keys from `core::tags::CI_PROVENANCE`).
pub fn provenance() -> Tags {
    let mut t = Tags::new();
    for (var, key) in crate::core::tags::CI_PROVENANCE {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                // EC2 tag values hold at most 256 characters.
                t.insert((*key).into(), v.chars().take(256).collect());
            }
        }
    }
    t
}

/// `--tag KEY=VALUE`: EC2's lengths, and never a key AWS reserves or bakeroll writes itself
/// (`core::tags::refused`), so the mistake costs nothing instead of a bake.
pub fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    if let Some((key, why)) = s.split_once('=').and_then(|(k, _)| crate::core::tags::refused(k).map(|why| (k, why))) {
        return Err(format!("`{key}`: {why}; choose another key"));
    }
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && k.len() <= 128 && v.len() <= 256 => Ok((k.into(), v.into())),
        _ => Err(format!("`{s}` is not KEY=VALUE (key 1-128, value 0-256 characters)")),
    }
}

/// Checks, before anything happens, that an output file can be written, so a finished deploy never
/// fails for want of a writable path. Leaves no file behind that was not there.
pub fn check_writable(path: &Path, flag: &str) -> Result<()> {
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new().create(true).append(true).open(path);
    if !existed && opened.is_ok() {
        let _ = std::fs::remove_file(path);
    }
    opened.map(drop).map_err(|e| Error::Usage(format!("{flag} {}: cannot write: {e}; nothing was changed", path.display())))
}

/// Writes `KEY=value` lines GitLab's `artifacts:reports:dotenv` accepts (single-line values).
/// `done` says what the command achieved: a file that cannot be written at the end is an error of its
/// own (exit 7) that keeps saying so, never "nothing was changed".
pub fn write_dotenv(path: &Path, vars: &[(String, String)], done: &str) -> Result<()> {
    let mut text = String::new();
    for (k, v) in vars {
        if v.contains('\n') {
            return Err(Error::Bug(format!("dotenv value for {k} spans lines")));
        }
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(path, text).map_err(|e| Error::Output {
        message: format!("--dotenv {}: cannot write: {e}", path.display()),
        state: format!("{done}; only the dotenv file is missing (later CI jobs get no AMI_ID)"),
    })
}

/// A summary for `command` with the pipeline, the calls made so far and the time taken.
pub fn summary_base(session: &Session, command: &str) -> Summary {
    let mut s = Summary::new(command);
    s.pipeline = Some(session.ctx.pipeline.path.display().to_string());
    session.stamp(&mut s);
    s
}

impl Session {
    /// Brings the summary's call counts and time up to now.
    pub fn stamp(&self, summary: &mut Summary) {
        summary.api_calls = Some(self.ctx.cloud.calls.snapshot());
        summary.seconds = Some(self.started.elapsed().as_secs_f64());
    }
}

/// What a command hands back to `finish`: the JSON summary, the stdout text, the result and a hint.
pub struct Finished {
    pub summary: Summary,
    /// Printed on stdout in text mode when the command succeeded (e.g. the AMI id).
    pub text: Option<String>,
    pub result: Result<()>,
    /// The command to run next, shown under an error.
    pub next: Option<String>,
}

impl Finished {
    pub fn early(command: &str, err: Error) -> Self {
        Self { summary: Summary::new(command), text: None, result: Err(err), next: None }
    }
}
