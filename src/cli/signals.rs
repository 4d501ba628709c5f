//! Ctrl-C and SIGTERM (what GitLab sends a cancelled job) for the whole session. One listener, started
//! when the session opens, counts them, so a signal arriving between two steps is never lost and the
//! second one can be told from the first.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Signals {
    seen: watch::Receiver<(u32, &'static str)>,
}

impl Signals {
    /// Starts listening; from now on the process no longer dies of SIGINT/SIGTERM by itself.
    pub fn listen() -> Self {
        let (tx, seen) = watch::channel((0u32, ""));
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else { return };
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    };
                    tx.send_modify(|(n, last)| {
                        *n += 1;
                        *last = name;
                    });
                }
            }
            #[cfg(not(unix))]
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                tx.send_modify(|(n, last)| {
                    *n += 1;
                    *last = "Ctrl-C";
                });
            }
        });
        Self { seen }
    }

    /// How many signals have arrived so far.
    pub fn count(&self) -> u32 {
        self.seen.borrow().0
    }

    /// Waits until at least `n` signals have arrived (counting from the session's start) and names the last.
    pub async fn nth(&self, n: u32) -> &'static str {
        let mut seen = self.seen.clone();
        loop {
            let (count, last) = *seen.borrow_and_update();
            if count >= n {
                return last;
            }
            if seen.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}
