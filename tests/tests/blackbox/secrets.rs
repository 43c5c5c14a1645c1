//! Secrets are written, never read back. Recognisable secrets — a TLS private key, webhook
//! secrets, tokens in webhook URLs, user data, the database's password — go in through
//! every write path (create, PATCH, the autoscale PUT, the model PUT, a rollout preview,
//! the portal's forms, the CLI), and every read path is searched for them: the REST API, the
//! event stream, the activity log, the portal's pages and exports, the CLI's output and the
//! server's own log (at debug level). Zero hits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_tests::{ADMIN, ADMIN_PASSWORD, Api, PortalSession, binary, free_port, wait_until};
use futures::StreamExt;
use serde_json::{Value, json};

const WEBHOOK_SECRETS: [&str; 4] = [
    "whsec-create-4417",
    "whsec-patch-9921",
    "whsec-put-3385",
    "whsec-cli-5532",
];
const URL_TOKENS: [&str; 3] = ["tok-path-8812", "tok-query-6671", "tok-portal-1198"];
const USER_DATA: [&str; 5] = [
    "ud-create-3319",
    "ud-put-4401",
    "ud-preview-5510",
    "ud-portal-2264",
    "ud-cli-7781",
];
const DATABASE_PASSWORD: &str = "dbpw-0917-secret";

fn hook(secret: &str, token: &str) -> Value {
    json!({"url": format!("https://hooks.example.com/services/{token}?key=tok-query-6671"),
           "secret": secret})
}

fn autoscale(hooks: Vec<Value>) -> Value {
    json!({"enabled": false, "profiles": [{"name": "default",
           "capacity": {"minimum": 1, "maximum": 3, "default": 1}}],
           "notifications": {"webhooks": hooks}})
}

fn model(user_data: &str) -> Value {
    json!({"image": "debian-12", "vcpus": 1, "memory_mib": 512, "disk_gib": 10,
           "user_data": format!("#cloud-config\npassword: {user_data}\n"), "app_port": 80})
}

/// Runs the CLI against `url` with `token`; answers its stdout and stderr.
async fn cli(url: &str, token: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(binary())
        .args(args)
        .args(["--server", url])
        .env("FLOTILLA_TOKEN", token)
        .output()
        .await
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_written_anywhere_are_read_back_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    // PostgreSQL with a password in its URL when a server is at hand (trust auth takes any);
    // SQLite otherwise.
    let postgres = flotilla_store::conformance::fresh_postgres().await;
    let database_url = match &postgres {
        Some((url, _)) => url.replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{DATABASE_PASSWORD}@"),
            1,
        ),
        None => {
            eprintln!(
                "secrets: FLOTILLA_TEST_POSTGRES unset — the database password is not exercised"
            );
            format!("sqlite:{}", dir.path().join("flotilla.db").display())
        }
    };
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = tokio::process::Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--database-url", &database_url, "--mock-latency", "0"])
        .args(["--reconcile-interval", "1s", "--metrics-interval", "1s"])
        .env("FLOTILLA_LOG", "debug")
        .env("FLOTILLA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start flotilla serve");
    let url = format!("http://127.0.0.1:{port}");
    let api = Api::new(&url);
    wait_until("the server is ready", Duration::from_secs(30), || async {
        api.get_status("/readyz").await == 200
    })
    .await;
    let api = Api::signed_in(&url, ADMIN, ADMIN_PASSWORD).await;
    let token = api.token.clone().expect("a token");

    // Everything the event stream says while secrets are written.
    let events = Arc::new(Mutex::new(String::new()));
    let stream = {
        let events = events.clone();
        let response = reqwest::Client::new()
            .get(format!("{url}/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        tokio::spawn(async move {
            let mut body = response.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                events
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        })
    };

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key_pem = cert.key_pair.serialize_pem();
    // A line of the key's body: what a leak of the key would contain.
    let key_line = key_pem.lines().nth(1).unwrap().to_string();
    let frontend = |port: u16| {
        json!({"frontends": [{"name": "tls", "protocol": "https", "port": port,
               "tls": {"certificate_pem": cert.cert.pem(), "private_key_pem": key_pem}}]})
    };
    let mut answers = Vec::new();

    // 1. Create, with all of them.
    let mut create = json!({
        "name": "web", "model": model(USER_DATA[0]), "capacity": 1, "zones": ["1"],
        "load_balancer": frontend(free_port()),
        "autoscale": autoscale(vec![hook(WEBHOOK_SECRETS[0], URL_TOKENS[0])]),
    });
    let (status, body) = api.post("/scale-sets", create.take()).await;
    assert_eq!(status, 201, "{body}");
    answers.push(body);
    api.wait_running("web", 1).await;
    // 2. PATCH: another frontend with the key, another webhook.
    let (status, body) = api
        .patch(
            "/scale-sets/web",
            json!({"load_balancer": frontend(free_port()),
                   "autoscale": autoscale(vec![hook(WEBHOOK_SECRETS[1], URL_TOKENS[0])])}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    answers.push(body);
    // 3. The autoscale PUT (and its dry run).
    for path in [
        "/scale-sets/web/autoscale?dry_run=true",
        "/scale-sets/web/autoscale",
    ] {
        let (status, body) = api
            .put(
                path,
                autoscale(vec![hook(WEBHOOK_SECRETS[2], URL_TOKENS[1])]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    // 4. The model PUT and a rollout preview of another.
    let (status, body) = api.put("/scale-sets/web/model", model(USER_DATA[1])).await;
    assert_eq!(status, 200, "{body}");
    answers.push(body);
    let (status, body) = api
        .post(
            "/scale-sets/web/rollouts/preview",
            json!({"model": model(USER_DATA[2])}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    answers.push(body);
    // 5. The portal's forms, as a browser without JavaScript posts them.
    let portal = PortalSession::sign_in(&url, ADMIN, ADMIN_PASSWORD).await;
    let form = |endpoint: &'static str, fields: Vec<(String, String)>| {
        let portal = &portal;
        async move { Ok::<_, std::convert::Infallible>(portal.form(endpoint, &fields).await) }
    };
    let fields = |user_data: String| {
        vec![
            ("name".to_string(), "web".to_string()),
            ("input[image]".into(), "debian-12".into()),
            ("input[vcpus]".into(), "1".into()),
            ("input[memory_mib]".into(), "512".into()),
            ("input[disk_gib]".into(), "10".into()),
            ("input[user_data]".into(), user_data),
            ("input[tags]".into(), String::new()),
        ]
    };
    let response = form(
        "set-model",
        fields(format!("#cloud-config\npassword: {}\n", USER_DATA[3])),
    )
    .await
    .unwrap();
    assert!(
        response.status().is_redirection() || response.status().is_success(),
        "{response:?}"
    );
    // A refused post comes back with its input in the address: never the user data.
    let mut refused = fields(format!("#cloud-config\npassword: {}\n", USER_DATA[3]));
    refused[2].1 = "many".into();
    let response = form("set-model", refused).await.unwrap();
    let location = format!("{:?}", response.headers().get("location"));
    answers.push(json!(location));
    let portal_hook = autoscale(vec![
        json!({"url": format!("https://hooks.example.com/{}", URL_TOKENS[2]),
                                            "secret": WEBHOOK_SECRETS[2]}),
    ]);
    for json_text in [
        portal_hook.to_string(),
        portal_hook
            .to_string()
            .replace("\"maximum\":3", "\"maximum\":-3"),
    ] {
        let response = form(
            "autoscale-json",
            vec![("name".into(), "web".into()), ("json".into(), json_text)],
        )
        .await
        .unwrap();
        answers.push(json!(format!("{:?}", response.headers().get("location"))));
        answers.push(json!(response.text().await.unwrap_or_default()));
    }
    // 6. The CLI, from files.
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, value: Value| {
        let path = files.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    };
    let model_file = write("model.json", model(USER_DATA[4]));
    let autoscale_file = write(
        "autoscale.json",
        autoscale(vec![hook(WEBHOOK_SECRETS[3], URL_TOKENS[1])]),
    );
    let patch_file = write(
        "patch.json",
        json!({"load_balancer": frontend(free_port())}),
    );
    let mut outputs = vec![
        cli(
            &url,
            &token,
            &["model", "set", "web", "--file", &model_file],
        )
        .await,
        cli(
            &url,
            &token,
            &["autoscale", "set", "web", "--file", &autoscale_file],
        )
        .await,
        cli(
            &url,
            &token,
            &["scale-set", "update", "web", "--file", &patch_file],
        )
        .await,
        cli(&url, &token, &["autoscale", "disable", "web"]).await,
    ];
    // The stored webhook still has its secret and URL: a disable kept them.
    wait_until("the rollouts settle", Duration::from_secs(30), || async {
        let (_, r) = api.get("/scale-sets/web/rollouts").await;
        r["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|r| r["state"] != "rolling_forward"))
    })
    .await;

    // Every read path.
    let (_, versions) = api.get("/scale-sets/web/model/versions").await;
    let newest = versions["items"].as_array().map_or(1, Vec::len).to_string();
    for args in [
        vec!["scale-set", "show", "web"],
        vec!["scale-set", "show", "web", "--output", "json"],
        vec!["model", "show", "web", "--output", "json"],
        vec!["model", "versions", "web"],
        vec!["model", "diff", "web", "1", &newest],
        vec!["autoscale", "show", "web"],
        vec!["activity", "--output", "json"],
        vec!["load-balancer", "web"],
    ] {
        outputs.push(cli(&url, &token, &args).await);
    }
    let mut reads = vec![
        "/scale-sets".to_string(),
        "/scale-sets/web".into(),
        "/scale-sets/web/model".into(),
        "/scale-sets/web/model/versions".into(),
        format!("/scale-sets/web/model/versions/compare?from=1&to={newest}"),
        "/scale-sets/web/rollouts".into(),
        "/scale-sets/web/autoscale".into(),
        "/scale-sets/web/autoscale/decisions".into(),
        "/scale-sets/web/activity?limit=1000".into(),
        "/activity?limit=1000".into(),
        "/scale-sets/web/load-balancer".into(),
        "/scale-sets/web/instances".into(),
        "/backend/vms".into(),
        "/metrics".into(),
    ];
    let (_, rollouts) = api.get("/scale-sets/web/rollouts").await;
    for r in rollouts["items"].as_array().unwrap() {
        reads.push(format!("/scale-sets/web/rollouts/{}", r["id"]));
    }
    for path in reads {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(json!([path, body]));
    }
    let mut pages = String::new();
    for page in [
        "/",
        "/scale-sets",
        "/scale-sets/web",
        "/scale-sets/web/settings",
        "/scale-sets/web/upgrades",
        "/scale-sets/web/scaling",
        "/scale-sets/web/load-balancer",
        "/scale-sets/web/activity",
        "/activity",
    ] {
        let response = portal.get(page).await;
        assert_eq!(response.status(), 200, "{page}");
        pages.push_str(&response.text().await.unwrap());
    }
    // The stored values are the secrets themselves: the write paths did store them.
    let (_, shown) = api.get("/scale-sets/web").await;
    assert_eq!(shown["model"]["user_data"], Value::Null);
    let last = format!("#cloud-config\npassword: {}\n", USER_DATA[4]);
    assert_eq!(shown["model"]["user_data_length"], last.len(), "{shown}");
    assert!(
        shown["model"]["user_data_sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert_eq!(
        shown["autoscale"]["notifications"]["webhooks"][0],
        json!({"url": "https://hooks.example.com/(redacted)", "secret": "(redacted)"})
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    stream.abort();
    server.kill().await.unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("flotilla serving"),
        "the log was captured: {logs}"
    );
    let everything = [
        ("REST answers", serde_json::to_string(&answers).unwrap()),
        ("event stream", events.lock().unwrap().clone()),
        ("portal pages", pages),
        ("CLI output", outputs.join("\n")),
        ("server log", logs),
    ];
    let secrets: Vec<&str> = WEBHOOK_SECRETS
        .iter()
        .chain(&URL_TOKENS)
        .chain(&USER_DATA)
        .copied()
        .chain([
            DATABASE_PASSWORD,
            key_line.as_str(),
            ADMIN_PASSWORD,
            token.as_str(),
            // (The CSRF token is in every page by design: not a secret from its session.)
            portal.cookie.trim_start_matches("flotilla_session="),
        ])
        .collect();
    let mut leaks = Vec::new();
    for (place, text) in &everything {
        assert!(!text.is_empty(), "{place} is empty: nothing was read");
        for secret in &secrets {
            if text.contains(secret) {
                let at = text.find(secret).unwrap();
                let context: String = text[at.saturating_sub(120)..].chars().take(240).collect();
                leaks.push(format!("{secret} in the {place}: …{context}…"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    drop(postgres);
}

/// Secrets at rest: the data directory is this installation's alone and the SQLite file
/// its owner's (journal files too).
#[tokio::test]
async fn the_data_directory_and_the_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = flotilla_tests::TestServer::start_with(&data, &[]).await;
    server
        .api()
        .create_set("web", 1, serde_json::json!({}))
        .await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["flotilla.db", "flotilla.db-wal", "flotilla.db-shm"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(data.join("flotilla.db").exists());
    server.stop().await;
}
