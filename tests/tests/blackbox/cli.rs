//! The CLI (`flotilla scale-set …`, `flotilla instance …`, `login`, `token …`, `user …`,
//! `role …`) against a real server.

use std::path::Path;
use std::process::Stdio;

use flotilla_tests::{ADMIN, ADMIN_PASSWORD, Api, TestServer, binary};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub(super) async fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .args(["--server", &server.url])
        .env("USER", "tester")
        .env("FLOTILLA_TOKEN", server.token.as_deref().expect("a token"))
        // No stored credentials of whoever runs the tests.
        .env("XDG_CONFIG_HOME", server.data_dir.join("cli-config"))
        .output()
        .await
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_manages_scale_sets_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    let run = |args: &'static [&'static str]| cli(&server, args);

    let (ok, out, err) = run(&[
        "scale-set",
        "create",
        "cli",
        "--capacity",
        "3",
        "--zones",
        "1,2",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("name:          cli"), "{out}");
    api.wait_running("cli", 3).await;

    let (ok, out, _) = run(&["scale-set", "list"]).await;
    assert!(ok);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("cli ") && l.contains("1,2")),
        "{out}"
    );

    let (ok, out, _) = run(&["scale-set", "show", "cli"]).await;
    assert!(ok);
    assert!(out.contains("3 instances: 3 running"), "{out}");

    let (ok, out, _) = run(&["instance", "list", "cli", "--output", "json"]).await;
    assert!(ok);
    let json: Value = serde_json::from_str(&out).expect("--output json prints JSON");
    assert_eq!(json["items"].as_array().unwrap().len(), 3);

    let (ok, out, err) = run(&["instance", "restart", "cli", "cli_0"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("cli_0"), "{out}");

    let (ok, _, err) = run(&["scale-set", "scale", "cli", "1"]).await;
    assert!(ok, "{err}");
    api.wait_running("cli", 1).await;

    // Refusals print the server's message and the field, and exit non-zero.
    let (ok, _, err) = run(&["scale-set", "create", "Bad_Name", "--vcpus", "99"]).await;
    assert!(!ok);
    assert!(
        err.contains("name:") && err.contains("model.vcpus:"),
        "{err}"
    );
    let (ok, _, err) = run(&["scale-set", "show", "missing"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
    let (ok, _, err) = run(&["instance", "stop", "cli", "cli_99"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    let (ok, out, _) = run(&["activity", "--scale-set", "cli"]).await;
    assert!(ok);
    assert!(
        // Authentication is on: the token's principal acts, not the actor header's name.
        out.contains("admin/tests")
            && !out.contains("cli:tester")
            && out.contains("instance.restart"),
        "{out}"
    );

    let (ok, out, err) = run(&["scale-set", "delete", "cli", "--wait"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("deleted scale set cli"), "{out}");
    assert_eq!(api.get_status("/scale-sets/cli").await, 404);
    server.stop().await;
}

#[tokio::test]
async fn cli_reports_an_unreachable_server() {
    let out = Command::new(binary())
        .args(["scale-set", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Flotilla server"));
}

#[tokio::test]
async fn cli_configures_probes_and_frontends_drains_and_shows_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("web", 2, serde_json::json!({})).await;
    api.wait_healthy("web", 2).await;
    let port = flotilla_tests::free_port();
    let patch = dir.path().join("patch.json");
    std::fs::write(
        &patch,
        serde_json::json!({
            "health_probe": {"protocol": "http", "port": 80, "path": "/health",
                             "interval_seconds": 2, "timeout_seconds": 1},
            "automatic_repairs": {"enabled": true, "grace_period_seconds": 60},
            "load_balancer": {"frontends": [{"name": "web", "protocol": "http", "port": port}]},
        })
        .to_string(),
    )
    .unwrap();
    let patch = patch.display().to_string();
    let (ok, out, err) = cli(&server, &["scale-set", "update", "web", "--file", &patch]).await;
    assert!(ok, "{err}");
    assert!(out.contains("name:          web"), "{out}");

    let (ok, out, err) = cli(&server, &["repairs", "show", "web"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("repairs:       enabled"), "{out}");
    assert!(out.contains("limit:         1 at once"), "{out}");

    let (ok, out, err) = cli(&server, &["instance", "drain", "web", "web_0"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("web_0"), "{out}");
    let (_, instance) = api.get("/scale-sets/web/instances/web_0").await;
    assert_eq!(instance["load_balancer_enabled"], false);
    let (ok, _, err) = cli(&server, &["instance", "enable", "web", "web_0"]).await;
    assert!(ok, "{err}");

    let (ok, out, err) = cli(&server, &["load-balancer", "web"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("web/web  http on 127.0.0.1:{port}")),
        "{out}"
    );

    // The console of an instance and the backend's hosts (the mock: zones, no hosts).
    let (ok, out, err) = cli(&server, &["instance", "console", "web", "web_0"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("[mock] web_0 — a simulated VM of scale set web"),
        "{out}"
    );
    let (ok, out, err) = cli(&server, &["hosts"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("backend mock\nzones: 1 (3 fault domains), 2 (3 fault domains)"),
        "{out}"
    );
    let (ok, _, err) = cli(&server, &["instance", "console", "web", "web_9"]).await;
    assert!(!ok);
    assert!(err.contains("web_9"), "{err}");

    // Refusals name the field and exit non-zero.
    let (ok, _, err) = cli(&server, &["repairs", "resume", "web"]).await;
    assert!(!ok);
    assert!(err.contains("not suspended"), "{err}");
}

#[tokio::test]
async fn cli_changes_the_model_previews_rolls_out_and_compares_versions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let api = server.api();
    api.create_set("cli-ro", 2, serde_json::json!({"zones": ["1"]}))
        .await;
    api.wait_healthy("cli-ro", 2).await;
    let model = dir.path().join("model.json");
    std::fs::write(
        &model,
        r#"{"image":"ubuntu-24.04","vcpus":2,"memory_mib":2048,"disk_gib":10,"app_port":80}"#,
    )
    .unwrap();
    let model = model.to_str().unwrap();

    let (ok, out, err) = cli(&server, &["rollout", "preview", "cli-ro", "--file", model]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("INSTANCE"), "{out}");
    assert!(
        out.contains("cli-ro_0") && out.contains("v1 → v2") && out.contains("reimage"),
        "{out}"
    );
    // Manual mode, the whole set: the rolling policy's batches (20 % of 2 → 1).
    assert!(out.contains("2 batch(es) of at most 1"), "{out}");

    let (ok, out, err) = cli(&server, &["model", "set", "cli-ro", "--file", model]).await;
    assert!(ok, "{err}");
    assert!(out.contains("model version 2"), "{out}");
    // Manual mode: a person starts it, here for one instance.
    let (ok, out, err) = cli(
        &server,
        &["rollout", "start", "cli-ro", "--instances", "cli-ro_1"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("rollout 1 (Manual)"), "{out}");
    flotilla_tests::wait_until(
        "the rollout completes",
        std::time::Duration::from_secs(30),
        || async {
            cli(&server, &["rollout", "list", "cli-ro"])
                .await
                .1
                .contains("completed")
        },
    )
    .await;
    let (ok, out, _) = cli(&server, &["rollout", "show", "cli-ro", "1"]).await;
    assert!(ok);
    assert!(
        out.contains("cli-ro_1") && out.contains("succeeded"),
        "{out}"
    );

    let (ok, out, _) = cli(&server, &["model", "versions", "cli-ro"]).await;
    assert!(ok);
    assert!(
        out.contains("v1") && out.contains("v2") && out.contains("admin/tests"),
        "{out}"
    );
    let (ok, out, _) = cli(&server, &["model", "diff", "cli-ro", "1", "2"]).await;
    assert!(ok);
    assert!(
        out.contains("image") && out.contains("\"ubuntu-24.04\""),
        "{out}"
    );

    // Refused: nothing left to upgrade on cli-ro_1; an unknown rollout.
    let (ok, _, err) = cli(
        &server,
        &["rollout", "start", "cli-ro", "--instances", "cli-ro_1"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("nothing to upgrade"), "{err}");
    let (ok, _, err) = cli(&server, &["rollout", "pause", "cli-ro", "7"]).await;
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
}

/// One run of the CLI with the credentials a test chooses: `token` as `FLOTILLA_TOKEN`
/// (none: only what `flotilla login` stored in `config`), `stdin` piped in.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

async fn cli_as(
    server: &TestServer,
    config: &Path,
    token: Option<&str>,
    stdin: Option<&str>,
    args: &[&str],
) -> Run {
    let mut command = Command::new(binary());
    command
        .args(args)
        .args(["--server", &server.url])
        .env("USER", "tester")
        .env("XDG_CONFIG_HOME", config)
        .env_remove("FLOTILLA_TOKEN")
        .env_remove("FLOTILLA_DATA_DIR")
        .env_remove("FLOTILLA_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("FLOTILLA_TOKEN", token);
    }
    let mut child = command.spawn().expect("run the CLI");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("the CLI ends");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn cli_signs_in_keeps_the_token_private_and_signs_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let config = dir.path().join("config");
    let anonymous = |args: &'static [&'static str]| cli_as(&server, &config, None, None, args);

    // Before signing in: refused, with how to sign in.
    let r = anonymous(&["scale-set", "list"]).await;
    assert_eq!(r.code, Some(1));
    assert!(
        r.err
            .contains(&format!("sign in: flotilla login --server {}", server.url)),
        "{}",
        r.err
    );

    // A wrong password: the server's message, no hint, nothing stored.
    let r = cli_as(
        &server,
        &config,
        None,
        Some("not-the-password\n"),
        &["login", "--username", ADMIN, "--password-stdin"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("wrong user name or password"), "{}", r.err);
    assert!(!r.err.contains("sign in:"), "{}", r.err);
    let file = config.join("flotilla/credentials.json");
    assert!(!file.exists());

    let r = cli_as(
        &server,
        &config,
        None,
        Some(&format!("{ADMIN_PASSWORD}\n")),
        &["login", "--username", ADMIN, "--password-stdin"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert!(
        r.out
            .starts_with(&format!("signed in to {} as admin (token flt_", server.url)),
        "{}",
        r.out
    );
    assert!(r.out.contains("…, expires 20"), "{}", r.out);

    // The file is the user's alone and holds the token, not the password.
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(ADMIN_PASSWORD), "{text}");
    let stored: Value = serde_json::from_str(&text).unwrap();
    let token = stored[&server.url]
        .as_str()
        .expect("a token for the server");
    assert!(token.starts_with("flt_"));
    assert!(!r.out.contains(token), "the login never prints the token");

    // Later commands sign in with it.
    let r = anonymous(&["scale-set", "list"]).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.starts_with("NAME"), "{}", r.out);
    let r = anonymous(&["whoami"]).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.contains("user:    admin"), "{}", r.out);
    assert!(r.out.contains("roles:   Owner fleet-wide"), "{}", r.out);
    let hostname_token = r.out.contains("actor:   admin/cli@");
    assert!(hostname_token, "{}", r.out);
    let r = anonymous(&["whoami", "-o", "json"]).await;
    let me: Value = serde_json::from_str(&r.out).expect("JSON");
    assert_eq!(me["user"], "admin");
    assert!(me["token"].is_i64(), "{me}");

    // Signing out revokes the token: refused at once, and forgotten.
    let r = anonymous(&["logout"]).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.contains("signed out of"), "{}", r.out);
    let (status, _) = Api::with_token(&server.url, token).get("/me").await;
    assert_eq!(status, 401);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(stored.get(&server.url).is_none(), "{stored}");
    let r = anonymous(&["scale-set", "list"]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("sign in: flotilla login"), "{}", r.err);
    let r = anonymous(&["logout"]).await;
    assert!(r.ok() && r.out.contains("not signed in"), "{}", r.out);
    server.stop().await;
}

#[tokio::test]
async fn cli_creates_lists_and_revokes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    server.api().create_set("web", 1, json!({})).await;
    let config = dir.path().join("config");
    let owner = server.token.as_deref();

    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &[
            "token",
            "create",
            "ci",
            "--role",
            "reader",
            "--expires-in-days",
            "7",
        ],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.contains("will not be shown again"), "{}", r.out);
    assert!(
        r.out.contains("\"ci\" of admin (at most Reader, expires"),
        "{}",
        r.out
    );
    let secret = r
        .out
        .lines()
        .find(|l| l.starts_with("flt_"))
        .expect("the secret on a line of its own")
        .to_string();
    let ci = Api::with_token(&server.url, &secret);
    assert_eq!(ci.get_status("/scale-sets").await, 200);
    let (status, _) = ci
        .put("/scale-sets/web/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 403, "the token is capped at Reader");

    let r = cli_as(&server, &config, owner, None, &["token", "list"]).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.starts_with("ID"), "{}", r.out);
    let row = r
        .out
        .lines()
        .find(|l| l.contains(" ci "))
        .unwrap_or_else(|| panic!("{}", r.out));
    assert!(row.contains("Reader") && row.ends_with("active"), "{row}");
    assert!(row.contains(&format!("{}…", &secret[..8])), "{row}");
    assert!(!r.out.contains(&secret), "a list never shows a secret");
    let id = row.split_whitespace().next().unwrap().to_string();

    // Everyone's tokens: the reader's too.
    server.api_as("rita", "Reader", None).await;
    let r = cli_as(&server, &config, owner, None, &["token", "list"]).await;
    assert!(!r.out.contains("rita"), "{}", r.out);
    let r = cli_as(&server, &config, owner, None, &["token", "list", "--all"]).await;
    assert!(r.out.contains("rita"), "{}", r.out);

    // Revoked: refused at once.
    let r = cli_as(&server, &config, owner, None, &["token", "revoke", &id]).await;
    assert!(r.ok(), "{}", r.err);
    assert!(
        r.out
            .contains(&format!("revoked token {id} \"ci\" of admin")),
        "{}",
        r.out
    );
    assert_eq!(ci.get_status("/scale-sets").await, 401);
    let r = cli_as(
        &server,
        &config,
        Some(&secret),
        None,
        &["scale-set", "list"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(
        r.err.contains("refused") && r.err.contains("sign in: flotilla login"),
        "{}",
        r.err
    );

    // Bad input names the field.
    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["token", "create", "x", "--role", "boss"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("role: \"boss\" is not a role"), "{}", r.err);
    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["token", "create", "x", "--scale-set", "nope"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("scale_set: no scale set"), "{}", r.err);
    server.stop().await;
}

#[tokio::test]
async fn cli_manages_users_on_the_database_without_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    let config = dir.path().join("config");
    let data = server.data_dir.display().to_string();
    let user = |args: &[&str], stdin: Option<&str>| {
        let mut argv = vec!["user"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--data-dir", &data]);
        let argv: Vec<String> = argv.into_iter().map(str::to_string).collect();
        let config = config.clone();
        let server = &server;
        let stdin = stdin.map(str::to_string);
        async move {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            cli_as(server, &config, None, stdin.as_deref(), &argv).await
        }
    };
    let login = |name: &'static str, password: &'static str| {
        let api = server.anonymous();
        async move {
            api.post(
                "/login",
                json!({ "username": name, "password": password, "token_name": "t" }),
            )
            .await
            .0
        }
    };

    let r = user(
        &["add", "bob", "--role", "reader", "--password-stdin"],
        Some("bob-password-1\n"),
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.out, "created user bob (Reader fleet-wide)\n");
    assert_eq!(login("bob", "bob-password-1").await, 201);

    let r = user(&["list"], None).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.starts_with("NAME"), "{}", r.out);
    let row = |name: &str| {
        r.out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {}", r.out))
            .to_string()
    };
    assert!(row("admin").contains("enabled") && row("admin").contains("Owner"));
    assert!(row("bob").contains("Reader") && row("bob").contains("cli:tester"));

    let r = user(
        &["passwd", "bob", "--password-stdin"],
        Some("bob-password-2"),
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert_eq!(login("bob", "bob-password-1").await, 401);
    assert_eq!(login("bob", "bob-password-2").await, 201);

    let r = user(&["disable", "bob"], None).await;
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.starts_with("user bob disabled"), "{}", r.out);
    assert_eq!(login("bob", "bob-password-2").await, 401);
    let r = user(&["enable", "bob"], None).await;
    assert!(r.ok(), "{}", r.err);
    assert_eq!(login("bob", "bob-password-2").await, 201);

    // Bad input: the field's message, status 1, nothing changed.
    for (args, stdin, message) in [
        (
            &["add", "Bad_Name", "--password-stdin"][..],
            "a-long-enough-password",
            "name: 1–64 characters",
        ),
        (
            &["add", "carol", "--password-stdin"][..],
            "short",
            "password: at least 10 characters",
        ),
        (
            &["add", "carol", "--role", "boss", "--password-stdin"][..],
            "a-long-enough-password",
            "role: \"boss\" is not a role",
        ),
        (
            &["add", "bob", "--password-stdin"][..],
            "a-long-enough-password",
            "user \"bob\" already exists",
        ),
        (
            &["passwd", "nobody", "--password-stdin"][..],
            "a-long-enough-password",
            "user \"nobody\" not found",
        ),
        (
            &["disable", "admin"][..],
            "",
            "the last enabled fleet-wide Owner",
        ),
    ] {
        let r = user(args, Some(stdin)).await;
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.out);
        assert!(r.err.contains(message), "{args:?}: {}", r.err);
    }
    let r = user(&["list"], None).await;
    assert!(!r.out.contains("carol"), "{}", r.out);
    assert_eq!(login(ADMIN, ADMIN_PASSWORD).await, 201);

    // The wrong directory holds no database: refused, none created.
    let elsewhere = dir.path().join("elsewhere");
    let r = cli_as(
        &server,
        &config,
        None,
        None,
        &["user", "list", "--data-dir", elsewhere.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("no database at"), "{}", r.err);
    assert!(!elsewhere.exists());

    // The activity log names who acted.
    let r = cli_as(
        &server,
        &config,
        server.token.as_deref(),
        None,
        &["activity", "--actor", "cli:tester", "--limit", "50"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    for operation in [
        "user.create",
        "user.password",
        "user.disable",
        "user.enable",
    ] {
        assert!(r.out.contains(operation), "{operation}: {}", r.out);
    }
    assert!(!r.out.contains("auth.login"), "{}", r.out);
    server.stop().await;
}

#[tokio::test]
async fn cli_assigns_lists_and_removes_roles() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir).await;
    server.api().create_set("web", 1, json!({})).await;
    let config = dir.path().join("config");
    let owner = server.token.as_deref();
    let reader = server.api_as("rita", "Reader", None).await;
    let rita = reader.token.as_deref();

    // A Reader may look but not scale: told why.
    let r = cli_as(&server, &config, rita, None, &["scale-set", "show", "web"]).await;
    assert!(r.ok(), "{}", r.err);
    let r = cli_as(
        &server,
        &config,
        rita,
        None,
        &["scale-set", "scale", "web", "2"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(
        r.err.contains("rita/tests may not do this") && r.err.contains("Operator"),
        "{}",
        r.err
    );
    // Nor manage roles.
    let r = cli_as(&server, &config, rita, None, &["role", "list"]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("Owner"), "{}", r.err);

    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["role", "assign", "rita", "operator", "--scale-set", "web"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.out, "rita holds Operator on scale set web\n");
    let r = cli_as(
        &server,
        &config,
        rita,
        None,
        &["scale-set", "scale", "web", "2"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);

    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["role", "list", "--user", "rita"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    let rows: Vec<&str> = r.out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", r.out);
    assert!(
        rows.iter()
            .any(|l| l.contains("Reader") && l.contains("(fleet-wide)")),
        "{}",
        r.out
    );
    assert!(
        rows.iter()
            .any(|l| l.contains("Operator") && l.contains("web")),
        "{}",
        r.out
    );
    let r = cli_as(&server, &config, owner, None, &["role", "list"]).await;
    assert!(r.out.contains("admin"), "{}", r.out);

    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["role", "remove", "rita", "--scale-set", "web"],
    )
    .await;
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.out, "removed the role of rita on scale set web\n");
    let r = cli_as(
        &server,
        &config,
        rita,
        None,
        &["scale-set", "scale", "web", "1"],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.out);
    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["role", "list", "--user", "rita", "-o", "json"],
    )
    .await;
    let listed: Value = serde_json::from_str(&r.out).expect("JSON");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // Refusals: an unknown role (before anything is sent), the last Owner.
    let r = cli_as(
        &server,
        &config,
        owner,
        None,
        &["role", "assign", "rita", "boss"],
    )
    .await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("role: \"boss\" is not a role"), "{}", r.err);
    let r = cli_as(&server, &config, owner, None, &["role", "remove", "admin"]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("last enabled fleet-wide Owner"), "{}", r.err);
    server.stop().await;
}
