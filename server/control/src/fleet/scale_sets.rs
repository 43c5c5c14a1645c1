//! Scale sets: list, read, create, change, scale, model, delete.

use flotilla_domain::{
    Model, ScaleSet, ScaleSetPatch, ScaleSetSpec, ScaleSetState, ValidationContext,
    ValidationErrors,
};
use flotilla_store::ModelVersion;
use serde_json::json;

use super::Fleet;
use crate::error::{Error, Result};

impl Fleet {
    /// Every scale set, private keys redacted (as everything the facade answers).
    pub async fn list_scale_sets(&self) -> Result<Vec<ScaleSet>> {
        Ok(self
            .ctx
            .read_sets()
            .await?
            .into_iter()
            .map(ScaleSet::redacted)
            .collect())
    }

    pub async fn get_scale_set(&self, name: &str) -> Result<ScaleSet> {
        self.ctx.read_set(name).await.map(ScaleSet::redacted)
    }

    async fn validation_context(&self) -> Result<ValidationContext> {
        let zones = self.zones().await?;
        let sets = self.list_scale_sets().await?;
        Ok(ValidationContext {
            known_zones: zones.into_iter().map(|z| z.name).collect(),
            known_scale_sets: Some(sets.into_iter().map(|s| s.spec.name).collect()),
        })
    }

    async fn check_image(
        &self,
        model: &Model,
        errors: &mut ValidationErrors,
        field: &str,
    ) -> Result<()> {
        let images = self
            .ctx
            .backend
            .images()
            .await
            .map_err(Error::backend("list images"))?;
        if !model.image.is_empty() && !images.contains(&model.image) {
            errors.push(
                field,
                format!(
                    "unknown image {:?}; available: {}",
                    model.image,
                    images.join(", ")
                ),
            );
        }
        Ok(())
    }

    pub async fn create_scale_set(&self, mut spec: ScaleSetSpec, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        spec.model.keep_user_data(None);
        let mut ctx = self.validation_context().await?;
        if let Some(known) = &mut ctx.known_scale_sets {
            known.push(spec.name.clone());
        }
        if spec.zones.is_empty() {
            spec.zones = ctx.known_zones.clone();
        }
        if let Some(demand) = &mut spec.demand {
            demand.started_at = Some(started);
        }
        let mut errors = spec.validate(&ctx).err().unwrap_or_default();
        self.check_image(&spec.model, &mut errors, "model.image")
            .await?;
        if spec.demand.is_some() && self.ctx.backend.simulation().is_none() {
            errors.push(
                "demand",
                "only the mock backend simulates demand; leave it out",
            );
        }
        if let Some(autoscale) = &spec.autoscale {
            errors.nest("autoscale", self.check_webhooks(autoscale));
        }
        errors
            .0
            .extend(self.check_hook_webhooks(&spec.lifecycle_hooks).0);
        let sets = self.ctx.read_sets().await?;
        let limit = self.ctx.config.max_scale_sets;
        if sets.len() >= limit as usize {
            errors.push(
                "name",
                format!("the fleet holds its limit of {limit} scale sets (--max-scale-sets); delete one first"),
            );
        }
        errors
            .0
            .extend(self.check_quota(&sets, None, spec.capacity).0);
        errors.into_result().map_err(Error::Invalid)?;
        if self
            .ctx
            .store
            .get_scale_set(&spec.name)
            .await
            .map_err(Error::store("get scale set"))?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                kind: "scale set",
                name: spec.name.clone(),
            });
        }
        let balancer = &self.ctx.balancer;
        balancer
            .apply(&spec.name, spec.load_balancer.as_ref(), None)
            .await
            .map_err(Error::Invalid)?;
        let set = ScaleSet {
            spec,
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: Default::default(),
            created_at: started,
            updated_at: started,
        };
        let set = match self.ctx.store.create_scale_set(&set, actor).await {
            Ok(set) => set,
            Err(e) => {
                balancer
                    .apply(set.name(), None, set.spec.load_balancer.as_ref())
                    .await
                    .ok();
                return Err(Error::store("create scale set")(e));
            }
        };
        // The set exists now: a simulator that missed its demand is no reason to say it
        // does not (the demand is stored, and given again at the next start).
        if let Err(error) = self.push_demand(&set).await {
            tracing::warn!(scale_set = %set.name(), error = %crate::error::chain(&error), "could not give the mock the new set's demand");
        }
        self.after_change(
            &set,
            "scale_set.create",
            actor,
            started,
            json!({"capacity": set.spec.capacity}),
        )
        .await;
        Ok(set.redacted())
    }

    /// Refuses a capacity that would take the fleet's desired instances (the capacities'
    /// sum, set `name`'s own replaced by `capacity`) past `--max-instances`. Lowering a
    /// capacity is always allowed, even in a fleet already above a limit lowered since.
    fn check_quota(
        &self,
        sets: &[ScaleSet],
        name: Option<&str>,
        capacity: u32,
    ) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let limit = u64::from(self.ctx.config.max_instances);
        let (own, others): (Vec<&ScaleSet>, Vec<&ScaleSet>) =
            sets.iter().partition(|s| Some(s.name()) == name);
        let current = own.first().map_or(0, |s| s.spec.capacity);
        let others: u64 = others.iter().map(|s| u64::from(s.spec.capacity)).sum();
        if capacity > current && others + u64::from(capacity) > limit {
            errors.push(
                "capacity",
                format!(
                    "the fleet may hold at most {limit} instances (--max-instances) and other scale sets ask for {others}: at most {} here",
                    limit.saturating_sub(others)
                ),
            );
        }
        errors
    }

    /// [`Fleet::check_quota`] against the stored sets, as an error.
    pub(crate) async fn quota(&self, name: &str, capacity: u32) -> Result<()> {
        let sets = self.ctx.read_sets().await?;
        self.check_quota(&sets, Some(name), capacity)
            .into_result()
            .map_err(Error::Invalid)
    }

    pub async fn update_scale_set(
        &self,
        name: &str,
        patch: ScaleSetPatch,
        actor: &str,
    ) -> Result<ScaleSet> {
        let started = self.now();
        let ctx = self.validation_context().await?;
        let current = self.ctx.read_set(name).await?;
        if let Some(policy) = &patch.upgrade_policy
            && let Some(field) = flotilla_domain::rollout::policy_change_refused(
                &current.spec.upgrade_policy,
                policy,
            )
            && let Some(running) = self.active_rollout(name).await?
        {
            return Err(Error::invalid(
                field,
                format!(
                    "cannot change while rollout {} runs: cancel it or wait for it to end",
                    running.id
                ),
            ));
        }
        // Frontends change first (validated against the current spec), so a port in use
        // or a bad certificate refuses the whole patch before anything is stored.
        let frontends = match &patch.load_balancer {
            Some(_) => {
                let spec = current.spec.patched(&patch, &ctx).map_err(Error::Invalid)?;
                self.ctx
                    .balancer
                    .apply(
                        name,
                        spec.load_balancer.as_ref(),
                        current.spec.load_balancer.as_ref(),
                    )
                    .await
                    .map_err(Error::Invalid)?;
                Some((spec.load_balancer, current.spec.load_balancer.clone()))
            }
            None => None,
        };
        if let Some(capacity) = patch.capacity {
            self.quota(name, capacity).await?;
        }
        let stored = self
            .ctx
            .modify_set(name, actor, |current| {
                let spec = current.spec.patched(&patch, &ctx).map_err(Error::Invalid)?;
                let mut errors = ValidationErrors::default();
                if let (Some(_), Some(autoscale)) = (&patch.autoscale, &spec.autoscale) {
                    errors.nest("autoscale", self.check_webhooks(autoscale));
                }
                if patch.lifecycle_hooks.is_some() {
                    errors
                        .0
                        .extend(self.check_hook_webhooks(&spec.lifecycle_hooks).0);
                }
                errors.into_result().map_err(Error::Invalid)?;
                Ok(ScaleSet {
                    spec,
                    ..current.clone()
                })
            })
            .await;
        let (before, after) = match stored {
            Ok(done) => done,
            Err(e) => {
                if let Some((applied, previous)) = frontends {
                    self.ctx
                        .balancer
                        .apply(name, previous.as_ref(), applied.as_ref())
                        .await
                        .ok();
                }
                return Err(e);
            }
        };
        self.after_change(
            &after,
            "scale_set.update",
            actor,
            started,
            json!({"patch": patch.redacted(), "capacity": {"old": before.spec.capacity, "new": after.spec.capacity}}),
        )
        .await;
        Ok(after.redacted())
    }

    pub async fn set_capacity(&self, name: &str, capacity: u32, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let mut errors = ValidationErrors::default();
        errors.range(
            "capacity",
            capacity,
            0,
            flotilla_domain::scale_set::MAX_CAPACITY,
        );
        errors.into_result().map_err(Error::Invalid)?;
        self.quota(name, capacity).await?;
        let (before, after) = self.ctx
            .modify_set(name, actor, |current| {
                if current.spec.autoscale.as_ref().is_some_and(|a| a.enabled) {
                    return Err(Error::Conflict {
                        message: format!(
                            "autoscale is enabled for {name:?}: it sets the capacity; disable autoscale or change its profiles' bounds"
                        ),
                    });
                }
                let mut next = current.clone();
                next.spec.capacity = capacity;
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            "scale_set.scale",
            actor,
            started,
            json!({"old_capacity": before.spec.capacity, "new_capacity": capacity}),
        )
        .await;
        Ok(after.redacted())
    }

    /// Stores `model` as the set's next model version. New instances use the latest; the
    /// existing ones are upgraded as the upgrade policy says (Automatic and Rolling start
    /// a rollout now, Manual waits for a person). Refused while a rollout runs.
    pub async fn set_model(&self, name: &str, mut model: Model, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let current = self.ctx.read_set(name).await?;
        model.keep_user_data(Some(&current.spec.model));
        let mut errors = ValidationErrors::default();
        errors.nest("model", model.validate());
        self.check_image(&model, &mut errors, "model.image").await?;
        errors.into_result().map_err(Error::Invalid)?;
        if let Some(running) = self.active_rollout(name).await? {
            return Err(Error::InvalidState {
                message: format!(
                    "rollout {} to version {} is still running: cancel it (or roll it back) before changing the model",
                    running.id, running.target_version
                ),
            });
        }
        let (before, after) = self
            .ctx
            .modify_set(name, actor, |current| {
                let mut next = current.clone();
                let mut model = model.clone();
                // Kept from the set as it is now, should a writer have come in between.
                model.keep_user_data(Some(&current.spec.model));
                next.spec.model = model;
                next.spec.follow_app_port(current.spec.model.app_port);
                next.model_version = current.model_version + 1;
                Ok(next)
            })
            .await?;
        self.after_change(
            &after,
            "scale_set.model",
            actor,
            started,
            json!({"old_version": before.model_version, "new_version": after.model_version}),
        )
        .await;
        self.after_model_change(&after, actor).await;
        Ok(after.redacted())
    }

    /// Every kept version of the set's model, user data redacted.
    pub async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.get_scale_set(name).await?;
        let versions = self
            .ctx
            .store
            .list_model_versions(name)
            .await
            .map_err(Error::store("list model versions"))?;
        Ok(versions
            .into_iter()
            .map(|v| ModelVersion {
                model: v.model.redacted(),
                ..v
            })
            .collect())
    }

    /// Marks the set for deletion; the reconciler deletes every instance, protected or not,
    /// then removes the set.
    pub async fn delete_scale_set(&self, name: &str, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let (_, after) = self
            .ctx
            .modify_set(name, actor, |current| {
                let mut next = current.clone();
                next.state = ScaleSetState::Deleting;
                Ok(next)
            })
            .await?;
        self.after_change(&after, "scale_set.delete", actor, started, json!({}))
            .await;
        Ok(after.redacted())
    }
}
