//! What every task and the facade share, and nothing that belongs to one task: the store,
//! the backend, the clock, the event bus, the load balancer handle and the settings, with
//! the few writes they all make the same way (an activity entry, a guarded change of a
//! scale set).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flotilla_backend::Backend;
use flotilla_domain::maintenance::HostMaintenance;
use flotilla_domain::rollout::Rollout;
use flotilla_domain::{
    Activity, ActivityResult, Event, Instance, NewActivity, ScaleSet, ScaleSetState,
};
use flotilla_store::{Fence, InstancesVersion, Store, StoreError};

use crate::balancer::Balancer;
use crate::clock::Clock;
use crate::config::FleetConfig;
use crate::error::{Error, Result, chain};
use crate::events::EventBus;

/// How many times a change is re-applied when a concurrent writer wins.
pub(crate) const RETRIES: usize = 5;

/// Cheap to clone: every part is shared.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: EventBus,
    pub(crate) balancer: Arc<Balancer>,
    pub(crate) config: Arc<FleetConfig>,
    /// The lease the store's writes are fenced by (the leader's tasks'; `None` for the
    /// facade's context).
    pub(crate) fence: Option<Arc<Fence>>,
    /// Each set's records as last read, shared by the tasks and the facade.
    pub(crate) held: Arc<Held>,
}

/// Each scale set's records as last read, with the [`InstancesVersion`] read before them:
/// a read of a set whose records no write changed since costs one row (the version), not
/// the decoding of every record — the reconciler's activations of a steady set, and the
/// portal's pages of a big one.
#[derive(Default)]
pub(crate) struct Held(Mutex<HashMap<String, (InstancesVersion, Vec<Instance>)>>);

impl Held {
    /// The set's records, if those held were read at `version`.
    pub(crate) fn get(&self, name: &str, version: InstancesVersion) -> Option<Vec<Instance>> {
        let held = self.0.lock().expect("held records poisoned");
        held.get(name)
            .filter(|(at, _)| *at == version)
            .map(|(_, records)| records.clone())
    }

    /// Holds `records`, read after `version` was.
    pub(crate) fn put(&self, name: &str, version: InstancesVersion, records: Vec<Instance>) {
        self.0
            .lock()
            .expect("held records poisoned")
            .insert(name.to_string(), (version, records));
    }

    /// Drops what is held for a removed set.
    pub(crate) fn forget(&self, name: &str) {
        self.0.lock().expect("held records poisoned").remove(name);
    }
}

impl Context {
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The generation of the lease this context acts under, recorded on what it makes
    /// outside the database (each VM's metadata).
    pub(crate) fn lease_generation(&self) -> Option<i64> {
        self.fence.as_ref().and_then(|f| f.generation())
    }

    /// Appends an activity entry and publishes it ([`record_to`]).
    pub(crate) async fn record(&self, entry: NewActivity) -> Option<Activity> {
        record_to(self.store.as_ref(), &self.events, entry).await
    }

    /// Records a succeeded operation that started at `started` and ends now.
    pub(crate) async fn record_success(
        &self,
        operation: &str,
        actor: &str,
        scale_set: Option<&str>,
        target: &str,
        started: chrono::DateTime<chrono::Utc>,
        details: serde_json::Value,
    ) {
        self.record(NewActivity {
            operation: operation.into(),
            actor: actor.into(),
            scale_set: scale_set.map(str::to_string),
            target: target.into(),
            started_at: started,
            ended_at: Some(self.now()),
            result: ActivityResult::Succeeded,
            error: None,
            details,
        })
        .await;
    }

    /// Announces a changed scale set and records the operation that changed it.
    pub(crate) async fn set_changed(
        &self,
        set: &ScaleSet,
        operation: &str,
        actor: &str,
        started: chrono::DateTime<chrono::Utc>,
        details: serde_json::Value,
    ) {
        self.events.publish(Event::ScaleSetChanged {
            scale_set: Box::new(set.clone().redacted()),
        });
        self.record_success(
            operation,
            actor,
            Some(set.name()),
            set.name(),
            started,
            details,
        )
        .await;
    }

    /// Every scale set as stored, keys included: for the control plane's own use.
    pub(crate) async fn read_sets(&self) -> Result<Vec<ScaleSet>> {
        self.store
            .list_scale_sets()
            .await
            .map_err(Error::store("list scale sets"))
    }

    /// The scale set as stored, keys included: for the control plane's own use.
    pub(crate) async fn read_set(&self, name: &str) -> Result<ScaleSet> {
        self.store
            .get_scale_set(name)
            .await
            .map_err(Error::store("get scale set"))?
            .ok_or_else(|| Error::NotFound {
                kind: "scale set",
                name: name.into(),
            })
    }

    /// The set's instances in service (or leaving it) as stored, no last probe result
    /// merged: every record but the warm pool's members.
    pub(crate) async fn read_instances(&self, name: &str) -> Result<Vec<Instance>> {
        let mut all = self.read_records(name).await?;
        all.retain(|i| !i.in_warm_pool());
        Ok(all)
    }

    /// Every closed host (under maintenance or unreachable).
    pub(crate) async fn closed_hosts(&self) -> Result<Vec<HostMaintenance>> {
        self.store
            .list_host_maintenance()
            .await
            .map_err(Error::store("list closed hosts"))
    }

    /// Every active rollout of the fleet, oldest first.
    pub(crate) async fn active_rollouts(&self) -> Result<Vec<Rollout>> {
        self.store
            .active_rollouts()
            .await
            .map_err(Error::store("list active rollouts"))
    }

    /// Every record of the set, the warm pool's members too: those [`Held`] when no write
    /// changed them since (none for a set that does not exist).
    pub(crate) async fn read_records(&self, name: &str) -> Result<Vec<Instance>> {
        // The version first: records read after it are at least as new as it says.
        let version = match self.store.instances_version(name).await {
            Ok(version) => version,
            Err(StoreError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(Error::store("read the instances version")(e)),
        };
        if let Some(records) = self.held.get(name, version) {
            return Ok(records);
        }
        let records = self
            .store
            .list_instances(name)
            .await
            .map_err(Error::store("list instances"))?;
        self.held.put(name, version, records.clone());
        Ok(records)
    }

    /// Hands the load balancer the set's serving instances as the store has them now.
    /// Refreshes run one at a time, each reading after the last was applied.
    pub(crate) async fn refresh_pool(&self, name: &str) -> Result<()> {
        let _one = self.balancer.refreshes.lock().await;
        let records = self.read_records(name).await?;
        self.balancer.set_pool(name, &records);
        Ok(())
    }

    /// Applies `change` to a fresh copy of the set and stores it, re-reading and re-applying
    /// when a concurrent writer got there first; answers the set before and after.
    pub(crate) async fn modify_set(
        &self,
        name: &str,
        created_by: &str,
        change: impl Fn(&ScaleSet) -> Result<ScaleSet>,
    ) -> Result<(ScaleSet, ScaleSet)> {
        for _ in 0..RETRIES {
            let current = self.read_set(name).await?;
            if current.state == ScaleSetState::Deleting {
                return Err(Error::InvalidState {
                    message: format!("scale set {name:?} is being deleted"),
                });
            }
            let mut next = change(&current)?;
            next.updated_at = self.now();
            match self.store.update_scale_set(&next, created_by).await {
                Ok(stored) => return Ok((current, stored)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(Error::store("update scale set")(e)),
            }
        }
        Err(Error::Conflict {
            message: format!("scale set {name:?} is changing too often; retry"),
        })
    }

    /// Writes the records (generation-guarded) and announces them; answers the ids not
    /// written because they changed meanwhile.
    pub(crate) async fn write_instances(&self, updates: Vec<Instance>) -> Result<Vec<String>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let written = self
            .store
            .update_instances(&updates)
            .await
            .map_err(Error::store("update instances"))?;
        self.publish_instances(written.written);
        Ok(written.stale)
    }

    /// Announces changed instance records.
    pub(crate) fn publish_instances(&self, instances: impl IntoIterator<Item = Instance>) {
        for i in instances {
            self.events.publish(Event::InstanceChanged {
                instance: Box::new(i),
            });
        }
    }
}

/// Appends an activity entry to `store` and publishes it on `events`. A failure to write is
/// logged, not returned: the operation it describes has already happened. Its details are
/// scrubbed of secrets first, whoever wrote them ([`flotilla_domain::secret::scrub`]).
pub(crate) async fn record_to(
    store: &dyn Store,
    events: &EventBus,
    mut entry: NewActivity,
) -> Option<Activity> {
    flotilla_domain::secret::scrub(&mut entry.details);
    match store.append_activity(&entry).await {
        Ok(activity) => {
            events.publish(Event::Activity {
                activity: Box::new(activity.clone()),
            });
            Some(activity)
        }
        Err(e) => {
            tracing::error!(operation = %entry.operation, error = %chain(&e), "could not record activity");
            None
        }
    }
}
