//! The Upgrades tab's two forms as typed: the model ([`ModelInput`]) and the upgrade policy
//! ([`PolicyInput`]). Numbers are kept as typed, so a half-typed value survives; `check`
//! turns a form into what will be sent and every problem with it — what does not parse,
//! then what the domain's own `validate` refuses — under the server's dotted field paths
//! (`model.vcpus`, `upgrade_policy.rolling.checkpoints[0].percent`), so the browser's and
//! the server's messages land next to the same inputs. Both forms are plain forms posting
//! these fields (`input[…]`); the server functions read the same structs.

use std::collections::BTreeMap;

use flotilla_domain::scale_set::{Checkpoint, Model, RollingPolicy, UpgradeMode, UpgradePolicy};
use flotilla_domain::{FieldError, TypedInput};
use serde::{Deserialize, Serialize};

use crate::autoscale_draft::{from_wire, wire};

/// The upgrade modes with their labels.
pub const MODES: [(UpgradeMode, &str); 3] = [
    (UpgradeMode::Manual, "Manual: a person upgrades instances"),
    (
        UpgradeMode::Automatic,
        "Automatic: every instance at once on a model change",
    ),
    (
        UpgradeMode::Rolling,
        "Rolling: in batches with health gates on a model change",
    ),
];

/// The model form's fields as posted (absent fields are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelInput {
    pub image: String,
    pub vcpus: String,
    pub memory_mib: String,
    pub disk_gib: String,
    /// New user data; empty keeps the stored one (which is never shown).
    pub user_data: String,
    /// `on`: remove the stored user data.
    pub remove_user_data: String,
    /// One `key=value` per line.
    pub tags: String,
}

impl ModelInput {
    pub fn of(model: &Model) -> Self {
        Self {
            image: model.image.clone(),
            vcpus: model.vcpus.to_string(),
            memory_mib: model.memory_mib.to_string(),
            disk_gib: model.disk_gib.to_string(),
            user_data: String::new(),
            remove_user_data: String::new(),
            tags: model
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The model typed over `base` (whose data disks and app port the form does not show,
    /// and keeps), and every problem with it.
    pub fn check(&self, base: &Model) -> (Model, Vec<FieldError>) {
        let mut parse = TypedInput::new();
        let mut tags = BTreeMap::new();
        for line in self.tags.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some((k, v)) => {
                    tags.insert(k.trim().to_string(), v.trim().to_string());
                }
                None => parse.push(
                    "model.tags",
                    format!("write each tag as key=value, got {line:?}"),
                ),
            }
        }
        let user_data = self.user_data.replace("\r\n", "\n");
        // Empty keeps the stored user data (sent as none); "" removes it.
        let user_data = if !self.remove_user_data.is_empty() {
            Some(String::new())
        } else {
            (!user_data.trim().is_empty()).then_some(user_data)
        };
        let model = Model {
            image: self.image.trim().to_string(),
            vcpus: parse.value("model.vcpus", &self.vcpus),
            memory_mib: parse.value("model.memory_mib", &self.memory_mib),
            disk_gib: parse.value("model.disk_gib", &self.disk_gib),
            data_disks: base.data_disks.clone(),
            user_data,
            user_data_length: None,
            user_data_sha256: None,
            tags,
            app_port: base.app_port,
        };
        let mut invalid = flotilla_domain::ValidationErrors::default();
        invalid.nest("model", model.validate());
        (model, parse.finish(invalid.0))
    }
}

/// One checkpoint row as typed; an empty wait means "until approved".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckpointInput {
    pub percent: String,
    pub wait_seconds: String,
}

/// The policy form's fields as posted: checkboxes are present (`on`) or absent (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyInput {
    /// `manual`, `automatic` or `rolling`.
    pub mode: String,
    pub max_batch_instance_percent: String,
    pub max_unhealthy_instance_percent: String,
    pub max_unhealthy_upgraded_instance_percent: String,
    pub pause_time_between_batches_seconds: String,
    pub max_surge: String,
    pub prioritize_unhealthy_instances: String,
    pub rollback_failed_instances_on_policy_breach: String,
    pub enable_cross_zone_upgrade: String,
    pub checkpoints: Vec<CheckpointInput>,
    pub bake_time_seconds: String,
    pub canary_instances: String,
    pub instance_timeout_seconds: String,
}

/// A checkbox's posted value.
fn ticked(value: &str) -> bool {
    !value.is_empty()
}

fn tick(on: bool) -> String {
    if on { "on".into() } else { String::new() }
}

impl PolicyInput {
    pub fn of(policy: &UpgradePolicy) -> Self {
        let r = &policy.rolling;
        Self {
            mode: wire(policy.mode),
            max_batch_instance_percent: r.max_batch_instance_percent.to_string(),
            max_unhealthy_instance_percent: r.max_unhealthy_instance_percent.to_string(),
            max_unhealthy_upgraded_instance_percent: r
                .max_unhealthy_upgraded_instance_percent
                .to_string(),
            pause_time_between_batches_seconds: r.pause_time_between_batches_seconds.to_string(),
            max_surge: tick(r.max_surge),
            prioritize_unhealthy_instances: tick(r.prioritize_unhealthy_instances),
            rollback_failed_instances_on_policy_breach: tick(
                r.rollback_failed_instances_on_policy_breach,
            ),
            enable_cross_zone_upgrade: tick(r.enable_cross_zone_upgrade),
            checkpoints: r
                .checkpoints
                .iter()
                .map(|c| CheckpointInput {
                    percent: c.percent.to_string(),
                    wait_seconds: c.wait_seconds.map(|w| w.to_string()).unwrap_or_default(),
                })
                .collect(),
            bake_time_seconds: r.bake_time_seconds.to_string(),
            canary_instances: r.canary_instances.to_string(),
            instance_timeout_seconds: r.instance_timeout_seconds.to_string(),
        }
    }

    /// The field named `field` (a rolling setting, as posted), for the inputs that show it.
    pub fn field_mut(&mut self, field: &str) -> Option<&mut String> {
        Some(match field {
            "max_batch_instance_percent" => &mut self.max_batch_instance_percent,
            "max_unhealthy_instance_percent" => &mut self.max_unhealthy_instance_percent,
            "max_unhealthy_upgraded_instance_percent" => {
                &mut self.max_unhealthy_upgraded_instance_percent
            }
            "pause_time_between_batches_seconds" => &mut self.pause_time_between_batches_seconds,
            "max_surge" => &mut self.max_surge,
            "prioritize_unhealthy_instances" => &mut self.prioritize_unhealthy_instances,
            "rollback_failed_instances_on_policy_breach" => {
                &mut self.rollback_failed_instances_on_policy_breach
            }
            "enable_cross_zone_upgrade" => &mut self.enable_cross_zone_upgrade,
            "bake_time_seconds" => &mut self.bake_time_seconds,
            "canary_instances" => &mut self.canary_instances,
            "instance_timeout_seconds" => &mut self.instance_timeout_seconds,
            _ => return None,
        })
    }

    /// The policy as typed and every problem with it, under `upgrade_policy.`. Blank
    /// checkpoint rows (the one a plain form offers to fill) are left out.
    pub fn check(&self) -> (UpgradePolicy, Vec<FieldError>) {
        let mut parse = TypedInput::new();
        let mode = from_wire::<UpgradeMode>(&self.mode).unwrap_or_else(|| {
            parse.push(
                "upgrade_policy.mode",
                format!("must be manual, automatic or rolling, got {:?}", self.mode),
            );
            UpgradeMode::Manual
        });
        let mut num = |field: &str, typed: &str| {
            parse.value(&format!("upgrade_policy.rolling.{field}"), typed)
        };
        let rolling = RollingPolicy {
            max_batch_instance_percent: num(
                "max_batch_instance_percent",
                &self.max_batch_instance_percent,
            ),
            max_unhealthy_instance_percent: num(
                "max_unhealthy_instance_percent",
                &self.max_unhealthy_instance_percent,
            ),
            max_unhealthy_upgraded_instance_percent: num(
                "max_unhealthy_upgraded_instance_percent",
                &self.max_unhealthy_upgraded_instance_percent,
            ),
            pause_time_between_batches_seconds: num(
                "pause_time_between_batches_seconds",
                &self.pause_time_between_batches_seconds,
            ),
            max_surge: ticked(&self.max_surge),
            prioritize_unhealthy_instances: ticked(&self.prioritize_unhealthy_instances),
            rollback_failed_instances_on_policy_breach: ticked(
                &self.rollback_failed_instances_on_policy_breach,
            ),
            enable_cross_zone_upgrade: ticked(&self.enable_cross_zone_upgrade),
            checkpoints: self
                .checkpoints
                .iter()
                .filter(|c| !(c.percent.trim().is_empty() && c.wait_seconds.trim().is_empty()))
                .enumerate()
                .map(|(i, c)| Checkpoint {
                    percent: num(&format!("checkpoints[{i}].percent"), &c.percent),
                    wait_seconds: (!c.wait_seconds.trim().is_empty())
                        .then(|| num(&format!("checkpoints[{i}].wait_seconds"), &c.wait_seconds)),
                })
                .collect(),
            bake_time_seconds: num("bake_time_seconds", &self.bake_time_seconds),
            canary_instances: num("canary_instances", &self.canary_instances),
            instance_timeout_seconds: num(
                "instance_timeout_seconds",
                &self.instance_timeout_seconds,
            ),
        };
        let policy = UpgradePolicy { mode, rolling };
        let mut invalid = flotilla_domain::ValidationErrors::default();
        invalid.nest("upgrade_policy", policy.validate());
        (policy, parse.finish(invalid.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn base() -> Model {
        flotilla_domain::ScaleSetSpec::example("web", 1).model
    }

    #[test]
    fn a_model_round_trips_through_its_form() {
        let mut model = base();
        model.tags.insert("env".into(), "prod".into());
        model.app_port = 8080;
        let (checked, errors) = ModelInput::of(&model).check(&model);
        assert_eq!(errors, []);
        assert_eq!(checked, model);
    }

    /// The form never shows the stored user data: left empty it keeps it (none is sent),
    /// typed it replaces it, and the remove box sends "" to remove it.
    #[test]
    fn user_data_is_kept_replaced_or_removed_never_shown() {
        let mut model = base();
        model.user_data = Some("#cloud-config\npassword: s3cret\n".into());
        let shown = model.clone().redacted();
        let input = ModelInput::of(&shown);
        assert_eq!(input.user_data, "");
        assert_eq!(input.check(&shown).0.user_data, None, "kept");
        let typed = ModelInput {
            user_data: "#cloud-config\r\nhostname: x\r\n".into(),
            ..input.clone()
        };
        assert_eq!(
            typed.check(&shown).0.user_data.as_deref(),
            Some("#cloud-config\nhostname: x\n")
        );
        let removed = ModelInput {
            remove_user_data: "on".into(),
            ..input
        };
        assert_eq!(removed.check(&shown).0.user_data.as_deref(), Some(""));
    }

    #[test]
    fn model_problems_name_their_fields_once() {
        let input = ModelInput {
            image: "".into(),
            vcpus: "two".into(),
            memory_mib: "64".into(),
            disk_gib: "10".into(),
            user_data: "  ".into(),
            remove_user_data: String::new(),
            tags: "env=prod\nbroken".into(),
        };
        let (model, errors) = input.check(&base());
        assert_eq!(model.user_data, None);
        assert_eq!(model.tags.len(), 1);
        assert_eq!(
            fields(&errors),
            [
                "model.tags",
                "model.vcpus",
                "model.image",
                "model.memory_mib"
            ]
        );
        assert!(errors[1].message.contains("whole number"), "{errors:?}");
    }

    #[test]
    fn a_policy_round_trips_through_its_form() {
        let policy = UpgradePolicy {
            mode: UpgradeMode::Rolling,
            rolling: RollingPolicy {
                max_surge: true,
                canary_instances: 1,
                checkpoints: vec![
                    Checkpoint {
                        percent: 50,
                        wait_seconds: Some(60),
                    },
                    Checkpoint {
                        percent: 80,
                        wait_seconds: None,
                    },
                ],
                ..RollingPolicy::default()
            },
        };
        let input = PolicyInput::of(&policy);
        assert_eq!(input.mode, "rolling");
        assert_eq!(input.max_surge, "on");
        assert_eq!(input.checkpoints[1].wait_seconds, "");
        assert_eq!(input.check(), (policy.clone(), vec![]));
        // A blank row is no checkpoint.
        let mut blank = input.clone();
        blank.checkpoints.push(CheckpointInput::default());
        assert_eq!(blank.check(), (policy, vec![]));
    }

    #[test]
    fn fields_are_reached_by_name() {
        let mut input = PolicyInput::default();
        *input.field_mut("canary_instances").unwrap() = "2".into();
        *input.field_mut("max_surge").unwrap() = "on".into();
        assert_eq!(input.canary_instances, "2");
        assert!(ticked(&input.max_surge));
        assert!(input.field_mut("checkpoints").is_none());
    }

    #[test]
    fn policy_problems_use_the_servers_paths() {
        let mut input = PolicyInput::of(&UpgradePolicy::default());
        input.max_batch_instance_percent = "150".into();
        input.canary_instances = "x".into();
        input.checkpoints = vec![
            CheckpointInput {
                percent: "60".into(),
                wait_seconds: "".into(),
            },
            CheckpointInput {
                percent: "40".into(),
                wait_seconds: "0".into(),
            },
        ];
        input.mode = "sometimes".into();
        let (_, errors) = input.check();
        assert_eq!(
            fields(&errors),
            [
                "upgrade_policy.mode",
                "upgrade_policy.rolling.canary_instances",
                "upgrade_policy.rolling.max_batch_instance_percent",
                "upgrade_policy.rolling.checkpoints[1].percent",
                "upgrade_policy.rolling.checkpoints[1].wait_seconds",
                "upgrade_policy.rolling.max_batch_instance_percent",
            ]
        );
        assert_eq!(
            errors[2].message, "must be between 5 and 100, got 150",
            "{errors:?}"
        );
    }
}
