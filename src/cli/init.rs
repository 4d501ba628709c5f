//! `bakeroll init GROUP...`: a first pipeline file for existing Auto Scaling groups. Reads each group,
//! its launch template and the image it runs, and its target groups, then writes a commented file with
//! the values it found and safe defaults (`--pipeline`, default pipeline/bakeroll.toml; never over an
//! existing file), or prints it (`--dry-run`). A group bakeroll cannot deploy is exit 2 naming it and why.

use std::fmt::Write as _;
use std::path::Path;

use super::{Finished, Global, Output};
use crate::config::Loaded;
use crate::engine::survey::{self, Found};
use crate::error::{Error, Result};
use crate::summary::Summary;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Auto Scaling groups the environment deploys (one or more).
    #[arg(value_name = "GROUP", required = true)]
    pub groups: Vec<String>,
    /// Name of the environment to write [default: $BAKEROLL_ENV, else staging].
    #[arg(long = "environment", value_name = "NAME")]
    pub environment: Option<String>,
    /// Newest image matching OWNER:NAME-PATTERN to bake from (e.g. amazon:al2023-ami-2023.*-x86_64)
    /// [default: the image the running release was baked from].
    #[arg(long, value_name = "OWNER:PATTERN", value_parser = parse_filter)]
    pub base_ami_filter: Option<(String, String)>,
    /// The region to read (and write into the file) [default: the AWS region chain].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The provisioning script the bake runs on a fresh build instance (relative to the repository root).
    #[arg(long, value_name = "PATH")]
    pub user_data: Option<String>,
    /// Print the file on stdout instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_filter(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once(':') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() => Ok((o.to_string(), n.to_string())),
        _ => Err(format!("`{s}` is not OWNER:NAME-PATTERN (e.g. amazon:al2023-ami-2023.*-x86_64)")),
    }
}

/// TOML strings: the values come from AWS names (letters, digits, `-_./*:`), quoted safely anyway.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The pipeline file, commented so a reader learns what each value is and where it came from.
pub fn render(args: &Args, env: &str, region: Option<&str>, found: &[Found]) -> String {
    let name = found.first().map(|f| f.group.clone()).unwrap_or_else(|| "app".into());
    let mut t = String::new();
    let _ = writeln!(t, "# bakeroll pipeline written by `bakeroll init` from what AWS reported; read it, then run");
    let _ = writeln!(t, "# `bakeroll plan` (a dry run) before the first `bakeroll ship`. README \"The pipeline file\" has every key.");
    for f in found {
        let image = f.image.as_ref().map(|i| format!("{} ({})", i.id, i.name)).unwrap_or_else(|| "no image id".into());
        let tgs = if f.target_groups.is_empty() { "no target group".to_string() } else { format!("target groups {}", f.target_groups.join(", ")) };
        let _ = writeln!(
            t,
            "#   {}: launch template {} ({}) version {}, runs {image}; {tgs}; {} instances",
            f.group, f.template_name, f.template_id, f.version_ref, f.desired
        );
    }
    if let Some(r) = region {
        let _ = writeln!(t, "region = {}", q(r));
    }
    let _ = writeln!(t, "name = {}                # tagged on what bakeroll creates; scopes prune, gc and the IAM policy", q(&name));
    let _ = writeln!(t, "\n[bake]");
    match (&args.base_ami_filter, survey::base_image(found)) {
        (Some((owner, pattern)), _) => {
            let _ = writeln!(t, "base_ami_filter = {{ owners = [{}], name = {} }}   # the newest available match", q(owner), q(pattern));
        }
        (None, Some(ami)) => {
            let _ = writeln!(t, "base_ami = {}              # what the running release was built from; or use base_ami_filter", q(&ami));
        }
        (None, None) => {
            let _ = writeln!(t, "# base_ami = \"ami-…\"             # TODO: the image to bake from (or base_ami_filter, or build_instance)");
        }
    }
    match &args.user_data {
        Some(path) => {
            let _ = writeln!(t, "user_data = {}   # run on the fresh build instance; ends with `poweroff`", q(path));
            let _ = writeln!(t, "ready = \"stopped\"                  # the image is made once the script has powered the instance off");
        }
        None => {
            // A bake must be able to finish: with nothing to power the instance off, `stopped` would
            // wait out the timeout. Until there is a script, the image is the base image as it boots.
            let _ = writeln!(t, "# TODO: no provisioning script yet, so a bake images the base image as it boots (ready once EC2's");
            let _ = writeln!(t, "# status checks pass). To build your application into the image, set your script (ending with");
            let _ = writeln!(t, "# `poweroff`) and wait for it instead:");
            let _ = writeln!(t, "# user_data = \"scripts/provision.sh\"");
            let _ = writeln!(t, "# ready = \"stopped\"");
            let _ = writeln!(t, "ready = \"status-ok\"");
        }
    }
    let _ = writeln!(t, "ami_name = {}", q(&format!("{name}-{{commit}}")));
    let _ = writeln!(t, "timeout = \"45m\"");
    let _ = writeln!(t, "\n[environments.{env}]");
    let groups: Vec<String> = found.iter().map(|f| q(&f.group)).collect();
    let _ = writeln!(t, "auto_scaling_groups = [{}]", groups.join(", "));
    let _ = writeln!(t, "min_healthy_percentage = 100       # with max 200: new instances launch before old ones go; no capacity is lost");
    let _ = writeln!(t, "max_healthy_percentage = 200");
    let _ = writeln!(t, "checkpoints = [50, 100]            # pause at half way: the health gate judges the new instances first");
    let _ = writeln!(t, "checkpoint_delay = \"2m\"");
    let _ = writeln!(t, "bake_time = \"5m\"                   # soak after the last replacement, still rollbackable");
    let _ = writeln!(t, "poll_interval = \"5s\"");
    let _ = writeln!(t, "unhealthy_threshold = 2");
    let _ = writeln!(t, "health_grace = \"5m\"");
    let _ = writeln!(t, "timeout = \"60m\"");
    if found.iter().any(|f| f.target_groups.is_empty()) {
        let _ = writeln!(t, "# A group above is in no target group, so nothing can judge the application's health: deploys are");
        let _ = writeln!(t, "# refused until you attach its target groups, or accept EC2's own checks with:");
        let _ = writeln!(t, "# health = \"ec2\"");
    }
    t
}

pub async fn run(global: &Global, args: Args) -> Finished {
    let f = |r: Result<(String, Option<String>)>| match r {
        Ok((text, written)) => {
            let mut summary = Summary::new("init");
            summary.pipeline = written;
            let text = (global.output == Output::Text).then_some(text);
            Finished { summary, text, result: Ok(()), next: None }
        }
        Err(e) => Finished::early("init", e),
    };
    f(init(global, &args).await)
}

async fn init(global: &Global, args: &Args) -> Result<(String, Option<String>)> {
    let path = &global.pipeline;
    if !args.dry_run && path.exists() {
        return Err(Error::Usage(format!("{} exists; init never overwrites a pipeline file (use --dry-run to print one, or --pipeline NEW_PATH)", path.display())));
    }
    let env = args.environment.clone().or_else(|| global.env.clone()).unwrap_or_else(|| "staging".into());
    let region = crate::aws::RegionSetting { value: args.region.clone(), how_to_set: "--region".into() };
    let (cloud, _) = crate::aws::connect(region).await.map_err(Error::Setup)?;
    // Each group exists, or the error says where init looked and how that region was chosen (survey's
    // own check stays for a group deleted meanwhile).
    for name in &args.groups {
        if cloud.autoscaling.describe_group(name).await.map_err(|e| Error::cloud(e, "nothing was changed"))?.is_none() {
            return Err(Error::precondition(format!("Auto Scaling group {name} not found{}", region_hint(args.region.as_deref()))));
        }
    }
    let found = survey::groups(&cloud, &args.groups, args.region.as_deref()).await?;
    let text = render(args, &env, args.region.as_deref(), &found);
    // What init writes must load: a file that fails validation would be a poor first step.
    Loaded::parse(path, &text).map_err(|e| Error::Bug(format!("init wrote a pipeline that does not load: {e}")))?;
    let todo = to_fill_in(args, &found);
    if args.dry_run {
        crate::display::dry_run::print_notes(&todo);
        return Ok((text.trim_end().to_string(), None));
    }
    write_new(path, &text)?;
    let chosen = match (&args.environment, &global.env) {
        (Some(_), _) => "from --environment",
        (None, Some(_)) => "from BAKEROLL_ENV",
        (None, None) => "the default: neither --environment nor BAKEROLL_ENV was given",
    };
    let mut done = format!("wrote {} (environment {env}, {chosen}: {})", path.display(), args.groups.join(", "));
    if !todo.is_empty() {
        done.push_str(&format!("; still to fill in: {}", todo.join("; ")));
    }
    done.push_str(&format!("; next: `bakeroll --pipeline {} plan`", path.display()));
    Ok((done, Some(path.display().to_string())))
}

/// What the written file leaves to the user, said plainly (also as TODO comments in the file).
fn to_fill_in(args: &Args, found: &[Found]) -> Vec<String> {
    let mut todo = Vec::new();
    if args.base_ami_filter.is_none() && survey::base_image(found).is_none() {
        todo.push("bake.base_ami, the image to bake from (no group's image could be read): until it is set, a bake has nothing to start from".to_string());
    }
    if args.user_data.is_none() {
        todo.push("bake.user_data, your provisioning script (then ready = \"stopped\"): until it is set, a bake images the base image unchanged".to_string());
    }
    todo
}

/// Where init looked for a group it did not find, and what to change if that was the wrong place.
fn region_hint(flag: Option<&str>) -> String {
    if let Some(r) = flag {
        return format!(" in region {r} (from --region; is it the group's region?)");
    }
    let from_env = ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()).map(|r| (r, *v)));
    match from_env {
        Some((r, var)) => format!(" in region {r} (from {var}; --region reads another)"),
        None => " in the AWS profile's region (--region reads another)".into(),
    }
}

/// Creates the file, never replacing one (create_new: also safe against a file appearing meanwhile).
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Usage(format!("{}: cannot create: {e}", dir.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::Usage(format!("{}: cannot write: {e}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::Usage(format!("{}: cannot write: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(tgs: &[&str]) -> Found {
        Found {
            group: "web".into(),
            template_id: "lt-1".into(),
            template_name: "web".into(),
            version_ref: "$Latest".into(),
            image: None,
            target_groups: tgs.iter().map(|s| s.to_string()).collect(),
            desired: 2,
        }
    }

    fn args(filter: Option<(&str, &str)>) -> Args {
        Args {
            groups: vec!["web".into()],
            environment: None,
            base_ami_filter: filter.map(|(o, n)| (o.into(), n.into())),
            region: None,
            user_data: None,
            dry_run: true,
        }
    }

    #[test]
    fn what_init_writes_loads_and_says_what_is_missing() {
        let text = render(&args(Some(("amazon", "al2023-*"))), "prod", Some("eu-west-1"), &[found(&[])]);
        let loaded = Loaded::parse(Path::new("pipeline/x.toml"), &text).expect("loads");
        assert_eq!(loaded.pipeline.environments["prod"].group_names(), ["web"]);
        assert_eq!(loaded.pipeline.bake.base_ami_filter.as_ref().map(|f| f.name.as_str()), Some("al2023-*"));
        assert!(text.contains("# health = \"ec2\""), "a group in no target group is pointed out: {text}");
        let with_tg = render(&args(None), "prod", None, &[found(&["web-tg"])]);
        assert!(!with_tg.contains("health = "), "{with_tg}");
        assert!(with_tg.contains("TODO: the image to bake from"), "no image known: says so: {with_tg}");
        // Without a provisioning script the file still bakes: it waits for status checks, not a power-off.
        let loaded = Loaded::parse(Path::new("pipeline/x.toml"), &text).unwrap();
        assert_eq!(loaded.pipeline.bake.ready, crate::config::Ready::StatusOk);
        assert!(loaded.bake_warnings().is_empty(), "{:?}", loaded.bake_warnings());
        let todo = to_fill_in(&args(None), &[found(&[])]);
        assert!(todo.len() == 2 && todo[0].starts_with("bake.base_ami") && todo[1].starts_with("bake.user_data"), "{todo:?}");
        assert!(parse_filter("amazon").is_err() && parse_filter("self:app-*").is_ok());
    }
}
