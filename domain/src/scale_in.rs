//! Scale-in victim choice, after Azure's scale-in policy.
//!
//! Order: instances that are failed or unhealthy go first, then those still being created,
//! then the rest. Within each class: remove from the zone with the most active instances;
//! under the Default rule then from that zone's fault domain with the most instances, then
//! the highest instance id; under NewestVM the most recently created; under OldestVM the
//! oldest. Instances protected from scale-in or from scale-set actions, and those whose
//! busy lease holds, are never chosen: when too few are left, fewer are removed.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::instance::{HealthState, Instance, ProvisioningState};
use crate::scale_set::ScaleInRule;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScaleIn {
    pub victims: Vec<Victim>,
    /// How many could not be removed because every remaining candidate is protected.
    pub protected_shortfall: usize,
}

/// The class of an instance; lower classes are removed first.
fn class(i: &Instance) -> (u8, &'static str) {
    if i.provisioning_state == ProvisioningState::Failed || i.health_state == HealthState::Unhealthy
    {
        (0, "unhealthy or failed")
    } else if i.provisioning_state == ProvisioningState::Creating {
        (1, "not yet provisioned")
    } else {
        (2, "")
    }
}

/// Chooses `count` instances to remove from `active` (instances not being deleted); an
/// instance busy at `now` (its busy lease holds) is passed over as a protected one is.
pub fn choose_victims(
    active: &[Instance],
    count: usize,
    rule: ScaleInRule,
    now: DateTime<Utc>,
) -> ScaleIn {
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_fd: BTreeMap<(&str, u32), usize> = BTreeMap::new();
    for i in active {
        *per_zone.entry(&i.zone).or_default() += 1;
        *per_fd.entry((&i.zone, i.fault_domain)).or_default() += 1;
    }
    // Candidates by class, then zone, then fault domain; each list sorted so the preferred
    // victim is last (popped first).
    type Lists<'a> = BTreeMap<u8, BTreeMap<&'a str, BTreeMap<u32, Vec<&'a Instance>>>>;
    let mut lists: Lists = BTreeMap::new();
    for i in active.iter().filter(|i| {
        !i.protect_from_scale_in && !i.protect_from_scale_set_actions && !i.is_busy(now)
    }) {
        let fd_key = if rule == ScaleInRule::Default {
            i.fault_domain
        } else {
            0
        };
        lists
            .entry(class(i).0)
            .or_default()
            .entry(&i.zone)
            .or_default()
            .entry(fd_key)
            .or_default()
            .push(i);
    }
    for zones in lists.values_mut() {
        for fds in zones.values_mut() {
            for list in fds.values_mut() {
                match rule {
                    ScaleInRule::Default => list.sort_by_key(|i| i.ordinal),
                    ScaleInRule::NewestVm => list.sort_by_key(|i| (i.created_at, i.ordinal)),
                    ScaleInRule::OldestVm => {
                        list.sort_by_key(|i| Reverse((i.created_at, i.ordinal)))
                    }
                }
            }
        }
    }

    let mut out = ScaleIn::default();
    for _ in 0..count {
        let Some((_, zones)) = lists.iter_mut().find(|(_, z)| !z.is_empty()) else {
            out.protected_shortfall += 1;
            continue;
        };
        // The zone with the most active instances; ties go to the zone whose preferred
        // candidate ranks highest under the rule.
        let zone = *zones
            .iter()
            .max_by(|(za, fa), (zb, fb)| {
                per_zone[*za]
                    .cmp(&per_zone[*zb])
                    .then_with(|| rank(best(fa), rule).cmp(&rank(best(fb), rule)))
            })
            .map(|(z, _)| z)
            .expect("non-empty");
        let fds = zones.get_mut(zone).expect("zone present");
        let fd = *fds
            .iter()
            .max_by(|(fa, la), (fb, lb)| {
                let count = |fd: u32| {
                    if rule == ScaleInRule::Default {
                        per_fd[&(zone, fd)]
                    } else {
                        0
                    }
                };
                count(**fa).cmp(&count(**fb)).then_with(|| {
                    rank(la.last().copied(), rule).cmp(&rank(lb.last().copied(), rule))
                })
            })
            .map(|(fd, _)| fd)
            .expect("non-empty");
        let list = fds.get_mut(&fd).expect("fd present");
        let victim = list.pop().expect("non-empty list");
        if list.is_empty() {
            fds.remove(&fd);
        }
        if fds.is_empty() {
            zones.remove(zone);
        }
        let zone_count = per_zone[zone];
        *per_zone.get_mut(zone).expect("counted") -= 1;
        *per_fd
            .get_mut(&(zone, victim.fault_domain))
            .expect("counted") -= 1;
        let why_rule = match rule {
            ScaleInRule::Default => "highest instance id in its fault domain",
            ScaleInRule::NewestVm => "newest instance",
            ScaleInRule::OldestVm => "oldest instance",
        };
        let (_, class_reason) = class(victim);
        let reason = if class_reason.is_empty() {
            format!("zone {zone} had the most instances ({zone_count}); {why_rule}")
        } else {
            format!("{class_reason}; zone {zone} had {zone_count} instances; {why_rule}")
        };
        out.victims.push(Victim {
            id: victim.id.clone(),
            reason,
        });
    }
    out
}

fn best<'a>(fds: &BTreeMap<u32, Vec<&'a Instance>>) -> Option<&'a Instance> {
    fds.values()
        .filter_map(|l| l.last().copied())
        .max_by_key(|i| i.ordinal)
}

/// How strongly the rule prefers removing `i` (higher = sooner).
fn rank(i: Option<&Instance>, rule: ScaleInRule) -> (i64, i64) {
    let Some(i) = i else {
        return (i64::MIN, i64::MIN);
    };
    let created = i.created_at.timestamp_micros();
    match rule {
        ScaleInRule::Default => (i.ordinal as i64, 0),
        ScaleInRule::NewestVm => (created, i.ordinal as i64),
        ScaleInRule::OldestVm => (-created, -(i.ordinal as i64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::fixtures::instance;
    use proptest::prelude::*;

    fn ids(s: &ScaleIn) -> Vec<&str> {
        s.victims.iter().map(|v| v.id.as_str()).collect()
    }

    /// Five instances over three zones as placement puts them: 1,2,3,1,2.
    fn five() -> Vec<Instance> {
        vec![
            instance("web", 0, "1", 0),
            instance("web", 1, "2", 0),
            instance("web", 2, "3", 0),
            instance("web", 3, "1", 1),
            instance("web", 4, "2", 1),
        ]
    }

    #[test]
    fn default_balances_zones_then_highest_id() {
        let s = choose_victims(&five(), 3, ScaleInRule::Default, DateTime::UNIX_EPOCH);
        // Zones 1 and 2 have two each: the highest id among them (4, zone 2) goes first,
        // then zone 1's highest (3), then all zones have one: the highest id (2).
        assert_eq!(ids(&s), ["web_4", "web_3", "web_2"]);
    }

    #[test]
    fn newest_vm_uses_creation_time() {
        let mut set = five();
        set[0] = set[0].clone().created_at_secs(100); // web_0 recreated most recently
        let s = choose_victims(&set, 1, ScaleInRule::NewestVm, DateTime::UNIX_EPOCH);
        assert_eq!(ids(&s), ["web_0"]);
        let s = choose_victims(&five(), 3, ScaleInRule::NewestVm, DateTime::UNIX_EPOCH);
        assert_eq!(ids(&s), ["web_4", "web_3", "web_2"]);
    }

    #[test]
    fn oldest_vm() {
        let s = choose_victims(&five(), 2, ScaleInRule::OldestVm, DateTime::UNIX_EPOCH);
        // zones 1 and 2 tie at two; the oldest among their candidates is web_0 (zone 1).
        assert_eq!(ids(&s), ["web_0", "web_1"]);
    }

    #[test]
    fn protected_never_chosen() {
        let mut set = five();
        set[4] = set[4].clone().protected();
        set[3].protect_from_scale_set_actions = true;
        let s = choose_victims(&set, 3, ScaleInRule::NewestVm, DateTime::UNIX_EPOCH);
        assert!(!ids(&s).contains(&"web_4") && !ids(&s).contains(&"web_3"));
        assert_eq!(s.victims.len(), 3);
        let all_protected: Vec<Instance> = five().into_iter().map(|i| i.protected()).collect();
        let s = choose_victims(
            &all_protected,
            2,
            ScaleInRule::Default,
            DateTime::UNIX_EPOCH,
        );
        assert!(s.victims.is_empty());
        assert_eq!(s.protected_shortfall, 2);
    }

    #[test]
    fn unhealthy_then_creating_first() {
        let mut set = five();
        set[0] = set[0].clone().unhealthy();
        set[2] = set[2].clone().in_state(ProvisioningState::Creating);
        let s = choose_victims(&set, 3, ScaleInRule::Default, DateTime::UNIX_EPOCH);
        assert_eq!(ids(&s)[..2], ["web_0", "web_2"]);
        assert!(s.victims[0].reason.starts_with("unhealthy"));
    }

    #[test]
    fn default_balances_fault_domains() {
        // Zone 1 only: fault domain 0 holds three, fault domain 1 holds one (the highest id).
        let set = vec![
            instance("web", 0, "1", 0),
            instance("web", 1, "1", 0),
            instance("web", 2, "1", 0),
            instance("web", 9, "1", 1),
        ];
        let s = choose_victims(&set, 1, ScaleInRule::Default, DateTime::UNIX_EPOCH);
        assert_eq!(ids(&s), ["web_2"]);
    }

    proptest! {
        #[test]
        fn keeps_zones_balanced_and_protection(
            layout in proptest::collection::vec((1usize..4, any::<bool>()), 0..60),
            remove in 0usize..60,
        ) {
            let set: Vec<Instance> = layout.iter().enumerate().map(|(n, (z, p))| {
                let i = instance("web", n as u64, &z.to_string(), 0);
                if *p { i.protected() } else { i }
            }).collect();
            let s = choose_victims(&set, remove, ScaleInRule::Default, DateTime::UNIX_EPOCH);
            let unprotected = set.iter().filter(|i| !i.protect_from_scale_in).count();
            prop_assert_eq!(s.victims.len(), remove.min(unprotected));
            prop_assert_eq!(s.protected_shortfall, remove - remove.min(unprotected));
            for v in &s.victims {
                let i = set.iter().find(|i| i.id == v.id).unwrap();
                prop_assert!(!i.protect_from_scale_in);
            }
            let mut unique: Vec<&str> = ids(&s);
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), s.victims.len());
            // With nothing protected, a balanced set stays balanced.
            if layout.iter().all(|(_, p)| !p) {
                let mut per_zone = BTreeMap::new();
                for i in set.iter().filter(|i| !ids(&s).contains(&i.id.as_str())) {
                    *per_zone.entry(i.zone.clone()).or_insert(0i64) += 1;
                }
                let before: BTreeMap<String, i64> = set.iter().fold(BTreeMap::new(), |mut m, i| { *m.entry(i.zone.clone()).or_insert(0) += 1; m });
                let spread = |m: &BTreeMap<String, i64>| {
                    let v: Vec<i64> = before.keys().map(|k| m.get(k).copied().unwrap_or(0)).collect();
                    v.iter().max().copied().unwrap_or(0) - v.iter().min().copied().unwrap_or(0)
                };
                prop_assert!(spread(&per_zone) <= spread(&before).max(1));
            }
        }
    }

    #[test]
    fn a_busy_instance_is_passed_over_until_its_lease_ends() {
        let mut set = five();
        set[4].busy_until = Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(100));
        let at = |secs| DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs);
        assert_eq!(
            ids(&choose_victims(&set, 1, ScaleInRule::Default, at(99))),
            ["web_3"]
        );
        assert_eq!(
            ids(&choose_victims(&set, 1, ScaleInRule::Default, at(100))),
            ["web_4"]
        );
        let all_busy: Vec<Instance> = five()
            .into_iter()
            .map(|mut i| {
                i.busy_until = Some(at(100));
                i
            })
            .collect();
        let s = choose_victims(&all_busy, 2, ScaleInRule::Default, at(0));
        assert!(s.victims.is_empty());
        assert_eq!(s.protected_shortfall, 2);
    }
}
