//! What each server function needs of its caller: the portal's permission table, checked by
//! the server before the function runs (`flotilla::auth::portal`) with the scale set its
//! arguments name. A server function missing from the table is refused (404), and a test
//! checks that every `#[server]` endpoint of this crate has its entry.

use flotilla_domain::access::Access;
use flotilla_domain::access::Role::{Contributor, Operator, Owner, Reader};

/// One server function: its endpoint (under `/_fn`), what it needs, and where its
/// arguments name the scale set (a dotted path into them: `name`, `request.name`), if
/// they do.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub endpoint: &'static str,
    pub access: Access,
    pub scale_set: Option<&'static str>,
}

const fn set(endpoint: &'static str, role: flotilla_domain::access::Role) -> Entry {
    Entry {
        endpoint,
        access: Access::Set(role),
        scale_set: Some("name"),
    }
}

const fn fleet(endpoint: &'static str, access: Access) -> Entry {
    Entry {
        endpoint,
        access,
        scale_set: None,
    }
}

/// Every server function of the portal. Lists (`scale-sets`, `activity`…) are open to any
/// signed-in user and show what it may read.
pub const TABLE: &[Entry] = &[
    fleet("theme", Access::Anonymous),
    fleet("scale-sets", Access::SignedIn),
    fleet("scale-set-names", Access::SignedIn),
    fleet("activity", Access::SignedIn),
    fleet("failures-last-hour", Access::SignedIn),
    fleet("wizard-options", Access::SignedIn),
    fleet("whoami", Access::SignedIn),
    fleet("tokens", Access::SignedIn),
    fleet("create-token", Access::SignedIn),
    fleet("revoke-token", Access::SignedIn),
    fleet("backend", Access::Fleet(Reader)),
    fleet("replicas", Access::Fleet(Reader)),
    // A host's maintenance moves every scale set's instances: an Owner's, as in the REST API.
    fleet("start-maintenance", Access::Fleet(Owner)),
    fleet("end-maintenance", Access::Fleet(Owner)),
    fleet("create-scale-set", Access::Fleet(Contributor)),
    // Each name is checked again by the fleet-wide role: a bulk delete is a fleet
    // Contributor's.
    fleet("delete-scale-sets", Access::Fleet(Contributor)),
    set("scale-set", Reader),
    set("instance-rows", Reader),
    // The instances table's pager without JavaScript: changes nothing.
    set("instances-go", Reader),
    set("set-capacity", Operator),
    set("delete-scale-set", Contributor),
    Entry {
        scale_set: Some("request.name"),
        ..set("charts", Reader)
    },
    set("scaling", Reader),
    set("save-autoscale", Contributor),
    set("autoscale-json", Contributor),
    set("decisions", Reader),
    set("forecast", Reader),
    set("evaluate-autoscale", Operator),
    // A what-if changes nothing and shows nothing a Reader cannot read (as the REST API's
    // backtest).
    set("what-if", Reader),
    set("autoscale-shadow", Reader),
    set("save-autoscale-shadow", Contributor),
    set("shadow-action", Contributor),
    set("set-demand", Operator),
    set("remove-demand", Operator),
    set("console", Operator),
    set("repairs", Reader),
    set("repair-history", Reader),
    set("resume-repairs", Operator),
    set("load-balancer-stats", Reader),
    set("instance-load-balancer", Operator),
    set("instances-action", Operator),
    set("upgrades", Reader),
    set("compare-versions", Reader),
    set("preview-rollout", Reader),
    set("set-model", Contributor),
    set("upgrade-policy", Contributor),
    set("lifecycle-hooks", Contributor),
    set("warm-pool", Reader),
    set("save-warm-pool", Contributor),
    // Resuming a rollout held for an approval is a Contributor's: the function checks.
    set("control-rollout", Operator),
    set("rollback-rollout", Contributor),
];

/// The entry of a server function by its endpoint.
pub fn of(endpoint: &str) -> Option<Entry> {
    TABLE.iter().find(|e| e.endpoint == endpoint).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `#[server(… endpoint = "…")]` of this crate is in the table, and every entry
    /// is a server function: a new function cannot be left out. Each is called through
    /// the client that sends the CSRF token.
    #[test]
    fn every_server_function_has_its_entry() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut endpoints = Vec::new();
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for line in text
                        .lines()
                        .filter(|l| l.trim_start().starts_with("#[server("))
                    {
                        assert!(
                            line.contains("client = crate::api::CsrfClient"),
                            "{line}: every server function sends the CSRF token"
                        );
                        let (_, rest) = line.split_once("endpoint = \"").expect("an endpoint");
                        let (endpoint, _) = rest.split_once('"').unwrap();
                        endpoints.push(endpoint.to_string());
                    }
                }
            }
        }
        for endpoint in &endpoints {
            assert!(
                of(endpoint).is_some(),
                "server function {endpoint} has no entry"
            );
        }
        for entry in TABLE {
            assert!(
                endpoints.iter().any(|e| e == entry.endpoint),
                "{} is in the table but is no server function",
                entry.endpoint
            );
        }
        let mut unique = endpoints.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), endpoints.len(), "an endpoint is used twice");
    }
}
