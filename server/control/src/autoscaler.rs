//! The autoscaler: every evaluation interval (default 30 s, down to 1 s) each scale set with
//! an enabled autoscale setting is evaluated by the pure `decide_setting`; the decision is
//! stored whatever it says, and a change of capacity is written generation-guarded (the
//! autoscaler writes nothing but the desired capacity), logged as `autoscale.scale` and
//! announced to the setting's webhooks.
//!
//! The history an evaluation needs (the last action for the cooldown, earlier
//! recommendations for stabilization, recent changes for rate policies) is the stored
//! decisions themselves, read back after a restart: a crash between storing a decision and
//! writing the capacity leaves a decision that says "scale" with the capacity unchanged;
//! the next evaluation sees that it never took effect, ignores its cooldown and decides
//! again from the stored capacity.
//!
//! This module also holds the facade's autoscale, demand, decision and metric operations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::decision::{DecisionFilter, Inputs};
use flotilla_domain::autoscale::setting::Warning;
use flotilla_domain::autoscale::{AutoscaleSetting, Decision, Operation, decide_setting};
use flotilla_domain::demand::Demand;
use flotilla_domain::metrics::{Metric, MetricsAnswer, Point, Series};
use flotilla_domain::{HealthState, ScaleSet, ScaleSetState, ValidationErrors};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, chain};
use crate::fleet::{Fleet, Shared};

/// Decisions kept in memory per set (and read back at start) for the history.
const HISTORY: chrono::Duration = chrono::Duration::hours(1);
/// The most points a metrics query answers per series.
pub const MAX_POINTS: i64 = 2_000;

/// Each set's recent decisions, oldest first (loaded from the store on first use).
#[derive(Default)]
pub(crate) struct History {
    by_set: Mutex<HashMap<String, VecDeque<Decision>>>,
}

impl History {
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

/// The metrics a setting reads, with the longest window each needs.
fn metric_windows(setting: &AutoscaleSetting) -> BTreeMap<Metric, u32> {
    let mut windows = BTreeMap::new();
    for profile in &setting.profiles {
        let rules = profile
            .rules
            .iter()
            .map(|r| (r.metric.as_str(), r.time_window_seconds));
        let tracking = profile
            .target_tracking
            .iter()
            .map(|t| (t.metric.as_str(), t.window_seconds));
        for (name, window) in rules.chain(tracking) {
            if let Some(metric) = Metric::parse(name) {
                let w = windows.entry(metric).or_insert(0);
                *w = (*w).max(window);
            }
        }
    }
    windows
}

/// Evaluates one set now: reads its metrics and history, decides, stores the decision,
/// and writes the capacity when it changes. `None` when autoscale is off for the set.
/// `others` is what the other scale sets ask for in all: the fleet's instance limit caps a
/// scale-out at what is left.
pub(crate) async fn evaluate(
    shared: &Arc<Shared>,
    set: &ScaleSet,
    others: u64,
) -> Result<Option<Decision>> {
    let Some(setting) = set.spec.autoscale.as_ref().filter(|a| a.enabled) else {
        return Ok(None);
    };
    if set.state != ScaleSetState::Active {
        return Ok(None);
    }
    let now = shared.clock.now();
    let mut points = BTreeMap::new();
    for (metric, window) in metric_windows(setting) {
        let from = now - chrono::Duration::seconds(i64::from(window));
        points.insert(
            metric,
            crate::metrics::raw_points(shared, set.name(), metric, from, now).await?,
        );
    }
    let history = match shared.autoscale_history.get(set.name()) {
        Some(h) => h,
        None => {
            let mut stored = shared
                .store
                .list_decisions(&DecisionFilter {
                    scale_set: set.name().into(),
                    operation: None,
                    since: Some(now - HISTORY),
                    until: None,
                    before_id: None,
                    limit: 1000,
                })
                .await
                .map_err(Error::store("list decisions"))?;
            stored.reverse();
            shared.autoscale_history.put(set.name(), stored.clone());
            stored
        }
    };
    let mut decision = decide_setting(&Inputs {
        scale_set: set.name(),
        now,
        setting,
        current: set.spec.capacity,
        counted: shared.metrics.counted(set.name()),
        points: &points,
        history: &history,
    });
    let limit = shared.config.max_instances;
    let room = u64::from(limit).saturating_sub(others);
    decision.cap(u32::try_from(room).unwrap_or(u32::MAX), limit);
    let decision = shared
        .store
        .append_decision(&decision)
        .await
        .map_err(Error::store("store a decision"))?;
    shared.autoscale_history.push(&decision);
    if decision.operation != Operation::None {
        apply(shared, set, &decision).await?;
    }
    Ok(Some(decision))
}

/// Writes the decision's capacity, retrying on a concurrent change of other fields as long
/// as the capacity is still the one evaluated (a different capacity wins: the next
/// evaluation decides again from it).
async fn apply(shared: &Arc<Shared>, set: &ScaleSet, decision: &Decision) -> Result<()> {
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
        next.updated_at = shared.clock.now();
        match shared
            .store
            .update_scale_set(&next, "system:autoscale")
            .await
        {
            Ok(written) => {
                stored = Some(written);
                break;
            }
            Err(flotilla_store::StoreError::Conflict { .. }) => {
                match shared
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
    shared
        .events
        .publish(flotilla_domain::Event::ScaleSetChanged {
            scale_set: Box::new(stored.clone().redacted()),
        });
    let activity = shared
        .record(flotilla_domain::NewActivity {
            operation: "autoscale.scale".into(),
            actor: "system:autoscale".into(),
            scale_set: Some(set.name().into()),
            target: set.name().into(),
            started_at: decision.at,
            ended_at: Some(shared.clock.now()),
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
    shared.driver.wake(shared, set.name());
    let hooks = set
        .spec
        .autoscale
        .as_ref()
        .map(|a| a.notifications.webhooks.clone())
        .unwrap_or_default();
    if !hooks.is_empty() {
        crate::webhooks::announce(shared, decision, activity.map(|a| a.id), hooks);
    }
    Ok(())
}

/// The autoscaler task: evaluates every set with autoscale on, every interval.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut interval = tokio::time::interval(shared.config.autoscale_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = interval.tick() => {}
        }
        let sets = match shared.store.list_scale_sets().await {
            Ok(sets) => sets,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "autoscale: could not list scale sets");
                continue;
            }
        };
        shared
            .autoscale_history
            .forget_others(&sets.iter().map(ScaleSet::name).collect::<Vec<_>>());
        let mut total = fleet_capacity(&sets);
        for set in &sets {
            if cancel.is_cancelled() {
                break;
            }
            let others = total.saturating_sub(u64::from(set.spec.capacity));
            match evaluate(&shared, set, others).await {
                Ok(Some(d)) => total = others + u64::from(d.new_capacity),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(scale_set = %set.name(), error = %chain(&e), "autoscale evaluation failed");
                }
            }
        }
    }
}

/// What every set asks for in all.
fn fleet_capacity(sets: &[ScaleSet]) -> u64 {
    sets.iter().map(|s| u64::from(s.spec.capacity)).sum()
}

/// A metrics query (`GET /scale-sets/{name}/metrics`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct MetricsQuery {
    /// Comma-separated metric names (default: CPU, requests/s, capacity and instances
    /// running).
    pub metric: Option<String>,
    /// Start (RFC 3339; default one hour before `to`).
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
    /// Seconds per point (default: the range over 300 points, at least the collector's
    /// interval).
    pub step: Option<u32>,
    /// One instance's samples instead of the set's aggregates (kept for the last
    /// 120 collector ticks).
    pub instance: Option<String>,
}

/// The saved setting and what the editor should warn about.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoscaleAnswer {
    pub autoscale: Option<AutoscaleSetting>,
    pub warnings: Vec<Warning>,
    /// The boot time measured on the set's instances (creation → healthy, median), used
    /// for the cooldown warning.
    pub boot_seconds: Option<u32>,
    /// Whether the setting was saved (`false` for a dry run).
    pub saved: bool,
}

impl Fleet {
    /// The measured boot time: the median of creation → healthy over the set's healthy
    /// instances that turned healthy within an hour of their creation.
    pub(crate) async fn boot_seconds(&self, name: &str) -> Result<Option<u32>> {
        let instances = self
            .shared()
            .store
            .list_instances(name)
            .await
            .map_err(Error::store("list instances"))?;
        let mut times: Vec<i64> = instances
            .iter()
            .filter(|i| i.health_state == HealthState::Healthy)
            .filter_map(|i| {
                i.health_changed_at
                    .map(|h| (h - i.created_at).num_seconds())
            })
            .filter(|s| (0..3600).contains(s))
            .collect();
        times.sort_unstable();
        Ok(times.get(times.len() / 2).map(|s| *s as u32))
    }

    /// Replaces the set's autoscale setting (`None` removes it). Secrets shown as
    /// `(redacted)` are kept. With `dry_run`, validates and warns without saving.
    pub async fn set_autoscale(
        &self,
        name: &str,
        setting: Option<AutoscaleSetting>,
        dry_run: bool,
        actor: &str,
    ) -> Result<AutoscaleAnswer> {
        let started = self.now();
        let current = self.read_set(name).await?;
        let mut setting = setting;
        if let Some(s) = &mut setting {
            s.keep_secrets(current.spec.autoscale.as_ref());
            let mut errors = s.validate();
            errors.0.extend(self.check_webhooks(s).0);
            errors.into_result().map_err(Error::Invalid)?;
        }
        let boot_seconds = self.boot_seconds(name).await?;
        let warnings = setting
            .as_ref()
            .map(|s| s.warnings(boot_seconds))
            .unwrap_or_default();
        if dry_run {
            return Ok(AutoscaleAnswer {
                autoscale: setting.map(AutoscaleSetting::redacted),
                warnings,
                boot_seconds,
                saved: false,
            });
        }
        let (_, after) = self
            .modify(name, actor, |current| {
                let mut next = current.clone();
                next.spec.autoscale.clone_from(&setting);
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            "autoscale.update",
            actor,
            started,
            json!({
                "enabled": setting.as_ref().is_some_and(|s| s.enabled),
                "profiles": setting.as_ref().map_or(0, |s| s.profiles.len()),
                "warnings": warnings.len(),
            }),
        )
        .await;
        Ok(AutoscaleAnswer {
            autoscale: after.redacted().spec.autoscale,
            warnings,
            boot_seconds,
            saved: true,
        })
    }

    /// Evaluates the set's autoscale setting now (tests, benchmarks, operators).
    pub async fn evaluate_autoscale(&self, name: &str) -> Result<Option<Decision>> {
        let set = self.read_set(name).await?;
        let others =
            fleet_capacity(&self.read_sets().await?).saturating_sub(u64::from(set.spec.capacity));
        evaluate(self.shared(), &set, others).await
    }

    /// The set's decisions, newest first.
    pub async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>> {
        self.read_set(&filter.scale_set).await?;
        let mut errors = ValidationErrors::default();
        errors.range("limit", filter.limit, 0, 1000);
        errors.into_result().map_err(Error::Invalid)?;
        self.shared()
            .store
            .list_decisions(filter)
            .await
            .map_err(Error::store("list decisions"))
    }

    /// Sets the mock's synthetic demand for the set (`None` removes it).
    pub async fn set_demand(
        &self,
        name: &str,
        demand: Option<Demand>,
        actor: &str,
    ) -> Result<ScaleSet> {
        let started = self.now();
        let Some(sim) = self.shared().backend.simulation() else {
            return Err(Error::NotSupported {
                what: "synthetic demand (only the mock backend simulates load)",
            });
        };
        let demand = demand.map(|mut d| {
            d.started_at = Some(started);
            d
        });
        if let Some(d) = &demand {
            d.validate().into_result().map_err(Error::Invalid)?;
        }
        let (_, after) = self
            .modify(name, actor, |current| {
                let mut next = current.clone();
                next.spec.demand.clone_from(&demand);
                Ok(next)
            })
            .await?;
        sim.set_demand(name, demand.clone());
        self.after_change(
            &after,
            "demand.set",
            actor,
            started,
            json!({ "demand": demand }),
        )
        .await;
        Ok(after.redacted())
    }

    /// Gives the mock every set's stored demand (at start and after a create).
    pub(crate) fn push_demand(&self, set: &ScaleSet) {
        if let Some(sim) = self.shared().backend.simulation() {
            sim.set_demand(set.name(), set.spec.demand.clone());
        }
    }

    /// A metrics query: the set's aggregates, or one instance's samples.
    pub async fn metrics(&self, name: &str, query: &MetricsQuery) -> Result<MetricsAnswer> {
        self.read_set(name).await?;
        let mut errors = ValidationErrors::default();
        let metrics: Vec<Metric> = match &query.metric {
            None => vec![
                Metric::CpuPercent,
                Metric::RequestsPerSecond,
                Metric::Capacity,
                Metric::InstancesRunning,
            ],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .filter_map(|m| {
                    let parsed = Metric::parse(m);
                    if parsed.is_none() {
                        errors.push(
                            "metric",
                            format!("unknown metric {m:?}; known: {}", Metric::names()),
                        );
                    }
                    parsed
                })
                .collect(),
        };
        if metrics.is_empty() && errors.is_empty() {
            errors.push("metric", "name at least one metric");
        }
        let to = query.to.unwrap_or_else(|| self.now());
        let from = query.from.unwrap_or(to - chrono::Duration::hours(1));
        if from >= to {
            errors.push("from", "must be before `to`");
        }
        let range = (to - from).num_seconds().max(1);
        let interval = self.shared().config.metrics.interval.as_secs().max(1) as i64;
        let step = match query.step {
            Some(0) => {
                errors.push("step", "must be at least 1 second");
                1
            }
            Some(s) => i64::from(s),
            None => (range / 300).max(interval),
        };
        if range / step > MAX_POINTS {
            errors.push(
                "step",
                format!(
                    "{step} s gives {} points over the range; at most {MAX_POINTS}",
                    range / step
                ),
            );
        }
        errors.into_result().map_err(Error::Invalid)?;
        let step_d = chrono::Duration::seconds(step);
        let series = if let Some(instance) = &query.instance {
            let kept = self
                .shared()
                .metrics
                .instance_series(instance, &metrics, from, to);
            kept.into_iter()
                .map(|s| Series {
                    points: flotilla_domain::metrics::rebucket(&s.points, from, to, step_d),
                    ..s
                })
                .collect()
        } else {
            let mut series = Vec::with_capacity(metrics.len());
            for metric in metrics {
                let points: Vec<Point> =
                    crate::metrics::set_points(self.shared(), name, metric, from, to, step_d)
                        .await?;
                series.push(Series {
                    metric,
                    unit: metric.unit().into(),
                    instance: None,
                    points,
                });
            }
            series
        };
        Ok(MetricsAnswer {
            scale_set: name.into(),
            from,
            to,
            step_seconds: step as u32,
            series,
        })
    }

    /// The collector's counters and memory.
    pub fn collector_stats(&self) -> crate::metrics::CollectorStats {
        self.shared().metrics.stats()
    }

    /// Appends the collected metrics' Prometheus exposition.
    pub fn render_collected_metrics(&self, out: &mut String) {
        self.shared().metrics.render_prometheus(out);
    }

    /// Runs one collector tick now (tests and benchmarks).
    pub async fn collect_metrics_now(&self) -> Result<()> {
        crate::metrics::collect(self.shared()).await
    }
}
