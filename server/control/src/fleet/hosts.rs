//! Host maintenance: closing a host (its instances move off by surge in each set's reconcile
//! loop, see `tasks::reconciler::hosts`), its progress, and returning it.

use std::collections::BTreeMap;

use flotilla_domain::maintenance::{
    self, HostMaintenance, MaintenanceReason, MaintenanceStatus, MoveInput,
};
use flotilla_domain::{HostStatus, Instance};
use serde_json::json;

use super::Fleet;
use crate::error::{Error, Result};
use crate::tasks::reconciler::hosts::serving;

impl Fleet {
    /// The backend's host `name`.
    async fn host(&self, name: &str) -> Result<HostStatus> {
        self.ctx
            .backend
            .hosts()
            .await
            .map_err(Error::backend("list hosts"))?
            .into_iter()
            .find(|h| h.name == name)
            .ok_or_else(|| Error::NotFound {
                kind: "host",
                name: name.into(),
            })
    }

    /// Every record of every set, warm pool members too.
    async fn every_record(&self) -> Result<Vec<(String, Vec<Instance>)>> {
        let mut out = Vec::new();
        for set in self.ctx.read_sets().await? {
            let records = self.ctx.read_records(set.name()).await?;
            out.push((set.name().to_string(), records));
        }
        Ok(out)
    }

    /// Every closed host with its progress: how many instances left it, and each one still
    /// on it with its step and why it waits (as the reconcile loops decide it now).
    pub async fn maintenance(&self) -> Result<Vec<MaintenanceStatus>> {
        let closed = self.ctx.closed_hosts().await?;
        if closed.is_empty() {
            return Ok(Vec::new());
        }
        let rollouts = self.ctx.active_rollouts().await?;
        let now = self.now();
        let mut waiting: BTreeMap<String, Vec<maintenance::Waiting>> = BTreeMap::new();
        let mut left: BTreeMap<String, u32> = BTreeMap::new();
        for set in self.ctx.read_sets().await? {
            let records = self.ctx.read_records(set.name()).await?;
            for h in &closed {
                *left.entry(h.host.clone()).or_default() +=
                    records.iter().filter(|i| h.holds(i)).count() as u32;
            }
            let plan = maintenance::plan_moves(MoveInput {
                set: &set,
                instances: &records,
                closed: &closed,
                serving: &serving(&self.ctx, &set),
                rollout_active: rollouts.iter().any(|r| r.scale_set == set.name()),
                now,
            });
            for w in plan.waiting {
                let host = records
                    .iter()
                    .find(|i| i.id == w.instance)
                    .and_then(|i| closed.iter().find(|h| h.holds(i)));
                if let Some(h) = host {
                    waiting.entry(h.host.clone()).or_default().push(w);
                }
            }
        }
        Ok(closed
            .into_iter()
            .map(|record| {
                let on_it = left.get(&record.host).copied().unwrap_or(0);
                MaintenanceStatus {
                    moved: record.instances_at_start.saturating_sub(on_it),
                    empty: on_it == 0,
                    waiting: waiting.remove(&record.host).unwrap_or_default(),
                    record,
                }
            })
            .collect())
    }

    /// The closed host `name` with its progress.
    async fn maintenance_of(&self, name: &str) -> Result<MaintenanceStatus> {
        self.maintenance()
            .await?
            .into_iter()
            .find(|m| m.record.host == name)
            .ok_or_else(|| Error::InvalidState {
                message: format!("host {name:?} is not under maintenance"),
            })
    }

    /// Puts host `name` under maintenance: nothing new is placed on it and every scale set
    /// moves its instances off by surge. Starting it again changes nothing.
    pub async fn start_maintenance(&self, name: &str, actor: &str) -> Result<MaintenanceStatus> {
        let host = self.host(name).await?;
        let on_it = self
            .every_record()
            .await?
            .iter()
            .flat_map(|(_, records)| records)
            .filter(|i| i.zone == host.zone && i.fault_domain == host.fault_domain)
            .count() as u32;
        let started = self.now();
        let record = HostMaintenance {
            host: host.name.clone(),
            zone: host.zone.clone(),
            fault_domain: host.fault_domain,
            reason: MaintenanceReason::Maintenance,
            started_at: started,
            started_by: actor.into(),
            instances_at_start: on_it,
        };
        let stored = self
            .ctx
            .store
            .put_host_maintenance(&record)
            .await
            .map_err(Error::store("close the host"))?;
        if stored == record {
            self.ctx
                .record_success(
                    "host.maintenance",
                    actor,
                    None,
                    name,
                    started,
                    json!({"zone": host.zone, "fault_domain": host.fault_domain, "instances": on_it,
                        "message": format!("host {name} is under maintenance: {on_it} instance(s) move off it")}),
                )
                .await;
            self.wake_all();
        }
        self.maintenance_of(name).await
    }

    /// Returns host `name` to service: new instances may go there again, and instances that
    /// had not left it yet stay (each set's reconcile loop stops their moves; their surge
    /// replacements, if any, are removed by scale-in as any surplus is).
    pub async fn end_maintenance(&self, name: &str, actor: &str) -> Result<HostMaintenance> {
        let closed = self.ctx.closed_hosts().await?;
        let Some(record) = closed.into_iter().find(|h| h.host == name) else {
            return Err(match self.host(name).await {
                Ok(_) => Error::InvalidState {
                    message: format!("host {name:?} is not under maintenance"),
                },
                Err(e) => e,
            });
        };
        let started = self.now();
        self.ctx
            .store
            .delete_host_maintenance(name)
            .await
            .map_err(Error::store("return the host"))?;
        self.ctx
            .record_success(
                "host.maintenance_end",
                actor,
                None,
                name,
                started,
                json!({"message": format!("host {name} takes new instances again")}),
            )
            .await;
        self.wake_all();
        Ok(record)
    }
}
