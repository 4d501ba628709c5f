//! Taking, renewing and releasing the deploy lock (`core::lock`) on every group of an environment.
//!
//! Auto Scaling tags have no conditional write, so the lock is written, then read back after a pause
//! (`SETTLE`): of two runs that both found the groups free, the one whose tag was overwritten sees the
//! other's and backs off. The race this closes: two deploys started together (two CI jobs, a retried
//! job and its original). The race it cannot close: a writer whose CreateOrUpdateTags reaches AWS more
//! than `SETTLE` after its read. AWS's own rule (one instance refresh per group) still stops the second
//! refresh, which then exits 2 naming the first — the lock only keeps that from happening after a bake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Ctx;
use crate::core::lock::{verdict, Holder, Verdict};
use crate::core::tags;
use crate::error::{Error, Result};

/// Pause between writing the lock and reading it back: long enough for a concurrent writer's
/// request sent at the same time to land (AWS's API latencies are tens to hundreds of milliseconds).
const SETTLE: Duration = Duration::from_secs(2);

/// A lock this run holds; give it back with `release`. If the process dies, the lease runs out (or, on
/// the same host, the dead process is noticed) and the next run takes over.
pub struct Lock {
    groups: Vec<String>,
    me: Holder,
    renewal: tokio::task::JoinHandle<()>,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether a process of this machine runs (Linux: its /proc entry). Elsewhere: assume it does, so only
/// the lease decides.
fn alive(_host: &str, pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// A run id that differs between processes (not secret, only distinct).
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Takes the lock on `groups` (sorted, so two runs never wait on each other in a circle) for `lease`.
pub async fn take(ctx: &Ctx, env: &str, groups: &[String], commit: Option<&str>, lease: Duration) -> Result<Lock> {
    take_in(ctx, None, env, groups, commit, lease).await
}

/// `take` on the groups of one region of the environment (`ctx` placed there; None: the bake region),
/// which a missing group's error names: not the file's `region`, where bakeroll did not look.
pub async fn take_in(ctx: &Ctx, region: Option<&str>, env: &str, groups: &[String], commit: Option<&str>, lease: Duration) -> Result<Lock> {
    let mut groups = groups.to_vec();
    groups.sort();
    let since = now();
    let me = Holder {
        run: run_id(),
        commit: commit.map(str::to_string),
        job: std::env::var("CI_JOB_ID").ok().filter(|j| !j.is_empty()),
        host: hostname(),
        pid: std::process::id(),
        since,
        until: since + lease.as_secs() as i64,
    };
    let asg = &ctx.cloud.autoscaling;
    let unchanged = "nothing was changed";
    let mut taken: Vec<String> = Vec::new();
    // One DescribeAutoScalingGroups for every group. A missing group is refused here, before anything is
    // written: there is nothing to lock, and preflight would say the same a moment later.
    let found = asg.describe_groups(&groups).await.map_err(|e| Error::cloud(e, unchanged))?;
    if let Some(missing) = groups.iter().find(|g| !found.iter().any(|f| &f.name == *g)) {
        let hint = match region {
            Some(r) => format!(" in region {r} (listed in the environment's `regions`)"),
            None => ctx.pipeline.region_hint(),
        };
        return Err(Error::precondition(format!("Auto Scaling group {missing} not found{hint}; environment {env} lists it")));
    }
    for g in &groups {
        let Some(group) = found.iter().find(|f| &f.name == g) else { continue };
        match verdict(group.tags.get(tags::LOCK).map(String::as_str), &me, now(), alive) {
            Verdict::Free | Verdict::Ours => {}
            Verdict::Stale { holder, why } => ctx.events.warn(g, format!("taking over the deploy lock of {holder}: {why}")),
            Verdict::Held(holder) => {
                give_back(ctx, &taken, &me).await;
                return Err(held(env, g, &holder));
            }
        }
        asg.set_group_tag(g, tags::LOCK, &me.to_tag()).await.map_err(|e| Error::cloud(e, unchanged))?;
        taken.push(g.clone());
    }
    ctx.cloud.clock.sleep(SETTLE).await;
    let read_back = asg.describe_groups(&taken).await.map_err(|e| Error::cloud(e, unchanged))?;
    for group in &read_back {
        let tag = group.tags.get(tags::LOCK).and_then(|t| Holder::parse(t));
        if let Some(other) = tag.filter(|h| h.run != me.run) {
            give_back(ctx, &taken, &me).await;
            return Err(held(env, &group.name, &other));
        }
    }
    ctx.events.info("bakeroll", format!("deploy lock of environment {env} taken ({})", taken.join(", ")));
    let renewal = tokio::spawn(renew(ctx.clone(), taken.clone(), me.clone(), lease));
    Ok(Lock { groups: taken, me, renewal })
}

fn held(env: &str, group: &str, h: &Holder) -> Error {
    let since = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(h.since.max(0) as u64));
    let until = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(h.until.max(0) as u64));
    Error::precondition(format!(
        "another deploy of environment {env} holds group {group}: {h}, since {since}; its lease runs until {until} and is renewed \
         while it works. Wait for it; if that run is dead, run again after {until}"
    ))
}

/// Renews the lease on every group, a third of the lease apart, until the lock is released.
async fn renew(ctx: Ctx, groups: Vec<String>, me: Holder, lease: Duration) {
    let every = lease / 3;
    loop {
        if !ctx.cloud.clock.sleep(every).await {
            return;
        }
        let renewed = Holder { until: now() + lease.as_secs() as i64, ..me.clone() };
        for g in &groups {
            if let Err(e) = ctx.cloud.autoscaling.set_group_tag(g, tags::LOCK, &renewed.to_tag()).await {
                ctx.events.warn(g, format!("could not renew the deploy lock: {e}"));
            }
        }
    }
}

/// Removes our tag from the groups where it still is ours.
async fn give_back(ctx: &Ctx, groups: &[String], me: &Holder) {
    for g in groups {
        let ours = match ctx.cloud.autoscaling.describe_group(g).await {
            Ok(Some(group)) => group.tags.get(tags::LOCK).and_then(|t| Holder::parse(t)).is_some_and(|h| h.run == me.run),
            _ => true,
        };
        if ours {
            if let Err(e) = ctx.cloud.autoscaling.delete_group_tag(g, tags::LOCK).await {
                ctx.events.warn(g, format!("could not release the deploy lock ({e}); it expires with its lease"));
            }
        }
    }
}

impl Lock {
    pub async fn release(self, ctx: &Ctx) {
        self.renewal.abort();
        give_back(ctx, &self.groups, &self.me).await;
    }
}

/// A lock dropped without `release` (an early exit) stops renewing, so its lease can run out.
impl Drop for Lock {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
