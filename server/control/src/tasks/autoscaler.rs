//! The `autoscaler` task: every evaluation interval (default 30 s, down to 1 s) each scale set with
//! an enabled autoscale setting is evaluated by the pure `decide_setting`; the decision is
//! stored whatever it says, and a change of capacity is written generation-guarded (the
//! autoscaler writes nothing but the desired capacity), logged as `autoscale.scale` and
//! announced to the setting's webhooks. A set's shadow setting is evaluated after it and
//! its decision stored apart, never applied.
//!
//! A setting with predictive profiles reads load forecasters
//! ([`flotilla_domain::autoscale::forecast`]) kept per set, built from the set's stored
//! metrics the first time (the last five seasons: roll-ups, and ticks where kept) and fed
//! the new points at each evaluation; the lead is measured from the set's boot times.
//!
//! The history an evaluation needs (the last action for the cooldown, earlier
//! recommendations for stabilization, recent changes for rate policies) is the stored
//! decisions themselves, read back after a restart: a crash between storing a decision and
//! writing the capacity leaves a decision that says "scale" with the capacity unchanged;
//! the next evaluation sees that it never took effect, ignores its cooldown and decides
//! again from the stored capacity.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::backtest::{self, State};
use flotilla_domain::autoscale::decision::{DecisionFilter, Inputs};
use flotilla_domain::autoscale::forecast::{self, Forecaster};
use flotilla_domain::autoscale::{AutoscaleSetting, Decision, Operation, decide_setting};
use flotilla_domain::metrics::{Metric, Point};
use flotilla_domain::{ScaleSet, ScaleSetState};
use futures::future::BoxFuture;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tasks::metrics::{Metrics, STORED_TICKS_HORIZON, Ticks};
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::webhooks::Webhooks;
use crate::tasks::{Control, Task};

/// Decisions kept in memory per set (and read back at start) for the history.
const HISTORY: chrono::Duration = chrono::Duration::hours(1);

/// Each set's recent decisions, oldest first (loaded from the store on first use).
#[derive(Default)]
struct History {
    by_set: Mutex<HashMap<String, VecDeque<Decision>>>,
}

impl History {
    /// Forgets every set's decisions: they are read from the store again.
    fn clear(&self) {
        self.by_set.lock().expect("history poisoned").clear();
    }

    fn get(&self, set: &str) -> Option<Vec<Decision>> {
        let map = self.by_set.lock().expect("history poisoned");
        map.get(set).map(|d| d.iter().cloned().collect())
    }

    fn put(&self, set: &str, decisions: Vec<Decision>) {
        let mut map = self.by_set.lock().expect("history poisoned");
        map.insert(set.to_string(), decisions.into());
    }

    fn push(&self, decision: &Decision) {
        let mut map = self.by_set.lock().expect("history poisoned");
        let entry = map.entry(decision.scale_set.clone()).or_default();
        entry.push_back(decision.clone());
        let horizon = decision.at - HISTORY;
        while entry.front().is_some_and(|d| d.at < horizon) {
            entry.pop_front();
        }
    }

    fn forget_others(&self, live: &[&str]) {
        let mut map = self.by_set.lock().expect("history poisoned");
        map.retain(|k, _| live.contains(&k.as_str()));
    }
}

/// Each set's load forecasters, fed up to its last evaluation.
#[derive(Default)]
struct Forecasts {
    by_set: Mutex<HashMap<String, Vec<Forecaster>>>,
}

impl Forecasts {
    fn get(&self, set: &str) -> Vec<Forecaster> {
        let map = self.by_set.lock().expect("forecasts poisoned");
        map.get(set).cloned().unwrap_or_default()
    }

    fn put(&self, set: &str, forecasters: Vec<Forecaster>) {
        let mut map = self.by_set.lock().expect("forecasts poisoned");
        map.insert(set.to_string(), forecasters);
    }

    fn clear(&self) {
        self.by_set.lock().expect("forecasts poisoned").clear();
    }

    fn forget_others(&self, live: &[&str]) {
        let mut map = self.by_set.lock().expect("forecasts poisoned");
        map.retain(|k, _| live.contains(&k.as_str()));
    }
}

/// The `autoscaler` task; it owns each set's recent decisions and load forecasters.
pub(crate) struct Autoscaler {
    ctx: Context,
    metrics: Arc<Metrics>,
    history: History,
    /// The shadow settings' decisions, kept apart.
    shadow_history: History,
    forecasts: Forecasts,
    wake: SetWaker,
    webhooks: Arc<Webhooks>,
}

impl Autoscaler {
    pub(crate) fn new(
        ctx: Context,
        metrics: Arc<Metrics>,
        wake: SetWaker,
        webhooks: Arc<Webhooks>,
    ) -> Self {
        Self {
            ctx,
            metrics,
            history: History::default(),
            shadow_history: History::default(),
            forecasts: Forecasts::default(),
            wake,
            webhooks,
        }
    }

    /// Evaluates one set now: reads its metrics and history, decides, stores the decision,
    /// and writes the capacity when it changes; then its shadow setting, if any. `None`
    /// when autoscale is off for the set. `others` is what the other scale sets ask for in
    /// all: the fleet's instance limit caps a scale-out at what is left.
    pub(crate) async fn evaluate(&self, set: &ScaleSet, others: u64) -> Result<Option<Decision>> {
        if set.state != ScaleSetState::Active {
            return Ok(None);
        }
        // To the microsecond, as the decision is stored: a backtest evaluates at that instant.
        let now = chrono::SubsecRound::trunc_subsecs(self.ctx.clock.now(), 6);
        let setting = set.spec.autoscale.as_ref().filter(|a| a.enabled);
        let shadow = set.spec.autoscale_shadow.as_ref().filter(|a| a.enabled);
        let forecasts = self
            .forecasters(set, setting.into_iter().chain(shadow), now)
            .await?;
        let live = match setting {
            Some(setting) => Some(
                self.evaluate_live(set, setting, others, now, &forecasts)
                    .await?,
            ),
            None => None,
        };
        if let Some(shadow) = shadow {
            self.evaluate_shadow(set, shadow, now, &forecasts).await?;
        }
        Ok(live)
    }

    /// The load forecasters the predictive profiles of `settings` need for `set`, fed up to
    /// `now`: those kept from the last evaluation, else built from the set's stored
    /// metrics. Leads are measured from the set's boot times.
    pub(crate) async fn forecasters(
        &self,
        set: &ScaleSet,
        settings: impl Iterator<Item = &AutoscaleSetting>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Forecaster>> {
        let settings: Vec<&AutoscaleSetting> = settings
            .filter(|s| s.profiles.iter().any(|p| p.predictive.is_some()))
            .collect();
        if settings.is_empty() {
            return Ok(Vec::new());
        }
        let instances = self.ctx.read_instances(set.name()).await?;
        let boots: Vec<f64> = flotilla_domain::instance::boot_times(&instances)
            .into_iter()
            .map(f64::from)
            .collect();
        let mut keys: Vec<forecast::Key> = settings
            .iter()
            .flat_map(|s| forecast::keys(s, &boots))
            .collect();
        keys.sort();
        keys.dedup();
        let kept = self.forecasts.get(set.name());
        let interval =
            u32::try_from(self.ctx.config.metrics.interval.as_secs()).unwrap_or(u32::MAX);
        let mut fed = Vec::with_capacity(keys.len());
        for key in keys {
            // Kept at another lead (the measured boot time moved): the same history.
            let mut f = kept
                .iter()
                .find(|f| f.key() == key)
                .or_else(|| {
                    kept.iter().find(|f| {
                        (f.key().metric, f.key().season_seconds) == (key.metric, key.season_seconds)
                    })
                })
                .cloned()
                .map(|mut f| {
                    f.relead(key);
                    f
                })
                .unwrap_or_else(|| Forecaster::new(key, interval));
            let kept_seasons = i64::from(key.season_seconds) * (forecast::SEASONS as i64 + 1);
            let from = f
                .last_observed()
                .unwrap_or(now - chrono::Duration::seconds(kept_seasons));
            let series = self
                .metrics
                .raw_series(
                    self.ctx.store.as_ref(),
                    set.name(),
                    &[key.metric, Metric::InstancesRunning],
                    (from, now),
                    Ticks::Stored {
                        horizon: STORED_TICKS_HORIZON,
                    },
                )
                .await?;
            let running = series
                .get(&Metric::InstancesRunning)
                .map_or(&[][..], Vec::as_slice);
            for p in series.get(&key.metric).into_iter().flatten() {
                f.observe(p.at, forecast::load_of(p, running));
            }
            fed.push(f);
        }
        self.forecasts.put(set.name(), fed.clone());
        Ok(fed)
    }

    async fn evaluate_live(
        &self,
        set: &ScaleSet,
        setting: &AutoscaleSetting,
        others: u64,
        now: DateTime<Utc>,
        forecasts: &[Forecaster],
    ) -> Result<Decision> {
        let ctx = &self.ctx;
        let points = self.points(set, setting, now).await?;
        let history = self.history_of(set.name(), now, false).await?;
        let mut decision = decide_setting(&Inputs {
            scale_set: set.name(),
            now,
            setting,
            current: set.spec.capacity,
            counted: self.metrics.counted(set.name(), now),
            points: &points
                .iter()
                .map(|(m, p): (&Metric, &Vec<_>)| (*m, p.as_slice()))
                .collect(),
            history: &history,
            explain: true,
            forecasts,
        });
        let limit = ctx.config.max_instances;
        let room = u64::from(limit).saturating_sub(others);
        decision.cap(u32::try_from(room).unwrap_or(u32::MAX), limit);
        let decision = ctx
            .store
            .append_decision(&decision)
            .await
            .map_err(Error::store("store a decision"))?;
        self.history.push(&decision);
        if decision.operation != Operation::None {
            self.apply(set, &decision).await?;
        }
        Ok(decision)
    }

    /// Evaluates the shadow setting on the live metrics as its own fleet would have read
    /// them: its capacity is where its own decisions left it (the live one at first); the
    /// instances it has more or fewer than the live fleet are taken as serving and counted
    /// alike, and per-instance metrics spread over them (the live value × live ÷ shadow
    /// serving instances). The decision is stored as the shadow's, never acted on.
    async fn evaluate_shadow(
        &self,
        set: &ScaleSet,
        setting: &AutoscaleSetting,
        now: DateTime<Utc>,
        forecasts: &[Forecaster],
    ) -> Result<Decision> {
        let points = self.points(set, setting, now).await?;
        let history = self.history_of(set.name(), now, true).await?;
        let live_capacity = set.spec.capacity;
        let current = history.last().map_or(live_capacity, |d| d.new_capacity);
        let (serving, counted) = self.metrics.serving_and_counted(set.name(), now);
        let live = State {
            capacity: live_capacity,
            serving,
            counted,
        };
        let shifted = |n: u32| {
            (i64::from(n) + i64::from(current) - i64::from(live_capacity))
                .clamp(0, i64::from(current)) as u32
        };
        let shadow = State {
            capacity: current,
            serving: shifted(serving),
            counted: shifted(counted),
        };
        let seen: BTreeMap<Metric, Vec<Point>> = points
            .into_iter()
            .map(|(m, ps)| {
                let ps = ps
                    .iter()
                    .filter_map(|p| backtest::transformed(m, p, &shadow, &live, 0.0))
                    .collect();
                (m, ps)
            })
            .collect();
        let mut decision = decide_setting(&Inputs {
            scale_set: set.name(),
            now,
            setting,
            current,
            counted: shadow.counted,
            points: &seen
                .iter()
                .map(|(m, p): (&Metric, &Vec<_>)| (*m, p.as_slice()))
                .collect(),
            history: &history,
            explain: true,
            forecasts,
        });
        decision.shadow = true;
        let decision = self
            .ctx
            .store
            .append_decision(&decision)
            .await
            .map_err(Error::store("store a shadow decision"))?;
        self.shadow_history.push(&decision);
        Ok(decision)
    }

    /// The points of each metric `setting` reads, over its window before `now`.
    async fn points(
        &self,
        set: &ScaleSet,
        setting: &AutoscaleSetting,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<Metric, Vec<Point>>> {
        let mut points = BTreeMap::new();
        for (metric, window) in setting.metric_windows() {
            let from = now - chrono::Duration::seconds(i64::from(window));
            points.insert(
                metric,
                self.metrics
                    .raw_points(
                        self.ctx.store.as_ref(),
                        set.name(),
                        metric,
                        (from, now),
                        Ticks::Stored {
                            horizon: STORED_TICKS_HORIZON,
                        },
                    )
                    .await?,
            );
        }
        Ok(points)
    }

    /// The set's recent decisions (the shadow's or the live ones), oldest first: from
    /// memory, or the store the first time.
    async fn history_of(
        &self,
        set: &str,
        now: DateTime<Utc>,
        shadow: bool,
    ) -> Result<Vec<Decision>> {
        let memory = if shadow {
            &self.shadow_history
        } else {
            &self.history
        };
        if let Some(h) = memory.get(set) {
            return Ok(h);
        }
        let mut stored = self
            .ctx
            .store
            .list_decisions(&DecisionFilter {
                scale_set: set.into(),
                operation: None,
                since: Some(now - HISTORY),
                until: None,
                before_id: None,
                limit: 1000,
                shadow,
            })
            .await
            .map_err(Error::store("list decisions"))?;
        stored.reverse();
        memory.put(set, stored.clone());
        Ok(stored)
    }

    /// Writes the decision's capacity, retrying on a concurrent change of other fields as long
    /// as the capacity is still the one evaluated (a different capacity wins: the next
    /// evaluation decides again from it).
    async fn apply(&self, set: &ScaleSet, decision: &Decision) -> Result<()> {
        let ctx = &self.ctx;
        let mut current = set.clone();
        let mut stored = None;
        for _ in 0..3 {
            if current.spec.capacity != decision.current
                || current.state != ScaleSetState::Active
                || !current.spec.autoscale.as_ref().is_some_and(|a| a.enabled)
            {
                break;
            }
            let mut next = current.clone();
            next.spec.capacity = decision.new_capacity;
            next.updated_at = ctx.clock.now();
            match ctx.store.update_scale_set(&next, "system:autoscale").await {
                Ok(written) => {
                    stored = Some(written);
                    break;
                }
                Err(flotilla_store::StoreError::Conflict { .. }) => {
                    match ctx
                        .store
                        .get_scale_set(set.name())
                        .await
                        .map_err(Error::store("read the scale set"))?
                    {
                        Some(fresh) => current = fresh,
                        None => break,
                    }
                }
                Err(e) => return Err(Error::store("write the capacity")(e)),
            }
        }
        let Some(stored) = stored else {
            tracing::info!(scale_set = %set.name(), "the set changed during the evaluation; the decision is not applied");
            return Ok(());
        };
        ctx.events.publish(flotilla_domain::Event::ScaleSetChanged {
            scale_set: Box::new(stored.clone().redacted()),
        });
        let activity = ctx
            .record(flotilla_domain::NewActivity {
                operation: "autoscale.scale".into(),
                actor: "system:autoscale".into(),
                scale_set: Some(set.name().into()),
                target: set.name().into(),
                started_at: decision.at,
                ended_at: Some(ctx.clock.now()),
                result: flotilla_domain::ActivityResult::Succeeded,
                error: None,
                details: json!({
                    "decision_id": decision.id,
                    "operation": decision.operation,
                    "old_capacity": decision.current,
                    "new_capacity": decision.new_capacity,
                    "profile": decision.profile,
                    "reason": decision.reason,
                }),
            })
            .await;
        self.wake.wake(set.name());
        let hooks = set
            .spec
            .autoscale
            .as_ref()
            .map(|a| a.notifications.webhooks.clone())
            .unwrap_or_default();
        if !hooks.is_empty() {
            self.webhooks
                .announce(decision, activity.map(|a| a.id), hooks)
                .await;
        }
        Ok(())
    }

    /// Evaluates every set with autoscale on.
    async fn evaluate_all(&self, control: &Control) -> Result<String> {
        let sets = self.ctx.read_sets().await?;
        let names: Vec<&str> = sets.iter().map(ScaleSet::name).collect();
        self.history.forget_others(&names);
        self.shadow_history.forget_others(&names);
        self.forecasts.forget_others(&names);
        let mut total = fleet_capacity(&sets);
        let (mut evaluated, mut scaled, mut failed) = (0, 0, None);
        for set in &sets {
            if control.stop().is_cancelled() {
                break;
            }
            let others = total.saturating_sub(u64::from(set.spec.capacity));
            match self.evaluate(set, others).await {
                Ok(Some(d)) => {
                    evaluated += 1;
                    if d.operation != Operation::None {
                        scaled += 1;
                    }
                    total = others + u64::from(d.new_capacity);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(scale_set = %set.name(), error = %crate::error::chain(&e), "autoscale evaluation failed");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(format!(
                "{evaluated} setting(s) evaluated, {scaled} scale action(s)"
            )),
        }
    }
}

impl Task for Autoscaler {
    fn name(&self) -> &'static str {
        "autoscaler"
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // A new term reads the decisions from the store: another replica may have
            // decided meanwhile (its cooldowns hold here too).
            self.history.clear();
            self.shadow_history.clear();
            self.forecasts.clear();
            let interval = self.ctx.config.autoscale_interval;
            let mut delay = std::time::Duration::ZERO;
            while control.next(delay).await {
                delay = interval;
                control.activation(self.evaluate_all(&control)).await;
            }
        })
    }
}

/// What every set asks for in all.
pub(crate) fn fleet_capacity(sets: &[ScaleSet]) -> u64 {
    sets.iter().map(|s| u64::from(s.spec.capacity)).sum()
}
