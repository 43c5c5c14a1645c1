//! The orphan sweep's decision: which of this installation's VMs belong to no scale set this
//! database knows, and when they may go.
//!
//! Such VMs come from a crash between a scale set's last instance record and its VMs, or
//! from a database restored from a backup older than the sets it lacks. A wrong
//! `--database-url` looks the same, so nothing is removed at first sight: a VM is *noticed*
//! (the activity log says when it will go), and removed only once it has been an orphan for
//! the whole grace period — unless its scale set comes back meanwhile. VMs of another
//! installation, or of none, are never considered: they are not this installation's to
//! remove.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::reconcile::ObservedVm;

/// What one sweep decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrphanPlan {
    /// Orphans seen for the first time, by scale set: note them, and when they will go.
    pub noticed: BTreeMap<String, Vec<String>>,
    /// Orphans past the grace period, by scale set: remove them.
    pub remove: BTreeMap<String, Vec<String>>,
    /// VMs no longer orphans (gone, or their set came back): forget when they were seen.
    pub forget: Vec<String>,
}

/// Decides, given this installation's id, the scale sets the database knows, every VM the
/// backend holds, when each orphan was first seen, `now` and the grace period.
pub fn sweep(
    installation: &str,
    known_sets: &BTreeSet<String>,
    vms: &[ObservedVm],
    first_seen: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> OrphanPlan {
    let mut plan = OrphanPlan::default();
    let mut orphans = BTreeSet::new();
    for vm in vms {
        let ours = vm.installation_id.as_deref() == Some(installation);
        if !ours || known_sets.contains(&vm.scale_set) {
            continue;
        }
        orphans.insert(vm.id.as_str());
        let by_set = match first_seen.get(&vm.id) {
            None => &mut plan.noticed,
            Some(seen) if now - *seen >= grace => &mut plan.remove,
            Some(_) => continue,
        };
        by_set
            .entry(vm.scale_set.clone())
            .or_default()
            .push(vm.id.clone());
    }
    plan.forget = first_seen
        .keys()
        .filter(|id| !orphans.contains(id.as_str()))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::PowerState;

    fn vm(id: &str, set: &str, installation: Option<&str>) -> ObservedVm {
        ObservedVm {
            id: id.into(),
            scale_set: set.into(),
            zone: "1".into(),
            fault_domain: 0,
            model_version: 1,
            power_state: PowerState::Running,
            address: None,
            installation_id: installation.map(str::to_string),
            lease_generation: None,
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::minutes(minutes)
    }

    fn ids(map: &BTreeMap<String, Vec<String>>) -> Vec<&str> {
        map.values().flatten().map(String::as_str).collect()
    }

    #[test]
    fn each_vm_by_its_state() {
        let known: BTreeSet<String> = ["web".to_string()].into();
        let vms = [
            vm("web_0", "web", Some("me")),     // a known set: not an orphan
            vm("old_0", "old", Some("me")),     // first seen now: noticed
            vm("old_1", "old", Some("me")),     // seen 30 min ago: waits
            vm("gone_0", "gone", Some("me")),   // seen 61 min ago: removed
            vm("theirs_0", "x", Some("other")), // another installation's: never
            vm("legacy_0", "y", None),          // no installation: never
        ];
        let seen = BTreeMap::from([
            ("old_1".to_string(), at(30)),
            ("gone_0".to_string(), at(-1)),
            ("came_back_0".to_string(), at(0)), // no longer an orphan (or gone): forgotten
        ]);
        let plan = sweep("me", &known, &vms, &seen, at(60), Duration::hours(1));
        assert_eq!(ids(&plan.noticed), ["old_0"]);
        assert_eq!(ids(&plan.remove), ["gone_0"]);
        assert_eq!(plan.remove.keys().collect::<Vec<_>>(), ["gone"]);
        assert_eq!(plan.forget, ["came_back_0"]);
    }

    #[test]
    fn exactly_the_grace_period_is_enough() {
        let vms = [vm("old_0", "old", Some("me"))];
        let seen = BTreeMap::from([("old_0".to_string(), at(0))]);
        let grace = Duration::minutes(10);
        let early = sweep("me", &BTreeSet::new(), &vms, &seen, at(9), grace);
        assert!(early.remove.is_empty() && early.noticed.is_empty());
        let due = sweep("me", &BTreeSet::new(), &vms, &seen, at(10), grace);
        assert_eq!(ids(&due.remove), ["old_0"]);
    }
}
