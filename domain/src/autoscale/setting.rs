//! The autoscale setting of a scale set (`PUT /scale-sets/{name}/autoscale`): profiles with
//! capacity bounds, metric rules and/or target tracking, schedules, notifications — its
//! validation (a message per field, nothing saved on error) and the warnings the editor
//! shows before saving (rules that would flap, cooldowns shorter than the boot time,
//! overlapping schedules), computed with the projection the engine uses.

use serde::{Deserialize, Serialize};

use super::forecast::ModelChoice;
use super::{ActionType, Bounds, Direction, Operator, ScaleRule, Statistic, project};
use crate::metrics::Metric;
use crate::scale_set::MAX_CAPACITY;
use crate::schedule::{self, FixedDate, Recurrence, When};
use crate::secret::{REDACTED, is_shown_url, shown_url};
use crate::validation::ValidationErrors;

pub const MAX_PROFILES: usize = 20;
pub const MAX_RULES: usize = 10;
pub const MAX_WEBHOOKS: usize = 10;
/// The longest rule window (Azure's 12 hours).
pub const MAX_WINDOW_SECONDS: u32 = 43_200;
/// The longest cooldown (Azure's one week).
pub const MAX_COOLDOWN_SECONDS: u32 = 604_800;
/// What target tracking with `size_from_load` reads as the load: the mock's demand, else
/// the requests answered and not.
pub const LOAD_METRICS: [Metric; 3] = [
    Metric::DemandRequestsPerSecond,
    Metric::RequestsPerSecond,
    Metric::ErrorsPerSecond,
];

/// The autoscale setting of one scale set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoscaleSetting {
    pub enabled: bool,
    pub profiles: Vec<Profile>,
    /// Metrics of instances running for less than this are ignored (GCP's initialization
    /// period; HPA's CPU initialization period).
    #[serde(default = "sixty")]
    pub initialization_seconds: u32,
    #[serde(default)]
    pub notifications: Notifications,
}

fn sixty() -> u32 {
    60
}

/// One profile: capacity bounds, how to scale within them, and when it applies (neither
/// `recurrence` nor `fixed_date`: the default profile). A profile without rules and
/// without target tracking holds its default capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub name: String,
    pub capacity: Bounds,
    #[serde(default)]
    pub rules: Vec<ScaleRule>,
    #[serde(default)]
    pub target_tracking: Option<TargetTracking>,
    /// Scale out ahead of the load its history forecasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<Predictive>,
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    #[serde(default)]
    pub fixed_date: Option<FixedDate>,
}

impl Profile {
    pub fn when(&self) -> When<'_> {
        match (&self.fixed_date, &self.recurrence) {
            (Some(f), _) => When::FixedDate(f),
            (None, Some(r)) => When::Recurrence(r),
            (None, None) => When::Default,
        }
    }
}

/// Target tracking with the Kubernetes HPA algorithm: desired = ⌈current × value / target⌉.
/// For totals (requests, bytes) the value is per instance: the scale set's total divided by
/// the instances counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetTracking {
    pub metric: String,
    pub target: f64,
    /// No change while |value / target − 1| is within it (HPA's 0.1).
    #[serde(default = "tolerance")]
    pub tolerance: f64,
    /// The value is the metric's average over this window.
    #[serde(default = "sixty")]
    pub window_seconds: u32,
    #[serde(default = "Behavior::scale_up")]
    pub scale_up: Behavior,
    #[serde(default = "Behavior::scale_down")]
    pub scale_down: Behavior,
    /// Only ever scale out (AWS's `DisableScaleIn`).
    #[serde(default)]
    pub disable_scale_in: bool,
    /// For CPU or memory: while the metric is saturated (≥ 95 %) it no longer says how much
    /// is missing, so size the scale-out from the load instead — the set's demand (the
    /// mock's) or its requests plus errors per second, over the load one instance carried
    /// per point of the metric when last measured unsaturated. Off: the HPA's arithmetic.
    #[serde(default)]
    pub size_from_load: bool,
}

fn tolerance() -> f64 {
    0.1
}

/// Predictive autoscale (AWS's predictive scaling, with the models of [`super::forecast`]):
/// the set's load — `metric`'s total over the set — is forecast from its own history, and
/// the capacity that carries the peak forecast within the lead at `target` per instance
/// (⌈forecast / target⌉) becomes the profile's floor. It never scales in: the forecast only
/// keeps rules and target tracking from going below it, and scale-in is theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Predictive {
    /// A per-instance metric (its total over the instances reporting it) or a set total.
    pub metric: String,
    /// The metric's value per instance to plan for (`cpu_percent` 60: each instance at
    /// 60 %).
    pub target: f64,
    pub mode: PredictiveMode,
    /// The load's period (default a day); at least one is needed before anything is forecast.
    #[serde(default = "a_day")]
    pub season_seconds: u32,
    #[serde(default)]
    pub model: ModelChoice,
    /// How far ahead of the forecast the capacity is raised; left out: the 90th percentile
    /// of the set's measured boot times (creation → healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_seconds: Option<u32>,
    /// The forecast is acted on only while its model's MAPE over the last season is at
    /// most this (percent; not scored yet counts as within): a load that stopped repeating
    /// stops raising the floor.
    #[serde(default = "fifty")]
    pub max_mape_percent: f64,
}

fn a_day() -> u32 {
    86_400
}

fn fifty() -> f64 {
    50.0
}

/// AWS's predictive scaling modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PredictiveMode {
    /// Forecasts are recorded in each decision and charted; nothing is acted on.
    ForecastOnly,
    /// The forecast capacity is the profile's floor.
    ForecastAndScale,
}

/// The shortest season a predictive setting may have.
pub const MIN_SEASON_SECONDS: u32 = 60;
/// The longest (a week).
pub const MAX_SEASON_SECONDS: u32 = 604_800;
/// The longest lead.
pub const MAX_LEAD_SECONDS: u32 = 3_600;

impl Predictive {
    /// The metric read (`None` when it is not one a load can be made of: latencies and the
    /// set's own counts are not).
    pub fn load_metric(&self) -> Option<Metric> {
        Metric::parse(&self.metric).filter(|m| {
            Metric::PER_INSTANCE.contains(m)
                || matches!(
                    m,
                    Metric::RequestsPerSecond
                        | Metric::ErrorsPerSecond
                        | Metric::ActiveConnections
                        | Metric::DemandRequestsPerSecond
                )
        })
    }

    fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.load_metric().is_none() {
            errors.push(
                "metric",
                format!(
                    "{:?} cannot be forecast as a load: use a per-instance metric (cpu_percent, memory_percent, network or disk bytes) or a set total (requests_per_second, errors_per_second, active_connections, demand_requests_per_second)",
                    self.metric
                ),
            );
        }
        let percent = matches!(
            Metric::parse(&self.metric),
            Some(Metric::CpuPercent | Metric::MemoryPercent)
        );
        if !(self.target.is_finite() && self.target > 0.0) || (percent && self.target > 100.0) {
            errors.push(
                "target",
                if percent {
                    "must be a percentage above 0 and at most 100"
                } else {
                    "must be a number above 0"
                },
            );
        }
        if !(self.max_mape_percent.is_finite() && self.max_mape_percent > 0.0) {
            errors.push("max_mape_percent", "must be a number above 0");
        }
        errors.range(
            "season_seconds",
            self.season_seconds,
            MIN_SEASON_SECONDS,
            MAX_SEASON_SECONDS,
        );
        if let Some(lead) = self.lead_seconds {
            errors.range("lead_seconds", lead, 0, MAX_LEAD_SECONDS);
            if lead >= self.season_seconds {
                errors.push(
                    "lead_seconds",
                    format!(
                        "must be shorter than the season ({} s)",
                        self.season_seconds
                    ),
                );
            }
        }
        errors
    }
}

/// HPA's `behavior.scaleUp` / `scaleDown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Behavior {
    pub stabilization_window_seconds: u32,
    pub policies: Vec<RatePolicy>,
    #[serde(default)]
    pub select_policy: SelectPolicy,
}

impl Behavior {
    /// HPA's default: no stabilization, at most max(100 %, 4 instances) per 15 s.
    pub fn scale_up() -> Behavior {
        Behavior {
            stabilization_window_seconds: 0,
            policies: vec![
                RatePolicy {
                    kind: RateKind::Instances,
                    value: 4,
                    period_seconds: 15,
                },
                RatePolicy {
                    kind: RateKind::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ],
            select_policy: SelectPolicy::Max,
        }
    }

    /// HPA's default: the highest recommendation of the last 300 s, 100 % per 15 s.
    pub fn scale_down() -> Behavior {
        Behavior {
            stabilization_window_seconds: 300,
            policies: vec![RatePolicy {
                kind: RateKind::Percent,
                value: 100,
                period_seconds: 15,
            }],
            select_policy: SelectPolicy::Max,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatePolicy {
    #[serde(rename = "type")]
    pub kind: RateKind,
    pub value: u32,
    pub period_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// At most `value` instances per period (HPA's `Pods`).
    Instances,
    /// At most `value` % of the count at the period's start.
    Percent,
}

/// Which policy wins when several allow different changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    #[default]
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// Never scale in this direction.
    Disabled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notifications {
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// A webhook called on every scale action, signed with HMAC-SHA256 of the body under
/// `secret` (header `X-Flotilla-Signature: sha256=<hex>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The problems of a list of webhooks, each under `field` (`field[i].url`, …).
pub fn validate_webhooks(hooks: &[Webhook], field: &str) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    if hooks.len() > MAX_WEBHOOKS {
        errors.push(field, format!("at most {MAX_WEBHOOKS} webhooks"));
    }
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(message) = check_url(&hook.url) {
            errors.push(format!("{field}[{i}].url"), message);
        }
        if hook.secret.as_deref().is_some_and(str::is_empty) {
            errors.push(
                format!("{field}[{i}].secret"),
                "must not be empty when given",
            );
        }
    }
    errors
}

/// The webhooks as reads show them: secrets replaced by [`REDACTED`], URLs by their shown
/// form (scheme and host).
pub fn redact_webhooks(hooks: &mut [Webhook]) {
    for hook in hooks {
        hook.url = shown_url(&hook.url);
        if hook.secret.is_some() {
            hook.secret = Some(REDACTED.into());
        }
    }
}

/// Puts back what `stored` holds where `hooks` send what reads show: a URL in its shown
/// form becomes the stored URL it shows (the webhook at the same position first, else the
/// first that shows so), and a [`REDACTED`] secret that webhook's secret — so webhooks
/// read, edited and saved keep their URLs and secrets.
pub fn keep_webhook_secrets(hooks: &mut [Webhook], stored: &[Webhook]) {
    for (i, hook) in hooks.iter_mut().enumerate() {
        let shows = |h: &&Webhook| {
            if is_shown_url(&hook.url) {
                shown_url(&h.url) == hook.url
            } else {
                h.url == hook.url
            }
        };
        let kept = stored
            .get(i)
            .filter(shows)
            .or_else(|| stored.iter().find(shows));
        if is_shown_url(&hook.url)
            && let Some(kept) = kept
        {
            hook.url = kept.url.clone();
        }
        if hook.secret.as_deref() == Some(REDACTED) {
            hook.secret = kept.and_then(|h| h.secret.clone());
        }
    }
}

/// What the warnings are measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The set's measured boot time (creation → healthy, median).
    pub boot_seconds: Option<u32>,
    /// How often the metrics collector samples (`--metrics-interval`).
    pub metrics_interval_seconds: u32,
}

/// A problem that does not stop the setting from being saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warning {
    pub field: String,
    pub message: String,
}

impl AutoscaleSetting {
    /// Every problem with the setting, a message per field.
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.profiles.is_empty() || self.profiles.len() > MAX_PROFILES {
            errors.push(
                "profiles",
                format!(
                    "must hold 1 to {MAX_PROFILES} profiles, got {}",
                    self.profiles.len()
                ),
            );
        }
        for (i, profile) in self.profiles.iter().enumerate() {
            errors.nest(&format!("profiles[{i}]"), profile.validate());
            if self.profiles[..i].iter().any(|p| p.name == profile.name) {
                errors.push(
                    format!("profiles[{i}].name"),
                    format!("{:?} is used by another profile", profile.name),
                );
            }
        }
        let defaults: Vec<usize> = self
            .profiles
            .iter()
            .enumerate()
            .filter(|(_, p)| p.when() == When::Default)
            .map(|(i, _)| i)
            .collect();
        if !self.profiles.is_empty() && defaults.is_empty() {
            errors.push(
                "profiles",
                "one profile must be the default (neither recurrence nor fixed_date): it applies when no schedule does",
            );
        }
        for i in defaults.iter().skip(1) {
            errors.push(
                format!("profiles[{i}]"),
                "only one profile may be the default; give this one a recurrence or a fixed_date",
            );
        }
        let whens = self.whens();
        for (a, b) in schedule::overlapping_fixed_dates(&whens) {
            errors.push(
                format!("profiles[{b}].fixed_date"),
                format!(
                    "overlaps the fixed date of profile {:?}",
                    self.profiles[a].name
                ),
            );
        }
        errors.range(
            "initialization_seconds",
            self.initialization_seconds,
            0,
            3600,
        );
        errors.nest(
            "notifications",
            validate_webhooks(&self.notifications.webhooks, "webhooks"),
        );
        errors
    }

    /// The metrics the setting reads, with the longest window each needs (seconds).
    pub fn metric_windows(&self) -> std::collections::BTreeMap<Metric, u32> {
        let mut windows = std::collections::BTreeMap::new();
        for profile in &self.profiles {
            let rules = profile
                .rules
                .iter()
                .map(|r| (r.metric.as_str(), r.time_window_seconds));
            let tracking = profile
                .target_tracking
                .iter()
                .map(|t| (t.metric.as_str(), t.window_seconds));
            let load = profile
                .target_tracking
                .iter()
                .filter(|t| t.size_from_load)
                .flat_map(|t| LOAD_METRICS.map(|m| (m.as_str(), t.window_seconds)));
            for (name, window) in rules.chain(tracking).chain(load) {
                if let Some(metric) = Metric::parse(name) {
                    let w = windows.entry(metric).or_insert(0);
                    *w = (*w).max(window);
                }
            }
        }
        windows
    }

    pub fn whens(&self) -> Vec<When<'_>> {
        self.profiles.iter().map(Profile::when).collect()
    }

    /// The setting as reads show it: webhook secrets replaced by [`REDACTED`], webhook URLs
    /// by their shown form (scheme and host).
    pub fn redacted(mut self) -> Self {
        redact_webhooks(&mut self.notifications.webhooks);
        self
    }

    /// Puts back the URLs and secrets of `previous`'s webhooks where this setting sends
    /// what reads show ([`keep_webhook_secrets`]).
    pub fn keep_secrets(&mut self, previous: Option<&AutoscaleSetting>) {
        let stored = previous.map_or(&[][..], |p| &p.notifications.webhooks[..]);
        keep_webhook_secrets(&mut self.notifications.webhooks, stored);
    }

    /// What the editor warns about: rules that would flap, cooldowns shorter than the
    /// measured boot time, windows and grains shorter than two metric collection intervals
    /// (they often hold no sample, so the rule seldom acts), overlapping recurring
    /// schedules, scale-out rules without a scale-in rule.
    pub fn warnings(&self, facts: Facts) -> Vec<Warning> {
        let mut warnings = Vec::new();
        for (i, profile) in self.profiles.iter().enumerate() {
            profile.warnings(&format!("profiles[{i}]"), facts, &mut warnings);
        }
        let whens = self.whens();
        for (a, b) in schedule::overlapping_recurrences(&whens) {
            warnings.push(Warning {
                field: format!("profiles[{b}].recurrence"),
                message: format!(
                    "overlaps the recurrence of profile {:?}: the one that started last applies",
                    self.profiles[a].name
                ),
            });
        }
        warnings
    }
}

fn check_url(url: &str) -> Result<(), String> {
    crate::secret::WebhookUrl::parse(url).map(drop)
}

impl Profile {
    fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.name.trim().is_empty() || self.name.len() > 64 {
            errors.push("name", "must be 1 to 64 characters");
        }
        let b = self.capacity;
        errors.range("capacity.maximum", b.maximum, 0, MAX_CAPACITY);
        if b.minimum > b.maximum {
            errors.push(
                "capacity.minimum",
                format!(
                    "must not exceed the maximum ({} > {})",
                    b.minimum, b.maximum
                ),
            );
        } else if !(b.minimum..=b.maximum).contains(&b.default) {
            errors.push(
                "capacity.default",
                format!(
                    "must be between the minimum and the maximum ({}–{}), got {}",
                    b.minimum, b.maximum, b.default
                ),
            );
        }
        if self.rules.len() > MAX_RULES {
            errors.push("rules", format!("at most {MAX_RULES} rules per profile"));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            errors.nest(&format!("rules[{i}]"), validate_rule(rule, b));
        }
        if let Some(t) = &self.target_tracking {
            errors.nest("target_tracking", t.validate());
        }
        if let Some(p) = &self.predictive {
            errors.nest("predictive", p.validate());
        }
        if self.recurrence.is_some() && self.fixed_date.is_some() {
            errors.push(
                "fixed_date",
                "a profile has a recurrence or a fixed date, not both",
            );
        }
        if let Some(r) = &self.recurrence {
            errors.nest("recurrence", r.validate());
        }
        if let Some(f) = &self.fixed_date {
            errors.nest("fixed_date", f.validate());
        }
        errors
    }

    fn warnings(&self, field: &str, facts: Facts, out: &mut Vec<Warning>) {
        let shortest = 2 * facts.metrics_interval_seconds;
        let mut too_short = |name: String, what: &str, seconds: u32| {
            if seconds < shortest {
                out.push(Warning {
                    field: name,
                    message: format!(
                        "{what} of {seconds} s is shorter than two metric collection intervals (2 × {} s): it often holds no sample, so the rule seldom acts",
                        facts.metrics_interval_seconds
                    ),
                });
            }
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("{field}.rules[{i}]");
            too_short(
                format!("{at}.time_window_seconds"),
                "a window",
                rule.time_window_seconds,
            );
            too_short(
                format!("{at}.time_grain_seconds"),
                "a time grain",
                rule.time_grain_seconds,
            );
        }
        if let Some(t) = &self.target_tracking {
            too_short(
                format!("{field}.target_tracking.window_seconds"),
                "a window",
                t.window_seconds,
            );
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(boot) = facts.boot_seconds
                && rule.direction == Direction::Increase
                && rule.cooldown_seconds < boot
            {
                out.push(Warning {
                    field: format!("{field}.rules[{i}].cooldown_seconds"),
                    message: format!(
                        "{} s is shorter than the measured boot time ({boot} s): the rule may fire again before the new instances take load",
                        rule.cooldown_seconds
                    ),
                });
            }
            if rule.direction != Direction::Decrease || !is_average(rule) {
                continue;
            }
            for (j, out_rule) in self.rules.iter().enumerate() {
                if out_rule.direction != Direction::Increase
                    || out_rule.metric != rule.metric
                    || !is_average(out_rule)
                {
                    continue;
                }
                if let Some(count) = flapping_count(rule, out_rule, self.capacity) {
                    out.push(Warning {
                        field: format!("{field}.rules[{i}]"),
                        message: format!(
                            "may flap with rules[{j}]: at {count} instances a value just past the scale-in threshold ({}) is {:.1} after scaling in, which fires the scale-out rule ({} {}); the engine will then refuse the scale-in — widen the gap between the thresholds",
                            rule.threshold,
                            project(rule.threshold, count, super::apply(rule, count).max(1)),
                            operator_symbol(out_rule.operator),
                            out_rule.threshold
                        ),
                    });
                    break;
                }
            }
        }
        let increases = self
            .rules
            .iter()
            .any(|r| r.direction == Direction::Increase);
        let decreases = self
            .rules
            .iter()
            .any(|r| r.direction == Direction::Decrease);
        if let Some(p) = &self.predictive
            && p.mode == PredictiveMode::ForecastAndScale
            && !decreases
            && self
                .target_tracking
                .as_ref()
                .is_none_or(|t| t.disable_scale_in)
        {
            out.push(Warning {
                field: format!("{field}.predictive"),
                message: "nothing scales this profile in: the forecast only ever raises the capacity; add a scale-in rule or target tracking".into(),
            });
        }
        if increases && !decreases && self.target_tracking.is_none() {
            out.push(Warning {
                field: format!("{field}.rules"),
                message: "there is no scale-in rule: the count will only ever grow".into(),
            });
        }
    }
}

fn is_average(rule: &ScaleRule) -> bool {
    matches!(rule.statistic, Statistic::Average)
}

fn operator_symbol(op: Operator) -> &'static str {
    match op {
        Operator::GreaterThan => ">",
        Operator::GreaterThanOrEqual => "≥",
        Operator::LessThan => "<",
        Operator::LessThanOrEqual => "≤",
        Operator::Equals => "=",
        Operator::NotEquals => "≠",
    }
}

/// The smallest count within the bounds at which a value just at the scale-in rule's
/// threshold, projected onto the count the scale-in leads to, fires the scale-out rule.
fn flapping_count(scale_in: &ScaleRule, scale_out: &ScaleRule, bounds: Bounds) -> Option<u32> {
    (bounds.minimum.max(1) + 1..=bounds.maximum.min(1000)).find(|&count| {
        let to = super::apply(scale_in, count).max(bounds.minimum).max(1);
        to < count
            && scale_out
                .operator
                .holds(project(scale_in.threshold, count, to), scale_out.threshold)
    })
}

fn validate_rule(rule: &ScaleRule, bounds: Bounds) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    if Metric::parse(&rule.metric).is_none() {
        errors.push(
            "metric",
            format!(
                "unknown metric {:?}; known: {}",
                rule.metric,
                Metric::names()
            ),
        );
    }
    errors.range(
        "time_grain_seconds",
        rule.time_grain_seconds,
        1,
        MAX_WINDOW_SECONDS,
    );
    if rule.time_window_seconds < rule.time_grain_seconds.max(1) {
        errors.push(
            "time_window_seconds",
            format!(
                "must be at least the time grain ({} s), got {}",
                rule.time_grain_seconds, rule.time_window_seconds
            ),
        );
    } else {
        errors.range(
            "time_window_seconds",
            rule.time_window_seconds,
            1,
            MAX_WINDOW_SECONDS,
        );
    }
    if !rule.threshold.is_finite() {
        errors.push("threshold", "must be a finite number");
    }
    match rule.action {
        ActionType::ChangeCount => errors.range("value", rule.value, 1, MAX_CAPACITY),
        ActionType::PercentChangeCount => errors.range("value", rule.value, 1, 1000),
        ActionType::ExactCount => {
            if !(bounds.minimum..=bounds.maximum).contains(&rule.value) {
                errors.push(
                    "value",
                    format!(
                        "an exact count must be within the profile's bounds ({}–{}), got {}",
                        bounds.minimum, bounds.maximum, rule.value
                    ),
                );
            }
        }
    }
    errors.range(
        "cooldown_seconds",
        rule.cooldown_seconds,
        0,
        MAX_COOLDOWN_SECONDS,
    );
    errors
}

impl TargetTracking {
    fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if Metric::parse(&self.metric).is_none() {
            errors.push(
                "metric",
                format!(
                    "unknown metric {:?}; known: {}",
                    self.metric,
                    Metric::names()
                ),
            );
        }
        if !(self.target.is_finite() && self.target > 0.0) {
            errors.push("target", "must be a number above 0");
        }
        if !(0.0..1.0).contains(&self.tolerance) {
            errors.push("tolerance", "must be at least 0 and below 1");
        }
        errors.range("window_seconds", self.window_seconds, 1, MAX_WINDOW_SECONDS);
        for (name, behavior) in [
            ("scale_up", &self.scale_up),
            ("scale_down", &self.scale_down),
        ] {
            errors.range(
                format!("{name}.stabilization_window_seconds"),
                behavior.stabilization_window_seconds,
                0,
                3600,
            );
            if behavior.policies.is_empty() && behavior.select_policy != SelectPolicy::Disabled {
                errors.push(
                    format!("{name}.policies"),
                    "give at least one policy, or select_policy \"disabled\"",
                );
            }
            for (i, p) in behavior.policies.iter().enumerate() {
                errors.range(format!("{name}.policies[{i}].value"), p.value, 1, 100_000);
                errors.range(
                    format!("{name}.policies[{i}].period_seconds"),
                    p.period_seconds,
                    1,
                    1800,
                );
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn setting(json: &str) -> AutoscaleSetting {
        serde_json::from_str(json).unwrap()
    }

    const CPU_RULES: &str = r#"{"enabled":true,"profiles":[{"name":"default","capacity":{"minimum":1,"maximum":10,"default":2},
        "rules":[{"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":300,
          "time_aggregation":"average","operator":"greater_than","threshold":70,"direction":"increase","type":"change_count","value":1,"cooldown_seconds":300},
          {"metric":"cpu_percent","statistic":"average","time_grain_seconds":60,"time_window_seconds":600,
          "time_aggregation":"average","operator":"less_than","threshold":30,"direction":"decrease","type":"change_count","value":1,"cooldown_seconds":300}],
        "target_tracking":null,"recurrence":null,"fixed_date":null}]}"#;

    fn facts(boot_seconds: Option<u32>) -> Facts {
        Facts {
            boot_seconds,
            metrics_interval_seconds: 10,
        }
    }

    #[test]
    fn windows_and_grains_shorter_than_two_collections_warn() {
        let mut s = setting(CPU_RULES);
        s.profiles[0].rules[0].time_window_seconds = 5;
        s.profiles[0].rules[0].time_grain_seconds = 5;
        s.profiles[0].rules[1].time_grain_seconds = 10;
        let w = s.warnings(facts(None));
        let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "profiles[0].rules[0].time_window_seconds",
                "profiles[0].rules[0].time_grain_seconds",
                "profiles[0].rules[1].time_grain_seconds",
            ]
        );
        assert!(w[0].message.contains("2 × 10 s"), "{}", w[0].message);
        // At a 1 s collection interval the same rules are fine.
        let fast = Facts {
            boot_seconds: None,
            metrics_interval_seconds: 1,
        };
        assert!(s.warnings(fast).is_empty(), "{:?}", s.warnings(fast));
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.0.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn the_design_example_is_valid_and_has_defaults() {
        let s = setting(CPU_RULES);
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(s.initialization_seconds, 60);
        assert!(
            s.warnings(facts(Some(60))).is_empty(),
            "{:?}",
            s.warnings(facts(Some(60)))
        );
    }

    #[test]
    fn bad_input_names_each_field() {
        let mut s = setting(CPU_RULES);
        s.profiles[0].capacity = Bounds {
            minimum: 5,
            maximum: 3,
            default: 4,
        };
        s.profiles[0].rules[0].metric = "cpu".into();
        s.profiles[0].rules[0].time_window_seconds = 0;
        s.profiles[0].rules[1].cooldown_seconds = MAX_COOLDOWN_SECONDS + 1;
        s.notifications.webhooks.push(Webhook {
            url: "ftp://example.com/hook".into(),
            secret: None,
        });
        let errors = s.validate();
        assert_eq!(
            fields(&errors),
            [
                "profiles[0].capacity.minimum",
                "profiles[0].rules[0].metric",
                "profiles[0].rules[0].time_window_seconds",
                "profiles[0].rules[1].cooldown_seconds",
                "notifications.webhooks[0].url",
            ]
        );
        let mut s = setting(CPU_RULES);
        s.profiles[0].capacity.default = 11;
        assert_eq!(fields(&s.validate()), ["profiles[0].capacity.default"]);
        s.profiles.clear();
        assert_eq!(fields(&s.validate()), ["profiles"]);
    }

    #[test]
    fn bad_predictive_settings_name_each_field_and_a_lone_forecast_warns() {
        let predictive = |json: &str| -> Predictive { serde_json::from_str(json).unwrap() };
        let mut s = setting(CPU_RULES);
        s.profiles[0].predictive = Some(predictive(
            r#"{"metric":"latency_p50_ms","target":0,"mode":"forecast_and_scale",
                "season_seconds":30,"lead_seconds":40,"max_mape_percent":-1}"#,
        ));
        assert_eq!(
            fields(&s.validate()),
            [
                "profiles[0].predictive.metric",
                "profiles[0].predictive.target",
                "profiles[0].predictive.max_mape_percent",
                "profiles[0].predictive.season_seconds",
                "profiles[0].predictive.lead_seconds",
            ]
        );
        // A percentage above 100, a lead past its limit.
        s.profiles[0].predictive = Some(predictive(
            r#"{"metric":"cpu_percent","target":120,"mode":"forecast_only","lead_seconds":7200}"#,
        ));
        assert_eq!(
            fields(&s.validate()),
            [
                "profiles[0].predictive.target",
                "profiles[0].predictive.lead_seconds"
            ]
        );
        // Valid, with defaults: a day's season, auto, 50 %.
        let p = predictive(
            r#"{"metric":"requests_per_second","target":50,"mode":"forecast_and_scale"}"#,
        );
        assert_eq!(
            (
                p.season_seconds,
                p.model,
                p.max_mape_percent,
                p.lead_seconds
            ),
            (86_400, ModelChoice::Auto, 50.0, None)
        );
        s.profiles[0].predictive = Some(p);
        assert!(s.validate().is_empty());
        let facts = Facts {
            boot_seconds: None,
            metrics_interval_seconds: 10,
        };
        // With a scale-in rule: no warning; alone, it only ever grows.
        assert!(
            s.warnings(facts)
                .iter()
                .all(|w| !w.field.ends_with("predictive"))
        );
        s.profiles[0].rules.clear();
        let warnings = s.warnings(facts);
        assert!(
            warnings.iter().any(|w| w.field == "profiles[0].predictive"
                && w.message.contains("nothing scales this profile in")),
            "{warnings:?}"
        );
    }

    #[test]
    fn exactly_one_default_profile() {
        let mut s = setting(CPU_RULES);
        let mut second = s.profiles[0].clone();
        second.name = "other".into();
        s.profiles.push(second);
        assert_eq!(fields(&s.validate()), ["profiles[1]"]);
        s.profiles[1].name = "default".into();
        assert!(fields(&s.validate()).contains(&"profiles[1].name"));
    }

    #[test]
    fn narrow_thresholds_warn_about_flapping() {
        let mut s = setting(CPU_RULES);
        s.profiles[0].rules[1].threshold = 60.0;
        let warnings = s.warnings(facts(None));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].field, "profiles[0].rules[1]");
        assert!(warnings[0].message.contains("flap"));
        // At 30 % a scale-in from 2 to 1 projects 60 %: no flapping below 70 %.
        s.profiles[0].rules[1].threshold = 30.0;
        assert!(s.warnings(facts(None)).is_empty());
    }

    #[test]
    fn cooldown_shorter_than_boot_and_missing_scale_in_warn() {
        let mut s = setting(CPU_RULES);
        let w = s.warnings(facts(Some(400)));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].field, "profiles[0].rules[0].cooldown_seconds");
        s.profiles[0].rules.pop();
        assert!(
            s.warnings(facts(None))
                .iter()
                .any(|w| w.field == "profiles[0].rules")
        );
    }

    #[test]
    fn secrets_are_redacted_and_kept() {
        let mut s = setting(CPU_RULES);
        s.notifications.webhooks.push(Webhook {
            url: "https://hooks.example/a".into(),
            secret: Some("s3cret".into()),
        });
        s.notifications.webhooks.push(Webhook {
            url: "https://hooks.example/b?token=t0k3n".into(),
            secret: None,
        });
        let shown = s.clone().redacted();
        let hooks = &shown.notifications.webhooks;
        assert_eq!(hooks[0].secret.as_deref(), Some(REDACTED));
        assert_eq!(hooks[0].url, "https://hooks.example/(redacted)");
        assert_eq!(hooks[1].url, "https://hooks.example/(redacted)");
        assert!(!serde_json::to_string(&shown).unwrap().contains("t0k3n"));
        let mut edited = shown.clone();
        edited.keep_secrets(Some(&s));
        assert_eq!(
            edited, s,
            "each shown webhook keeps its own stored URL and secret"
        );
        // Reordered, each still finds its own (by position first, then by what it shows).
        let mut swapped = shown.clone();
        swapped.notifications.webhooks.swap(0, 1);
        swapped.notifications.webhooks[1].url = "https://hooks.example/a".into();
        swapped.keep_secrets(Some(&s));
        assert_eq!(
            swapped.notifications.webhooks[1],
            s.notifications.webhooks[0]
        );
        // A new URL replaces the stored one; a redacted secret cannot come from nowhere.
        let mut replaced = shown;
        replaced.notifications.webhooks[0].url = "https://other.example/new".into();
        replaced.keep_secrets(Some(&s));
        assert_eq!(replaced.notifications.webhooks[0].secret, None);
    }
}
