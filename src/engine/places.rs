//! The clouds of the places an environment lives in: per region, the bake account's (copies, sharing,
//! the release records on its images) and the deploy account's (the groups). Connected once per run,
//! before any work (`connect`): a role that cannot be assumed stops the run with nothing changed. `Ctx`
//! carries them; `Ctx::place` is the context whose cloud is one region's deploy cloud.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::cloud::{Cloud, CloudResult, Connector};
use crate::core::settings::Placement;

/// One region's clouds; None: the context's own cloud (the bake region, the caller's credentials).
#[derive(Clone)]
pub struct Place {
    pub bake: Option<Cloud>,
    pub deploy: Option<Cloud>,
    /// `@region`, appended to the region's group names in events and the ledger, when the environment
    /// has several regions (`core::settings::scope`).
    pub suffix: Option<String>,
}

impl Place {
    fn through(self, f: &dyn Fn(Cloud) -> Cloud) -> Self {
        Place { bake: self.bake.map(f), deploy: self.deploy.map(f), suffix: self.suffix }
    }
}

type Wrap = Arc<dyn Fn(Cloud) -> Cloud + Send + Sync>;

/// Every region's clouds; a region not in it (and the bake region, `None`, when nothing was connected)
/// is served by the context's own cloud. Filled once the environment is known (`set`), and shared by
/// every clone of the context; a dry run's wrapping applies to what is set later too.
#[derive(Clone, Default)]
pub struct Places {
    map: Arc<RwLock<BTreeMap<Option<String>, Place>>>,
    wrap: Option<Wrap>,
}

impl Places {
    pub fn get(&self, region: Option<&str>) -> Option<Place> {
        self.map.read().expect("places poisoned").get(&region.map(str::to_string)).cloned()
    }

    /// Sets the clouds (each passed through the wrapping, if any).
    pub fn set(&self, places: BTreeMap<Option<String>, Place>) {
        let wrapped = places
            .into_iter()
            .map(|(r, p)| match &self.wrap {
                Some(w) => (r, p.through(&**w)),
                None => (r, p),
            })
            .collect();
        *self.map.write().expect("places poisoned") = wrapped;
    }

    /// New, empty places wrapped as these are (another environment's, in the same run).
    pub fn fresh(&self) -> Self {
        Self { map: Arc::default(), wrap: self.wrap.clone() }
    }

    /// Places whose clouds, now and when set later, pass through `f` (a dry run wraps each).
    pub fn map(&self, f: impl Fn(Cloud) -> Cloud + Send + Sync + 'static) -> Self {
        let f: Wrap = Arc::new(f);
        let now: BTreeMap<Option<String>, Place> = self
            .map
            .read()
            .expect("places poisoned")
            .iter()
            .map(|(r, p)| (r.clone(), p.clone().through(&*f)))
            .collect();
        Self { map: Arc::new(RwLock::new(now)), wrap: Some(f) }
    }
}

/// The clouds of every region of `placement` beside `base` (the bake region, the caller's credentials).
/// Every cloud counts its calls in `base`'s ledger and waits on `base`'s clock, so a run's summary and a
/// dry run see them all.
pub async fn connect(connector: &dyn Connector, placement: &Placement, base: &Cloud) -> CloudResult<BTreeMap<Option<String>, Place>> {
    let mut map = BTreeMap::new();
    let share = |c: Cloud| Cloud { calls: base.calls.clone(), clock: base.clock.clone(), ..c };
    let regions = placement.rollout_regions();
    let several = regions.len() > 1;
    for region in regions {
        let name = region.clone().or_else(|| placement.bake_region.clone()).unwrap_or_default();
        let suffix = several.then(|| format!("@{name}"));
        let bake = match &region {
            None => None,
            Some(r) => Some(share(connector.bake(Some(r)).await?)),
        };
        let deploy = match &placement.role {
            None => bake.clone(),
            Some(role) => Some(share(connector.deploy(region.as_deref(), Some(role)).await?)),
        };
        map.insert(region, Place { bake, deploy, suffix });
    }
    Ok(map)
}
