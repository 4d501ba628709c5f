//! The `bakeroll` binary: parse the command line, dispatch to the subcommand, exit with its code. A
//! refused command line and a panic end through `cli` like any other outcome (exit 2 and exit 1, with
//! the JSON summary and the events' outcome line).

use bakeroll::cli::{self, Cli, Command, Finished};
use bakeroll::error::Error;
use clap::{CommandFactory, FromArgMatches};
use futures_util::FutureExt;

#[tokio::main]
async fn main() {
    cli::started();
    let parsed = Cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => std::process::exit(cli::argument_error(e)),
    };
    cli.global.note_sources(&matches);
    bakeroll::logging::init(cli.global.verbose);
    let global = cli.global.clone();
    let name = cli.command.name();
    // A panic is a bug (exit 1, README "Exit codes"), reported like any failure rather than as Rust's 101.
    let finished = match std::panic::AssertUnwindSafe(run(cli)).catch_unwind().await {
        Ok(finished) => finished,
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            Finished::early(name, Error::Bug(format!("bakeroll panicked: {what}")))
        }
    };
    std::process::exit(cli::finish(&global, finished));
}

async fn run(cli: Cli) -> Finished {
    match cli.command {
        Command::Bake(args) => cli::bake::run(&cli.global, args).await,
        Command::Deploy(args) => cli::deploy::run(&cli.global, args).await,
        Command::Ship(args) => cli::ship::run(&cli.global, args).await,
        Command::Plan(args) => cli::plan::run(&cli.global, args).await,
        Command::IamPolicy(args) => cli::iam_policy::run(&cli.global, args).await,
        Command::Completions(args) => cli::completions::completions(args),
        Command::Man(args) => cli::completions::man(args),
        Command::Rollback(args) => cli::rollback::run(&cli.global, args).await,
        Command::Status(args) => cli::status::run(&cli.global, args).await,
        Command::History(args) => cli::history::run(&cli.global, args).await,
        Command::Prune(args) => cli::prune::run(&cli.global, args).await,
        Command::Gc(args) => cli::gc::run(&cli.global, args).await,
        Command::Init(args) => cli::init::run(&cli.global, args).await,
        Command::Adopt(args) => cli::adopt::run(&cli.global, args).await,
        Command::Revoke(args) => cli::revoke::run(&cli.global, args).await,
    }
}
