//! The `host_watch` task: a host that stays unreachable is closed, and opened again when it
//! answers.
//!
//! Every [`EVERY`] it lists the backend's hosts. One that has not been available for
//! `host_unreachable_after` gets a host maintenance record with reason `unreachable`
//! (actor `system:hosts`): nothing new is placed on it, and each set replaces its instances
//! there on the zone's other hosts (`tasks::reconciler::hosts`; unlike a maintenance, the
//! lost instances are not waited for). When it answers again, a record this task made is
//! removed; a person's maintenance is left for a person to end. The first sight of a host
//! down is kept in memory: after a restart (or a change of leader) the grace period starts
//! again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::maintenance::{HostMaintenance, MaintenanceReason};
use futures::future::BoxFuture;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::{Control, Task};

/// How often the hosts are listed.
const EVERY: Duration = Duration::from_secs(2);

pub(crate) struct HostWatch {
    ctx: Context,
    /// When each host was first seen unavailable in this run.
    down_since: Mutex<BTreeMap<String, DateTime<Utc>>>,
    /// When a host closes or opens, every set's loop looks again.
    wake: SetWaker,
}

impl HostWatch {
    pub(crate) fn new(ctx: Context, wake: SetWaker) -> Self {
        Self {
            ctx,
            down_since: Mutex::default(),
            wake,
        }
    }

    /// One pass; answers what it changed.
    async fn once(&self) -> Result<String> {
        let ctx = &self.ctx;
        let hosts = ctx
            .backend
            .hosts()
            .await
            .map_err(Error::backend("list hosts"))?;
        let closed = ctx.closed_hosts().await?;
        let now = ctx.now();
        let grace = chrono::Duration::from_std(ctx.config.host_unreachable_after)
            .unwrap_or(chrono::Duration::MAX);
        let mut to_close = Vec::new();
        {
            let mut down = self.down_since.lock().expect("down_since lock");
            down.retain(|name, _| hosts.iter().any(|h| &h.name == name && !h.available));
            for h in hosts.iter().filter(|h| !h.available) {
                let since = *down.entry(h.name.clone()).or_insert(now);
                if now - since >= grace && !closed.iter().any(|c| c.host == h.name) {
                    to_close.push((h.clone(), since));
                }
            }
        }
        let mut changed = Vec::new();
        for (h, since) in to_close {
            let record = HostMaintenance {
                host: h.name.clone(),
                zone: h.zone.clone(),
                fault_domain: h.fault_domain,
                reason: MaintenanceReason::Unreachable,
                started_at: now,
                started_by: "system:hosts".into(),
                instances_at_start: h.vms,
            };
            ctx.store
                .put_host_maintenance(&record)
                .await
                .map_err(Error::store("close an unreachable host"))?;
            let why = h.error.clone().unwrap_or_else(|| "unavailable".into());
            tracing::warn!(host = %h.name, reason = %why, "host unreachable: its instances are replaced elsewhere");
            ctx.record_success(
                "host.unreachable",
                "system:hosts",
                None,
                &h.name,
                now,
                json!({"zone": h.zone, "fault_domain": h.fault_domain, "since": since, "error": why,
                    "message": format!("host {} has been unreachable since {since}: its instances are replaced on open hosts", h.name)}),
            )
            .await;
            changed.push(format!("{} closed", h.name));
        }
        for c in closed
            .iter()
            .filter(|c| c.reason == MaintenanceReason::Unreachable)
        {
            if hosts.iter().any(|h| h.name == c.host && h.available) {
                ctx.store
                    .delete_host_maintenance(&c.host)
                    .await
                    .map_err(Error::store("open a host that answers again"))?;
                ctx.record_success(
                    "host.reachable",
                    "system:hosts",
                    None,
                    &c.host,
                    now,
                    json!({"message": format!("host {} answers again and takes new instances", c.host)}),
                )
                .await;
                changed.push(format!("{} opened", c.host));
            }
        }
        if changed.is_empty() {
            return Ok("no change".into());
        }
        for set in ctx.read_sets().await? {
            self.wake.wake(set.name());
        }
        Ok(changed.join(", "))
    }
}

impl Task for HostWatch {
    fn name(&self) -> &'static str {
        "host_watch"
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            while control.next(EVERY).await {
                control.activation(self.once()).await;
            }
        })
    }
}
