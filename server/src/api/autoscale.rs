//! Autoscale settings and their decisions: `/scale-sets/{name}/autoscale`,
//! `/scale-sets/{name}/autoscale/decisions`, `/scale-sets/{name}/autoscale/evaluate` and
//! `/scale-sets/{name}/autoscale/backtest`.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use flotilla_control::AutoscaleAnswer;
use flotilla_control::Caller;
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::{AutoscaleSetting, Decision, Operation, backtest, forecast};
use serde::{Deserialize, Serialize};

use super::error::{ApiResult, Problem};
use super::json::{ApiJson, ApiPath};
use super::query::Params;
use super::{ApiState, Items, actor};

/// A PUT's only query parameter: `dry_run=true` checks without saving.
fn dry_run(params: &HashMap<String, String>) -> ApiResult<bool> {
    let mut p = Params::new(params, &["dry_run"]);
    let dry_run = p
        .number::<bool>("dry_run", "true or false")
        .unwrap_or(false);
    p.finish()?;
    Ok(dry_run)
}

#[utoipa::path(get, path = "/scale-sets/{name}/autoscale", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = Option<AutoscaleSetting>, description = "the setting (webhook secrets redacted), or null"),
        (status = 404, body = Problem)))]
pub async fn get(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Option<AutoscaleSetting>>> {
    Ok(Json(s.fleet.get_scale_set(&name).await?.spec.autoscale))
}

#[utoipa::path(put, path = "/scale-sets/{name}/autoscale", tag = "autoscale",
    request_body = AutoscaleSetting,
    params(("name" = String, Path),
        ("dry_run" = Option<bool>, Query, description = "true: validate and warn without saving")),
    responses((status = 200, body = AutoscaleAnswer, description = "the saved setting and warnings (rules that would flap, cooldowns shorter than the boot time, overlapping schedules)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry"),
        (status = 422, body = Problem)))]
pub async fn put(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(params): Query<HashMap<String, String>>,
    Extension(caller): Extension<Caller>,
    ApiJson(setting): ApiJson<AutoscaleSetting>,
) -> ApiResult<Json<AutoscaleAnswer>> {
    let dry_run = dry_run(&params)?;
    Ok(Json(
        s.fleet
            .set_autoscale(&name, Some(setting), dry_run, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/scale-sets/{name}/autoscale", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = AutoscaleAnswer, description = "autoscale removed: the capacity is set by hand again"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry")))]
pub async fn delete(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<AutoscaleAnswer>> {
    Ok(Json(
        s.fleet
            .set_autoscale(&name, None, false, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(get, path = "/scale-sets/{name}/autoscale/shadow", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = Option<AutoscaleSetting>, description = "the shadow setting (webhook secrets redacted), or null"),
        (status = 404, body = Problem)))]
pub async fn get_shadow(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Option<AutoscaleSetting>>> {
    Ok(Json(
        s.fleet.get_scale_set(&name).await?.spec.autoscale_shadow,
    ))
}

#[utoipa::path(get, path = "/scale-sets/{name}/autoscale/forecast", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = Items<forecast::Item>, description = "the load forecast of each predictive profile of the live and shadow settings: the last season as it happened with what was forecast for it, the next season, each model's MAPE, the lead and the history it stands on (a season is needed before anything is forecast)"),
        (status = 404, body = Problem)))]
pub async fn forecast(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Items<forecast::Item>>> {
    Ok(Json(Items {
        items: s.fleet.forecast(&name).await?,
    }))
}

#[utoipa::path(put, path = "/scale-sets/{name}/autoscale/shadow", tag = "autoscale",
    request_body = AutoscaleSetting,
    params(("name" = String, Path),
        ("dry_run" = Option<bool>, Query, description = "true: validate and warn without saving")),
    responses((status = 200, body = AutoscaleAnswer, description = "the saved shadow setting and its warnings: evaluated beside the live one on the same metrics, its decisions stored (`…/decisions?shadow=true`), never acted on"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry"),
        (status = 422, body = Problem)))]
pub async fn put_shadow(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(params): Query<HashMap<String, String>>,
    Extension(caller): Extension<Caller>,
    ApiJson(setting): ApiJson<AutoscaleSetting>,
) -> ApiResult<Json<AutoscaleAnswer>> {
    let dry_run = dry_run(&params)?;
    Ok(Json(
        s.fleet
            .set_autoscale_shadow(&name, Some(setting), dry_run, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/scale-sets/{name}/autoscale/shadow", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = AutoscaleAnswer, description = "the shadow setting removed (its decisions are kept until pruned)"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "the scale set is being deleted, or changes too often to write; retry")))]
pub async fn delete_shadow(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<AutoscaleAnswer>> {
    Ok(Json(
        s.fleet
            .set_autoscale_shadow(&name, None, false, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(post, path = "/scale-sets/{name}/autoscale/shadow/promote", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = AutoscaleAnswer, description = "the shadow setting is now the live one (the set has no shadow after)"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the set has no shadow setting, or is being deleted")))]
pub async fn promote_shadow(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<AutoscaleAnswer>> {
    Ok(Json(
        s.fleet
            .promote_autoscale_shadow(&name, actor(&caller))
            .await?,
    ))
}

#[utoipa::path(post, path = "/scale-sets/{name}/autoscale/evaluate", tag = "autoscale",
    params(("name" = String, Path)),
    responses((status = 200, body = Option<Decision>, description = "the decision of an evaluation run now (null when autoscale is off); a change of capacity is applied"),
        (status = 404, body = Problem),
        (status = 503, body = Problem, description = "this replica does not lead: the leader evaluates (its metric windows are the fleet's); retry on it")))]
pub async fn evaluate(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Option<Decision>>> {
    Ok(Json(s.fleet.evaluate_autoscale(&name).await?))
}

#[utoipa::path(post, path = "/scale-sets/{name}/autoscale/backtest", tag = "autoscale",
    request_body = backtest::Request,
    params(("name" = String, Path)),
    responses((status = 200, body = backtest::Answer, description = "each setting's run over the same load and simulated fleet, in the order of `settings`: scores (SPEC RG elasticity metrics, SLO violation time, instance-hours), capacity against the load and the ideal capacity, the decisions; nothing is changed"),
        (status = 404, body = Problem),
        (status = 422, body = Problem, description = "a field is wrong (a draft setting as `settings[i].…`), or the history range holds no metrics")))]
pub async fn backtest(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<backtest::Request>,
) -> ApiResult<Json<backtest::Answer>> {
    Ok(Json(s.fleet.backtest(&name, request).await?))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionPage {
    pub items: Vec<Decision>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[utoipa::path(get, path = "/scale-sets/{name}/autoscale/decisions", tag = "autoscale",
    params(("name" = String, Path),
        ("operation" = inline(Option<Operation>), Query),
        ("changed" = Option<bool>, Query, description = "true: scale actions only (scale_out and scale_in)"),
        ("since" = Option<DateTime<Utc>>, Query), ("until" = Option<DateTime<Utc>>, Query),
        ("before" = Option<i64>, Query),
        ("shadow" = Option<bool>, Query, description = "true: the shadow setting's decisions (each `current` is the capacity the shadow would have had)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "default 100")),
    responses((status = 200, body = DecisionPage, description = "decisions, newest first"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn decisions(
    State(s): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<DecisionPage>> {
    let mut p = Params::new(
        &query,
        &[
            "operation",
            "changed",
            "since",
            "until",
            "before",
            "limit",
            "shadow",
        ],
    );
    let operation = match query.get("operation").map(String::as_str) {
        None => None,
        Some("scale_out") => Some(Operation::ScaleOut),
        Some("scale_in") => Some(Operation::ScaleIn),
        Some("none") => Some(Operation::None),
        Some(other) => {
            p.errors.push(
                "operation",
                format!("must be scale_out, scale_in or none, got {other:?}"),
            );
            None
        }
    };
    let changed = p
        .number::<bool>("changed", "true or false")
        .unwrap_or(false);
    let shadow = p.number::<bool>("shadow", "true or false").unwrap_or(false);
    let limit = p
        .number::<u32>("limit", "an integer between 1 and 1000")
        .unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        p.errors
            .push("limit", format!("must be between 1 and 1000, got {limit}"));
    }
    let filter = DecisionFilter {
        scale_set: name,
        operation,
        since: p.time("since"),
        until: p.time("until"),
        before_id: p.number("before", "a decision id (an integer)"),
        limit,
        shadow,
    };
    p.finish()?;
    let items = if changed {
        s.fleet.scale_actions(&filter).await?
    } else {
        s.fleet.decisions(&filter).await?
    };
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    Ok(Json(DecisionPage { items, next_before }))
}
