//! The `orphan_sweep` task: this installation's VMs whose scale set the database does not know.
//!
//! Every minute (every reconcile interval when longer, every grace period when shorter) the
//! sweep lists the backend's VMs and asks the pure
//! [`flotilla_domain::orphan::sweep`] what to do: an orphan is noted at first sight (an
//! activity entry says when it will go) and removed only after `orphan_grace` — a database
//! pointed at by mistake, or restored from an old backup, costs nothing if the operator
//! notices within the grace period. When each orphan was first seen lives in memory, so a
//! restart starts the grace period again: later, never sooner. VMs of another installation,
//! or of none, are never touched (the reconciler skips them too).
//!
//! At start, [`adopt_legacy`] gives this installation's id to the VMs made before
//! installations had ids that have a record here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_domain::orphan::{OrphanPlan, sweep};
use flotilla_domain::{ActivityResult, NewActivity};
use futures::future::BoxFuture;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result, chain};
use crate::tasks::{Control, Task};

/// Adopts every VM without an installation id whose instance record is here (same id, same
/// scale set): the first start after an upgrade makes the existing fleet this
/// installation's. The others stay untouched.
pub(crate) async fn adopt_legacy(ctx: &Context) -> Result<()> {
    let vms = ctx
        .backend
        .list(None)
        .await
        .map_err(Error::backend("list VMs"))?;
    let mut adopted = Vec::new();
    for vm in vms.iter().filter(|vm| vm.installation_id.is_none()) {
        let owned = ctx
            .store
            .get_instance(&vm.id)
            .await
            .map_err(Error::store("get instance"))?
            .is_some_and(|record| record.scale_set == vm.scale_set);
        if !owned {
            continue;
        }
        match ctx.backend.adopt(&vm.id).await {
            Ok(_) => adopted.push(vm.id.clone()),
            Err(e) => tracing::warn!(vm = %vm.id, error = %chain(&e), "could not adopt a VM"),
        }
    }
    if !adopted.is_empty() {
        tracing::info!(
            count = adopted.len(),
            "adopted VMs made before installations had ids"
        );
        let now = ctx.clock.now();
        ctx
            .record(NewActivity {
                operation: "backend.adopt".into(),
                actor: "system:control".into(),
                scale_set: None,
                target: "backend".into(),
                started_at: now,
                ended_at: Some(now),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({
                    "installation_id": ctx.backend.installation_id(),
                    "vms": adopted,
                    "message": "VMs from before installations had ids, with a record here, are this installation's now",
                }),
            })
            .await;
    }
    Ok(())
}

/// How often the sweep lists every VM: it is after the hour, not the second, so at most once
/// a minute — more often only when the grace period itself is shorter.
fn every(reconcile: Duration, grace: Duration) -> Duration {
    reconcile
        .max(Duration::from_secs(60))
        .min(grace)
        .max(Duration::from_secs(1))
}

/// The sweep and its memory: when each orphan was first seen.
pub(crate) struct OrphanSweep {
    ctx: Context,
    first_seen: tokio::sync::Mutex<BTreeMap<String, DateTime<Utc>>>,
}

impl OrphanSweep {
    pub(crate) fn new(ctx: Context) -> Self {
        Self {
            ctx,
            first_seen: Default::default(),
        }
    }

    /// One sweep: gathers, decides, notes and removes. Sweeps run one at a time.
    pub(crate) async fn once(&self) -> Result<String> {
        let ctx = &self.ctx;
        let mut first_seen = self.first_seen.lock().await;
        // The VMs first, then the sets: a set is stored before its first VM is created and
        // removed after its last VM is gone, so no VM of a live set can look like an orphan.
        let vms = ctx
            .backend
            .list(None)
            .await
            .map_err(Error::backend("list VMs"))?;
        let known: BTreeSet<String> = ctx
            .read_sets()
            .await?
            .into_iter()
            .map(|s| s.spec.name)
            .collect();
        let now = ctx.clock.now();
        let grace =
            chrono::Duration::from_std(ctx.config.orphan_grace).unwrap_or(chrono::Duration::MAX);
        let plan = sweep(
            ctx.backend.installation_id(),
            &known,
            &vms,
            &first_seen,
            now,
            grace,
        );
        let summary = format!(
            "{} VM(s) listed, {} orphan(s) noticed, {} to remove",
            vms.len(),
            plan.noticed.values().map(Vec::len).sum::<usize>(),
            plan.remove.values().map(Vec::len).sum::<usize>()
        );
        act(ctx, plan, &mut first_seen, now, grace).await;
        Ok(summary)
    }
}

impl Task for OrphanSweep {
    fn name(&self) -> &'static str {
        "orphan_sweep"
    }

    /// Sweeps at start and then every [`every`].
    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let config = &self.ctx.config;
            let period = every(config.reconcile_interval, config.orphan_grace);
            let mut delay = Duration::ZERO;
            while control.next(delay).await {
                delay = period;
                control.activation(self.once()).await;
            }
        })
    }
}

async fn act(
    ctx: &Context,
    plan: OrphanPlan,
    first_seen: &mut BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) {
    for id in &plan.forget {
        first_seen.remove(id);
    }
    for (set, ids) in plan.noticed {
        for id in &ids {
            first_seen.insert(id.clone(), now);
        }
        let removal = now + grace;
        tracing::warn!(scale_set = %set, vms = ?ids, %removal, "VMs of this installation belong to a scale set the database does not know");
        ctx
            .record(NewActivity {
                operation: "backend.orphans".into(),
                actor: "system:orphans".into(),
                scale_set: Some(set.clone()),
                target: set.clone(),
                started_at: now,
                ended_at: Some(now),
                result: ActivityResult::Succeeded,
                error: None,
                details: json!({
                    "vms": ids,
                    "remove_after": removal,
                    "message": format!(
                        "{} VM(s) of this installation belong to scale set {set:?}, which the database does not know: they are removed at {removal} unless the scale set comes back (a wrong --database-url or an old backup?)",
                        ids.len()
                    ),
                }),
            })
            .await;
    }
    if !plan.remove.is_empty()
        && let Err(e) = ctx.store.check_fence().await
    {
        tracing::warn!(error = %chain(&e), "orphaned VMs kept: this replica no longer leads");
        return;
    }
    for (set, ids) in plan.remove {
        let started = ctx.clock.now();
        let mut removed = Vec::new();
        let mut failed = Vec::new();
        for id in ids {
            match ctx.backend.delete(&id, true).await {
                Ok(()) => {
                    first_seen.remove(&id);
                    removed.push(id);
                }
                Err(e) => failed.push(json!({"vm": id, "error": chain(&e)})),
            }
        }
        ctx.record(NewActivity {
            operation: "backend.orphans_removed".into(),
            actor: "system:orphans".into(),
            scale_set: Some(set.clone()),
            target: set.clone(),
            started_at: started,
            ended_at: Some(ctx.clock.now()),
            result: if failed.is_empty() {
                ActivityResult::Succeeded
            } else {
                ActivityResult::Failed
            },
            error: (!failed.is_empty())
                .then(|| format!("{} VM(s) could not be removed", failed.len())),
            details: json!({"removed": removed, "failures": failed}),
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_at_most_once_a_minute_unless_the_grace_is_shorter() {
        let s = Duration::from_secs;
        assert_eq!(every(s(10), s(3600)), s(60));
        assert_eq!(every(s(300), s(3600)), s(300));
        assert_eq!(every(s(1), s(4)), s(4));
        assert_eq!(every(s(1), Duration::ZERO), s(1));
    }
}
