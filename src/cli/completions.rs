//! `bakeroll completions SHELL` and `bakeroll man`: shell completions and man pages generated from
//! the clap definitions, so they can never drift from the real command line.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, Finished};
use crate::error::Error;

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for (to stdout).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write bakeroll.1 and one page per subcommand (bakeroll-deploy.1, ...) into this directory
    /// instead of printing bakeroll.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

fn done(command: &str, result: Result<Option<String>, Error>) -> Finished {
    let mut f = Finished::early(command, Error::Bug("unreachable".into()));
    match result {
        Ok(text) => {
            f.result = Ok(());
            f.text = text;
        }
        Err(e) => f.result = Err(e),
    }
    f
}

pub fn completions(args: CompletionsArgs) -> Finished {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "bakeroll", &mut out);
    done("completions", Ok(Some(String::from_utf8_lossy(&out).trim_end().to_string())))
}

pub fn man(args: ManArgs) -> Finished {
    let cmd = Cli::command();
    let result = match &args.dir {
        None => page(cmd).map(|text| Some(String::from_utf8_lossy(&text).trim_end().to_string())),
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|_| clap_mangen::generate_to(cmd.clone(), dir))
            .and_then(|_| std::fs::write(dir.join("bakeroll.1"), page(cmd)?))
            .map(|_| None),
    };
    done("man", result.map_err(|e| Error::Usage(format!("cannot write the man page: {e}"))))
}

/// bakeroll.1: clap_mangen's sections, with EXIT STATUS and ENVIRONMENT (`contract`) in place of its
/// generic EXTRA section (the same text `--help` ends with).
fn page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    out.extend_from_slice(super::contract::man_sections().as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}
