//! Autoscale settings and their decisions, the mock's synthetic demand, and metric
//! queries.

use chrono::{DateTime, Utc};
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::forecast;
use flotilla_domain::autoscale::setting::{Facts, Warning};
use flotilla_domain::autoscale::{AutoscaleSetting, Decision, Operation};
use flotilla_domain::demand::Demand;
use flotilla_domain::metrics::{Metric, MetricsAnswer, Point, Series};
use flotilla_domain::{ScaleSet, ScaleSetSpec, ValidationErrors};
use serde_json::json;

use super::Fleet;
use crate::error::{Error, Result};
use crate::tasks::autoscaler::fleet_capacity;
use crate::tasks::metrics::CollectorStats;

/// The most points a metrics query answers per series.
pub const MAX_POINTS: i64 = 2_000;

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
    /// How often the metrics collector samples, used for the short-window warning.
    pub metrics_interval_seconds: u32,
    /// Whether the setting was saved (`false` for a dry run).
    pub saved: bool,
}

/// Which of a set's autoscale settings a change is about.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Live,
    Shadow,
}

impl Slot {
    fn of(self, spec: &ScaleSetSpec) -> &Option<AutoscaleSetting> {
        match self {
            Slot::Live => &spec.autoscale,
            Slot::Shadow => &spec.autoscale_shadow,
        }
    }

    fn of_mut(self, spec: &mut ScaleSetSpec) -> &mut Option<AutoscaleSetting> {
        match self {
            Slot::Live => &mut spec.autoscale,
            Slot::Shadow => &mut spec.autoscale_shadow,
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Slot::Live => "autoscale.update",
            Slot::Shadow => "autoscale.shadow.update",
        }
    }
}

impl Fleet {
    /// The set's measured boot time ([`flotilla_domain::instance::boot_seconds`]).
    pub(crate) async fn boot_seconds(&self, name: &str) -> Result<Option<u32>> {
        let instances = self.ctx.read_instances(name).await?;
        Ok(flotilla_domain::instance::boot_seconds(&instances))
    }

    /// What a setting's warnings are measured against.
    fn facts(&self, boot_seconds: Option<u32>) -> Facts {
        Facts {
            boot_seconds,
            metrics_interval_seconds: u32::try_from(self.ctx.config.metrics.interval.as_secs())
                .unwrap_or(u32::MAX)
                .max(1),
        }
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
        self.put_setting(name, Slot::Live, setting, dry_run, actor)
            .await
    }

    /// Replaces the set's shadow setting (`None` removes it), as [`Fleet::set_autoscale`]
    /// does the live one: it is evaluated beside the live one and never acts.
    pub async fn set_autoscale_shadow(
        &self,
        name: &str,
        setting: Option<AutoscaleSetting>,
        dry_run: bool,
        actor: &str,
    ) -> Result<AutoscaleAnswer> {
        self.put_setting(name, Slot::Shadow, setting, dry_run, actor)
            .await
    }

    async fn put_setting(
        &self,
        name: &str,
        slot: Slot,
        setting: Option<AutoscaleSetting>,
        dry_run: bool,
        actor: &str,
    ) -> Result<AutoscaleAnswer> {
        let started = self.now();
        let current = self.ctx.read_set(name).await?;
        let mut setting = setting;
        if let Some(s) = &mut setting {
            s.keep_secrets(slot.of(&current.spec).as_ref());
            let mut errors = s.validate();
            errors.0.extend(self.check_webhooks(s).0);
            errors.into_result().map_err(Error::Invalid)?;
        }
        let boot_seconds = self.boot_seconds(name).await?;
        let facts = self.facts(boot_seconds);
        let warnings = setting
            .as_ref()
            .map(|s| s.warnings(facts))
            .unwrap_or_default();
        if dry_run {
            return Ok(AutoscaleAnswer {
                autoscale: setting.map(AutoscaleSetting::redacted),
                warnings,
                boot_seconds,
                metrics_interval_seconds: facts.metrics_interval_seconds,
                saved: false,
            });
        }
        let (_, after) = self
            .ctx
            .modify_set(name, actor, |current| {
                let mut next = current.clone();
                slot.of_mut(&mut next.spec).clone_from(&setting);
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            slot.operation(),
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
            autoscale: slot.of(&after.redacted().spec).clone(),
            warnings,
            boot_seconds,
            metrics_interval_seconds: facts.metrics_interval_seconds,
            saved: true,
        })
    }

    /// The load forecasts of the predictive profiles of the set's live and shadow settings
    /// (`GET /scale-sets/{name}/autoscale/forecast`), fed up to now.
    pub async fn forecast(&self, name: &str) -> Result<Vec<forecast::Item>> {
        let set = self.ctx.read_set(name).await?;
        let slots = [
            (false, set.spec.autoscale.as_ref()),
            (true, set.spec.autoscale_shadow.as_ref()),
        ];
        let forecasters = self
            .autoscaler
            .forecasters(&set, slots.iter().filter_map(|(_, s)| *s), self.now())
            .await?;
        Ok(slots
            .iter()
            .filter_map(|(shadow, s)| s.map(|s| (*shadow, s)))
            .flat_map(|(shadow, s)| s.profiles.iter().map(move |p| (shadow, p)))
            .filter_map(|(shadow, profile)| {
                let p = profile.predictive.as_ref()?;
                let f = forecast::find(p, &forecasters)?;
                Some(forecast::Item {
                    profile: profile.name.clone(),
                    shadow,
                    mode: p.mode,
                    target: p.target,
                    forecast: f.view(p.model),
                })
            })
            .collect())
    }

    /// Makes the shadow setting the live one (its webhooks and secrets with it); the set
    /// has no shadow after. 409 when it has none.
    pub async fn promote_autoscale_shadow(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<AutoscaleAnswer> {
        let started = self.now();
        let (_, after) = self
            .ctx
            .modify_set(name, actor, |current| {
                let mut next = current.clone();
                let shadow =
                    next.spec
                        .autoscale_shadow
                        .take()
                        .ok_or_else(|| Error::InvalidState {
                            message: format!(
                                "scale set {name:?} has no shadow autoscale setting to promote"
                            ),
                        })?;
                next.spec.autoscale = Some(shadow);
                Ok(next)
            })
            .await?;
        let setting = after.spec.autoscale.clone();
        self.after_change(
            &after,
            "autoscale.promote",
            actor,
            started,
            json!({
                "enabled": setting.as_ref().is_some_and(|s| s.enabled),
                "profiles": setting.as_ref().map_or(0, |s| s.profiles.len()),
            }),
        )
        .await;
        let boot_seconds = self.boot_seconds(name).await?;
        let facts = self.facts(boot_seconds);
        Ok(AutoscaleAnswer {
            warnings: setting
                .as_ref()
                .map(|s| s.warnings(facts))
                .unwrap_or_default(),
            autoscale: after.redacted().spec.autoscale,
            boot_seconds,
            metrics_interval_seconds: facts.metrics_interval_seconds,
            saved: true,
        })
    }

    /// Evaluates the set's autoscale setting now (tests, benchmarks, operators): on the
    /// leader only (`NotLeader` elsewhere).
    pub async fn evaluate_autoscale(&self, name: &str) -> Result<Option<Decision>> {
        let set = self.ctx.read_set(name).await?;
        // The leader's metric windows are the fleet's; a standby's are empty.
        if !self.leadership.leading() {
            return Err(Error::NotLeader {
                message: "evaluating autoscale is the leader's work and this replica does not \
                          hold the leader lease; retry on the leader (GET /api/v1/control/replicas)"
                    .into(),
            });
        }
        let others = fleet_capacity(&self.ctx.read_sets().await?)
            .saturating_sub(u64::from(set.spec.capacity));
        self.autoscaler.evaluate(&set, others).await
    }

    /// The set's decisions, newest first.
    pub async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>> {
        self.ctx.read_set(&filter.scale_set).await?;
        let mut errors = ValidationErrors::default();
        errors.range("limit", filter.limit, 0, 1000);
        errors.into_result().map_err(Error::Invalid)?;
        self.ctx
            .store
            .list_decisions(filter)
            .await
            .map_err(Error::store("list decisions"))
    }

    /// The set's scale actions (scale-outs and scale-ins, not the evaluations that kept
    /// the capacity) that pass `filter`, newest first, at most `filter.limit`.
    pub async fn scale_actions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>> {
        let operations = match filter.operation {
            None => vec![Operation::ScaleOut, Operation::ScaleIn],
            Some(Operation::None) => vec![],
            Some(one) => vec![one],
        };
        let mut actions = Vec::new();
        // The store filters by one operation: each is asked for, then merged.
        for operation in operations {
            let one = DecisionFilter {
                operation: Some(operation),
                ..filter.clone()
            };
            actions.extend(self.decisions(&one).await?);
        }
        actions.sort_by_key(|d| std::cmp::Reverse(d.id));
        actions.truncate(filter.limit as usize);
        Ok(actions)
    }

    /// Sets the mock's synthetic demand for the set (`None` removes it).
    pub async fn set_demand(
        &self,
        name: &str,
        demand: Option<Demand>,
        actor: &str,
    ) -> Result<ScaleSet> {
        let started = self.now();
        let Some(sim) = self.ctx.backend.simulation() else {
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
            .ctx
            .modify_set(name, actor, |current| {
                let mut next = current.clone();
                next.spec.demand.clone_from(&demand);
                Ok(next)
            })
            .await?;
        sim.set_demand(name, demand.clone())
            .await
            .map_err(Error::backend("set the synthetic demand"))?;
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
    pub(crate) async fn push_demand(&self, set: &ScaleSet) -> Result<()> {
        if let Some(sim) = self.ctx.backend.simulation() {
            sim.set_demand(set.name(), set.spec.demand.clone())
                .await
                .map_err(Error::backend("set the synthetic demand"))?;
        }
        Ok(())
    }

    /// A metrics query: the set's aggregates, or one instance's samples.
    pub async fn metrics(&self, name: &str, query: &MetricsQuery) -> Result<MetricsAnswer> {
        self.ctx.read_set(name).await?;
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
        let interval = self.ctx.config.metrics.interval.as_secs().max(1) as i64;
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
            let kept = self.metrics.instance_series(instance, &metrics, from, to);
            kept.into_iter()
                .map(|s| Series {
                    points: flotilla_domain::metrics::rebucket(&s.points, from, to, step_d),
                    ..s
                })
                .collect()
        } else {
            let mut series = Vec::with_capacity(metrics.len());
            for metric in metrics {
                let points: Vec<Point> = self
                    .metrics
                    .set_points(self.ctx.store.as_ref(), name, metric, from, to, step_d)
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
    pub fn collector_stats(&self) -> CollectorStats {
        self.metrics.stats()
    }

    /// Appends the collected metrics' Prometheus exposition (per instance too with
    /// `--metrics-per-instance`).
    pub fn render_collected_metrics(&self, out: &mut String) {
        self.metrics
            .render_prometheus(out, self.ctx.config.metrics.per_instance);
    }

    /// Runs one collector tick now (tests and benchmarks).
    pub async fn collect_metrics_now(&self) -> Result<()> {
        self.collector.collect().await.map(drop)
    }
}
