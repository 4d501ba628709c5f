//! Shell completions and man pages come from the clap definitions: they list the real subcommands
//! and flags (including the global ones), and `man --dir` writes one page per subcommand.

use std::process::Command;

fn bakeroll(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bakeroll")).args(args).env_remove("BAKEROLL_ENV").output().unwrap();
    assert!(out.status.success(), "bakeroll {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_know_every_subcommand_and_global_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let text = bakeroll(&["completions", shell]);
        for word in ["ship", "deploy", "bake", "--report", "--events", "--dotenv", "--pipeline"] {
            // fish spells long options `-l report`.
            let spelled = if shell == "fish" && word.starts_with("--") { format!("-l {}", &word[2..]) } else { word.to_string() };
            assert!(text.contains(&spelled), "{shell} completions lack {word}");
        }
    }
    assert!(bakeroll(&["completions", "bash"]).contains("complete -F _bakeroll"));
    let bad = Command::new(env!("CARGO_BIN_EXE_bakeroll")).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn man_page_documents_the_command_line() {
    let page = bakeroll(&["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH bakeroll 1"), "{}", &page[..200.min(page.len())]);
    assert!(page.contains("\\-\\-events") && page.contains("\\-\\-report"), "global flags missing");
    let dir = tempfile::tempdir().unwrap();
    bakeroll(&["man", "--dir", dir.path().to_str().unwrap()]);
    for page in ["bakeroll.1", "bakeroll-deploy.1", "bakeroll-ship.1", "bakeroll-bake.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
}
