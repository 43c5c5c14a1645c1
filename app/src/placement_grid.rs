//! The zones × fault domains grid of a scale set's overview: where each instance sits, and
//! the one state that best says how it is doing. Plain Rust with plain tests.

use flotilla_domain::{HealthState, Instance, PowerState, ProvisioningState};
use serde::{Deserialize, Serialize};

/// One instance in a cell: its id and its [`display_state`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub id: String,
    pub state: String,
}

/// Rows are zones, columns fault domains; `cells[row][column]` holds the instances there,
/// in ordinal order. Built on the server and sent as it is: a set's whole records would
/// weigh thirty times as much.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub zones: Vec<String>,
    pub fault_domains: Vec<u32>,
    pub cells: Vec<Vec<Vec<Placed>>>,
}

/// The label of the single row of a regional set (no zones).
pub const REGIONAL: &str = "regional";

impl Grid {
    /// The grid of a set spread over `zones` (none: regional) with `fault_domains` per zone.
    /// Instances placed outside that layout (a zone or fault domain since removed from the
    /// model) get their own row or column, so every instance is shown.
    pub fn of(zones: &[String], fault_domains: u32, instances: &[Instance]) -> Self {
        let mut rows: Vec<String> = if zones.is_empty() {
            vec![REGIONAL.to_string()]
        } else {
            zones.to_vec()
        };
        let mut columns: Vec<u32> = (0..fault_domains.max(1)).collect();
        let row_of = |i: &Instance| {
            if zones.is_empty() && i.zone.is_empty() {
                REGIONAL.to_string()
            } else {
                i.zone.clone()
            }
        };
        for instance in instances {
            let row = row_of(instance);
            if !rows.contains(&row) {
                rows.push(row);
            }
            if !columns.contains(&instance.fault_domain) {
                columns.push(instance.fault_domain);
            }
        }
        columns.sort_unstable();
        let mut cells = vec![vec![Vec::new(); columns.len()]; rows.len()];
        let mut ordered: Vec<&Instance> = instances.iter().collect();
        ordered.sort_by_key(|i| i.ordinal);
        for instance in ordered {
            let r = rows.iter().position(|z| *z == row_of(instance));
            let c = columns.iter().position(|&d| d == instance.fault_domain);
            if let (Some(r), Some(c)) = (r, c) {
                cells[r][c].push(Placed {
                    id: instance.id.clone(),
                    state: display_state(instance).to_string(),
                });
            }
        }
        Self {
            zones: rows,
            fault_domains: columns,
            cells,
        }
    }
}

/// The state that says most about an instance, for colour: an operation in progress
/// (`creating`, `updating`, `deleting`) or a failure first, then a power state other than
/// running, then health.
pub fn display_state(instance: &Instance) -> &'static str {
    match instance.provisioning_state {
        ProvisioningState::Succeeded => {}
        other => return other.as_str(),
    }
    match instance.power_state {
        PowerState::Running => match instance.health_state {
            HealthState::Unknown => PowerState::Running.as_str(),
            health => health.as_str(),
        },
        power => power.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::instance::fixtures;

    fn instance(ordinal: u64, zone: &str, fault_domain: u32) -> Instance {
        fixtures::instance("web", ordinal, zone, fault_domain)
    }

    fn ids(cell: &[Placed]) -> Vec<&str> {
        cell.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn places_instances_by_zone_and_fault_domain() {
        let zones = ["1".to_string(), "2".to_string()];
        let instances = [
            instance(3, "2", 1),
            instance(0, "1", 0),
            instance(1, "2", 0),
            instance(2, "1", 0),
        ];
        let grid = Grid::of(&zones, 2, &instances);
        assert_eq!(grid.zones, ["1", "2"]);
        assert_eq!(grid.fault_domains, [0, 1]);
        assert_eq!(ids(&grid.cells[0][0]), ["web_0", "web_2"]);
        assert!(grid.cells[0][1].is_empty());
        assert_eq!(ids(&grid.cells[1][0]), ["web_1"]);
        assert_eq!(ids(&grid.cells[1][1]), ["web_3"]);
    }

    #[test]
    fn regional_sets_have_one_row_and_strays_get_their_own() {
        let grid = Grid::of(&[], 1, &[instance(0, "", 0), instance(1, "3", 4)]);
        assert_eq!(grid.zones, [REGIONAL, "3"]);
        assert_eq!(grid.fault_domains, [0, 4]);
        assert_eq!(ids(&grid.cells[0][0]), ["web_0"]);
        assert_eq!(ids(&grid.cells[1][1]), ["web_1"]);
        let empty = Grid::of(&["1".into()], 3, &[]);
        assert_eq!(empty.cells, vec![vec![vec![]; 3]]);
    }

    #[test]
    fn the_telling_state_wins() {
        let mut i = instance(0, "1", 0);
        assert_eq!(display_state(&i), "healthy");
        i.health_state = HealthState::Unknown;
        assert_eq!(display_state(&i), "running");
        i.power_state = PowerState::Stopped;
        assert_eq!(display_state(&i), "stopped");
        i.provisioning_state = ProvisioningState::Updating;
        assert_eq!(display_state(&i), "updating");
        i.provisioning_state = ProvisioningState::Failed;
        assert_eq!(display_state(&i), "failed");
        i.provisioning_state = ProvisioningState::Creating;
        assert_eq!(display_state(&i), "creating");
    }
}
