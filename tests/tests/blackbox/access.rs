//! Access control from the outside: every REST route, operational endpoint and portal
//! server function is called by an anonymous client, a Reader, an Operator, a Contributor,
//! an Owner and a token scoped to another scale set — the cases come from the permission
//! tables themselves, so a new route cannot be left out — and each answer matches the
//! table; tokens, passwords and sessions are checked where an attacker would try them.

use std::time::Duration;

use flotilla::api::routes;
use flotilla_domain::access::{Access, Grants, Role};
use flotilla_tests::{
    ADMIN, ADMIN_PASSWORD, Api, PortalSession, TestServer, csrf_of, session_cookie, wait_until,
};
use serde_json::{Value, json};

/// A caller of the matrix: how it authenticates and what it holds.
struct Client {
    name: &'static str,
    token: Option<String>,
    grants: Option<Grants>,
}

fn grants(role: Role) -> Grants {
    Grants {
        assignments: vec![(role, None)],
        ..Grants::default()
    }
}

/// The set every route is called on: absent, so that a request that passes the permission
/// check changes nothing (it meets a 404, 409 or 422 instead).
const GHOST: &str = "ghost";

/// `path` with its parameters filled: the scale set is [`GHOST`], `action` the one given.
fn fill(path: &str, action: &str) -> String {
    path.replace("{name}", GHOST)
        .replace("{id}", "999999")
        .replace("{action}", action)
        .replace("{user}", "nobody-here")
}

async fn status_of(
    http: &reqwest::Client,
    method: &http::Method,
    url: &str,
    token: Option<&str>,
) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut request = http
        .request(method, url)
        .header("x-flotilla-request", "1")
        .header("content-type", "application/json")
        // A body every handler refuses: an allowed call stops at validation.
        .body(r#"{"__not_a_field": true}"#);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    // Only the status matters (an event stream never ends).
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .unwrap_or_else(|_| panic!("{url} did not answer"))
        .unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_its_permission_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let owner = server.api();
    owner.create_set("web", 1, json!({})).await;
    owner.create_set("other", 1, json!({})).await;
    let (_, before) = owner.get("/scale-sets/web").await;

    let mut clients = vec![Client {
        name: "anonymous",
        token: None,
        grants: None,
    }];
    for (name, role) in [
        ("reader", Role::Reader),
        ("operator", Role::Operator),
        ("contributor", Role::Contributor),
        ("owner2", Role::Owner),
    ] {
        let api = server.api_as(name, role.as_str(), None).await;
        clients.push(Client {
            name,
            token: api.token.clone(),
            grants: Some(grants(role)),
        });
    }
    // An Owner's token bounded to Contributor on another scale set.
    let (status, scoped) = owner
        .post(
            "/tokens",
            json!({"name": "other-only", "role": "Contributor", "scale_set": "other"}),
        )
        .await;
    assert_eq!(status, 201, "{scoped}");
    clients.push(Client {
        name: "token scoped to another set",
        token: scoped["token"].as_str().map(str::to_string),
        grants: Some(Grants {
            assignments: vec![(Role::Owner, None)],
            cap: Some(Role::Contributor),
            only_set: Some("other".into()),
        }),
    });

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut cases = Vec::new();
    for route in routes() {
        let mut actions: Vec<(&str, Access)> = route
            .permission
            .actions
            .iter()
            .map(|(a, role)| (*a, Access::Set(*role)))
            .collect();
        if route.path.ends_with("{action}") {
            actions.push(("cancel", route.permission.access));
        } else {
            actions.push(("", route.permission.access));
        }
        for (action, access) in actions {
            cases.push((
                route.method.clone(),
                format!("/api/v1{}", fill(route.path, action)),
                access,
            ));
        }
    }
    for (path, access) in flotilla::ops::PERMISSIONS {
        cases.push((http::Method::GET, path.to_string(), access));
    }
    assert!(
        cases.len() > 60,
        "the table lists every route: {}",
        cases.len()
    );

    let mut wrong = Vec::new();
    for (method, path, access) in &cases {
        for client in &clients {
            let allowed = access.allows(client.grants.as_ref(), Some(GHOST));
            let status = status_of(
                &http,
                method,
                &format!("{}{path}", server.url),
                client.token.as_deref(),
            )
            .await;
            let expected_refusal = if client.grants.is_none() { 401 } else { 403 };
            let ok = if allowed {
                status != 401 && status != 403 && status < 500
            } else {
                status == expected_refusal
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} as {}: {status} (the table says {}: {})",
                    client.name,
                    access.describe(),
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "answers that break the table:\n{}",
        wrong.join("\n")
    );

    // Nothing was changed by all of it.
    let (_, after) = owner.get("/scale-sets/web").await;
    assert_eq!(before["generation"], after["generation"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_server_functions_answer_each_role_as_their_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let owner = server.api();
    owner.create_set("web", 1, json!({})).await;
    let mut sessions: Vec<(&str, Option<PortalSession>, Option<Grants>)> =
        vec![("anonymous", None, None)];
    for (name, role) in [
        ("reader", Role::Reader),
        ("operator", Role::Operator),
        ("contributor", Role::Contributor),
    ] {
        server.api_as(name, role.as_str(), None).await;
        let session =
            PortalSession::sign_in(&server.url, name, &format!("{name}-password-123")).await;
        sessions.push((name, Some(session), Some(grants(role))));
    }
    // A Reader of one scale set only.
    server.api_as("web-reader", "Reader", Some("web")).await;
    let web_reader =
        PortalSession::sign_in(&server.url, "web-reader", "web-reader-password-123").await;
    sessions.push((
        "web-reader",
        Some(web_reader),
        Some(Grants {
            assignments: vec![(Role::Reader, Some("web".into()))],
            ..Grants::default()
        }),
    ));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut wrong = Vec::new();
    for entry in flotilla_app::api::access::TABLE {
        for (name, session, grants) in &sessions {
            let allowed = entry.access.allows(grants.as_ref(), Some(GHOST));
            // Arguments that name the absent set and nothing else: an allowed call fails on
            // its arguments or on the set, never on its rights.
            let set_field = match entry.scale_set {
                Some("request.name") => "request[name]",
                _ => "name",
            };
            let status = match session {
                Some(s) => s
                    .form(
                        entry.endpoint,
                        &[(set_field.to_string(), GHOST.to_string())],
                    )
                    .await
                    .status()
                    .as_u16(),
                None => http
                    .post(format!("{}/_fn/{}", server.url, entry.endpoint))
                    .header("origin", &server.url)
                    .form(&[(set_field, GHOST)])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            };
            let expected_refusal = if grants.is_none() { 401 } else { 403 };
            let ok = if allowed {
                status != 401 && status != 403
            } else {
                status == expected_refusal
            };
            if !ok {
                wrong.push(format!(
                    "/_fn/{} as {name}: {status} (the table says {}: {})",
                    entry.endpoint,
                    entry.access.describe(),
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "answers that break the table:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refused_once_revoked_and_never_exceed_their_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let owner = server.api();
    owner.create_set("web", 1, json!({})).await;
    let operator = server.api_as("op", "Operator", None).await;

    // A token may not be given more than its user holds.
    let (status, body) = operator
        .post("/tokens", json!({"name": "too-much", "role": "Owner"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "role");
    // Bad input names its field and creates nothing.
    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (json!({"name": "x", "scale_set": "nope"}), "scale_set"),
    ] {
        let (status, body) = operator.post("/tokens", bad).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // A Reader-capped token of an Operator reads but does not act.
    let (status, created) = operator
        .post("/tokens", json!({"name": "ro", "role": "Reader"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("flt_") && secret.len() == 40, "{secret}");
    let ro = Api::with_token(&server.url, &secret);
    assert_eq!(ro.get_status("/scale-sets/web").await, 200);
    let (status, _) = ro
        .put("/scale-sets/web/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 403);
    // Its secret is never shown again.
    let (_, listed) = operator.get("/tokens").await;
    let text = listed.to_string();
    assert!(!text.contains(&secret));
    assert!(
        text.contains(&secret[..8]),
        "the prefix identifies it: {text}"
    );

    // Revoked: refused at once.
    let id = created["id"].as_i64().unwrap();
    let (status, body) = operator.delete(&format!("/tokens/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ro.get_status("/scale-sets/web").await, 401);
    // Someone else's token is not even acknowledged.
    let other = server.api_as("someone", "Reader", None).await;
    let (_, mine) = operator.post("/tokens", json!({"name": "keep"})).await;
    let (status, _) = other.delete(&format!("/tokens/{}", mine["id"])).await;
    assert_eq!(status, 404);

    // A disabled user's tokens stop working at once.
    let (status, _) = owner.patch("/users/op", json!({"disabled": true})).await;
    assert_eq!(status, 200);
    assert_eq!(operator.get_status("/scale-sets").await, 401);
    // The last Owner cannot be disabled.
    let (status, body) = owner
        .patch(&format!("/users/{ADMIN}"), json!({"disabled": true}))
        .await;
    assert_eq!(status, 409, "{body}");

    // A malformed or mistyped token is refused without a database read (its checksum).
    for bad in ["flt_nope", "Bearer", &format!("{}x", &secret[..39])] {
        let api = Api::with_token(&server.url, bad);
        assert_eq!(api.get_status("/scale-sets").await, 401, "{bad}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_log_names_the_principal_never_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let contributor = server.api_as("carol", "Contributor", None).await;
    // The header that named the actor before accounts is ignored.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/scale-sets", server.url))
        .bearer_auth(contributor.token.as_deref().unwrap())
        .header("x-flotilla-actor", "mallory")
        .json(
            &json!({"name": "web", "capacity": 0, "model": {"image": "debian-12",
            "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "app_port": 80}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, page) = server.api().get("/activity?actor=carol/tests").await;
    let items = page["items"].as_array().unwrap();
    assert!(
        items.iter().any(|a| a["operation"] == "scale_set.create"),
        "{page}"
    );
    let (_, page) = server.api().get("/activity?actor=mallory").await;
    assert_eq!(page["items"], json!([]), "{page}");
    // Sign-ins and token changes are entries too; a failed one does not name a stranger.
    let bad = Api::new(&server.url)
        .post(
            "/login",
            json!({"username": "carol", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(bad.0, 401);
    let stranger = Api::new(&server.url)
        .post(
            "/login",
            json!({"username": "hunter2hunter2", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(stranger.0, 401);
    let (_, page) = server.api().get("/activity?operation=auth.login").await;
    let text = page.to_string();
    assert!(text.contains("\"failed\""), "{text}");
    assert!(
        !text.contains("hunter2hunter2"),
        "an unknown name is not logged: {text}"
    );
    let (_, page) = server.api().get("/activity?operation=token.create").await;
    assert!(!page["items"].as_array().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let anonymous = server.anonymous();
    for _ in 0..5 {
        let (status, _) = anonymous
            .post(
                "/login",
                json!({"username": ADMIN, "password": "not-the-password"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Even the right password waits now.
    let (status, body) = anonymous
        .post(
            "/login",
            json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resist_fixation_and_forged_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    server.api().create_set("web", 1, json!({})).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Anonymous pages send the browser to the login page, and back afterwards.
    let response = http
        .get(format!("{}/scale-sets/web", server.url))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    assert_eq!(
        response.headers()["location"],
        "/login?next=%2Fscale-sets%2Fweb"
    );

    // Fixation: a session id planted before sign-in is not the one after.
    let planted = "flotilla_session=AAAAAAAAAAAAAAAAAAAAAA";
    let response = http
        .post(format!("{}/auth/login", server.url))
        .header("cookie", planted)
        .header("origin", &server.url)
        .form(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("next", "/scale-sets"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/scale-sets");
    let cookie = session_cookie(&response).expect("a new session");
    assert_ne!(cookie, planted);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");

    // An open redirect after sign-in is refused.
    let session = PortalSession::sign_in(&server.url, ADMIN, ADMIN_PASSWORD).await;
    let response = http
        .post(format!("{}/auth/login", server.url))
        .header("origin", &server.url)
        .form(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/");

    // CSRF: a change without the session's token is refused and changes nothing.
    let capacity = |token: Option<&str>| {
        let mut fields = vec![("name", "web".to_string()), ("capacity", "3".to_string())];
        if let Some(token) = token {
            fields.push(("csrf", token.to_string()));
        }
        http.post(format!("{}/_fn/set-capacity", server.url))
            .header("cookie", &session.cookie)
            .header("origin", &server.url)
            .header("accept", "text/html")
            .form(&fields)
            .send()
    };
    assert_eq!(capacity(None).await.unwrap().status(), 403);
    assert_eq!(capacity(Some("forged")).await.unwrap().status(), 403);
    let (_, set) = server.api().get("/scale-sets/web").await;
    assert_eq!(set["capacity"], 1, "{set}");
    assert!(
        capacity(Some(&session.csrf))
            .await
            .unwrap()
            .status()
            .is_redirection()
    );
    wait_until("the capacity is 3", Duration::from_secs(5), || async {
        server.api().get("/scale-sets/web").await.1["capacity"] == 3
    })
    .await;

    // Sign-out ends the session in the database: the old cookie is anonymous again.
    let page = session.get("/").await.text().await.unwrap();
    let csrf = csrf_of(&page).unwrap();
    let response = http
        .post(format!("{}/auth/logout", server.url))
        .header("cookie", &session.cookie)
        .header("origin", &server.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    let after = session.get("/scale-sets").await;
    assert!(after.status().is_redirection(), "{after:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_tokens_and_sessions_are_not_in_the_database_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let (_, created) = server.api().post("/tokens", json!({"name": "ci"})).await;
    let secret = created["token"].as_str().unwrap().to_string();
    let session = PortalSession::sign_in(&server.url, ADMIN, ADMIN_PASSWORD).await;
    let cookie_id = session
        .cookie
        .trim_start_matches("flotilla_session=")
        .to_string();
    let login_token = server.token.clone().unwrap();
    server.stop().await;
    let mut bytes = Vec::new();
    for file in ["flotilla.db", "flotilla.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(file)) {
            bytes.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("$argon2id$"), "passwords are Argon2id hashes");
    for (what, secret) in [
        ("the admin password", ADMIN_PASSWORD),
        ("a token", secret.as_str()),
        ("the login token", login_token.as_str()),
        ("a session id", cookie_id.as_str()),
    ] {
        assert!(!text.contains(secret), "{what} is in the database in clear");
    }
}

#[tokio::test]
async fn health_checks_and_the_api_document_stay_open_and_the_rest_needs_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let anonymous = server.anonymous();
    for open in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
        assert_eq!(anonymous.get_status(open).await, 200, "{open}");
    }
    for closed in ["/metrics", "/api/v1/scale-sets", "/api/v1/activity"] {
        let (status, body) = anonymous.get(closed).await;
        assert_eq!(status, 401, "{closed}: {body}");
    }
    // The document states each operation's permission.
    let (_, doc) = anonymous.get("/api/v1/openapi.json").await;
    let op: &Value = &doc["paths"]["/scale-sets/{name}/capacity"]["put"];
    assert_eq!(
        op["x-flotilla-permission"],
        "Operator on the scale set (or fleet-wide)"
    );
    // A Reader token is what Prometheus needs.
    let reader = server.api_as("prometheus", "Reader", None).await;
    assert_eq!(reader.get_status("/metrics").await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_on_one_scale_set_shows_that_set_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let owner = server.api();
    owner.create_set("web", 1, json!({})).await;
    owner.create_set("db", 1, json!({})).await;
    let web = server.api_as("webops", "Operator", Some("web")).await;
    let (_, sets) = web.get("/scale-sets").await;
    let names: Vec<&str> = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    assert_eq!(web.get_status("/scale-sets/db").await, 403);
    let (status, _) = web
        .put("/scale-sets/web/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = web
        .put("/scale-sets/db/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 403);
    // The activity log shows what it may read: web's entries, none of db's or the fleet's.
    let (_, page) = web.get("/activity?limit=1000").await;
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|a| a["scale_set"] == "web"), "{page}");
    // Fleet-wide reads are not a set's.
    assert_eq!(web.get_status("/backend").await, 403);
    assert_eq!(web.get_status("/events?scale_set=db").await, 403);
    server.stop().await;
}

/// The instances table's pager without JavaScript is a Reader's too (it changes nothing):
/// it sends the browser to the page asked for with the ticked rows as the selection, which
/// that page renders ticked or as hidden fields; a page number that is not one is refused
/// by name, and a hostile id cannot break out of the address or the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_pages_the_instances_table_without_javascript_keeping_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    server.api().create_set("web", 3, json!({})).await;
    server.api_as("reader", "Reader", None).await;
    let reader = PortalSession::sign_in(&server.url, "reader", "reader-password-123").await;
    let field = |k: &str, v: &str| (k.to_string(), v.to_string());
    let hostile = "x\r\nSet-Cookie: a=b\"><script>alert(1)</script>";
    let go = reader
        .form(
            "instances-go",
            &[
                field("name", "web"),
                field("go", "2"),
                field("ids[]", "web_0"),
                field("ids[]", "web_2"),
                field("ids[]", hostile),
                field("view[limit]", "1"),
                field("view[sort]", "id"),
                field("view[dir]", "desc"),
                field("view[bogus]", "ignored"),
            ],
        )
        .await;
    assert!(go.status().is_redirection(), "{go:?}");
    assert!(go.headers().get("set-cookie").is_none(), "{go:?}");
    let location = go.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(
            "/scale-sets/web/instances?sort=id&dir=desc&page=2&limit=1&selected=web_0%2Cweb_2%2Cx%0D%0ASet-Cookie"
        ),
        "{location}"
    );
    // Page 2 of three rows one to a page, by id descending: web_1, the others selected.
    let page = reader.get(&location).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-instance="web_1""#), "{html}");
    assert!(!html.contains(r#"data-instance="web_0""#));
    for id in ["web_0", "web_2"] {
        assert!(
            html.contains(&format!(
                r#"<input type="hidden" name="ids[]" value="{id}""#
            )),
            "{id} is not carried: {html}"
        );
    }
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains("Page 2 of 3"), "{html}");

    // Not a page number: refused, naming the field.
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/_fn/instances-go", server.url))
        .header("cookie", &reader.cookie)
        .header("origin", &server.url)
        .form(&[("name", "web"), ("go", "next"), ("csrf", &reader.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("go") && body.contains("must be a whole number"),
        "{body}"
    );
    server.stop().await;
}
