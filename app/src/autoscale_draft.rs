//! The autoscale editor's plain logic: the setting as typed ([`SettingDraft`]) — numbers
//! kept as the person types them, so a half-typed value survives — and
//! [`SettingDraft::check`], which turns it into the [`AutoscaleSetting`] that will be sent
//! and every problem with it: what does not parse, then what `AutoscaleSetting::validate`
//! (the server's own code) refuses. Problems carry the server's dotted field paths
//! (`profiles[0].rules[1].threshold`), so the browser's and the server's messages land next
//! to the same inputs.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use flotilla_domain::autoscale::forecast::ModelChoice;
use flotilla_domain::autoscale::setting::{
    AutoscaleSetting, Behavior, Notifications, Predictive, PredictiveMode, Profile, TargetTracking,
    Webhook,
};
use flotilla_domain::autoscale::{
    ActionType, Bounds, Direction, Operator, ScaleRule, Statistic, TimeAggregation,
};
use flotilla_domain::schedule::{FixedDate, Recurrence, Weekday};
use flotilla_domain::{FieldError, TypedInput};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::autoscale_templates;
use crate::format;

/// The days of the week in order, as the schedule's checkboxes list them.
pub const WEEKDAYS: [Weekday; 7] = Weekday::ALL;

pub const STATISTICS: [Statistic; 5] = [
    Statistic::Average,
    Statistic::Min,
    Statistic::Max,
    Statistic::Sum,
    Statistic::Count,
];

pub const AGGREGATIONS: [TimeAggregation; 6] = [
    TimeAggregation::Average,
    TimeAggregation::Minimum,
    TimeAggregation::Maximum,
    TimeAggregation::Total,
    TimeAggregation::Count,
    TimeAggregation::Last,
];

pub const OPERATORS: [Operator; 6] = [
    Operator::GreaterThan,
    Operator::GreaterThanOrEqual,
    Operator::LessThan,
    Operator::LessThanOrEqual,
    Operator::Equals,
    Operator::NotEquals,
];

pub const DIRECTIONS: [Direction; 2] = [Direction::Increase, Direction::Decrease];

pub const ACTIONS: [ActionType; 3] = [
    ActionType::ChangeCount,
    ActionType::PercentChangeCount,
    ActionType::ExactCount,
];

/// An enum's name on the wire (`greater_than`): the value of its `<option>`.
pub fn wire<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The enum named `name` on the wire.
pub fn from_wire<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.into())).ok()
}

/// When a profile applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// The default profile: when no schedule applies.
    Always,
    Recurring,
    FixedDate,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 3] = [
        ScheduleKind::Always,
        ScheduleKind::Recurring,
        ScheduleKind::FixedDate,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            ScheduleKind::Always => "none",
            ScheduleKind::Recurring => "recurring",
            ScheduleKind::FixedDate => "fixed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ScheduleKind::Always => "None (the default profile)",
            ScheduleKind::Recurring => "Recurring every week",
            ScheduleKind::FixedDate => "Fixed dates",
        }
    }

    pub fn parse(slug: &str) -> Option<ScheduleKind> {
        ScheduleKind::ALL.into_iter().find(|k| k.slug() == slug)
    }
}

/// A profile's schedule as typed; the fields of the kinds not picked are kept, so moving
/// between kinds loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDraft {
    pub kind: ScheduleKind,
    /// An IANA name (`Europe/Paris`).
    pub time_zone: String,
    pub days: [bool; 7],
    /// Hours of the starts, comma-separated (`8` or `8, 13`).
    pub hours: String,
    /// Minutes of the starts, comma-separated.
    pub minutes: String,
    /// `HH:MM`, or empty for none.
    pub end: String,
    /// `YYYY-MM-DDTHH:MM`, as `<input type="datetime-local">` writes it.
    pub start_date: String,
    pub end_date: String,
}

impl ScheduleDraft {
    fn new(kind: ScheduleKind, time_zone: &str) -> Self {
        Self {
            kind,
            time_zone: time_zone.into(),
            days: [true, true, true, true, true, false, false],
            hours: "8".into(),
            minutes: "0".into(),
            end: "18:00".into(),
            start_date: String::new(),
            end_date: String::new(),
        }
    }
}

/// One rule as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDraft {
    pub metric: String,
    pub statistic: Statistic,
    pub grain: String,
    pub window: String,
    pub aggregation: TimeAggregation,
    pub operator: Operator,
    pub threshold: String,
    pub direction: Direction,
    pub action: ActionType,
    pub value: String,
    pub cooldown: String,
}

impl RuleDraft {
    fn of(rule: &ScaleRule) -> Self {
        Self {
            metric: rule.metric.clone(),
            statistic: rule.statistic,
            grain: rule.time_grain_seconds.to_string(),
            window: rule.time_window_seconds.to_string(),
            aggregation: rule.time_aggregation,
            operator: rule.operator,
            threshold: rule.threshold.to_string(),
            direction: rule.direction,
            action: rule.action,
            value: rule.value.to_string(),
            cooldown: rule.cooldown_seconds.to_string(),
        }
    }
}

/// Target tracking as typed. The rate policies are not edited here (the JSON is the place
/// for them): they are kept as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingDraft {
    pub metric: String,
    pub target: String,
    pub tolerance: String,
    pub window: String,
    pub disable_scale_in: bool,
    pub size_from_load: bool,
    pub scale_up_window: String,
    pub scale_down_window: String,
    pub scale_up: Behavior,
    pub scale_down: Behavior,
}

impl TrackingDraft {
    fn of(t: &TargetTracking) -> Self {
        Self {
            metric: t.metric.clone(),
            target: t.target.to_string(),
            tolerance: t.tolerance.to_string(),
            window: t.window_seconds.to_string(),
            disable_scale_in: t.disable_scale_in,
            size_from_load: t.size_from_load,
            scale_up_window: t.scale_up.stabilization_window_seconds.to_string(),
            scale_down_window: t.scale_down.stabilization_window_seconds.to_string(),
            scale_up: t.scale_up.clone(),
            scale_down: t.scale_down.clone(),
        }
    }
}

/// Predictive autoscale as typed (an empty lead: the measured boot time).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveDraft {
    pub metric: String,
    pub target: String,
    pub mode: PredictiveMode,
    pub season: String,
    pub model: ModelChoice,
    pub lead: String,
    pub max_mape: String,
}

impl PredictiveDraft {
    fn of(p: &Predictive) -> Self {
        Self {
            metric: p.metric.clone(),
            target: p.target.to_string(),
            mode: p.mode,
            season: p.season_seconds.to_string(),
            model: p.model,
            lead: p.lead_seconds.map(|l| l.to_string()).unwrap_or_default(),
            max_mape: p.max_mape_percent.to_string(),
        }
    }
}

impl Default for PredictiveDraft {
    /// What the editor adds: CPU at 60 % per instance, forecast only, daily.
    fn default() -> Self {
        Self {
            metric: "cpu_percent".into(),
            target: "60".into(),
            mode: PredictiveMode::ForecastOnly,
            season: "86400".into(),
            model: ModelChoice::Auto,
            lead: String::new(),
            max_mape: "50".into(),
        }
    }
}

/// One profile as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileDraft {
    pub name: String,
    pub minimum: String,
    pub maximum: String,
    pub default: String,
    pub rules: Vec<RuleDraft>,
    pub tracking: Option<TrackingDraft>,
    pub predictive: Option<PredictiveDraft>,
    pub schedule: ScheduleDraft,
}

impl ProfileDraft {
    fn of(p: &Profile, time_zone: &str) -> Self {
        let mut schedule = ScheduleDraft::new(ScheduleKind::Always, time_zone);
        if let Some(r) = &p.recurrence {
            schedule.kind = ScheduleKind::Recurring;
            schedule.time_zone = r.time_zone.clone();
            schedule.days = WEEKDAYS.map(|d| r.days.contains(&d));
            schedule.hours = join(&r.hours);
            schedule.minutes = join(&r.minutes);
            schedule.end = r.end.map(|e| e.to_string()).unwrap_or_default();
        }
        if let Some(f) = &p.fixed_date {
            schedule.kind = ScheduleKind::FixedDate;
            schedule.time_zone = f.time_zone.clone();
            schedule.start_date = f.start.format("%Y-%m-%dT%H:%M").to_string();
            schedule.end_date = f.end.format("%Y-%m-%dT%H:%M").to_string();
        }
        Self {
            name: p.name.clone(),
            minimum: p.capacity.minimum.to_string(),
            maximum: p.capacity.maximum.to_string(),
            default: p.capacity.default.to_string(),
            rules: p.rules.iter().map(RuleDraft::of).collect(),
            tracking: p.target_tracking.as_ref().map(TrackingDraft::of),
            predictive: p.predictive.as_ref().map(PredictiveDraft::of),
            schedule,
        }
    }
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A webhook as typed; a stored secret reads `(redacted)` and is kept when sent back so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDraft {
    pub url: String,
    /// Empty: no secret.
    pub secret: String,
}

/// The whole setting as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDraft {
    pub enabled: bool,
    pub initialization: String,
    pub profiles: Vec<ProfileDraft>,
    pub webhooks: Vec<WebhookDraft>,
}

impl SettingDraft {
    /// The draft of `setting`; `time_zone` is the one a schedule added later starts with.
    pub fn of(setting: &AutoscaleSetting, time_zone: &str) -> Self {
        Self {
            enabled: setting.enabled,
            initialization: setting.initialization_seconds.to_string(),
            profiles: setting
                .profiles
                .iter()
                .map(|p| ProfileDraft::of(p, time_zone))
                .collect(),
            webhooks: setting
                .notifications
                .webhooks
                .iter()
                .map(|h| WebhookDraft {
                    url: h.url.clone(),
                    secret: h.secret.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// A new setting for a set of `capacity` instances: enabled, one default profile from 1
    /// to at least 10 instances with the current count as its default, no rules yet.
    pub fn new(capacity: u32, time_zone: &str) -> Self {
        let bounds = Bounds {
            minimum: 1,
            maximum: capacity.max(10),
            default: capacity.max(1),
        };
        let setting = AutoscaleSetting {
            enabled: true,
            profiles: vec![autoscale_templates::default_profile(bounds)],
            initialization_seconds: 60,
            notifications: Notifications::default(),
        };
        Self::of(&setting, time_zone)
    }

    /// A profile added at the end: recurring (a default profile exists already), with the
    /// bounds of the first profile and a name not used yet.
    pub fn add_profile(&mut self, time_zone: &str) {
        let mut profile = self.profiles.first().cloned().unwrap_or_else(|| {
            ProfileDraft::of(
                &autoscale_templates::default_profile(Bounds {
                    minimum: 1,
                    maximum: 10,
                    default: 1,
                }),
                time_zone,
            )
        });
        profile.rules.clear();
        profile.tracking = None;
        profile.name = self.unused_name("profile");
        profile.schedule = ScheduleDraft::new(
            if self.profiles.is_empty() {
                ScheduleKind::Always
            } else {
                ScheduleKind::Recurring
            },
            time_zone,
        );
        self.profiles.push(profile);
    }

    /// Adds the business-hours profile (Monday–Friday 08:00–18:00 in `time_zone`, a higher
    /// minimum) after the default profile, scaling as the default profile does.
    pub fn add_business_hours(&mut self, time_zone: &str) {
        let (base, _) = self.check();
        let default = base
            .profiles
            .iter()
            .find(|p| p.recurrence.is_none() && p.fixed_date.is_none())
            .cloned()
            .unwrap_or_else(|| {
                autoscale_templates::default_profile(Bounds {
                    minimum: 1,
                    maximum: 10,
                    default: 1,
                })
            });
        let mut hours = autoscale_templates::business_hours(&default, time_zone);
        hours.name = self.unused_name(&hours.name);
        self.profiles.push(ProfileDraft::of(&hours, time_zone));
    }

    /// `base`, or `base-2`, `base-3`… whichever no profile has.
    fn unused_name(&self, base: &str) -> String {
        let taken = |name: &str| self.profiles.iter().any(|p| p.name == name);
        if !taken(base) {
            return base.into();
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|name| !taken(name))
            .unwrap_or_default()
    }

    /// Applies a template to profile `index` (its numbers as typed are read first).
    pub fn apply(
        &mut self,
        index: usize,
        template: autoscale_templates::Template,
        time_zone: &str,
    ) {
        let (setting, _) = self.check();
        if let (Some(mut profile), Some(draft)) = (
            setting.profiles.get(index).cloned(),
            self.profiles.get_mut(index),
        ) {
            template.apply(&mut profile);
            let schedule = draft.schedule.clone();
            *draft = ProfileDraft::of(&profile, time_zone);
            draft.schedule = schedule;
        }
    }

    /// A new rule for profile `index`: CPU above 70 % for 5 minutes adds one.
    pub fn add_rule(&mut self, index: usize) {
        if let Some(p) = self.profiles.get_mut(index) {
            p.rules
                .push(RuleDraft::of(&autoscale_templates::cpu_rules()[0]));
        }
    }

    /// Turns profile `index`'s target tracking on (CPU at 60 %) or off.
    pub fn set_tracking(&mut self, index: usize, on: bool) {
        if let Some(p) = self.profiles.get_mut(index) {
            p.tracking = on.then(|| {
                TrackingDraft::of(&autoscale_templates::tracking(
                    flotilla_domain::metrics::Metric::CpuPercent,
                    60.0,
                ))
            });
        }
    }

    pub fn set_predictive(&mut self, index: usize, on: bool) {
        if let Some(p) = self.profiles.get_mut(index) {
            p.predictive = on.then(PredictiveDraft::default);
        }
    }

    /// The setting to send and every problem with it, the unparsable inputs first.
    pub fn check(&self) -> (AutoscaleSetting, Vec<FieldError>) {
        let mut parse = TypedInput::new();
        let profiles = self
            .profiles
            .iter()
            .enumerate()
            .map(|(i, p)| p.build(&format!("profiles[{i}]"), &mut parse))
            .collect();
        let setting = AutoscaleSetting {
            enabled: self.enabled,
            profiles,
            initialization_seconds: parse.value("initialization_seconds", &self.initialization),
            notifications: Notifications {
                webhooks: self
                    .webhooks
                    .iter()
                    .map(|h| Webhook {
                        url: h.url.trim().to_string(),
                        secret: (!h.secret.is_empty()).then(|| h.secret.clone()),
                    })
                    .collect(),
            },
        };
        let invalid = setting.validate();
        (setting, parse.finish(invalid.0))
    }
}

impl ProfileDraft {
    fn build(&self, path: &str, parse: &mut TypedInput) -> Profile {
        let capacity = Bounds {
            minimum: parse.value(&format!("{path}.capacity.minimum"), &self.minimum),
            maximum: parse.value(&format!("{path}.capacity.maximum"), &self.maximum),
            default: parse.value(&format!("{path}.capacity.default"), &self.default),
        };
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = |field: &str| format!("{path}.rules[{i}].{field}");
                ScaleRule {
                    metric: r.metric.clone(),
                    statistic: r.statistic,
                    time_grain_seconds: parse.value(&at("time_grain_seconds"), &r.grain),
                    time_window_seconds: parse.value(&at("time_window_seconds"), &r.window),
                    time_aggregation: r.aggregation,
                    operator: r.operator,
                    threshold: parse.value(&at("threshold"), &r.threshold),
                    direction: r.direction,
                    action: r.action,
                    value: parse.value(&at("value"), &r.value),
                    cooldown_seconds: parse.value(&at("cooldown_seconds"), &r.cooldown),
                }
            })
            .collect();
        let target_tracking = self.tracking.as_ref().map(|t| {
            let at = |field: &str| format!("{path}.target_tracking.{field}");
            let mut scale_up = t.scale_up.clone();
            scale_up.stabilization_window_seconds = parse.value(
                &at("scale_up.stabilization_window_seconds"),
                &t.scale_up_window,
            );
            let mut scale_down = t.scale_down.clone();
            scale_down.stabilization_window_seconds = parse.value(
                &at("scale_down.stabilization_window_seconds"),
                &t.scale_down_window,
            );
            TargetTracking {
                metric: t.metric.clone(),
                target: parse.value(&at("target"), &t.target),
                tolerance: parse.value(&at("tolerance"), &t.tolerance),
                window_seconds: parse.value(&at("window_seconds"), &t.window),
                scale_up,
                scale_down,
                disable_scale_in: t.disable_scale_in,
                size_from_load: t.size_from_load,
            }
        });
        let predictive = self.predictive.as_ref().map(|p| {
            let at = |field: &str| format!("{path}.predictive.{field}");
            Predictive {
                metric: p.metric.clone(),
                target: parse.value(&at("target"), &p.target),
                mode: p.mode,
                season_seconds: parse.value(&at("season_seconds"), &p.season),
                model: p.model,
                lead_seconds: parse.optional(&at("lead_seconds"), &p.lead),
                max_mape_percent: parse.value(&at("max_mape_percent"), &p.max_mape),
            }
        });
        let s = &self.schedule;
        let time_zone = s.time_zone.trim().to_string();
        let recurrence = (s.kind == ScheduleKind::Recurring).then(|| Recurrence {
            time_zone: time_zone.clone(),
            days: WEEKDAYS
                .into_iter()
                .zip(s.days)
                .filter(|(_, on)| *on)
                .map(|(d, _)| d)
                .collect(),
            hours: parse.list(&format!("{path}.recurrence.hours"), &s.hours),
            minutes: parse.list(&format!("{path}.recurrence.minutes"), &s.minutes),
            end: parse.time_of_day(&format!("{path}.recurrence.end"), &s.end),
        });
        let fixed_date = (s.kind == ScheduleKind::FixedDate).then(|| FixedDate {
            time_zone,
            start: parse.date_time(&format!("{path}.fixed_date.start"), &s.start_date),
            end: parse.date_time(&format!("{path}.fixed_date.end"), &s.end_date),
        });
        Profile {
            name: self.name.trim().to_string(),
            capacity,
            rules,
            target_tracking,
            predictive,
            recurrence,
            fixed_date,
        }
    }
}

/// The instant Monday 00:00 of the week holding `now` in `time_zone` (the earlier one if
/// that local time happens twice, the first after a gap if it does not happen): where the
/// weekly schedule grid starts. `None` for an unknown time zone.
pub fn week_start(now: DateTime<Utc>, time_zone: &str) -> Option<DateTime<Utc>> {
    let tz = flotilla_domain::schedule::parse_time_zone(time_zone).ok()?;
    let today = now.with_timezone(&tz).date_naive();
    let monday = today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
    let midnight = monday.and_hms_opt(0, 0, 0)?;
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Some(t.with_timezone(&Utc))
        }
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// A rule in one line: `cpu_percent average per 1 min, average over 5 min > 70 % → +1
/// (cooldown 5 min)`.
pub fn describe_rule(rule: &ScaleRule) -> String {
    let threshold = flotilla_domain::metrics::Metric::parse(&rule.metric)
        .map(|m| crate::chart::Unit::of(m).format(rule.threshold))
        .unwrap_or_else(|| rule.threshold.to_string());
    let sign = match rule.direction {
        Direction::Increase => "+",
        Direction::Decrease => "−",
    };
    let action = match rule.action {
        ActionType::ChangeCount => format!("{sign}{}", rule.value),
        ActionType::PercentChangeCount => format!("{sign}{} %", rule.value),
        ActionType::ExactCount => format!("to {}", rule.value),
    };
    format!(
        "{} {} per {}, {} over {} {} {threshold} → {action} (cooldown {})",
        rule.metric,
        wire(rule.statistic),
        format::seconds(rule.time_grain_seconds),
        wire(rule.time_aggregation),
        format::seconds(rule.time_window_seconds),
        crate::metrics_view::operator_symbol(rule.operator),
        format::seconds(rule.cooldown_seconds),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale_templates::{Template, cpu_setting};

    const BOUNDS: Bounds = Bounds {
        minimum: 1,
        maximum: 10,
        default: 2,
    };

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_setting_survives_the_round_trip() {
        let mut setting = cpu_setting(BOUNDS);
        setting.profiles.push(autoscale_templates::business_hours(
            &setting.profiles[0],
            "Europe/Paris",
        ));
        let mut tracked = setting.profiles[0].clone();
        tracked.name = "christmas".into();
        Template::RequestsPerInstance.apply(&mut tracked);
        tracked.fixed_date = Some(FixedDate {
            time_zone: "UTC".into(),
            start: "2026-12-24T18:00:00".parse().unwrap(),
            end: "2026-12-26T00:00:00".parse().unwrap(),
        });
        setting.profiles.push(tracked);
        setting.notifications.webhooks.push(Webhook {
            url: "https://hooks.example/a".into(),
            secret: Some("(redacted)".into()),
        });
        let draft = SettingDraft::of(&setting, "UTC");
        assert_eq!(draft.profiles[1].schedule.hours, "8");
        assert_eq!(draft.profiles[1].schedule.end, "18:00");
        assert_eq!(draft.profiles[2].schedule.start_date, "2026-12-24T18:00");
        let (back, errors) = draft.check();
        assert_eq!(errors, vec![]);
        assert_eq!(back, setting);
    }

    #[test]
    fn unparsable_input_is_reported_once_by_its_path() {
        let mut draft = SettingDraft::of(&cpu_setting(BOUNDS), "UTC");
        draft.profiles[0].rules[1].threshold = "sixty".into();
        draft.profiles[0].minimum = "5".into();
        draft.profiles[0].maximum = "3".into();
        draft.initialization = "".into();
        let (_, errors) = draft.check();
        assert_eq!(
            fields(&errors),
            [
                "profiles[0].rules[1].threshold",
                "initialization_seconds",
                "profiles[0].capacity.minimum",
            ]
        );
        assert_eq!(errors[0].message, "must be a number, got \"sixty\"");
        assert!(
            errors[2].message.contains("must not exceed the maximum"),
            "{}",
            errors[2].message
        );
    }

    #[test]
    fn schedules_parse_their_lists_and_times() {
        let mut draft = SettingDraft::new(3, "Europe/Paris");
        assert_eq!(draft.profiles[0].default, "3");
        draft.add_profile("Europe/Paris");
        let s = &mut draft.profiles[1].schedule;
        assert_eq!(s.kind, ScheduleKind::Recurring);
        s.hours = "8, 13".into();
        s.end = "25:00".into();
        let (setting, errors) = draft.check();
        assert_eq!(
            setting.profiles[1].recurrence.as_ref().unwrap().hours,
            [8, 13]
        );
        assert_eq!(fields(&errors), ["profiles[1].recurrence.end.hour"]);
        draft.profiles[1].schedule.hours = "8, noon".into();
        draft.profiles[1].schedule.end = "".into();
        assert_eq!(fields(&draft.check().1), ["profiles[1].recurrence.hours"]);
        draft.profiles[1].schedule.kind = ScheduleKind::FixedDate;
        draft.profiles[1].schedule.start_date = "2026-12-24T18:00".into();
        assert_eq!(fields(&draft.check().1), ["profiles[1].fixed_date.end"]);
        draft.profiles[1].schedule.kind = ScheduleKind::Always;
        assert_eq!(
            fields(&draft.check().1),
            ["profiles[1]"],
            "two default profiles"
        );
    }

    #[test]
    fn weeks_start_on_local_mondays() {
        let wednesday: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        assert_eq!(
            week_start(wednesday, "UTC"),
            Some("2026-11-23T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            week_start(wednesday, "Europe/Paris"),
            Some("2026-11-22T23:00:00Z".parse().unwrap())
        );
        // Monday 02:00 in Tokyo is still Sunday in UTC: Tokyo's week has begun.
        let sunday: DateTime<Utc> = "2026-11-29T17:00:00Z".parse().unwrap();
        assert_eq!(
            week_start(sunday, "Asia/Tokyo"),
            Some("2026-11-29T15:00:00Z".parse().unwrap())
        );
        assert_eq!(week_start(sunday, "Mars/Olympus"), None);
    }

    #[test]
    fn templates_and_business_hours() {
        let mut draft = SettingDraft::new(2, "UTC");
        draft.profiles[0].maximum = "8".into();
        draft.apply(0, Template::CpuThresholds, "UTC");
        assert_eq!(draft.profiles[0].rules.len(), 2);
        assert_eq!(draft.profiles[0].maximum, "8", "the bounds stay");
        draft.add_business_hours("America/New_York");
        let (setting, errors) = draft.check();
        assert_eq!(errors, vec![]);
        assert_eq!(setting.profiles[1].name, "business-hours");
        assert_eq!(setting.profiles[1].capacity.minimum, 3);
        assert_eq!(setting.profiles[1].rules.len(), 2);
        draft.add_business_hours("UTC");
        assert_eq!(draft.profiles[2].name, "business-hours-2");
        draft.apply(0, Template::CpuTarget, "UTC");
        let (setting, _) = draft.check();
        assert!(setting.profiles[0].rules.is_empty());
        assert_eq!(
            setting.profiles[0].target_tracking.as_ref().unwrap().target,
            60.0
        );
        draft.set_tracking(0, false);
        draft.add_rule(0);
        assert_eq!(draft.check().0.profiles[0].rules.len(), 1);
        assert_eq!(wire(Operator::GreaterThanOrEqual), "greater_than_or_equal");
        let rules = autoscale_templates::cpu_rules();
        assert_eq!(
            describe_rule(&rules[0]),
            "cpu_percent average per 1 min, average over 5 min > 70 % → +1 (cooldown 5 min)"
        );
        assert_eq!(
            describe_rule(&rules[1]),
            "cpu_percent average per 1 min, average over 10 min < 30 % → −1 (cooldown 5 min)"
        );
        assert_eq!(from_wire::<Operator>("less_than"), Some(Operator::LessThan));
        assert_eq!(from_wire::<Operator>("bigger"), None);
    }
}
