//! The quick-create wizard's plain logic: its steps, the size presets, the draft as typed
//! and the spec built from it (with autoscale on CPU when picked), and where each
//! validation problem belongs.
//!
//! The draft keeps numbers as typed (strings), so a half-typed value survives moving
//! between steps; [`Draft::check`] turns it into the [`ScaleSetSpec`] that will be sent and
//! every problem with it — what does not parse, then what `ScaleSetSpec::validate` (the
//! same code the server runs) refuses.

use std::collections::BTreeMap;

use flotilla_domain::autoscale::Bounds;
use flotilla_domain::scale_set::{
    AutomaticRepairs, Frontend, FrontendProtocol, HealthProbe, LoadBalancer, Model, ProbeProtocol,
    RepairAction, ScaleInPolicy, ScaleInRule, ScaleSetSpec, UpgradeMode, UpgradePolicy,
    ValidationContext,
};
use flotilla_domain::{FieldError, TypedInput};
use serde::{Deserialize, Serialize};

use crate::autoscale_templates;

/// The wizard's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Basics,
    Instance,
    Scaling,
    Networking,
    Health,
    Review,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Basics,
        Step::Instance,
        Step::Scaling,
        Step::Networking,
        Step::Health,
        Step::Review,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Step::Basics => "Basics",
            Step::Instance => "Instance",
            Step::Scaling => "Scaling",
            Step::Networking => "Networking & load balancer",
            Step::Health => "Health & upgrades",
            Step::Review => "Review + create",
        }
    }

    pub fn index(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    pub fn next(self) -> Option<Step> {
        Step::ALL.get(self.index() + 1).copied()
    }

    pub fn previous(self) -> Option<Step> {
        self.index().checked_sub(1).map(|i| Step::ALL[i])
    }

    /// The step whose inputs a validation problem's field path (`model.vcpus`,
    /// `zones[1]`, `health_probe.timeout_seconds`) belongs to.
    pub fn of_field(field: &str) -> Step {
        let head = field.split(['.', '[']).next().unwrap_or_default();
        match head {
            "name" | "zones" => Step::Basics,
            "model" => Step::Instance,
            "capacity"
            | "autoscale"
            | "scale_in_policy"
            | "overprovision"
            | "new_instances_protected_from_scale_in"
            | "platform_fault_domain_count"
            | "zone_balance" => Step::Scaling,
            "load_balancer" => Step::Networking,
            "health_probe" | "automatic_repairs" | "upgrade_policy" => Step::Health,
            _ => Step::Review,
        }
    }
}

/// A named machine size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizePreset {
    pub id: &'static str,
    pub vcpus: u32,
    pub memory_mib: u32,
}

impl SizePreset {
    /// "2 vCPU · 4 GiB".
    pub fn label(&self) -> String {
        let memory = if self.memory_mib.is_multiple_of(1024) {
            format!("{} GiB", self.memory_mib / 1024)
        } else {
            format!("{} MiB", self.memory_mib)
        };
        format!("{} vCPU · {memory}", self.vcpus)
    }
}

pub const SIZE_PRESETS: [SizePreset; 5] = [
    SizePreset {
        id: "1x1",
        vcpus: 1,
        memory_mib: 1024,
    },
    SizePreset {
        id: "2x2",
        vcpus: 2,
        memory_mib: 2048,
    },
    SizePreset {
        id: "2x4",
        vcpus: 2,
        memory_mib: 4096,
    },
    SizePreset {
        id: "4x8",
        vcpus: 4,
        memory_mib: 8192,
    },
    SizePreset {
        id: "8x16",
        vcpus: 8,
        memory_mib: 16384,
    },
];

/// The draft's `scaling`: a fixed count set by hand.
pub const SCALING_MANUAL: &str = "manual";
/// The draft's `scaling`: autoscale on CPU ([`autoscale_templates::cpu_setting`]).
pub const SCALING_AUTOSCALE: &str = "autoscale";

/// The fields of the autoscale bounds, as validation names them.
pub const AUTOSCALE_MINIMUM: &str = "autoscale.profiles[0].capacity.minimum";
pub const AUTOSCALE_MAXIMUM: &str = "autoscale.profiles[0].capacity.maximum";
pub const AUTOSCALE_DEFAULT: &str = "autoscale.profiles[0].capacity.default";

/// The `size` value of a draft that gives vCPUs and memory itself.
pub const CUSTOM_SIZE: &str = "custom";

/// What the backend offers: the wizard's choices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WizardOptions {
    pub zones: Vec<String>,
    pub images: Vec<String>,
}

/// Everything entered so far, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub name: String,
    pub zones: Vec<String>,
    pub image: String,
    /// A preset's id or [`CUSTOM_SIZE`].
    pub size: String,
    pub vcpus: String,
    pub memory_mib: String,
    pub disk_gib: String,
    pub user_data: String,
    pub capacity: String,
    /// [`SCALING_MANUAL`] or [`SCALING_AUTOSCALE`].
    pub scaling: String,
    pub autoscale_minimum: String,
    pub autoscale_maximum: String,
    pub autoscale_default: String,
    /// `default`, `newest_vm` or `oldest_vm`.
    pub scale_in_rule: String,
    pub overprovision: bool,
    pub protect_new: bool,
    pub lb_enabled: bool,
    pub lb_protocol: String,
    pub lb_port: String,
    pub lb_backend_port: String,
    pub probe_enabled: bool,
    pub probe_protocol: String,
    pub probe_port: String,
    pub probe_path: String,
    pub probe_interval: String,
    pub probe_timeout: String,
    pub probe_healthy: String,
    pub probe_unhealthy: String,
    pub repairs_enabled: bool,
    pub repairs_grace: String,
    pub repairs_action: String,
    pub upgrade_mode: String,
}

impl Draft {
    /// A new draft with the documented defaults: every zone, the first image, 2 vCPU · 2 GiB.
    pub fn new(options: &WizardOptions) -> Self {
        let image = if options.images.iter().any(|i| i == "debian-12") {
            "debian-12".to_string()
        } else {
            options.images.first().cloned().unwrap_or_default()
        };
        Self {
            name: String::new(),
            zones: options.zones.clone(),
            image,
            size: "2x2".into(),
            vcpus: "2".into(),
            memory_mib: "2048".into(),
            disk_gib: "10".into(),
            user_data: String::new(),
            capacity: "2".into(),
            scaling: SCALING_MANUAL.into(),
            autoscale_minimum: "1".into(),
            autoscale_maximum: "10".into(),
            autoscale_default: "2".into(),
            scale_in_rule: "default".into(),
            overprovision: false,
            protect_new: false,
            lb_enabled: false,
            lb_protocol: "http".into(),
            lb_port: "8080".into(),
            lb_backend_port: String::new(),
            probe_enabled: false,
            probe_protocol: "http".into(),
            probe_port: "80".into(),
            probe_path: "/health".into(),
            probe_interval: "5".into(),
            probe_timeout: "2".into(),
            probe_healthy: "1".into(),
            probe_unhealthy: "2".into(),
            repairs_enabled: false,
            repairs_grace: "600".into(),
            repairs_action: "replace".into(),
            upgrade_mode: "manual".into(),
        }
    }

    /// Picks a size preset (copying its vCPUs and memory) or custom.
    pub fn set_size(&mut self, size: String) {
        if let Some(preset) = SIZE_PRESETS.iter().find(|p| p.id == size) {
            self.vcpus = preset.vcpus.to_string();
            self.memory_mib = preset.memory_mib.to_string();
        }
        self.size = size;
    }

    /// The spec to send and every problem with it, the unparsable numbers first.
    pub fn check(&self, known_zones: &[String]) -> (ScaleSetSpec, Vec<FieldError>) {
        let mut parse = TypedInput::new();
        let mut num = |field: &str, typed: &str| parse.value::<u32>(field, typed);
        let model = Model {
            image: self.image.clone(),
            vcpus: num("model.vcpus", &self.vcpus),
            memory_mib: num("model.memory_mib", &self.memory_mib),
            disk_gib: num("model.disk_gib", &self.disk_gib),
            data_disks: vec![],
            user_data: (!self.user_data.is_empty()).then(|| self.user_data.clone()),
            user_data_length: None,
            user_data_sha256: None,
            tags: BTreeMap::new(),
            app_port: 80,
        };
        // With autoscale the set starts at the profile's default count.
        let (capacity, autoscale) = if self.scaling == SCALING_AUTOSCALE {
            let bounds = Bounds {
                minimum: num(AUTOSCALE_MINIMUM, &self.autoscale_minimum),
                maximum: num(AUTOSCALE_MAXIMUM, &self.autoscale_maximum),
                default: num(AUTOSCALE_DEFAULT, &self.autoscale_default),
            };
            (
                bounds.default,
                Some(autoscale_templates::cpu_setting(bounds)),
            )
        } else {
            (num("capacity", &self.capacity), None)
        };
        let load_balancer = self.lb_enabled.then(|| LoadBalancer {
            frontends: vec![Frontend {
                backend_port: (!self.lb_backend_port.trim().is_empty()).then(|| {
                    to_port(num(
                        "load_balancer.frontends[0].backend_port",
                        &self.lb_backend_port,
                    ))
                }),
                ..Frontend::new(
                    "web",
                    if self.lb_protocol == "tcp" {
                        FrontendProtocol::Tcp
                    } else {
                        FrontendProtocol::Http
                    },
                    to_port(num("load_balancer.frontends[0].port", &self.lb_port)),
                )
            }],
        });
        let health_probe = self.probe_enabled.then(|| HealthProbe {
            protocol: match self.probe_protocol.as_str() {
                "tcp" => ProbeProtocol::Tcp,
                "https" => ProbeProtocol::Https,
                _ => ProbeProtocol::Http,
            },
            port: to_port(num("health_probe.port", &self.probe_port)),
            path: self.probe_path.clone(),
            interval_seconds: num("health_probe.interval_seconds", &self.probe_interval),
            timeout_seconds: num("health_probe.timeout_seconds", &self.probe_timeout),
            healthy_threshold: num("health_probe.healthy_threshold", &self.probe_healthy),
            unhealthy_threshold: num("health_probe.unhealthy_threshold", &self.probe_unhealthy),
            grace_period_seconds: 0,
        });
        let automatic_repairs = AutomaticRepairs {
            enabled: self.repairs_enabled,
            grace_period_seconds: num(
                "automatic_repairs.grace_period_seconds",
                &self.repairs_grace,
            ),
            repair_action: match self.repairs_action.as_str() {
                "restart" => RepairAction::Restart,
                "reimage" => RepairAction::Reimage,
                _ => RepairAction::Replace,
            },
        };
        let spec = ScaleSetSpec {
            name: self.name.trim().to_string(),
            model,
            capacity,
            zones: self.zones.clone(),
            platform_fault_domain_count: 1,
            zone_balance: false,
            scale_in_policy: ScaleInPolicy {
                rules: vec![match self.scale_in_rule.as_str() {
                    "newest_vm" => ScaleInRule::NewestVm,
                    "oldest_vm" => ScaleInRule::OldestVm,
                    _ => ScaleInRule::Default,
                }],
                force_deletion: false,
            },
            overprovision: self.overprovision,
            new_instances_protected_from_scale_in: self.protect_new,
            health_probe,
            automatic_repairs,
            load_balancer,
            upgrade_policy: UpgradePolicy {
                mode: match self.upgrade_mode.as_str() {
                    "automatic" => UpgradeMode::Automatic,
                    "rolling" => UpgradeMode::Rolling,
                    _ => UpgradeMode::Manual,
                },
                rolling: Default::default(),
            },
            autoscale,
            autoscale_shadow: None,
            demand: None,
            lifecycle_hooks: Vec::new(),
            warm_pool: None,
        };
        let ctx = ValidationContext {
            known_zones: known_zones.to_vec(),
            // The server checks the scale sets rules route to.
            known_scale_sets: None,
        };
        let invalid = spec.validate(&ctx).err().unwrap_or_default();
        (spec, parse.finish(invalid.0))
    }
}

/// A port out of range reads as 0, which validation refuses with the range.
fn to_port(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(0)
}

/// The spec as the JSON the server receives, pretty-printed.
pub fn pretty_json(spec: &ScaleSetSpec) -> String {
    serde_json::to_string_pretty(spec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> WizardOptions {
        WizardOptions {
            zones: vec!["1".into(), "2".into(), "3".into()],
            images: vec!["alpine".into(), "debian-12".into()],
        }
    }

    #[test]
    fn a_named_draft_with_defaults_is_valid() {
        let mut draft = Draft::new(&options());
        draft.name = "web".into();
        let (spec, errors) = draft.check(&options().zones);
        assert_eq!(errors, vec![]);
        assert_eq!(spec.model.image, "debian-12");
        assert_eq!(spec.capacity, 2);
        assert_eq!(spec.zones, options().zones);
        assert_eq!(spec.health_probe, None);
        assert_eq!(spec.load_balancer, None);
    }

    #[test]
    fn problems_name_their_fields() {
        let mut draft = Draft::new(&options());
        draft.name = "Bad_Name".into();
        draft.vcpus = "two".into();
        draft.probe_enabled = true;
        draft.probe_timeout = "9".into();
        let (_, errors) = draft.check(&options().zones);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["model.vcpus", "name", "health_probe.timeout_seconds"]
        );
        assert_eq!(errors[0].message, "must be a whole number, got \"two\"");
    }

    #[test]
    fn autoscale_on_cpu_fills_the_setting() {
        let mut draft = Draft::new(&options());
        draft.name = "web".into();
        draft.scaling = SCALING_AUTOSCALE.into();
        draft.autoscale_default = "3".into();
        let (spec, errors) = draft.check(&options().zones);
        assert_eq!(errors, vec![]);
        assert_eq!(spec.capacity, 3, "starts at the default count");
        let setting = spec.autoscale.expect("autoscale");
        assert!(setting.enabled);
        assert_eq!(setting.profiles[0].rules, autoscale_templates::cpu_rules());
        draft.autoscale_minimum = "5".into();
        draft.autoscale_maximum = "4".into();
        let (_, errors) = draft.check(&options().zones);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, [AUTOSCALE_MINIMUM]);
        assert_eq!(Step::of_field(AUTOSCALE_MINIMUM), Step::Scaling);
        draft.scaling = SCALING_MANUAL.into();
        assert_eq!(draft.check(&options().zones).0.autoscale, None);
    }

    #[test]
    fn fields_map_to_steps() {
        for (field, step) in [
            ("name", Step::Basics),
            ("zones[1]", Step::Basics),
            ("model.vcpus", Step::Instance),
            ("capacity", Step::Scaling),
            ("scale_in_policy.rules", Step::Scaling),
            ("load_balancer.frontends[0].port", Step::Networking),
            ("health_probe.timeout_seconds", Step::Health),
            ("automatic_repairs.enabled", Step::Health),
            ("upgrade_policy.mode", Step::Health),
            ("something", Step::Review),
        ] {
            assert_eq!(Step::of_field(field), step, "{field}");
        }
    }

    #[test]
    fn presets_set_size() {
        assert_eq!(SIZE_PRESETS[2].label(), "2 vCPU · 4 GiB");
        let mut draft = Draft::new(&options());
        draft.set_size("4x8".into());
        assert_eq!(
            (draft.vcpus.as_str(), draft.memory_mib.as_str()),
            ("4", "8192")
        );
        draft.set_size(CUSTOM_SIZE.into());
        assert_eq!(draft.vcpus, "4");
        assert_eq!(Step::Basics.next(), Some(Step::Instance));
        assert_eq!(Step::Basics.previous(), None);
        assert_eq!(Step::Review.next(), None);
    }

    #[test]
    fn the_json_is_the_create_request() {
        let mut draft = Draft::new(&options());
        draft.name = "web".into();
        let json = pretty_json(&draft.check(&options().zones).0);
        assert!(json.contains("\"name\": \"web\""));
        assert!(json.contains("\"capacity\": 2"));
    }
}
