//! Logging for the SDK's own messages: silent unless `-v` (bakeroll's own rare `tracing` warnings
//! still show), colour only on a terminal; `RUST_LOG` wins when set.
//! Secrets never reach the log: the one SDK debug line that prints the request's identity (with its
//! access key id) is left out, and anything the environment holds as a credential is blanked from
//! every line, whatever `RUST_LOG` asks for (tests/e2e_secrets.rs).

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

/// The endpoint resolver's debug line dumps the whole request context, identity included.
const QUIET: &str = "aws_smithy_runtime::client::orchestrator::endpoints=info";

pub fn init(verbose: u8) {
    // Not even the SDK's warnings without -v: what went wrong reaches the user once, as bakeroll's own
    // error with its fix; the SDK's WARN lines about the same failure (no credentials in the chain,
    // a profile it could not read) only repeated it in another voice.
    let default = match verbose {
        0 => "off,bakeroll=warn".to_string(),
        1 => format!("info,aws_smithy_runtime=debug,{QUIET}"),
        _ => format!("debug,{QUIET}"),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let secrets = secrets_from_env();
    let writer = move || Redacting { secrets: secrets.clone(), out: std::io::stderr() };
    // Escape codes only for a terminal: in a CI log or a file they are noise.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer).try_init();
}

/// The credentials the environment gives the SDK: static keys, a session token, a web identity token.
fn secrets_from_env() -> Vec<String> {
    let mut found: Vec<String> =
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].iter().filter_map(|v| std::env::var(v).ok()).collect();
    if let Some(token) = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").and_then(|p| std::fs::read_to_string(p).ok()) {
        found.push(token.trim().to_string());
    }
    // Too short to be a credential: blanking it would garble ordinary text.
    found.retain(|s| s.len() >= 8);
    found
}

/// stderr with every known secret replaced. The fmt layer writes each event in one call.
struct Redacting {
    secrets: Vec<String>,
    out: std::io::Stderr,
}

impl Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            self.out.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut clean = text.into_owned();
        for s in &self.secrets {
            clean = clean.replace(s.as_str(), "** redacted **");
        }
        self.out.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
