//! Instances: list and read (with their last probe result), a person's actions, protection,
//! the load balancer switch; health and the repair service.

use chrono::{DateTime, Utc};
use flotilla_backend::{GuestHandler, GuestRefusal, GuestView};
use flotilla_domain::instance::{ActionEffect, StateCount};
use flotilla_domain::lifecycle::{self, Notice, Refused};
use flotilla_domain::repair::RepairOverview;
use flotilla_domain::warm_pool::{self, WarmPoolView};
use flotilla_domain::{
    Activity, ActivityFilter, Event, Instance, InstanceAction, LifecycleResult, Protection,
    ProvisioningState, RepairStatus, ScaleSet, ScaleSetState, ValidationErrors,
};
use flotilla_store::StoreError;
use serde_json::json;

use super::{Fleet, Parts};
use crate::context::RETRIES;
use crate::error::{Error, Result, chain};
use crate::tasks::prober::{ProberStats, merge_from};

/// The longest busy lease one request sets (renew it to keep it).
pub const MAX_BUSY_SECONDS: u32 = 3600;

/// What a guest asks through its metadata endpoint (the libvirt backend's): it reads and
/// sets its own instance's busy lease, recorded as actor `guest:{id}`. It holds the facade
/// weakly (the backend it is given to belongs to the facade).
pub(super) struct Guests(pub(super) std::sync::Weak<Parts>);

impl Guests {
    fn fleet(&self) -> std::result::Result<Fleet, GuestRefusal> {
        self.0.upgrade().map(Fleet).ok_or_else(|| GuestRefusal {
            status: 503,
            detail: "the control plane is stopping".into(),
        })
    }
}

fn guest_view(instance: &Instance) -> GuestView {
    GuestView {
        id: instance.id.clone(),
        scale_set: instance.scale_set.clone(),
        busy_until: instance.busy_until,
    }
}

fn guest_refusal(error: Error) -> GuestRefusal {
    let status = match &error {
        Error::Invalid(_) => 422,
        Error::NotFound { .. } => 404,
        Error::InvalidState { .. } | Error::Conflict { .. } => 409,
        _ => 503,
    };
    GuestRefusal {
        status,
        detail: error.to_string(),
    }
}

#[async_trait::async_trait]
impl GuestHandler for Guests {
    async fn view(
        &self,
        scale_set: &str,
        id: &str,
    ) -> std::result::Result<GuestView, GuestRefusal> {
        let instance = self.fleet()?.get_instance(scale_set, id).await;
        instance.map(|i| guest_view(&i)).map_err(guest_refusal)
    }

    async fn set_busy(
        &self,
        scale_set: &str,
        id: &str,
        seconds: u32,
    ) -> std::result::Result<GuestView, GuestRefusal> {
        let fleet = self.fleet()?;
        let instance = fleet
            .set_busy(scale_set, id, seconds, &format!("guest:{id}"))
            .await;
        instance.map(|i| guest_view(&i)).map_err(guest_refusal)
    }
}

impl Fleet {
    /// The set's instances, each with its last probe result.
    pub async fn list_instances(&self, name: &str) -> Result<Vec<Instance>> {
        self.get_scale_set(name).await?;
        let mut all = self.ctx.read_instances(name).await?;
        self.merge_probes(&mut all, Some(name)).await;
        Ok(all)
    }

    /// Every instance of the fleet (warm pools' members left out), by scale set then
    /// ordinal, in one read.
    pub async fn list_all_instances(&self) -> Result<Vec<Instance>> {
        let mut all = self
            .ctx
            .store
            .list_all_instances()
            .await
            .map_err(Error::store("list instances"))?;
        all.retain(|i| !i.in_warm_pool());
        self.merge_probes(&mut all, None).await;
        Ok(all)
    }

    /// `GET /scale-sets/{name}/warm-pool`: the set's warm pool members and its size.
    pub async fn warm_pool(&self, name: &str) -> Result<WarmPoolView> {
        let set = self.get_scale_set(name).await?;
        let mut items = self.ctx.read_records(name).await?;
        items.retain(Instance::in_warm_pool);
        self.merge_probes(&mut items, Some(name)).await;
        let sizing = warm_pool::sizing(&set.spec);
        let explanation = match &sizing {
            Some(s) => s.explain(),
            None => "no warm pool: scale-out creates every instance".into(),
        };
        Ok(WarmPoolView {
            items,
            sizing,
            explanation,
        })
    }

    /// Sets each instance's last probe result: from this process's prober while it leads,
    /// else as the leader last shared them (of `scale_set`, or every set's). A failed read
    /// leaves them unset.
    async fn merge_probes(&self, instances: &mut [Instance], scale_set: Option<&str>) {
        if self.leadership.leading() {
            self.probes.merge(instances);
            return;
        }
        match self.ctx.store.list_probe_results(scale_set).await {
            Ok(stored) => merge_from(&stored.into_iter().collect(), instances),
            Err(e) => tracing::warn!(error = %chain(&e), "could not read the shared probe results"),
        }
    }

    /// How many instances each set (or only `scale_set`) has in each combination of
    /// states, counted by the store (no record is read).
    pub async fn instance_counts(&self, scale_set: Option<&str>) -> Result<Vec<StateCount>> {
        self.ctx
            .store
            .count_instances(scale_set)
            .await
            .map_err(Error::store("count instances"))
    }

    pub async fn get_instance(&self, name: &str, id: &str) -> Result<Instance> {
        let mut instance = self
            .ctx
            .store
            .get_instance(id)
            .await
            .map_err(Error::store("get instance"))?
            .filter(|i| i.scale_set == name)
            .ok_or_else(|| Error::NotFound {
                kind: "instance",
                name: id.into(),
            })?;
        self.merge_probes(std::slice::from_mut(&mut instance), Some(name))
            .await;
        Ok(instance)
    }

    /// Accepts a person's action on one instance. The reconciler carries it out; the answer
    /// is the instance with the action recorded (`updating`, or `deleting`).
    pub async fn instance_action(
        &self,
        name: &str,
        id: &str,
        action: InstanceAction,
        actor: &str,
    ) -> Result<Instance> {
        let started = self.now();
        // The set and the record may be written by a loop (health, observed state, a
        // scale-in) between the reads and the write: both are read afresh, the action
        // checked again and retried.
        let mut attempt = 0;
        let result = loop {
            let set = self.ctx.read_set(name).await?;
            if set.state == ScaleSetState::Deleting {
                return Err(Error::InvalidState {
                    message: format!("scale set {name:?} is being deleted"),
                });
            }
            let instance = self.get_instance(name, id).await?;
            let effect = instance
                .accept(action)
                .map_err(|refused| Error::InvalidState {
                    message: refused.to_string(),
                })?;
            match self.apply_action(&set, instance, effect, started).await {
                Err(Error::Conflict { .. }) if attempt < RETRIES => attempt += 1,
                other => break other?,
            }
        };
        self.ctx.events.publish(Event::InstanceChanged {
            instance: Box::new(result.clone()),
        });
        self.ctx
            .record_success(
                &format!("instance.{action}"),
                actor,
                Some(name),
                id,
                started,
                json!({"accepted": true}),
            )
            .await;
        self.wake(name);
        Ok(result)
    }

    /// Carries out `effect` of an action on `instance`.
    async fn apply_action(
        &self,
        set: &ScaleSet,
        instance: Instance,
        effect: ActionEffect,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<Instance> {
        let id = instance.id.clone();
        match effect {
            ActionEffect::None => Ok(instance),
            ActionEffect::Delete => {
                let (set, marked) = match self
                    .ctx
                    .store
                    .mark_deleting(set, std::slice::from_ref(&id), true, started)
                    .await
                {
                    Err(StoreError::Conflict { .. }) => {
                        return Err(Error::Conflict {
                            message: format!(
                                "scale set {:?} changed concurrently; retry",
                                set.name()
                            ),
                        });
                    }
                    other => other.map_err(Error::store("delete instance"))?,
                };
                self.ctx.events.publish(Event::ScaleSetChanged {
                    scale_set: Box::new(set.redacted()),
                });
                marked.into_iter().next().ok_or_else(|| Error::NotFound {
                    kind: "instance",
                    name: id,
                })
            }
            ActionEffect::SetDesiredPower(desired) => {
                let mut next = instance;
                next.desired_power = desired;
                next.provisioning_state = ProvisioningState::Updating;
                next.updated_at = started;
                self.write_instance(next).await
            }
            ActionEffect::Pending(pending) => {
                let mut next = instance;
                next.pending = Some(pending);
                next.provisioning_state = ProvisioningState::Updating;
                next.updated_at = started;
                self.write_instance(next).await
            }
        }
    }

    async fn write_instance(&self, next: Instance) -> Result<Instance> {
        let id = next.id.clone();
        let written = self
            .ctx
            .store
            .update_instances(&[next])
            .await
            .map_err(Error::store("update instance"))?;
        written
            .written
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict {
                message: format!("instance {id:?} changed concurrently; retry"),
            })
    }

    pub async fn set_protection(
        &self,
        name: &str,
        id: &str,
        protection: Protection,
        actor: &str,
    ) -> Result<Instance> {
        self.change_instance(
            name,
            id,
            actor,
            "instance.protection",
            serde_json::to_value(protection).unwrap_or_default(),
            |i| {
                i.protect_from_scale_in = protection.protect_from_scale_in;
                i.protect_from_scale_set_actions = protection.protect_from_scale_set_actions;
            },
        )
        .await
    }

    /// Turns the load balancer's switch for one instance: `false` drains it (nothing new
    /// is sent to it, requests in flight finish), `true` lets it serve again. Separate from
    /// health: a drained instance keeps being probed.
    pub async fn set_load_balancer_enabled(
        &self,
        name: &str,
        id: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<Instance> {
        let operation = if enabled {
            "instance.load_balancer.enable"
        } else {
            "instance.load_balancer.drain"
        };
        self.change_instance(
            name,
            id,
            actor,
            operation,
            json!({"load_balancer_enabled": enabled}),
            |i| i.load_balancer_enabled = enabled,
        )
        .await
    }

    /// Applies a person's `change` to one instance that is not being deleted, then
    /// publishes and logs it.
    async fn change_instance(
        &self,
        name: &str,
        id: &str,
        actor: &str,
        operation: &str,
        details: serde_json::Value,
        change: impl FnOnce(&mut Instance),
    ) -> Result<Instance> {
        let started = self.now();
        let mut next = self.get_instance(name, id).await?;
        if next.provisioning_state == ProvisioningState::Deleting {
            return Err(Error::InvalidState {
                message: format!("instance {id:?} is being deleted"),
            });
        }
        change(&mut next);
        next.updated_at = started;
        let mut written = self.write_instance(next).await?;
        self.merge_probes(std::slice::from_mut(&mut written), Some(name))
            .await;
        self.ctx.events.publish(Event::InstanceChanged {
            instance: Box::new(written.clone()),
        });
        self.ctx
            .record_success(operation, actor, Some(name), id, started, details)
            .await;
        Ok(written)
    }

    /// Ends instance `id`'s wait on lifecycle hook `hook` with `result`
    /// (`POST …/instances/{id}/lifecycle/{hook}/complete`); 409 unless it waits on it.
    pub async fn complete_lifecycle(
        &self,
        name: &str,
        id: &str,
        hook: &str,
        result: LifecycleResult,
        actor: &str,
    ) -> Result<Instance> {
        self.lifecycle_change(
            name,
            id,
            actor,
            "instance.lifecycle.complete",
            |set, i, now| lifecycle::complete(set, i, hook, result, now),
        )
        .await
    }

    /// Records a heartbeat of instance `id`'s wait on `hook`: the wait lasts a whole
    /// heartbeat timeout again (`POST …/lifecycle/{hook}/heartbeat`); 409 unless it waits
    /// on it.
    pub async fn lifecycle_heartbeat(
        &self,
        name: &str,
        id: &str,
        hook: &str,
        actor: &str,
    ) -> Result<Instance> {
        self.lifecycle_change(
            name,
            id,
            actor,
            "instance.lifecycle.heartbeat",
            |set, i, now| lifecycle::heartbeat(set, i, hook, now),
        )
        .await
    }

    /// Applies a completion or heartbeat to a fresh read of the record (retried when a loop
    /// wrote it meanwhile), then publishes, logs and wakes the set's loop.
    async fn lifecycle_change(
        &self,
        name: &str,
        id: &str,
        actor: &str,
        operation: &str,
        change: impl Fn(&ScaleSet, &Instance, DateTime<Utc>) -> Result<(Instance, Notice), Refused>,
    ) -> Result<Instance> {
        let started = self.now();
        let mut attempt = 0;
        let (written, notice) = loop {
            let set = self.ctx.read_set(name).await?;
            let instance = self.get_instance(name, id).await?;
            let (next, notice) = change(&set, &instance, started)
                .map_err(|refused| Error::InvalidState { message: refused.0 })?;
            match self.write_instance(next).await {
                Err(Error::Conflict { .. }) if attempt < RETRIES => attempt += 1,
                other => break (other?, notice),
            }
        };
        self.ctx.events.publish(Event::InstanceChanged {
            instance: Box::new(written.clone()),
        });
        self.ctx.events.publish(Event::Lifecycle {
            notice: Box::new(notice.clone()),
        });
        self.ctx
            .record_success(operation, actor, Some(name), id, started, json!(notice))
            .await;
        self.wake(name);
        Ok(written)
    }

    /// Sets instance `id`'s busy lease: scale-in, zone rebalancing and host maintenance
    /// leave it alone for `seconds` from now (at most [`MAX_BUSY_SECONDS`]; 0 ends the
    /// lease). A person's delete, repairs and rollouts do not wait for it.
    pub async fn set_busy(
        &self,
        name: &str,
        id: &str,
        seconds: u32,
        actor: &str,
    ) -> Result<Instance> {
        if seconds > MAX_BUSY_SECONDS {
            return Err(Error::Invalid(ValidationErrors::single(
                "seconds",
                format!(
                    "must be 0 to {MAX_BUSY_SECONDS} (0 ends the lease; renew it before it ends)"
                ),
            )));
        }
        let until =
            (seconds > 0).then(|| self.now() + chrono::Duration::seconds(i64::from(seconds)));
        self.change_instance(
            name,
            id,
            actor,
            "instance.busy",
            json!({"seconds": seconds, "busy_until": until}),
            |i| i.busy_until = until,
        )
        .await
    }

    /// The set's repair service: its status, limit and what it would repair now.
    pub async fn repairs(&self, name: &str) -> Result<RepairOverview> {
        let set = self.get_scale_set(name).await?;
        let instances = self.list_instances(name).await?;
        let zones = self.zones().await?;
        Ok(RepairOverview::of(
            &set.spec,
            &set.repairs,
            &instances,
            &zones,
            self.now(),
        ))
    }

    /// The set's newest `limit` repair entries (what the repair service did, its
    /// suspensions and resumptions: [`flotilla_domain::repair::ACTIVITY_OPERATIONS`]),
    /// newest first.
    pub async fn repair_history(&self, name: &str, limit: u32) -> Result<Vec<Activity>> {
        self.ctx.read_set(name).await?;
        let filter = ActivityFilter {
            scale_set: Some(name.into()),
            limit,
            ..ActivityFilter::default()
        };
        self.activity_of(&filter, &flotilla_domain::repair::ACTIVITY_OPERATIONS)
            .await
    }

    /// Resumes automatic repairs the service suspended (and forgets its failures).
    pub async fn resume_repairs(&self, name: &str, actor: &str) -> Result<ScaleSet> {
        let started = self.now();
        let set = self.get_scale_set(name).await?;
        if !set.repairs.is_suspended() {
            return Err(Error::InvalidState {
                message: format!("automatic repairs of {name:?} are not suspended"),
            });
        }
        let resumed = RepairStatus {
            rebalancing: set.repairs.rebalancing.clone(),
            ..RepairStatus::default()
        };
        self.ctx
            .store
            .set_repair_status(name, &resumed)
            .await
            .map_err(Error::store("resume repairs"))?;
        let reason = set.repairs.suspended_reason;
        let set = self.get_scale_set(name).await?;
        self.after_change(
            &set,
            "repairs.resume",
            actor,
            started,
            json!({"suspended_reason": reason}),
        )
        .await;
        Ok(set)
    }

    /// The prober's counters; reading resets the lag maximum.
    pub fn prober_stats(&self) -> ProberStats {
        self.prober.read()
    }
}
