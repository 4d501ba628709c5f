//! The groups in flight of a release and one round of watching them: one shared observation for all
//! (`observe.rs`), then each group's pure state machine (`core::rollout::Rollout`) steps on its share and
//! the driver carries out what it decides (roll back, cancel, start a refresh back). Throttled polls slow
//! the round down (`pace.rs`) without counting as lost sight of the groups.

use std::time::Duration;

use tokio::time::Instant;

use super::observe::{fleet_instances, Ask, Sight};
use super::pace::{Pace, MAX_THROTTLED};
use super::{Ctx, RefreshKind};
use crate::cloud::{CloudError, ErrorKind};
use crate::core::health::counts;
use crate::core::model::{RefreshPrefs, RefreshRequest};
use crate::core::rollout::{Action, ActionResult, Decision, Outcome, PhaseName, RollbackReason, Rollout};
use crate::core::settings::GroupSettings;
use crate::events::Stage;

/// Consecutive failed observations (throttling aside) tolerated before the watch gives up and says
/// so (exit 4). With the default 5 s poll this is a minute of AWS being unreachable.
const MAX_OBSERVE_FAILURES: u32 = 12;

/// One group's rollout in flight.
pub struct Lane {
    /// The name the release knows the group by (`group@region` over several regions).
    pub scope: String,
    /// The Auto Scaling group's name, as AWS knows it in its region.
    pub group: String,
    /// Its region (None: the bake region): its calls go to that region's cloud.
    pub region: Option<String>,
    pub template_id: String,
    pub rollout: Rollout,
    /// The refresh this lane is about: the deploy's own (forward), or a way back.
    pub kind: RefreshKind,
    /// Preferences for a refresh that goes back to the previous release.
    rollback_prefs: RefreshPrefs,
    /// The group's target groups and warm pool as last seen (the watch follows changes).
    target_groups: Vec<String>,
    warm_pool: bool,
    started: Instant,
    /// Whether a rollback has been announced as a phase (ours are announced when we act).
    announced: bool,
    /// A decision to carry out before the next observation (a stop).
    pending: Option<Decision>,
    /// When this lane wants its next look (its state machine's wait), measured from the round's start.
    next: Duration,
}

impl Lane {
    pub fn new(scope: &str, settings: &GroupSettings, template_id: &str, target_groups: Vec<String>, warm_pool: bool, rollout: Rollout, kind: RefreshKind) -> Self {
        Self {
            scope: scope.to_string(),
            group: settings.name.clone(),
            region: settings.region.clone(),
            template_id: template_id.to_string(),
            rollout,
            kind,
            rollback_prefs: settings.rollback_prefs(),
            target_groups,
            warm_pool,
            started: Instant::now(),
            announced: false,
            pending: None,
            next: Duration::ZERO,
        }
    }

    /// Asks the rollout to go back (a signal, or another group's conviction): a forward refresh still
    /// running is rolled back at the next round; a rollback under way or a verification goes on.
    pub fn stop(&mut self, reason: RollbackReason) {
        if let Some(d) = self.rollout.stop_with(reason, self.started.elapsed()) {
            self.pending = Some(d);
        }
    }

    /// The longest this lane may last, whatever the state machine's own deadlines say: the forward
    /// refresh, a rollback and a second refresh back, each up to `timeout`, and two verifications. Only a
    /// bug or a clock gone wrong reaches it; it turns an endless watch into a failed one a human is told of.
    pub fn ceiling(&self) -> Duration {
        self.rollout.params.timeout * 3 + self.rollout.params.verify_timeout * 2
    }

    /// What watching this lane waits for, in words (a dry run's plan shows it).
    pub fn describe(&self) -> String {
        let r = &self.rollout;
        let group = &self.group;
        let refresh = r.watched_refresh().filter(|id| !id.is_empty()).unwrap_or("(to be started)");
        if r.reason.is_some() {
            format!(
                "watch refresh {refresh} roll back and verify {group}'s fleet on launch-template version {} ({}) \
                 (if AWS refuses, cancel it and start a refresh back to version {})",
                r.old.version, r.old.image_id, r.old.version
            )
        } else {
            format!(
                "watch refresh {refresh} and the health of {group}'s new instances in every target group; on failure roll back \
                 (autoscaling:RollbackInstanceRefresh while it runs, else autoscaling:StartInstanceRefresh back to version {}) \
                 and verify the fleet on {}",
                r.old.version, r.old.image_id
            )
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// What the watch remembers across rounds, for every lane at once.
pub struct Watch {
    /// Per region: one observation a round for that region's lanes.
    sights: std::collections::BTreeMap<Option<String>, Sight>,
    pace: Pace,
    /// Consecutive rounds whose observation failed for another reason than throttling.
    failures: u32,
    /// Since when every round has been throttled.
    throttled_since: Option<Instant>,
}

/// How one round went.
pub struct Round {
    /// Lanes (by index) that reached an outcome this round.
    pub ended: Vec<(usize, Outcome)>,
    /// How long until the next round.
    pub next: Duration,
}

impl Watch {
    pub fn new(poll: Duration) -> Self {
        Self { sights: Default::default(), pace: Pace::new(poll), failures: 0, throttled_since: None }
    }

    /// One round over `lanes`: a stop decided since the last round is carried out first; then one
    /// observation of every lane, each state machine steps on its share and its decisions are carried
    /// out until it waits or finishes. `alarms`: the environment's, to name one that stopped a refresh.
    pub async fn round(&mut self, ctx: &Ctx, alarms: &[String], lanes: &mut [Lane]) -> Round {
        let began = Instant::now();
        let poll = self.pace.interval();
        let mut ended = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        for (i, lane) in lanes.iter_mut().enumerate() {
            match lane.pending.take() {
                Some(d) => {
                    if let Some(outcome) = carry_out(&ctx.place(lane.region.as_deref()), lane, d).await {
                        ended.push((i, outcome));
                    }
                }
                None => open.push(i),
            }
        }
        // One observation per region, of that region's lanes, through its cloud.
        let mut regions: Vec<Option<String>> = open.iter().map(|&i| lanes[i].region.clone()).collect();
        regions.dedup();
        regions.sort();
        regions.dedup();
        for region in regions {
            let here: Vec<usize> = open.iter().copied().filter(|&i| lanes[i].region == region).collect();
            let rctx = ctx.place(region.as_deref());
            self.round_in(&rctx, alarms, lanes, &here, poll, &mut ended).await;
        }
        ended.sort_by_key(|(i, _)| *i);
        // Polls start every interval (not an interval after the last one ended), so a slow answer does
        // not push every later look back: the gate sees a change at most one interval late.
        let finished: Vec<usize> = ended.iter().map(|(i, _)| *i).collect();
        let wanted = lanes.iter().enumerate().filter(|(i, _)| !finished.contains(i)).map(|(_, l)| l.next).min().unwrap_or(poll);
        Round { ended, next: wanted.saturating_sub(began.elapsed()) }
    }


    /// The round of one region's lanes (`open`), observed with its context.
    async fn round_in(&mut self, ctx: &Ctx, alarms: &[String], lanes: &mut [Lane], open: &[usize], poll: Duration, ended: &mut Vec<(usize, Outcome)>) {
        let region = open.first().and_then(|&i| lanes[i].region.clone());
        let asks: Vec<Ask<'_>> = open
            .iter()
            .map(|&i| {
                let l = &lanes[i];
                Ask { group: &l.group, template_id: &l.template_id, rollout: &l.rollout, target_groups: &l.target_groups, warm_pool: l.warm_pool, now: l.now() }
            })
            .collect();
        let seen = if asks.is_empty() { Ok(vec![]) } else { self.sights.entry(region.clone()).or_default().observe(ctx, alarms, &asks).await };
        drop(asks);
        match seen {
            Ok(seen) => {
                self.failures = 0;
                self.throttled_since = None;
                let interval = if open.is_empty() { poll } else { self.pace.answered() };
                for (&i, seen) in open.iter().zip(seen) {
                    let lane = &mut lanes[i];
                    lane.target_groups = seen.target_groups;
                    lane.warm_pool = seen.warm_pool;
                    let obs = seen.observation;
                    if let Some(r) = &obs.refresh {
                        let counts = counts(&obs.group, &obs.health);
                        let hooks = obs.group.instances.iter().filter(|i| i.waiting_on_hook()).count();
                        ctx.events.progress(&lane.group, lane.rollout.phase.name(), r.status.as_str(), r.percentage_complete, counts, hooks);
                    }
                    ctx.events.fleet(&lane.group, obs.now.as_secs_f64(), fleet_instances(&obs));
                    let before = lane.rollout.timeline.len();
                    let decision = lane.rollout.step(&obs);
                    for note in lane.rollout.take_notes() {
                        ctx.events.info(&lane.group, note);
                    }
                    announce(ctx, lane, before, &decision);
                    // The state machine waits one poll_interval; while AWS throttles, the pace is slower.
                    let decision = match decision {
                        Decision::Wait(d) if d == lane.rollout.params.poll => Decision::Wait(interval),
                        d => d,
                    };
                    match carry_out(ctx, lane, decision).await {
                        Some(outcome) => ended.push((i, outcome)),
                        None if lane.started.elapsed() > lane.ceiling() => {
                            let detail = format!(
                                "the watch of refresh {} lasted longer than any rollout may ({}s) without an outcome",
                                lane.rollout.watched_refresh().unwrap_or("?"),
                                lane.ceiling().as_secs()
                            );
                            ended.push((i, Outcome::Failed { reason: lane.rollout.reason.clone(), detail }));
                        }
                        None => {}
                    }
                }
            }
            Err(e) => self.failed(ctx, e, open, lanes, ended),
        }
    }

    /// An observation failed: throttling slows the pace; other failures are tolerated a while; then every
    /// lane ends, saying it lost sight of its group.
    fn failed(&mut self, ctx: &Ctx, e: CloudError, open: &[usize], lanes: &mut [Lane], ended: &mut Vec<(usize, Outcome)>) {
        let groups: Vec<&str> = open.iter().map(|&i| lanes[i].group.as_str()).collect();
        let scope = groups.first().copied().unwrap_or("bakeroll");
        if e.is_throttling() && self.throttled_since.is_none_or(|t| t.elapsed() < MAX_THROTTLED) {
            let since = *self.throttled_since.get_or_insert_with(Instant::now);
            let delay = self.pace.throttled();
            ctx.events.warn(
                scope,
                format!(
                    "AWS is throttling the watch of {} ({e}); next look in {:.1}s, then every {:.1}s (throttled for {:.0}s)",
                    groups.join(", "),
                    delay.as_secs_f64(),
                    self.pace.interval().as_secs_f64(),
                    since.elapsed().as_secs_f64()
                ),
            );
            open.iter().for_each(|&i| lanes[i].next = delay);
        } else if e.kind != ErrorKind::Denied && !e.is_throttling() && self.failures < MAX_OBSERVE_FAILURES {
            self.failures += 1;
            ctx.events.warn(scope, format!("could not observe {} (try {}): {e}", groups.join(", "), self.failures));
            let every = self.pace.interval();
            open.iter().for_each(|&i| lanes[i].next = every);
        } else {
            for &i in open {
                let r = &lanes[i].rollout;
                let detail = format!("lost sight of the group while refresh {} was in flight: {e}", r.watched_refresh().unwrap_or("?"));
                ended.push((i, Outcome::Failed { reason: r.reason.clone(), detail }));
            }
        }
    }
}

/// Carries out decisions until the state machine waits (None; the lane's `next` set) or finishes.
async fn carry_out(ctx: &Ctx, lane: &mut Lane, mut decision: Decision) -> Option<Outcome> {
    loop {
        decision = match decision {
            Decision::Finish(outcome) => return Some(outcome),
            Decision::Wait(d) => {
                lane.next = d;
                return None;
            }
            Decision::Act(action) => {
                let result = act(ctx, lane, &action).await;
                if let ActionResult::Started { refresh_id } = &result {
                    ctx.ledger.refresh_started(&lane.group, refresh_id, RefreshKind::Back);
                }
                let note = match &action {
                    Action::RollbackRefresh => "rolling back the instance refresh (RollbackInstanceRefresh)".to_string(),
                    Action::CancelRefresh => "cancelling the instance refresh before rolling back".to_string(),
                    Action::StartRollbackRefresh { version } => format!("starting a refresh back to launch-template version {version}"),
                };
                let reason = lane.rollout.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                ctx.events.phase(&lane.group, Stage::Rollback, format!("{note}{reason}"));
                lane.announced = true;
                let now = lane.now();
                lane.rollout.on_action(&action, result, now)
            }
        };
    }
}

/// Phases the state machine entered on its own, without an action of ours: AWS rolling back by itself
/// (AutoRollback) and the final verification. They get a phase (a CI section, a report marker) too.
fn announce(ctx: &Ctx, lane: &mut Lane, before: usize, decision: &Decision) {
    let rollout = &lane.rollout;
    if let (Some(reason), false, false) = (&rollout.reason, lane.announced, matches!(decision, Decision::Act(_))) {
        ctx.events.phase(&lane.group, Stage::Rollback, format!("rolling back: {reason}"));
        lane.announced = true;
    }
    for (_, name) in rollout.timeline.iter().skip(before) {
        if *name == PhaseName::Verifying {
            let release = if rollout.reason.is_some() { "the previous release" } else { "the new release" };
            ctx.events.phase(&lane.group, Stage::Verify, format!("checking every instance is in service and healthy on {release}"));
        }
    }
}

/// Carries out an action; a refresh back goes to the rollout's old release (for a mixed instances
/// policy: the whole policy as it was, override templates' versions included).
async fn act(ctx: &Ctx, lane: &Lane, action: &Action) -> ActionResult {
    let asg = &ctx.cloud.autoscaling;
    let old = &lane.rollout.old;
    let result = match action {
        Action::RollbackRefresh => asg.rollback_instance_refresh(&lane.group).await,
        Action::CancelRefresh => asg.cancel_instance_refresh(&lane.group).await,
        Action::StartRollbackRefresh { version } => {
            debug_assert_eq!(*version, old.version, "a refresh back goes to the rollout's old release");
            let req = RefreshRequest { group: lane.group.clone(), desired: old.desired(&lane.template_id), prefs: lane.rollback_prefs.clone() };
            asg.start_instance_refresh(&req).await
        }
    };
    match result {
        Ok(_) if *action == Action::CancelRefresh => ActionResult::Cancelled,
        Ok(refresh_id) => ActionResult::Started { refresh_id },
        Err(e) => classify(e),
    }
}

fn classify(e: CloudError) -> ActionResult {
    match (e.kind, e.code.clone()) {
        (ErrorKind::Conflict | ErrorKind::Invalid | ErrorKind::Denied | ErrorKind::NotFound, Some(code)) => {
            ActionResult::Refused { code, message: e.message }
        }
        _ => ActionResult::Error { message: e.to_string() },
    }
}
