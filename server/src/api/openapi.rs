//! The OpenAPI document, generated from the handlers' annotations and the domain types.
//!
//! The annotations say what each operation answers for itself (its success, and the
//! problems its handler and the fleet give: 404, 409, 422…); [`Answers`] adds what every
//! request may meet on its way to a handler — the guard's refusals (`guard.rs`), the JSON
//! body extractor's (`json.rs`) and failures inside the server — so each is stated once,
//! here, instead of in forty annotations. Every error answer is a [`Problem`] as
//! `application/problem+json`.

use axum::Json;
use axum::http::StatusCode;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use super::{
    accounts, activity, autoscale, backend, control, demand, events, instances, load_balancer,
    metrics, repairs, rollouts, scale_sets,
};
use crate::guard::{BODY_LIMIT, REQUEST_HEADER};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flotilla API",
        description = "Virtual machine scale sets: create and manage groups of identical VMs.\n\n\
            Errors are `application/problem+json` (RFC 9457) with a message per field. A request \
            that changes state (POST, PUT, PATCH, DELETE) must carry `Content-Type: \
            application/json` or the header `X-Flotilla-Request: 1`, and must not come from \
            another site, else it is refused with 403.\n\n\
            Every operation but the health checks, this document and `POST /login` needs \
            `Authorization: Bearer <API token>` (`flotilla login`, `flotilla token create`); \
            `x-flotilla-permission` says which role each needs (Reader < Operator < \
            Contributor < Owner, fleet-wide or on the scale set). Without credentials the \
            answer is 401, without the role 403.",
    ),
    servers((url = "/api/v1")),
    paths(
        scale_sets::list, scale_sets::create, scale_sets::get, scale_sets::update,
        scale_sets::set_capacity, scale_sets::get_model, scale_sets::set_model,
        scale_sets::model_versions, scale_sets::delete,
        instances::list, instances::get, instances::act, instances::set_protection,
        instances::console, instances::set_busy, instances::complete_lifecycle,
        instances::lifecycle_heartbeat, instances::warm_pool,
        repairs::repairs, repairs::resume_repairs, load_balancer::load_balancer, load_balancer::all_frontends,
        load_balancer::set_instance_switch,
        autoscale::get, autoscale::put, autoscale::delete, autoscale::evaluate,
        autoscale::decisions, autoscale::backtest, autoscale::forecast, autoscale::get_shadow,
        autoscale::put_shadow, autoscale::delete_shadow, autoscale::promote_shadow,
        metrics::metrics,
        demand::get_demand, demand::put_demand, demand::delete_demand,
        rollouts::list, rollouts::start, rollouts::preview, rollouts::get, rollouts::act,
        scale_sets::compare,
        activity::list, activity::list_for_set,
        events::stream,
        backend::info, backend::vms, backend::faults, backend::inject, backend::clear,
        backend::maintenance, backend::start_maintenance, backend::end_maintenance,
        control::tasks, control::loops, control::replicas,
        accounts::login, accounts::me, accounts::list_tokens, accounts::create_token,
        accounts::revoke_token, accounts::list_users, accounts::create_user,
        accounts::update_user, accounts::list_roles, accounts::assign_role,
        accounts::remove_role,
    ),
    components(schemas(Problem)),
    modifiers(&Permissions, &Answers),
    tags(
        (name = "scale sets"), (name = "instances"), (name = "activity"),
        (name = "health"), (name = "autoscale"), (name = "rollouts"), (name = "events"),
        (name = "backend"), (name = "control"), (name = "accounts"),
    ),
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// States each operation's permission from the route table (`super::routes`):
/// `x-flotilla-permission`, the bearer token it needs, and its 401 and 403 answers.
struct Permissions;

impl Modify for Permissions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::extensions::ExtensionsBuilder;
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token, flt_…"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        for route in super::routes() {
            let Some(item) = openapi.paths.paths.get_mut(route.path) else {
                continue;
            };
            let operation = match route.method {
                axum::http::Method::GET => &mut item.get,
                axum::http::Method::POST => &mut item.post,
                axum::http::Method::PUT => &mut item.put,
                axum::http::Method::PATCH => &mut item.patch,
                axum::http::Method::DELETE => &mut item.delete,
                _ => continue,
            };
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let mut permission = route.permission.access.describe();
            for (action, role) in route.permission.actions {
                permission.push_str(&format!("; {action}: {role} on the scale set"));
            }
            let extensions = operation.extensions.get_or_insert_with(Default::default);
            extensions.merge(
                ExtensionsBuilder::new()
                    .add("x-flotilla-permission", permission)
                    .build(),
            );
            if route.permission.access == flotilla_domain::access::Access::Anonymous {
                operation.security = Some(vec![SecurityRequirement::default()]);
                continue;
            }
            operation.security = Some(vec![
                SecurityRequirement::new("token", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ]);
            add_cause(
                operation,
                401,
                "no credentials, or a token that is unknown, expired or revoked",
            );
            add_cause(
                operation,
                403,
                "the caller lacks the role `x-flotilla-permission` names",
            );
        }
    }
}

/// The media type of every error answer.
const PROBLEM_JSON: &str = "application/problem+json";

/// Completes every operation with the answers that do not depend on its handler:
///
/// - every request: 413 (a body over [`BODY_LIMIT`], read whatever the method), 421 (a
///   `Host` this server is not reached at), 500 (a failure inside the server, with a
///   request id) and 503 (no answer within `--request-timeout`; event streams are exempt);
/// - a path with parameters: 400 (a segment that is not percent-encoded UTF-8, or not an
///   integer where the path wants one);
/// - a request that changes state: 403 (it looks cross-site), and the optional
///   `X-Flotilla-Request` header that a client without a JSON body sends to pass;
/// - a JSON request body: 400 (malformed JSON) and 422 (a field of the wrong type, missing
///   or unknown, or an invalid value); 415 (not `application/json`) where the body is
///   required, as the JSON extractor reads those (an optional body is read as JSON
///   whatever its type);
///
/// and makes every 4xx and 5xx answer, the handlers' own included, a [`Problem`] as
/// `application/problem+json`, which is what `ApiError` sends. A status the handler
/// documents keeps its description, extended with the generic cause.
struct Answers;

impl Modify for Answers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (changes_state, operation) in operations(item) {
                complete(operation, changes_state);
            }
        }
    }
}

/// The item's operations, each with whether its method changes state (as the guard
/// decides: anything but GET, HEAD and OPTIONS).
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, &mut item.get),
        (false, &mut item.head),
        (false, &mut item.options),
        (true, &mut item.post),
        (true, &mut item.put),
        (true, &mut item.patch),
        (true, &mut item.delete),
        (true, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(changes_state, op)| op.as_mut().map(|op| (changes_state, op)))
}

fn complete(operation: &mut Operation, changes_state: bool) {
    let body = operation.request_body.as_ref().map(|body| JsonBody {
        json: body.content.contains_key("application/json"),
        required: matches!(body.required, Some(Required::True)),
    });
    let path_parameters = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let streams = operation
        .responses
        .responses
        .values()
        .any(|r| matches!(r, RefOr::T(r) if r.content.contains_key("text/event-stream")));

    let mut add = |status: u16, cause: &str| add_cause(operation, status, cause);
    if path_parameters {
        add(
            400,
            "a path segment is not percent-encoded UTF-8, or not an integer where the path \
             wants one",
        );
    }
    if body.is_some_and(|b| b.json) {
        add(400, "malformed JSON (the detail gives the line and column)");
    }
    if changes_state {
        add(
            403,
            "refused as cross-site: the request has neither `Content-Type: application/json` \
             nor `X-Flotilla-Request: 1`, or its `Origin` or `Sec-Fetch-Site` names another site",
        );
    }
    add(
        413,
        &format!("the request body exceeds {BODY_LIMIT} bytes (the connection closes after it)"),
    );
    if body.is_some_and(|b| b.json && b.required) {
        add(415, "the body is not `Content-Type: application/json`");
    }
    add(
        421,
        "the `Host` is not a name this server is reached at (add it to `--public-url`)",
    );
    if body.is_some_and(|b| b.json) {
        add(
            422,
            "a field has the wrong type, is missing or unknown, or its value is invalid: \
             `errors` names each field",
        );
    }
    add(
        500,
        "the server failed; `request_id` identifies the request in the server's log",
    );
    if !streams {
        add(503, "no answer within the server's `--request-timeout`");
    }

    for (status, response) in operation
        .responses
        .responses
        .iter_mut()
        .filter_map(|(status, r)| {
            let error = status.starts_with('4') || status.starts_with('5');
            match r {
                RefOr::T(r) if error => Some((status, r)),
                _ => None,
            }
        })
    {
        if response.description.is_empty() {
            // The problem's `detail` says what; the reason says which kind.
            response.description = status
                .parse()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_string();
        }
        response.content.clear();
        response.content.insert(
            PROBLEM_JSON.to_string(),
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
    }

    if changes_state {
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        if !parameters
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(REQUEST_HEADER))
        {
            parameters.push(request_header());
        }
    }
}

#[derive(Clone, Copy)]
struct JsonBody {
    json: bool,
    required: bool,
}

/// Documents `cause` for `status`: a new response, or one more cause of a documented one.
fn add_cause(operation: &mut Operation, status: u16, cause: &str) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut(&status.to_string()) {
        Some(RefOr::T(response)) if response.description.is_empty() => {
            response.description = cause.to_string();
        }
        Some(RefOr::T(response)) => {
            if !response.description.contains(cause) {
                response.description = format!("{}; or {cause}", response.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert(status.to_string(), problem(cause));
        }
    }
}

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

/// `X-Flotilla-Request: 1`: what a client whose request has no JSON body sends to show the
/// guard it is not a cross-site form (a page on another site cannot send it without a CORS
/// preflight, which this server never grants).
fn request_header() -> Parameter {
    ParameterBuilder::new()
        .name("X-Flotilla-Request")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`1`: this request is not a cross-site form. A request that changes state and \
             has no JSON body must send it, else it is refused with 403; the CLI always does.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["1"])),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// Every error answer of every operation is a problem, as `ApiError` sends it.
    #[test]
    fn every_error_answer_is_problem_json() {
        let doc = doc();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let content = response["content"].as_object().unwrap();
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            [PROBLEM_JSON],
                            "{method} {path} {status}"
                        );
                        assert_eq!(
                            content[PROBLEM_JSON]["schema"]["$ref"],
                            "#/components/schemas/Problem"
                        );
                        assert_ne!(response["description"], "", "{method} {path} {status}");
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 100, "{seen} error answers");
    }

    #[test]
    fn the_guards_answers_are_where_they_apply() {
        let doc = doc();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let statuses = |op: &serde_json::Value| -> Vec<String> {
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        // A read without a body or path parameters (401 and 403: it needs a principal).
        let list = statuses(&op("/scale-sets", "get"));
        assert_eq!(list, ["200", "401", "403", "413", "421", "500", "503"]);
        // With a path parameter: 400 when it cannot be read.
        let get = statuses(&op("/scale-sets/{name}", "get"));
        assert_eq!(
            get,
            [
                "200", "400", "401", "403", "404", "413", "421", "500", "503"
            ]
        );
        // Anonymous: no credentials asked, none refused.
        let login = statuses(&op("/login", "post"));
        assert!(!login.contains(&"403".to_string()) || login.contains(&"400".to_string()));
        assert_eq!(op("/login", "post")["security"], serde_json::json!([{}]));
        assert_eq!(
            op("/scale-sets/{name}/rollouts/{id}/{action}", "post")["x-flotilla-permission"],
            "Contributor on the scale set (or fleet-wide); pause: Operator on the scale set; \
             resume: Operator on the scale set"
        );
        // A JSON body, required.
        let create = statuses(&op("/scale-sets", "post"));
        for s in ["400", "403", "413", "415", "421", "422", "500", "503"] {
            assert!(create.contains(&s.to_string()), "create: {s} in {create:?}");
        }
        // An optional JSON body: read whatever its type, so no 415.
        let act = statuses(&op("/scale-sets/{name}/rollouts/{id}/{action}", "post"));
        assert!(act.contains(&"400".to_string()) && !act.contains(&"415".to_string()));
        // No body: no 415 or 422 from the extractor.
        let clear = statuses(&op("/backend/faults", "delete"));
        assert!(!clear.contains(&"415".to_string()) && !clear.contains(&"422".to_string()));
        assert!(clear.contains(&"403".to_string()));
        // A status the handler documents keeps its cause and gains the generic ones.
        let console = op("/scale-sets/{name}/instances/{id}/console", "get");
        let cause = console["responses"]["400"]["description"].as_str().unwrap();
        assert!(
            cause.starts_with("the backend keeps no console log; or a path segment"),
            "{cause}"
        );
        // The event stream is not subject to the request timeout: its 503 is its own.
        let events = op("/events", "get");
        assert_eq!(
            events["responses"]["503"]["description"],
            "too many event streams are open"
        );
    }

    #[test]
    fn state_changing_operations_document_the_request_header() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let has = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["name"] == "X-Flotilla-Request"
                            && p["in"] == "header"
                            && p["required"] == false
                    })
                });
                assert_eq!(has, method != "get", "{method} {path}");
            }
        }
    }
}
