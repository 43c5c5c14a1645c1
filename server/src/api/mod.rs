//! The REST API under `/api/v1` (DESIGN.md §4): thin handlers over the [`Fleet`], JSON in
//! and out, errors as problem+json, described by the OpenAPI document at
//! `/api/v1/openapi.json` generated from these handlers.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use flotilla_control::{Caller, Fleet};
use flotilla_domain::access::{Access, Role};
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Permission};

pub mod accounts;
pub mod activity;
pub mod autoscale;
pub mod backend;
pub mod control;
pub mod demand;
pub mod error;
pub mod events;
pub mod instances;
pub mod json;
pub mod load_balancer;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod repairs;
pub mod rollouts;
pub mod scale_sets;

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    pub fleet: Fleet,
    /// Cancelled on shutdown: ends the event streams so the server can stop.
    pub shutdown: CancellationToken,
    /// One permit per open event stream (`--max-event-streams`).
    pub event_streams: std::sync::Arc<tokio::sync::Semaphore>,
}

/// The actor the activity log records for this request's caller.
pub fn actor(caller: &Caller) -> &str {
    caller
        .principal
        .as_ref()
        .map_or("anonymous", |p| p.actor.as_str())
}

/// Whether the caller may read `scale_set` (`None`: what belongs to no scale set, which
/// only a fleet-wide Reader sees).
pub fn sees(caller: &Caller, scale_set: Option<&str>) -> bool {
    caller.principal.as_ref().is_some_and(|p| {
        p.allows(Role::Reader, None) || scale_set.is_some_and(|s| p.grants.sees(s))
    })
}

/// Refuses a load balancer whose routing rules send traffic to a scale set the caller may
/// not change: a rule's target needs the same rights as the set that carries it.
pub fn check_rule_targets(
    caller: &Caller,
    lb: Option<&flotilla_domain::scale_set::LoadBalancer>,
) -> Result<(), error::ApiError> {
    let Some(lb) = lb else { return Ok(()) };
    for (f, frontend) in lb.frontends.iter().enumerate() {
        for (r, rule) in frontend.rules.iter().enumerate() {
            if auth::check(
                caller,
                Access::Set(Role::Contributor),
                Some(&rule.scale_set),
            )
            .is_err()
            {
                return Err(error::ApiError::field(
                    axum::http::StatusCode::FORBIDDEN,
                    &format!("load_balancer.frontends[{f}].rules[{r}].scale_set"),
                    format!(
                        "{} may not send traffic to scale set {:?}: it needs Contributor there",
                        actor(caller),
                        rule.scale_set
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Items of a collection: `{"items": […]}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// One REST route: where, what it needs, and its handler.
pub struct Route {
    pub method: Method,
    /// Under `/api/v1`, as the OpenAPI document writes it.
    pub path: &'static str,
    pub permission: Permission,
    handler: MethodRouter<ApiState>,
}

const NO_ACTIONS: &[(&str, Role)] = &[];
/// Pausing and resuming a rollout is an Operator's (resuming one held for an approval or a
/// failed gate is a Contributor's: the handler checks); cancel and roll back are a
/// Contributor's.
const ROLLOUT_ACTIONS: &[(&str, Role)] = &[("pause", Role::Operator), ("resume", Role::Operator)];

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<ApiState>,
) -> Route {
    Route {
        method,
        path,
        permission: Permission {
            access,
            actions: NO_ACTIONS,
        },
        handler,
    }
}

/// Every REST route with the permission it needs: the one table the router is built from,
/// the OpenAPI document shows (`x-flotilla-permission`) and the black-box tests call route
/// by route with every role.
pub fn routes() -> Vec<Route> {
    use Access::{Anonymous, Fleet, Set, SignedIn};
    use Method as M;
    use Role::{Contributor, Operator, Owner, Reader};
    vec![
        route(M::GET, "/scale-sets", SignedIn, get(scale_sets::list)),
        route(
            M::POST,
            "/scale-sets",
            Fleet(Contributor),
            post(scale_sets::create),
        ),
        route(
            M::GET,
            "/scale-sets/{name}",
            Set(Reader),
            get(scale_sets::get),
        ),
        route(
            M::PATCH,
            "/scale-sets/{name}",
            Set(Contributor),
            patch(scale_sets::update),
        ),
        route(
            M::DELETE,
            "/scale-sets/{name}",
            Set(Contributor),
            delete(scale_sets::delete),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/capacity",
            Set(Operator),
            put(scale_sets::set_capacity),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/model",
            Set(Reader),
            get(scale_sets::get_model),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/model",
            Set(Contributor),
            put(scale_sets::set_model),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/model/versions",
            Set(Reader),
            get(scale_sets::model_versions),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/model/versions/compare",
            Set(Reader),
            get(scale_sets::compare),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/rollouts",
            Set(Reader),
            get(rollouts::list),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/rollouts",
            Set(Contributor),
            post(rollouts::start),
        ),
        // A preview changes nothing.
        route(
            M::POST,
            "/scale-sets/{name}/rollouts/preview",
            Set(Reader),
            post(rollouts::preview),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/rollouts/{id}",
            Set(Reader),
            get(rollouts::get),
        ),
        Route {
            permission: Permission {
                access: Set(Contributor),
                actions: ROLLOUT_ACTIONS,
            },
            ..route(
                M::POST,
                "/scale-sets/{name}/rollouts/{id}/{action}",
                Set(Contributor),
                post(rollouts::act),
            )
        },
        route(
            M::GET,
            "/scale-sets/{name}/instances",
            Set(Reader),
            get(instances::list),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/instances/{id}",
            Set(Reader),
            get(instances::get),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/warm-pool",
            Set(Reader),
            get(instances::warm_pool),
        ),
        // A serial console may print what cloud-init was given: not a Reader's.
        route(
            M::GET,
            "/scale-sets/{name}/instances/{id}/console",
            Set(Operator),
            get(instances::console),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/instances/{id}/protection",
            Set(Operator),
            put(instances::set_protection),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/instances/{id}/load-balancer",
            Set(Operator),
            put(load_balancer::set_instance_switch),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/instances/{id}/busy",
            Set(Operator),
            put(instances::set_busy),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/instances/{id}/lifecycle/{hook}/complete",
            Set(Operator),
            post(instances::complete_lifecycle),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/instances/{id}/lifecycle/{hook}/heartbeat",
            Set(Operator),
            post(instances::lifecycle_heartbeat),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/instances/{id}/{action}",
            Set(Operator),
            post(instances::act),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/repairs",
            Set(Reader),
            get(repairs::repairs),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/repairs/resume",
            Set(Operator),
            post(repairs::resume_repairs),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/load-balancer",
            Set(Reader),
            get(load_balancer::load_balancer),
        ),
        route(
            M::GET,
            "/load-balancer",
            Fleet(Reader),
            get(load_balancer::all_frontends),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/autoscale",
            Set(Reader),
            get(autoscale::get),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/autoscale",
            Set(Contributor),
            put(autoscale::put),
        ),
        route(
            M::DELETE,
            "/scale-sets/{name}/autoscale",
            Set(Contributor),
            delete(autoscale::delete),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/autoscale/decisions",
            Set(Reader),
            get(autoscale::decisions),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/autoscale/shadow",
            Set(Reader),
            get(autoscale::get_shadow),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/autoscale/forecast",
            Set(Reader),
            get(autoscale::forecast),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/autoscale/shadow",
            Set(Contributor),
            put(autoscale::put_shadow),
        ),
        route(
            M::DELETE,
            "/scale-sets/{name}/autoscale/shadow",
            Set(Contributor),
            delete(autoscale::delete_shadow),
        ),
        route(
            M::POST,
            "/scale-sets/{name}/autoscale/shadow/promote",
            Set(Contributor),
            post(autoscale::promote_shadow),
        ),
        // A what-if changes nothing and shows nothing a Reader cannot read.
        route(
            M::POST,
            "/scale-sets/{name}/autoscale/backtest",
            Set(Reader),
            post(autoscale::backtest),
        ),
        // Runs the setting now and applies its capacity: as changing the capacity.
        route(
            M::POST,
            "/scale-sets/{name}/autoscale/evaluate",
            Set(Operator),
            post(autoscale::evaluate),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/metrics",
            Set(Reader),
            get(metrics::metrics),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/demand",
            Set(Reader),
            get(demand::get_demand),
        ),
        route(
            M::PUT,
            "/scale-sets/{name}/demand",
            Set(Operator),
            put(demand::put_demand),
        ),
        route(
            M::DELETE,
            "/scale-sets/{name}/demand",
            Set(Operator),
            delete(demand::delete_demand),
        ),
        route(
            M::GET,
            "/scale-sets/{name}/activity",
            Set(Reader),
            get(activity::list_for_set),
        ),
        route(M::GET, "/activity", SignedIn, get(activity::list)),
        route(M::GET, "/events", SignedIn, get(events::stream)),
        route(M::GET, "/backend", Fleet(Reader), get(backend::info)),
        route(M::GET, "/backend/vms", Fleet(Reader), get(backend::vms)),
        route(
            M::GET,
            "/backend/maintenance",
            Fleet(Reader),
            get(backend::maintenance),
        ),
        // Closing a host moves every set's instances: fleet-wide, as the faults.
        route(
            M::POST,
            "/backend/hosts/{name}/maintenance",
            Fleet(Owner),
            post(backend::start_maintenance),
        ),
        route(
            M::POST,
            "/backend/hosts/{name}/maintenance/end",
            Fleet(Owner),
            post(backend::end_maintenance),
        ),
        route(
            M::GET,
            "/backend/faults",
            Fleet(Reader),
            get(backend::faults),
        ),
        route(
            M::POST,
            "/backend/faults",
            Fleet(Owner),
            post(backend::inject),
        ),
        route(
            M::DELETE,
            "/backend/faults",
            Fleet(Owner),
            delete(backend::clear),
        ),
        route(M::GET, "/control/loops", Fleet(Reader), get(control::loops)),
        route(M::GET, "/control/tasks", Fleet(Reader), get(control::tasks)),
        route(
            M::GET,
            "/control/replicas",
            Fleet(Reader),
            get(control::replicas),
        ),
        route(M::POST, "/login", Anonymous, post(accounts::login)),
        route(M::GET, "/me", SignedIn, get(accounts::me)),
        route(M::GET, "/tokens", SignedIn, get(accounts::list_tokens)),
        route(M::POST, "/tokens", SignedIn, post(accounts::create_token)),
        route(
            M::DELETE,
            "/tokens/{id}",
            SignedIn,
            delete(accounts::revoke_token),
        ),
        route(M::GET, "/users", Fleet(Owner), get(accounts::list_users)),
        route(M::POST, "/users", Fleet(Owner), post(accounts::create_user)),
        route(
            M::PATCH,
            "/users/{user}",
            Fleet(Owner),
            patch(accounts::update_user),
        ),
        route(
            M::GET,
            "/role-assignments",
            Fleet(Owner),
            get(accounts::list_roles),
        ),
        route(
            M::PUT,
            "/role-assignments",
            Fleet(Owner),
            put(accounts::assign_role),
        ),
        route(
            M::DELETE,
            "/role-assignments",
            Fleet(Owner),
            delete(accounts::remove_role),
        ),
        route(M::GET, "/openapi.json", Anonymous, get(openapi::document)),
    ]
}

pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for r in routes() {
        let checked = r.handler.route_layer(axum::middleware::from_fn_with_state(
            r.permission,
            auth::authorize,
        ));
        router = router.route(r.path, checked);
    }
    router
        .fallback(|| async {
            error::ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such API resource")
        })
        .with_state(state)
}
