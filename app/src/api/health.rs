//! A scale set's health, automatic repairs and load balancer: what the repair service would
//! do now, its history, resuming it, the load balancer's live statistics and an instance's
//! drain/enable switch.

use flotilla_domain::load_balancer::FrontendStats;
use flotilla_domain::repair::RepairOverview;
use flotilla_domain::{Activity, Instance};
use leptos::prelude::*;

use crate::api::error::PortalError;

/// How many entries the repair history shows.
pub const REPAIR_HISTORY_SIZE: u32 = 20;

/// The repair service of scale set `name`: suspended or not, its limit, and what it would
/// repair now (and hold back) with the reasons.
#[server(prefix = "/_fn", endpoint = "repairs", client = crate::api::CsrfClient)]
pub async fn get_repairs(name: String) -> Result<RepairOverview, ServerFnError> {
    use super::{fleet, server_error};
    fleet().repairs(&name).await.map_err(server_error)
}

/// The newest repair entries of scale set `name`, newest first.
#[server(prefix = "/_fn", endpoint = "repair-history", client = crate::api::CsrfClient)]
pub async fn repair_history(name: String) -> Result<Vec<Activity>, ServerFnError> {
    use super::{fleet, server_error};
    fleet()
        .repair_history(&name, REPAIR_HISTORY_SIZE)
        .await
        .map_err(server_error)
}

/// Resumes the automatic repairs of scale set `name` after the service suspended itself —
/// the Health tab's button, with or without JavaScript.
#[server(prefix = "/_fn", endpoint = "resume-repairs", client = crate::api::CsrfClient)]
pub async fn resume_repairs(name: String) -> Result<(), PortalError> {
    use super::{refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/health",
        flotilla_domain::url::percent_encode(&name)
    ));
    super::fleet()
        .resume_repairs(&name, &super::actor())
        .await
        .map_err(refused)?;
    Ok(())
}

/// The live statistics of scale set `name`'s frontends (and their pools' members).
#[server(prefix = "/_fn", endpoint = "load-balancer-stats", client = crate::api::CsrfClient)]
pub async fn load_balancer_stats(name: String) -> Result<Vec<FrontendStats>, ServerFnError> {
    let mut stats: Vec<FrontendStats> = super::fleet()
        .load_balancer_stats()
        .into_iter()
        .filter(|f| f.scale_set == name)
        .collect();
    stats.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stats)
}

/// Turns instance `id`'s load balancer switch: `enabled` is `"true"` (serve again) or
/// `"false"` (drain: nothing new is sent to it, requests in flight finish). A form per
/// instance on the Load balancer tab, with or without JavaScript. Answers the instance.
#[server(prefix = "/_fn", endpoint = "instance-load-balancer", client = crate::api::CsrfClient)]
pub async fn set_instance_load_balancer(
    name: String,
    id: String,
    enabled: String,
) -> Result<Instance, PortalError> {
    use super::{refuse, refused, return_to};
    return_to(&format!(
        "/scale-sets/{}/load-balancer",
        flotilla_domain::url::percent_encode(&name)
    ));
    let enabled = parse_switch(&enabled)
        .map_err(|message| refuse(PortalError::field("enabled", message).with_target(&id), 422))?;
    super::fleet()
        .set_load_balancer_enabled(&name, &id, enabled, &super::actor())
        .await
        .map_err(|e| refused(e).with_target(&id))
}

/// The switch as a form sends it.
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("must be true or false, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_is_true_or_false() {
        assert_eq!(parse_switch("true"), Ok(true));
        assert_eq!(parse_switch(" false "), Ok(false));
        assert!(parse_switch("yes").unwrap_err().contains("true or false"));
    }
}
