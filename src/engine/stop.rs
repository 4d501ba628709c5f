//! The operator's request to stop (Ctrl-C, or SIGTERM from a cancelled CI job) as the engine sees it:
//! a flag it reads between steps. The engine never drops work that must finish: a refresh of ours in
//! flight is rolled back and the rollback verified; a rollback under way is left to finish.
//! `cli::Session` sets the flag when the first signal arrives.

use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<Mutex<Option<&'static str>>>);

impl Stop {
    /// Records the request (the signal's name); later requests keep the first.
    pub fn request(&self, why: &'static str) {
        self.0.lock().expect("stop flag poisoned").get_or_insert(why);
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<&'static str> {
        *self.0.lock().expect("stop flag poisoned")
    }
}
