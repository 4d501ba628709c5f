//! The one place a command ends: the summary made uniform (every failure carries `outcome`, `env` when
//! known and `error`), the error rendered once on stderr, the result or the JSON summary on stdout, the
//! report written, and the event stream closed with its `outcome` line — for a command's own result
//! (`finish`) and for a command line clap refused (`argument_error`).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use clap::CommandFactory;

use super::{Cli, Finished, Global, Output};
use crate::config::Loaded;
use crate::display;
use crate::error::{exit, Error};
use crate::summary::{ErrorSummary, Outcome, Summary};

/// When the process started, for `seconds` in summaries of commands that ended before a session.
pub fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// Commands that work on one environment (`--env`, `$BAKEROLL_ENV`, or the file's only one).
const ONE_ENVIRONMENT: &[&str] = &["deploy", "ship", "rollback", "adopt"];

/// Commands that read no pipeline file (`init` writes one and says so itself), and a command line that
/// named no command.
const NO_PIPELINE: &[&str] = &["completions", "man", "init", "bakeroll"];

/// Prints the outcome (stdout: result or JSON; stderr: the rendered error) and returns the exit code.
pub fn finish(global: &Global, mut f: Finished) -> i32 {
    f.result = f.result.map_err(Error::setup_first);
    if let Err(e) = &f.result {
        // A setup problem's fix is the only advice that applies, whatever the command would add.
        if f.next.is_none() || matches!(e, Error::Setup(_)) {
            f.next = crate::error::default_next(e);
        }
        // Never `eprint!`: with stderr closed (a cancelled CI job's log pipe) it panics, and exit 101
        // would replace the real code after a rollback has been carried out.
        let _ = write!(std::io::stderr(), "{}", crate::error::render(e, f.next.as_deref()));
    }
    emit(global, f)
}

/// Everything but the stderr rendering: fills in what every summary has, writes the report and the
/// events' last line, prints stdout. Returns the exit code.
fn emit(global: &Global, mut f: Finished) -> i32 {
    let code = f.result.as_ref().err().map(Error::exit_code).unwrap_or(exit::OK);
    f.summary.exit_code = code;
    complete(global, &mut f);
    if let Some(path) = &global.report {
        // The report is a by-product: failing to write it is said, and never changes the exit code.
        if let Err(e) = display::report::write(path, &f.summary) {
            let _ = writeln!(std::io::stderr(), "warning: --report {}: cannot write: {e}", path.display());
        }
    }
    if let Some(path) = &global.events {
        // A follower of the stream learns how the run ended from its last line.
        if let Err(e) = display::ndjson::append_outcome(path, &f.summary) {
            let _ = writeln!(std::io::stderr(), "warning: --events {}: cannot write the outcome: {e}", path.display());
        }
    }
    match global.output {
        Output::Json => {
            let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(&f.summary).unwrap_or_default());
        }
        Output::Text => {
            if let (Ok(()), Some(text)) = (&f.result, &f.text) {
                let _ = writeln!(std::io::stdout(), "{text}");
            }
        }
    }
    code
}

/// The keys every summary has, whichever way the command ended: `api_calls` and `seconds`; on failure
/// `error`, `outcome` (`not-started` when nothing was changed, else `failed`, unless the command said
/// better) and `env` when known (the command's, else the one asked for, else the file's only one for a
/// command that works on one environment).
fn complete(global: &Global, f: &mut Finished) {
    let s = &mut f.summary;
    s.api_calls.get_or_insert_with(Default::default);
    s.seconds.get_or_insert_with(|| started().elapsed().as_secs_f64());
    if s.pipeline.is_none() && !NO_PIPELINE.contains(&s.command.as_str()) {
        s.pipeline = Some(global.pipeline.display().to_string());
    }
    let Err(e) = &f.result else { return };
    let state = e.state().map(str::to_string);
    s.error = Some(ErrorSummary { message: e.to_string(), causes: crate::error::causes(e), state: state.clone(), next: f.next.clone() });
    let unchanged = state.as_deref().is_some_and(|st| st.starts_with("nothing was changed"));
    s.outcome.get_or_insert(if unchanged { Outcome::NotStarted } else { Outcome::Failed });
    if s.env.is_none() && ONE_ENVIRONMENT.contains(&s.command.as_str()) {
        s.env = global.env.clone().or_else(|| {
            let loaded = Loaded::load(&global.pipeline).ok()?;
            (loaded.pipeline.environments.len() == 1).then(|| loaded.pipeline.environments.keys().next().cloned()).flatten()
        });
    }
}

/// A command line clap refused (or help/version, which it prints and exits 0 for): clap's own message
/// on stderr, and the same uniform summary and event line as any failure, so `--output json` prints one
/// JSON object whatever was typed. Returns the exit code.
pub fn argument_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return exit::OK;
    }
    let _ = e.print();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let global = raw_global(&args);
    let command = subcommand(&args);
    let help = if command == "bakeroll" { "`bakeroll --help`".to_string() } else { format!("`bakeroll {command} --help`") };
    let f = Finished {
        summary: Summary::new(&command),
        text: None,
        result: Err(Error::Usage(headline(&e))),
        next: Some(format!("{help} lists the arguments")),
    };
    emit(&global, f)
}

/// clap's error in one line: its first paragraph without the `error: ` prefix.
fn headline(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let joined: Vec<&str> = first.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    joined.join(" ").trim_start_matches("error: ").to_string()
}

/// The global options as typed, read without clap (which refused the line): what `emit` needs.
fn raw_global(args: &[OsString]) -> Global {
    let value = |name: &str| -> Option<String> {
        let flag = format!("--{name}");
        let prefix = format!("--{name}=");
        let mut found = None;
        for (i, a) in args.iter().enumerate() {
            let a = a.to_string_lossy();
            if a == flag {
                found = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
            } else if let Some(v) = a.strip_prefix(&prefix) {
                found = Some(v.to_string());
            }
        }
        found
    };
    Global {
        pipeline: value("pipeline").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("pipeline/bakeroll.toml")),
        env: value("env").or_else(|| std::env::var("BAKEROLL_ENV").ok()),
        output: if value("output").as_deref() == Some("json") { Output::Json } else { Output::Text },
        no_progress: true,
        verbose: 0,
        events: value("events").map(PathBuf::from),
        report: value("report").map(PathBuf::from),
        env_from: None,
    }
}

/// The subcommand named on the line (the first word that is one, skipping the global options' values),
/// else `bakeroll`.
fn subcommand(args: &[OsString]) -> String {
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    let takes_value = ["--pipeline", "--env", "--output", "--events", "--report"];
    let mut skip = false;
    for a in args {
        let a = a.to_string_lossy();
        if std::mem::take(&mut skip) {
            continue;
        }
        if takes_value.contains(&a.as_ref()) {
            skip = true;
        } else if let Some(name) = names.iter().find(|n| **n == a) {
            return (*name).to_string();
        } else if !a.starts_with('-') {
            break;
        }
    }
    "bakeroll".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line_is_read_without_clap_for_a_refused_line() {
        let args = os(&["--output", "json", "--env", "deploy", "deploy", "--events=e.ndjson"]);
        assert_eq!(subcommand(&args), "deploy");
        let g = raw_global(&args);
        assert_eq!((g.output, g.env.as_deref(), g.events), (Output::Json, Some("deploy"), Some(PathBuf::from("e.ndjson"))));
        assert_eq!(subcommand(&os(&["--pipeline", "ship", "frobnicate"])), "bakeroll");
        assert_eq!(subcommand(&os(&["--output=json"])), "bakeroll");
        assert_eq!(raw_global(&os(&["--output", "xml"])).output, Output::Text);
    }

    #[test]
    fn a_clap_error_is_one_line() {
        let e = Cli::command().try_get_matches_from(["bakeroll", "deploy"]).unwrap_err();
        assert_eq!(headline(&e), "the following required arguments were not provided: <--ami <AMI_ID>|--commit <SHA>>");
    }
}
