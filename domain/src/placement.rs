//! Placement: which zone and fault domain each new instance goes to.
//!
//! Zones are filled smallest first, so they stay within ±1 of each other when all are
//! available (Azure's "balanced"); inside a zone, fault domains are filled smallest first.
//! With strict zone balance an instance is not placed where it would leave an unavailable
//! zone more than one behind; best-effort balance places it in the available zones. Closed
//! fault domains (hosts under maintenance or unreachable) take nothing new; a zone whose
//! fault domains are all closed counts as unavailable here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A zone as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneStatus {
    pub name: String,
    /// Fault domains the zone offers (mock: configured; libvirt: hosts).
    pub fault_domains: u32,
    /// False while the zone is down: nothing can be created there.
    pub available: bool,
    /// Fault domains (hosts) closed to new instances: under maintenance or unreachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_fault_domains: Vec<u32>,
}

impl ZoneStatus {
    /// Whether a new instance can go there: the zone is up and one of its fault domains is
    /// open.
    pub fn accepts(&self) -> bool {
        self.available
            && (0..self.fault_domains.max(1)).any(|fd| !self.closed_fault_domains.contains(&fd))
    }
}

/// A hypervisor host as the backend reports it: a fault domain of its zone (libvirt: one
/// per configured host; the mock: one simulated host per zone and fault domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostStatus {
    /// Its name: libvirt config `hosts[].name`, default `{zone}-fd{n}`; the mock's
    /// `{zone}-fd{n}`.
    pub name: String,
    /// Its libvirt URI (`None` on the mock).
    #[serde(default)]
    pub uri: Option<String>,
    pub zone: String,
    pub fault_domain: u32,
    /// The vCPUs the VMs on it may take in all; 0 on the mock: unlimited.
    pub vcpus: u32,
    /// The memory the VMs on it may take in all; 0 on the mock: unlimited.
    pub memory_mib: u64,
    /// What its VMs hold (deallocated VMs hold nothing).
    pub used_vcpus: u32,
    pub used_memory_mib: u64,
    /// Flotilla's VMs on it, and how many of them run.
    pub vms: u32,
    pub running: u32,
    /// The images its storage pool offers.
    pub images: Vec<String>,
    /// False when it cannot be reached or read; `error` says why.
    pub available: bool,
    pub error: Option<String>,
}

/// The backend as the portal and API show it (`GET /backend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendInfo {
    /// `mock` or `libvirt`.
    pub kind: String,
    pub zones: Vec<ZoneStatus>,
    /// The images models may use (libvirt: those every host's pool offers).
    pub images: Vec<String>,
    /// The hypervisor hosts with their capacity and use (the mock's are simulated: one per
    /// zone and fault domain).
    pub hosts: Vec<HostStatus>,
    /// Whether faults can be injected (the mock).
    pub fault_injection: bool,
    /// The closed hosts (under maintenance or unreachable), each with its progress: what
    /// `GET /backend/maintenance` lists.
    #[serde(default)]
    pub maintenance: Vec<crate::maintenance::MaintenanceStatus>,
}

/// The end of an instance's serial console output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsoleOutput {
    pub instance: String,
    /// The last 64 KiB of the log (empty before the first boot; the mock describes its
    /// simulated VM).
    pub output: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementPolicy {
    /// The set's `platform_fault_domain_count` (1 = spread over every fault domain).
    pub fault_domain_count: u32,
    /// Strict zone balance.
    pub strict: bool,
}

impl PlacementPolicy {
    /// The least-filled open fault domain of `zone` among those the set spreads over; when
    /// they are all closed, the least-filled open one of the zone.
    fn fault_domain_in(&self, zone: &ZoneStatus, filled: impl Fn(u32) -> u64) -> u32 {
        let offered = zone.fault_domains.max(1);
        let spread = if self.fault_domain_count <= 1 {
            offered
        } else {
            self.fault_domain_count.min(offered)
        };
        let open = |fd: &u32| !zone.closed_fault_domains.contains(fd);
        (0..spread)
            .filter(open)
            .min_by_key(|fd| filled(*fd))
            .or_else(|| (spread..offered).filter(open).min_by_key(|fd| filled(*fd)))
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub zone: String,
    pub fault_domain: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    pub slots: Vec<Slot>,
    /// Why fewer than asked were placed, if so.
    pub shortfall: Option<String>,
}

/// Places `count` new instances in `set_zones` (in the set's order) given where the
/// existing ones are (`existing`: zone and fault domain of each active instance).
pub fn place(
    count: usize,
    set_zones: &[String],
    zones: &[ZoneStatus],
    existing: impl IntoIterator<Item = (String, u32)>,
    policy: PlacementPolicy,
) -> Placement {
    let status: BTreeMap<&str, &ZoneStatus> = zones.iter().map(|z| (z.name.as_str(), z)).collect();
    let mut per_zone: BTreeMap<String, u64> = set_zones.iter().map(|z| (z.clone(), 0)).collect();
    let mut per_fd: BTreeMap<(String, u32), u64> = BTreeMap::new();
    for (zone, fd) in existing {
        *per_zone.entry(zone.clone()).or_default() += 1;
        *per_fd.entry((zone, fd)).or_default() += 1;
    }
    let mut placement = Placement::default();
    for _ in 0..count {
        let available = |z: &String| status.get(z.as_str()).is_some_and(|s| s.accepts());
        let Some(zone) = set_zones
            .iter()
            .filter(|z| available(z))
            .min_by_key(|z| per_zone[*z])
            .cloned()
        else {
            placement.shortfall = Some("no zone of the scale set is available".into());
            break;
        };
        if policy.strict {
            let least = set_zones.iter().map(|z| per_zone[z]).min().unwrap_or(0);
            if per_zone[&zone] + 1 > least + 1 {
                let behind: Vec<&str> = set_zones
                    .iter()
                    .filter(|z| per_zone[*z] == least && !available(z))
                    .map(String::as_str)
                    .collect();
                placement.shortfall = Some(format!(
                    "strict zone balance: zone {} is unavailable and placing elsewhere would unbalance zones",
                    behind.join(", ")
                ));
                break;
            }
        }
        let fault_domain = policy.fault_domain_in(status[zone.as_str()], |fd| {
            per_fd.get(&(zone.clone(), fd)).copied().unwrap_or(0)
        });
        *per_zone.get_mut(&zone).expect("zone counted") += 1;
        *per_fd.entry((zone.clone(), fault_domain)).or_default() += 1;
        placement.slots.push(Slot { zone, fault_domain });
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zones(n: usize, fds: u32) -> Vec<ZoneStatus> {
        (1..=n)
            .map(|i| ZoneStatus {
                name: i.to_string(),
                fault_domains: fds,
                available: true,
                closed_fault_domains: Vec::new(),
            })
            .collect()
    }

    fn names(z: &[ZoneStatus]) -> Vec<String> {
        z.iter().map(|z| z.name.clone()).collect()
    }

    const SPREAD: PlacementPolicy = PlacementPolicy {
        fault_domain_count: 1,
        strict: false,
    };

    fn counts(slots: &[Slot], existing: &[(String, u32)]) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (z, _) in existing {
            *m.entry(z.clone()).or_insert(0) += 1;
        }
        for s in slots {
            *m.entry(s.zone.clone()).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn five_over_three_zones() {
        let z = zones(3, 3);
        let p = place(5, &names(&z), &z, [], SPREAD);
        let got: Vec<(&str, u32)> = p
            .slots
            .iter()
            .map(|s| (s.zone.as_str(), s.fault_domain))
            .collect();
        assert_eq!(got, [("1", 0), ("2", 0), ("3", 0), ("1", 1), ("2", 1)]);
        assert_eq!(p.shortfall, None);
    }

    #[test]
    fn fills_the_smallest_zone_first() {
        let z = zones(3, 3);
        let existing = vec![
            ("1".to_string(), 0),
            ("1".to_string(), 1),
            ("2".to_string(), 0),
        ];
        let p = place(2, &names(&z), &z, existing, SPREAD);
        assert_eq!(p.slots[0].zone, "3");
        assert_eq!(p.slots[1].zone, "2");
        assert_eq!(p.slots[1].fault_domain, 1);
    }

    #[test]
    fn fault_domain_count_limits_spread() {
        let z = zones(1, 5);
        let policy = PlacementPolicy {
            fault_domain_count: 2,
            strict: false,
        };
        let p = place(4, &names(&z), &z, [], policy);
        let fds: Vec<u32> = p.slots.iter().map(|s| s.fault_domain).collect();
        assert_eq!(fds, [0, 1, 0, 1]);
    }

    #[test]
    fn down_zone_best_effort_and_strict() {
        let mut z = zones(3, 1);
        z[1].available = false;
        let p = place(3, &names(&z), &z, [], SPREAD);
        assert!(p.slots.iter().all(|s| s.zone != "2"));
        assert_eq!(p.slots.len(), 3);

        let strict = PlacementPolicy {
            fault_domain_count: 1,
            strict: true,
        };
        let p = place(3, &names(&z), &z, [], strict);
        assert_eq!(
            p.slots.len(),
            2,
            "zones 1 and 3 get one each, then zone 2 is behind"
        );
        assert!(p.shortfall.unwrap().contains("zone 2"));
    }

    #[test]
    fn closed_fault_domains_take_nothing_new() {
        let mut z = zones(2, 3);
        z[0].closed_fault_domains = vec![0];
        let p = place(6, &names(&z), &z, [], SPREAD);
        assert_eq!(p.slots.len(), 6);
        assert!(!p.slots.iter().any(|s| s.zone == "1" && s.fault_domain == 0));
        assert_eq!(
            counts(&p.slots, &[])["1"],
            3,
            "zone 1 still takes its share"
        );

        // A set spread over fault domain 0 only moves to another open one.
        let one = PlacementPolicy {
            fault_domain_count: 1,
            strict: false,
        };
        let mut single = zones(1, 3);
        single[0].closed_fault_domains = vec![0, 1];
        let p = place(2, &names(&single), &single, [], one);
        assert!(p.slots.iter().all(|s| s.fault_domain == 2));

        // Every host of zone 1 closed: zone 1 takes nothing, as if it were down.
        z[0].closed_fault_domains = vec![0, 1, 2];
        assert!(!z[0].accepts());
        let p = place(2, &names(&z), &z, [], SPREAD);
        assert!(p.slots.iter().all(|s| s.zone == "2"));
    }

    #[test]
    fn no_zone_available() {
        let mut z = zones(2, 1);
        z.iter_mut().for_each(|z| z.available = false);
        let p = place(1, &names(&z), &z, [], SPREAD);
        assert!(p.slots.is_empty());
        assert!(p.shortfall.is_some());
    }

    proptest! {
        #[test]
        fn balanced_from_empty(n_zones in 1usize..6, fds in 1u32..6, count in 0usize..300) {
            let z = zones(n_zones, fds);
            let p = place(count, &names(&z), &z, [], SPREAD);
            prop_assert_eq!(p.slots.len(), count);
            let per_zone = counts(&p.slots, &[]);
            let max = per_zone.values().max().copied().unwrap_or(0);
            let min = if per_zone.len() < n_zones { 0 } else { per_zone.values().min().copied().unwrap_or(0) };
            prop_assert!(max - min <= 1, "zones {per_zone:?}");
            for zone in names(&z) {
                let mut per_fd = vec![0u64; fds as usize];
                for s in p.slots.iter().filter(|s| s.zone == zone) {
                    per_fd[s.fault_domain as usize] += 1;
                }
                let (lo, hi) = (per_fd.iter().min().unwrap(), per_fd.iter().max().unwrap());
                prop_assert!(hi - lo <= 1, "fault domains of zone {zone}: {per_fd:?}");
            }
        }

        #[test]
        fn never_increases_imbalance(existing in proptest::collection::vec((1usize..4, 0u32..3), 0..40), count in 0usize..40) {
            let z = zones(3, 3);
            let existing: Vec<(String, u32)> = existing.into_iter().map(|(zi, fd)| (zi.to_string(), fd)).collect();
            let before = counts(&[], &existing);
            let spread = |m: &BTreeMap<String, u64>| {
                let v: Vec<u64> = (1..=3).map(|i| m.get(&i.to_string()).copied().unwrap_or(0)).collect();
                v.iter().max().unwrap() - v.iter().min().unwrap()
            };
            let p = place(count, &names(&z), &z, existing.clone(), SPREAD);
            let after = counts(&p.slots, &existing);
            prop_assert!(spread(&after) <= spread(&before).max(1));
        }
    }
}
