//! The reconcile step that empties closed hosts (under maintenance or unreachable) by
//! surge: [`maintenance::plan_moves`] decides, this writes — retiring instances first (the
//! plan that follows creates their replacements on open hosts), then marks deleting those
//! whose replacements serve (the plan drains them, the terminating hooks hold them); moves
//! whose host opened again are released.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use flotilla_domain::maintenance::{self, HostMaintenance, MoveInput};
use flotilla_domain::{ActivityResult, Instance, NewActivity, ScaleSet, ZoneStatus};
use serde_json::json;

use super::replace;
use crate::context::Context;
use crate::error::{Error, Result};

/// The backend's zones with the closed hosts' fault domains closed to new instances too
/// (besides those the backend reports closed itself: the mock's hosts that are down).
pub(crate) fn close(mut zones: Vec<ZoneStatus>, closed: &[HostMaintenance]) -> Vec<ZoneStatus> {
    for z in &mut zones {
        for h in closed.iter().filter(|h| h.zone == z.name) {
            if !z.closed_fault_domains.contains(&h.fault_domain) {
                z.closed_fault_domains.push(h.fault_domain);
            }
        }
        z.closed_fault_domains.sort_unstable();
    }
    zones
}

/// Whether the set's instance `i` serves now, as moves count it: in the load balancer's
/// pool when the set has frontends, else in service and healthy.
pub(crate) fn serving(ctx: &Context, set: &ScaleSet) -> impl Fn(&Instance) -> bool {
    let balanced = set
        .spec
        .load_balancer
        .as_ref()
        .is_some_and(|lb| !lb.frontends.is_empty());
    let lb = ctx.balancer.lb.clone();
    move |i: &Instance| {
        if balanced {
            lb.serves(&i.id)
        } else {
            i.in_pool()
        }
    }
}

/// Whether a rollout of set `name` is running.
async fn rollout_active(ctx: &Context, name: &str) -> Result<bool> {
    Ok(ctx
        .active_rollouts()
        .await?
        .iter()
        .any(|r| r.scale_set == name))
}

/// Starts and finishes the set's moves off closed hosts, updating `records`.
pub(super) async fn move_off(
    ctx: &Context,
    set: &ScaleSet,
    records: &mut [Instance],
    closed: &[HostMaintenance],
    now: DateTime<Utc>,
) -> Result<()> {
    // Nothing on a closed host and nothing retiring: nothing to decide (the common case
    // costs no read).
    if !records
        .iter()
        .any(|i| i.retiring || closed.iter().any(|h| h.holds(i)))
    {
        return Ok(());
    }
    let rollout_active = rollout_active(ctx, set.name()).await?;
    let plan = maintenance::plan_moves(MoveInput {
        set,
        instances: records,
        closed,
        serving: &serving(ctx, set),
        rollout_active,
        now,
    });
    if plan.is_empty() {
        return Ok(());
    }
    // What each entry says, read before the records change.
    let about: HashMap<String, (String, String)> = plan
        .waiting
        .iter()
        .filter_map(|w| {
            let i = records.iter().find(|i| i.id == w.instance)?;
            let host = closed.iter().find(|h| h.holds(i))?;
            Some((w.instance.clone(), (host.host.clone(), w.reason.clone())))
        })
        .collect();
    let mut entries: Vec<NewActivity> = Vec::new();
    let mut released: Vec<String> = Vec::new();
    let mut entry = |id: &str, step: &str| {
        let (host, reason) = about.get(id).cloned().unwrap_or_default();
        entries.push(NewActivity {
            operation: "host.move".into(),
            actor: "system:hosts".into(),
            scale_set: Some(set.name().into()),
            target: id.into(),
            started_at: now,
            ended_at: Some(now),
            result: ActivityResult::Succeeded,
            error: None,
            details: json!({"host": host, "step": step,
                "message": format!("{id} on closed host {host}: {reason}")}),
        });
    };
    // Retired and released alike: `retiring` flips; a record changed meanwhile is left to
    // the next activation, which decides again.
    let flips: Vec<Instance> = records
        .iter()
        .filter_map(|i| {
            let retiring = if plan.retire.contains(&i.id) {
                true
            } else if plan.release.contains(&i.id) {
                false
            } else {
                return None;
            };
            Some(Instance {
                retiring,
                updated_at: now,
                ..i.clone()
            })
        })
        .collect();
    if !flips.is_empty() {
        let written = ctx
            .store
            .update_instances(&flips)
            .await
            .map_err(Error::store("mark instances moving off closed hosts"))?;
        replace(records, &written.written);
        for i in &written.written {
            if i.retiring {
                entry(&i.id, "retire");
            } else {
                released.push(i.id.clone());
            }
        }
        ctx.publish_instances(written.written);
    }
    if !plan.delete.is_empty() {
        let (_, marked) = ctx
            .store
            .mark_deleting(set, &plan.delete, false, now)
            .await
            .map_err(Error::store("mark moved instances deleting"))?;
        replace(records, &marked);
        for i in &marked {
            entry(&i.id, "leave");
        }
        ctx.publish_instances(marked);
    }
    for e in entries {
        ctx.record(e).await;
    }
    for id in released {
        ctx.record(NewActivity {
            operation: "host.move".into(),
            actor: "system:hosts".into(),
            scale_set: Some(set.name().into()),
            target: id.clone(),
            started_at: now,
            ended_at: Some(now),
            result: ActivityResult::Succeeded,
            error: None,
            details: json!({"step": "stay",
                "message": format!("{id}: its host opened again before it moved; it stays")}),
        })
        .await;
    }
    Ok(())
}
