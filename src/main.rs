//! The `bakeroll` binary: parse the command line, dispatch to the subcommand, exit with its code.

use bakeroll::cli::{self, Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    bakeroll::logging::init(cli.global.verbose);
    let finished = match cli.command {
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
    };
    std::process::exit(cli::finish(&cli.global, finished));
}
