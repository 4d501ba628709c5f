//! The deploy lock's record and the decision whether it can be taken. One deploy per environment: a
//! run writes who it is and how long its lease lasts into a tag on each group (`bakeroll:lock`), renews
//! the lease while it works and removes the tag at the end. Pure: the engine reads and writes the tags.

use std::fmt;

/// Who holds (or wants) the lock. Written as `run=… commit=… job=… host=… pid=… since=… until=…`
/// (Unix seconds), well inside the 256 characters a tag value may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Random per process: tells this run's tag from any other's.
    pub run: String,
    pub commit: Option<String>,
    pub job: Option<String>,
    pub host: String,
    pub pid: u32,
    pub since: i64,
    /// End of the lease; renewed while the holder runs.
    pub until: i64,
}

impl Holder {
    pub fn to_tag(&self) -> String {
        let dash = |v: &Option<String>| v.as_deref().unwrap_or("-").chars().take(64).collect::<String>();
        format!(
            "run={} commit={} job={} host={} pid={} since={} until={}",
            self.run,
            dash(&self.commit),
            dash(&self.job),
            self.host.chars().take(64).collect::<String>(),
            self.pid,
            self.since,
            self.until
        )
    }

    pub fn parse(tag: &str) -> Option<Self> {
        let mut h = Holder { run: String::new(), commit: None, job: None, host: String::new(), pid: 0, since: 0, until: 0 };
        for word in tag.split_whitespace() {
            let (k, v) = word.split_once('=')?;
            let opt = (v != "-").then(|| v.to_string());
            match k {
                "run" => h.run = v.to_string(),
                "commit" => h.commit = opt,
                "job" => h.job = opt,
                "host" => h.host = v.to_string(),
                "pid" => h.pid = v.parse().ok()?,
                "since" => h.since = v.parse().ok()?,
                "until" => h.until = v.parse().ok()?,
                _ => {}
            }
        }
        (!h.run.is_empty()).then_some(h)
    }
}

impl fmt::Display for Holder {
    /// `run a1b2 (commit c0ffee, CI job 77) on ci-runner-3 pid 4242`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}", self.run)?;
        let mut about = Vec::new();
        if let Some(c) = &self.commit {
            about.push(format!("commit {c}"));
        }
        if let Some(j) = &self.job {
            about.push(format!("CI job {j}"));
        }
        if !about.is_empty() {
            write!(f, " ({})", about.join(", "))?;
        }
        write!(f, " on {} pid {}", self.host, self.pid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No lock (or an unreadable tag, which no bakeroll wrote): take it.
    Free,
    /// Our own run's tag.
    Ours,
    /// A lock nobody holds any more: take it over, loudly. `why` says how that is known.
    Stale { holder: Holder, why: String },
    /// Another run holds it.
    Held(Holder),
}

/// Whether `me` may take a lock whose tag is `tag` at `now` (Unix seconds). `alive(host, pid)` says
/// whether a process of this machine still runs: a holder on this host whose process is gone is stale
/// at once (a killed run re-run on the same runner); on another host only its lease tells.
pub fn verdict(tag: Option<&str>, me: &Holder, now: i64, alive: impl Fn(&str, u32) -> bool) -> Verdict {
    let Some(holder) = tag.and_then(Holder::parse) else { return Verdict::Free };
    if holder.run == me.run {
        return Verdict::Ours;
    }
    if holder.until <= now {
        let why = format!("its lease ended {}s ago", now - holder.until);
        return Verdict::Stale { holder, why };
    }
    if holder.host == me.host && !alive(&holder.host, holder.pid) {
        let why = format!("its process {} on this host ({}) is gone", holder.pid, holder.host);
        return Verdict::Stale { holder, why };
    }
    Verdict::Held(holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str, host: &str, pid: u32, until: i64) -> Holder {
        Holder { run: run.into(), commit: Some("c0ffee".into()), job: None, host: host.into(), pid, since: 100, until }
    }

    #[test]
    fn the_tag_reads_back() {
        let h = Holder { job: Some("77".into()), ..holder("a1b2", "ci-3", 4242, 700) };
        assert_eq!(Holder::parse(&h.to_tag()), Some(h.clone()));
        assert!(h.to_tag().len() <= 256);
        assert_eq!(h.to_string(), "run a1b2 (commit c0ffee, CI job 77) on ci-3 pid 4242");
        assert_eq!(Holder::parse("not ours"), None);
    }

    #[test]
    fn verdicts() {
        let me = holder("me", "ci-1", 1, 0);
        let alive = |_: &str, _: u32| true;
        let dead = |_: &str, _: u32| false;
        let other_host = holder("x", "ci-2", 9, 500).to_tag();
        let same_host = holder("x", "ci-1", 9, 500).to_tag();
        assert_eq!(verdict(None, &me, 400, alive), Verdict::Free);
        assert_eq!(verdict(Some("garbage"), &me, 400, alive), Verdict::Free);
        assert_eq!(verdict(Some(&me.to_tag()), &me, 400, alive), Verdict::Ours);
        assert!(matches!(verdict(Some(&other_host), &me, 400, dead), Verdict::Held(_)), "another host: only the lease tells");
        assert!(matches!(verdict(Some(&other_host), &me, 500, alive), Verdict::Stale { .. }), "lease over");
        assert!(matches!(verdict(Some(&same_host), &me, 400, alive), Verdict::Held(_)));
        match verdict(Some(&same_host), &me, 400, dead) {
            Verdict::Stale { why, .. } => assert!(why.contains("process 9"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
