//! Ready-made autoscale settings the editor and the create wizard offer: CPU thresholds,
//! target tracking on requests per instance or on CPU, and a business-hours profile.

use flotilla_domain::autoscale::setting::{
    AutoscaleSetting, Behavior, Notifications, Profile, TargetTracking,
};
use flotilla_domain::autoscale::{
    ActionType, Bounds, Direction, Operator, ScaleRule, Statistic, TimeAggregation,
};
use flotilla_domain::metrics::Metric;
use flotilla_domain::schedule::{Recurrence, TimeOfDay, Weekday};

/// The editor's templates, each with its button label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// CPU > 70 % for 5 min → +1; CPU < 30 % for 10 min → −1.
    CpuThresholds,
    /// Target tracking: 50 requests per second per instance.
    RequestsPerInstance,
    /// Target tracking: CPU at 60 %.
    CpuTarget,
}

impl Template {
    pub const ALL: [Template; 3] = [
        Template::CpuThresholds,
        Template::RequestsPerInstance,
        Template::CpuTarget,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Template::CpuThresholds => "CPU > 70 % for 5 min → +1; CPU < 30 % for 10 min → −1",
            Template::RequestsPerInstance => "Requests/s per instance (target 50)",
            Template::CpuTarget => "CPU target tracking 60 %",
        }
    }

    /// A short name (`data-template`).
    pub fn slug(self) -> &'static str {
        match self {
            Template::CpuThresholds => "cpu",
            Template::RequestsPerInstance => "requests",
            Template::CpuTarget => "cpu-target",
        }
    }

    /// Gives `profile` the template's way of scaling (its rules and target tracking are
    /// replaced; its bounds and schedule stay).
    pub fn apply(self, profile: &mut Profile) {
        match self {
            Template::CpuThresholds => {
                profile.rules = cpu_rules();
                profile.target_tracking = None;
            }
            Template::RequestsPerInstance => {
                profile.rules = vec![];
                profile.target_tracking = Some(tracking(Metric::RequestsPerSecond, 50.0));
            }
            Template::CpuTarget => {
                profile.rules = vec![];
                profile.target_tracking = Some(tracking(Metric::CpuPercent, 60.0));
            }
        }
    }
}

/// One CPU rule: the average over the last `minutes`, per minute.
fn cpu_rule(direction: Direction, operator: Operator, threshold: f64, minutes: u32) -> ScaleRule {
    ScaleRule {
        metric: Metric::CpuPercent.as_str().into(),
        statistic: Statistic::Average,
        time_grain_seconds: 60,
        time_window_seconds: minutes * 60,
        time_aggregation: TimeAggregation::Average,
        operator,
        threshold,
        direction,
        action: ActionType::ChangeCount,
        value: 1,
        cooldown_seconds: 300,
    }
}

/// CPU > 70 % for 5 min → +1; CPU < 30 % for 10 min → −1; 5 min cooldowns.
pub fn cpu_rules() -> Vec<ScaleRule> {
    vec![
        cpu_rule(Direction::Increase, Operator::GreaterThan, 70.0, 5),
        cpu_rule(Direction::Decrease, Operator::LessThan, 30.0, 10),
    ]
}

/// Target tracking of `metric` at `target` with the HPA's defaults.
pub fn tracking(metric: Metric, target: f64) -> TargetTracking {
    TargetTracking {
        metric: metric.as_str().into(),
        target,
        tolerance: 0.1,
        window_seconds: 60,
        scale_up: Behavior::scale_up(),
        scale_down: Behavior::scale_down(),
        disable_scale_in: false,
        size_from_load: false,
    }
}

/// The default profile of a new setting: `bounds`, no rules (it holds its default count
/// until a template or rules are added).
pub fn default_profile(bounds: Bounds) -> Profile {
    Profile {
        name: "default".into(),
        capacity: bounds,
        rules: vec![],
        target_tracking: None,
        predictive: None,
        recurrence: None,
        fixed_date: None,
    }
}

/// A setting scaling on CPU ([`cpu_rules`]) within `bounds` — the wizard's "Autoscale on
/// CPU".
pub fn cpu_setting(bounds: Bounds) -> AutoscaleSetting {
    let mut profile = default_profile(bounds);
    Template::CpuThresholds.apply(&mut profile);
    AutoscaleSetting {
        enabled: true,
        profiles: vec![profile],
        initialization_seconds: 60,
        notifications: Notifications::default(),
    }
}

/// Monday to Friday, 08:00 to 18:00 in `time_zone`, with two instances more than `base` at
/// least, scaling as `base` does within its bounds.
pub fn business_hours(base: &Profile, time_zone: &str) -> Profile {
    let minimum = (base.capacity.minimum + 2).max(2);
    let maximum = base.capacity.maximum.max(minimum);
    Profile {
        name: "business-hours".into(),
        capacity: Bounds {
            minimum,
            maximum,
            default: minimum,
        },
        rules: base.rules.clone(),
        target_tracking: base.target_tracking.clone(),
        predictive: base.predictive.clone(),
        recurrence: Some(Recurrence {
            time_zone: time_zone.into(),
            days: Weekday::WORKDAYS.to_vec(),
            hours: vec![8],
            minutes: vec![0],
            end: Some(TimeOfDay {
                hour: 18,
                minute: 0,
            }),
        }),
        fixed_date: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::autoscale::setting::Facts;

    const BOUNDS: Bounds = Bounds {
        minimum: 1,
        maximum: 10,
        default: 2,
    };

    #[test]
    fn every_template_is_valid_and_quiet() {
        for template in Template::ALL {
            let mut setting = cpu_setting(BOUNDS);
            template.apply(&mut setting.profiles[0]);
            assert!(
                setting.validate().is_empty(),
                "{template:?}: {:?}",
                setting.validate()
            );
            let facts = Facts {
                boot_seconds: Some(60),
                metrics_interval_seconds: 10,
            };
            assert_eq!(setting.warnings(facts), vec![], "{template:?}");
        }
    }

    #[test]
    fn the_cpu_template_is_the_documented_one() {
        let rules = cpu_rules();
        assert_eq!(rules[0].threshold, 70.0);
        assert_eq!(rules[0].time_window_seconds, 300);
        assert_eq!(rules[1].threshold, 30.0);
        assert_eq!(rules[1].time_window_seconds, 600);
        assert_eq!(
            (rules[1].direction, rules[1].value),
            (Direction::Decrease, 1)
        );
    }

    #[test]
    fn business_hours_raise_the_minimum_on_weekdays() {
        let mut setting = cpu_setting(BOUNDS);
        let hours = business_hours(&setting.profiles[0], "Europe/Paris");
        assert_eq!(
            hours.capacity,
            Bounds {
                minimum: 3,
                maximum: 10,
                default: 3
            }
        );
        assert_eq!(hours.rules, setting.profiles[0].rules);
        setting.profiles.push(hours);
        assert!(setting.validate().is_empty(), "{:?}", setting.validate());
        let described = setting.profiles[1].recurrence.as_ref().unwrap().describe();
        assert_eq!(
            described,
            "monday–friday at 08:00, ends 18:00 (Europe/Paris)"
        );
    }
}
