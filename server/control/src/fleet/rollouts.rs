//! Rollouts: list, read, compare versions, preview, start, pause, resume, cancel, roll back.

use std::collections::BTreeSet;

use flotilla_domain::rollout::{
    self, FieldChange, Hold, Rollout, RolloutKind, RolloutPlan, RolloutState, RolloutView,
};
use flotilla_domain::scale_set::{UpgradeMode, UpgradePolicy};
use flotilla_domain::{ActivityResult, Instance, Model, ScaleSet, ScaleSetState};
use flotilla_store::StoreError;
use serde::{Deserialize, Serialize};

use super::Fleet;
use crate::context::RETRIES;
use crate::error::{Error, Result, chain};
use crate::tasks::rollouts::{
    active_rollout, activity, begin, make_plan, model_version, publish, read_rollout,
    release_retiring, stale,
};

/// `POST /scale-sets/{name}/rollouts/preview`: what a rollout would do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewRequest {
    /// The model to preview (as if stored as the next version); absent: the current one.
    #[serde(default)]
    pub model: Option<Model>,
    /// A policy to preview with; absent: the set's.
    #[serde(default)]
    pub upgrade_policy: Option<UpgradePolicy>,
    /// Only these instances (a manual upgrade).
    #[serde(default)]
    pub instances: Option<Vec<String>>,
}

/// `POST /scale-sets/{name}/rollouts`: start a rollout to the current model version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartRollout {
    /// Upgrade only these instances, all at once (Azure's manual upgrade); absent: every
    /// out-of-date instance, in the rolling policy's batches (all at once in Automatic
    /// mode).
    #[serde(default)]
    pub instances: Option<Vec<String>>,
}

/// `POST /scale-sets/{name}/rollouts/{id}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackRequest {
    /// The version to go back to; absent: the one the rollout started from.
    #[serde(default)]
    pub version: Option<u32>,
}

/// A person's control of a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutControl {
    Pause,
    Resume,
    Cancel,
}

impl RolloutControl {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pause" => Some(Self::Pause),
            "resume" => Some(Self::Resume),
            "cancel" => Some(Self::Cancel),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }
}

impl Fleet {
    /// The set's rollouts, newest first.
    pub async fn rollouts(&self, name: &str, limit: u32) -> Result<Vec<RolloutView>> {
        self.ctx.read_set(name).await?;
        let all = self
            .ctx
            .store
            .list_rollouts(name, limit)
            .await
            .map_err(Error::store("list rollouts"))?;
        Ok(all.into_iter().map(RolloutView::from).collect())
    }

    pub async fn rollout(&self, name: &str, id: i64) -> Result<RolloutView> {
        read_rollout(&self.ctx, name, id).await.map(Into::into)
    }

    /// The fields that differ between two of the set's model versions.
    pub async fn compare_versions(
        &self,
        name: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<FieldChange>> {
        self.ctx.read_set(name).await?;
        let a = model_version(&self.ctx, name, from, "from").await?;
        let b = model_version(&self.ctx, name, to, "to").await?;
        Ok(rollout::diff(&a, &b))
    }

    /// What a rollout would do now, or after storing `request.model`.
    pub async fn preview_rollout(
        &self,
        name: &str,
        request: PreviewRequest,
    ) -> Result<RolloutPlan> {
        let mut set = self.ctx.read_set(name).await?;
        let mut request = request;
        if let Some(model) = &mut request.model {
            model.keep_user_data(Some(&set.spec.model));
        }
        let mut errors = flotilla_domain::ValidationErrors::default();
        if let Some(model) = &request.model {
            errors.nest("model", model.validate());
        }
        if let Some(policy) = &request.upgrade_policy {
            errors.nest("upgrade_policy", policy.validate());
        }
        errors.into_result().map_err(Error::Invalid)?;
        let mut extra = None;
        if let Some(model) = request.model {
            set.model_version += 1;
            set.spec.model = model.clone();
            extra = Some((set.model_version, model));
        }
        if let Some(policy) = request.upgrade_policy {
            set.spec.upgrade_policy = policy;
        }
        let instances = self.list_instances(name).await?;
        let (kind, only) = chosen(&instances, request.instances.as_deref())?;
        let boot = flotilla_domain::instance::boot_seconds(&instances);
        make_plan(
            &self.ctx,
            &set,
            &instances,
            kind,
            only.as_ref(),
            boot,
            extra,
        )
        .await
    }

    /// Starts a rollout to the set's current model version (a person's: the whole set in
    /// the rolling policy's batches, or chosen instances at once).
    pub async fn start_rollout(
        &self,
        name: &str,
        request: StartRollout,
        actor: &str,
    ) -> Result<RolloutView> {
        let set = self.ctx.read_set(name).await?;
        refuse_deleting(&set)?;
        let instances = self.list_instances(name).await?;
        let (kind, only) = chosen(&instances, request.instances.as_deref())?;
        let rollout = begin(
            &self.ctx,
            &set,
            &instances,
            kind,
            only.as_ref(),
            None,
            actor,
        )
        .await?;
        if rollout.plan.batches.is_empty() && rollout.plan.relabel.is_empty() {
            return Err(Error::InvalidState {
                message: format!(
                    "nothing to upgrade: no chosen instance is out of date and unprotected ({})",
                    describe_skipped(&rollout.plan)
                ),
            });
        }
        let rollout = self.rollouts.insert(rollout, actor).await?;
        Ok(rollout.into())
    }

    /// Pauses, resumes or cancels a rollout. Resuming one held for an approval (after the
    /// canary, at a checkpoint) or by a failed health gate approves it, which only a caller
    /// that `may_approve` (a Contributor) may do.
    pub async fn control_rollout(
        &self,
        name: &str,
        id: i64,
        control: RolloutControl,
        actor: &str,
        may_approve: bool,
    ) -> Result<RolloutView> {
        let started = self.now();
        let ctx = &self.ctx;
        for _ in 0..RETRIES {
            let mut r = read_rollout(ctx, name, id).await?;
            if !r.state.is_active() {
                return Err(Error::InvalidState {
                    message: format!(
                        "rollout {id} is {}: only a running or paused rollout can be {}d",
                        r.state.as_str(),
                        control.as_str()
                    ),
                });
            }
            let now = self.now();
            match control {
                RolloutControl::Pause => {
                    if matches!(r.hold, Some(Hold::Paused { .. })) {
                        return Ok(r.into());
                    }
                    r.hold = Some(Hold::Paused { by: actor.into() });
                    r.state = RolloutState::Paused;
                }
                RolloutControl::Resume => {
                    if matches!(r.hold, Some(Hold::Approval { .. } | Hold::Gate { .. }))
                        && !may_approve
                    {
                        return Err(Error::Forbidden {
                            message: format!(
                                "rollout {id} waits for an approval: resuming it approves, which \
                                 needs the Contributor role"
                            ),
                        });
                    }
                    if let Some(Hold::Paused { .. } | Hold::Approval { .. } | Hold::Gate { .. }) =
                        &r.hold
                    {
                        r.hold = None;
                    }
                    r.state = RolloutState::RollingForward;
                }
                RolloutControl::Cancel => {
                    release_retiring(ctx, &r).await?;
                    r.finish(
                        RolloutState::Cancelled,
                        format!("cancelled by {actor}"),
                        now,
                    );
                }
            }
            r.updated_at = now;
            match ctx.store.update_rollout(&r).await {
                Ok(stored) => {
                    publish(ctx, &stored);
                    ctx.record(activity(
                        &stored,
                        &format!("rollout.{}", control.as_str()),
                        actor,
                        started,
                        ActivityResult::Succeeded,
                        None,
                    ))
                    .await;
                    self.registry.activate("rollouts");
                    self.wake(name);
                    return Ok(stored.into());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(Error::store("update rollout")(e)),
            }
        }
        Err(stale("a rollout control"))
    }

    /// Rolls the set back to `version` (default: the version rollout `id` started from):
    /// that version's model becomes the newest version and a rollback rollout moves the
    /// instances to it; rollout `id` is cancelled first if it still runs.
    pub async fn rollback_rollout(
        &self,
        name: &str,
        id: i64,
        request: RollbackRequest,
        actor: &str,
    ) -> Result<RolloutView> {
        let original = read_rollout(&self.ctx, name, id).await?;
        let version = request.version.unwrap_or(original.from_version);
        let set = self.ctx.read_set(name).await?;
        refuse_deleting(&set)?;
        if version == 0 || version > set.model_version {
            return Err(Error::invalid(
                "version",
                format!(
                    "version {version} does not exist: {name:?} has versions 1 to {}",
                    set.model_version
                ),
            ));
        }
        self.rollouts
            .rollback(original, version, actor, "by request")
            .await
    }

    /// The active rollout of a set, if any.
    pub(crate) async fn active_rollout(&self, name: &str) -> Result<Option<Rollout>> {
        active_rollout(&self.ctx, name).await
    }

    /// After a model change: starts the rollout the upgrade policy asks for (none in
    /// Manual mode).
    pub(crate) async fn after_model_change(&self, set: &ScaleSet, actor: &str) {
        if set.spec.upgrade_policy.mode == UpgradeMode::Manual {
            return;
        }
        if let Err(e) = self.rollouts.start_policy_rollout(set, actor).await {
            tracing::warn!(scale_set = %set.name(), error = %chain(&e), "could not start the rollout of the new model");
        }
    }
}

fn refuse_deleting(set: &ScaleSet) -> Result<()> {
    if set.state == ScaleSetState::Deleting {
        return Err(Error::InvalidState {
            message: format!("scale set {:?} is being deleted", set.name()),
        });
    }
    Ok(())
}

/// The kind of a person's rollout and its chosen instances (each checked to exist): a
/// manual upgrade of those, or an upgrade of every out-of-date one.
fn chosen(
    instances: &[Instance],
    ids: Option<&[String]>,
) -> Result<(RolloutKind, Option<BTreeSet<String>>)> {
    let Some(ids) = ids else {
        return Ok((RolloutKind::Upgrade, None));
    };
    if ids.is_empty() {
        return Err(Error::invalid("instances", "name at least one instance"));
    }
    let known: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    let unknown: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !known.contains(id))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "instances",
            format!("no such instance: {}", unknown.join(", ")),
        ));
    }
    Ok((RolloutKind::Manual, Some(ids.iter().cloned().collect())))
}

fn describe_skipped(plan: &RolloutPlan) -> String {
    if plan.skipped.is_empty() {
        return "no instances".into();
    }
    plan.skipped
        .iter()
        .take(5)
        .map(|s| format!("{}: {}", s.id, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
