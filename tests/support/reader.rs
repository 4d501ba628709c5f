//! One `scripts/harness/read_state.py --serve` per test: a request a line on its stdin, a JSON document a
//! line on its stdout. Starting Python and boto3 costs about a CPU second; a test that polls the state
//! every 200 ms would otherwise spend a core on it (and slow every other test running beside it).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

pub struct Reader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reader {
    /// `c` runs read_state.py --serve with the local AWS's environment.
    pub fn start(mut c: Command) -> Self {
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start read_state.py --serve");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, stdout }
    }

    /// The state around `group` (read_state.py's document, or `{"error": ...}`).
    pub fn read(&mut self, group: &str) -> Value {
        writeln!(self.stdin, "{}", json!({ "group": group })).expect("ask read_state.py");
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read read_state.py's answer");
        assert!(n > 0, "read_state.py exited (its stderr is above)");
        serde_json::from_str(&line).expect("read_state.py answers JSON")
    }

    /// Closes its stdin (it exits at that) and waits; kills it if it does not.
    pub fn stop(mut self) {
        drop(self.stdin);
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
