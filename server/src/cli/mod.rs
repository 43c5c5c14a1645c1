//! The CLI: subcommands of the same binary that talk to a Flotilla server's REST API (the
//! servers, `serve` and `mock-hypervisor`, are commands of this tree too, run by `main`).
//! Output is a readable table, or the API's JSON with `--output json`. A refused request
//! prints the server's message and each bad field, and exits with status 1.
//!
//! Credentials: `--token` (`FLOTILLA_TOKEN`) is sent as `Authorization: Bearer`; without it,
//! the token `flotilla login` stored for `--server` (`credentials.rs`). A 401 says how to sign
//! in. A token's secret is printed only when it is created (`flotilla token create`).
//!
//! Layout: this file (the command tree, the HTTP client, scale sets, instances, activity),
//! `accounts.rs` (`login`, `logout`, `whoami`, `token`, `role` over the API), `users.rs`
//! (`flotilla user …` on the server's database directly, no server needed: the way back in
//! after a lost password), `credentials.rs` (the stored tokens), `prompt.rs` (names and
//! passwords, without echo), `autoscale.rs` and `rollouts.rs`.

use flotilla_domain::url::percent_encode;
use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use flotilla_domain::load_balancer::FrontendStats;
use flotilla_domain::maintenance::{MaintenanceReason, MaintenanceStatus};
use flotilla_domain::{BackendInfo, Instance, InstanceAction, LifecycleResult, ScaleSet};
use serde_json::{Value, json};

use crate::config::{MockHypervisorArgs, ServeArgs};

mod accounts;
mod autoscale;
mod credentials;
mod prompt;
mod rollouts;
mod users;

#[derive(Debug, Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Virtual machine scale sets on your own hosts"
)]
pub struct Cli {
    /// The Flotilla server client commands talk to.
    #[arg(
        long,
        global = true,
        env = "FLOTILLA_SERVER",
        default_value = "http://127.0.0.1:3000"
    )]
    pub server: String,
    /// Output format of client commands.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    pub output: Output,
    /// An API token to send (default: the one `flotilla login` stored for --server).
    #[arg(long, global = true, env = "FLOTILLA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: portal, REST API and control loops.
    Serve(Box<ServeArgs>),
    /// Run the mock hypervisor on its own, for several `serve --mock-url` replicas to share
    /// (its token: FLOTILLA_MOCK_TOKEN, else generated and printed).
    MockHypervisor(Box<MockHypervisorArgs>),
    /// Sign in to --server with a password and store a new API token for it.
    Login(accounts::LoginArgs),
    /// Revoke the token stored for --server and forget it.
    Logout,
    /// Who the server takes you for, and your roles.
    Whoami,
    /// Your API tokens (an Owner: everyone's).
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// Role assignments (an Owner).
    #[command(subcommand)]
    Role(accounts::RoleCommand),
    /// Users, on the server's database directly (no server needed).
    User(users::UserArgs),
    /// Manage scale sets.
    #[command(subcommand)]
    ScaleSet(ScaleSetCommand),
    /// Manage the instances of a scale set.
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Automatic repairs of a scale set.
    #[command(subcommand)]
    Repairs(RepairsCommand),
    /// The load balancer's frontends, pool members and statistics.
    LoadBalancer {
        /// Only this scale set's frontends.
        scale_set: Option<String>,
    },
    /// Autoscale settings, evaluations and decisions of a scale set.
    #[command(subcommand)]
    Autoscale(autoscale::AutoscaleCommand),
    /// A scale set's metrics (or one instance's).
    Metrics(autoscale::MetricsArgs),
    /// The mock's synthetic demand for a scale set.
    #[command(subcommand)]
    Demand(autoscale::DemandCommand),
    /// A scale set's model: versions, differences, changes.
    #[command(subcommand)]
    Model(rollouts::ModelCommand),
    /// Rollouts of model versions: preview, start, watch, pause, resume, cancel, roll back.
    #[command(subcommand)]
    Rollout(rollouts::RolloutCommand),
    /// Show the activity log, newest first.
    Activity(ActivityArgs),
    /// The backend's zones and hosts (capacity and use) and the images it offers.
    Hosts,
    /// Host maintenance: close a host (its instances move off by surge), follow it, return
    /// it.
    #[command(subcommand)]
    Host(HostCommand),
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Put a host under maintenance: nothing new goes there and every scale set moves its
    /// instances off it (replacement serving first, then drained and removed).
    Maintenance { name: String },
    /// Return a host from maintenance: it takes new instances again.
    EndMaintenance { name: String },
    /// Every closed host with its progress and the instances still on it, with why.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum RepairsCommand {
    /// The repair service's status, its limit, and what it would repair now and why.
    Show { scale_set: String },
    /// Resume repairs the service suspended after repeated failures.
    Resume { scale_set: String },
}

#[derive(Debug, Subcommand)]
pub enum ScaleSetCommand {
    /// List scale sets.
    List,
    /// Create a scale set.
    Create(CreateArgs),
    /// Show a scale set and its instances by state.
    Show { name: String },
    /// Set the desired instance count.
    Scale { name: String, capacity: u32 },
    /// Change settings with a JSON patch (`PATCH /scale-sets/{name}`; `-` for standard
    /// input), e.g. `{"health_probe":{…},"load_balancer":{"frontends":[…]}}`.
    Update {
        name: String,
        #[arg(long)]
        file: String,
    },
    /// Delete a scale set and all its instances.
    Delete {
        name: String,
        /// Wait until every instance is gone.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// A whole create request as JSON (`-` for standard input); the other flags are ignored.
    #[arg(long)]
    pub file: Option<String>,
    #[arg(long, default_value = "debian-12")]
    pub image: String,
    #[arg(long, default_value_t = 2)]
    pub vcpus: u32,
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: u32,
    #[arg(long, default_value_t = 10)]
    pub disk_gib: u32,
    #[arg(long, default_value_t = 80)]
    pub app_port: u16,
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,
    /// Zones, comma-separated (default: every zone of the backend).
    #[arg(long, value_delimiter = ',')]
    pub zones: Vec<String>,
    /// File with cloud-init user data.
    #[arg(long)]
    pub user_data_file: Option<std::path::PathBuf>,
    /// default, newest_vm or oldest_vm.
    #[arg(long, default_value = "default")]
    pub scale_in_policy: String,
    #[arg(long)]
    pub overprovision: bool,
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// List the instances of a scale set.
    List {
        scale_set: String,
    },
    /// The scale set's warm pool: its size with the arithmetic, and its members (set it
    /// with `scale-set update NAME` and `{"warm_pool": {…}}`).
    WarmPool {
        scale_set: String,
    },
    Start {
        scale_set: String,
        id: String,
    },
    /// Power off (the instance keeps its host reservation).
    Stop {
        scale_set: String,
        id: String,
    },
    /// Stop and release the host reservation.
    Deallocate {
        scale_set: String,
        id: String,
    },
    Restart {
        scale_set: String,
        id: String,
    },
    /// Recreate the OS disk from the instance's model version.
    Reimage {
        scale_set: String,
        id: String,
    },
    /// Delete the instance (the scale set's capacity drops by one).
    Delete {
        scale_set: String,
        id: String,
    },
    /// Take the instance out of its load balancer pool: no new requests, those in flight
    /// finish.
    Drain {
        scale_set: String,
        id: String,
    },
    /// Let a drained instance serve again.
    Enable {
        scale_set: String,
        id: String,
    },
    /// The end of the instance's serial console log.
    Console {
        scale_set: String,
        id: String,
    },
    /// Set the instance's protection flags.
    Protect {
        scale_set: String,
        id: String,
        /// Protect from scale-in (true/false).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        scale_in: bool,
        /// Protect from every scale-set action (true/false).
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        scale_set_actions: bool,
    },
    /// Ask scale-in, zone rebalancing and host maintenance to leave the instance alone for
    /// SECONDS (at most 3600; 0 ends the lease; renew it to keep it).
    Busy {
        scale_set: String,
        id: String,
        seconds: u32,
    },
    /// End the instance's wait on a lifecycle hook.
    Complete {
        scale_set: String,
        id: String,
        hook: String,
        /// `continue` (go on) or `abandon` (remove a launching instance; skip a removal's
        /// hooks left).
        #[arg(long, default_value = "continue")]
        result: LifecycleResult,
    },
    /// Extend the instance's wait on a lifecycle hook by a whole heartbeat timeout.
    Heartbeat {
        scale_set: String,
        id: String,
        hook: String,
    },
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    #[arg(long)]
    pub scale_set: Option<String>,
    /// Only what this one did: a user, `user/token`, `cli:name`, `system:…`.
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// A failed client command: what to print (with its sources, by [`report`]).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("cannot reach the Flotilla server at {server}")]
    Unreachable {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{0}")]
    Refused(String),
    /// 401: the message and how to sign in.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Input(String),
    /// Bad input found before anything was sent or written.
    #[error("invalid input{}", fields(.0))]
    Invalid(flotilla_domain::ValidationErrors),
    #[error("cannot open the database {url}")]
    OpenDatabase {
        url: String,
        #[source]
        source: flotilla_store::StoreError,
    },
    #[error("the database failed")]
    Database(#[source] flotilla_control::Error),
}

/// Each bad field on a line of its own: `\n  name: message`.
fn fields(errors: &flotilla_domain::ValidationErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("\n  {}: {}", e.field, e.message))
        .collect()
}

/// `error: ` the message, then each source in the chain.
fn report(e: &CliError) -> String {
    let mut out = format!("error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

struct Client {
    http: reqwest::Client,
    base: String,
    server: String,
}

impl Client {
    /// A client of `server` sending `token` as `Authorization: Bearer`, and the actor header
    /// a server without authentication records (one with authentication ignores it).
    fn new(server: &str, token: Option<&str>) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("cli:{user}")) {
            headers.insert(crate::auth::ACTOR_HEADER, v);
        }
        if let Some(Ok(mut v)) =
            token.map(|t| reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.trim())))
        {
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        // Not a cross-site form: what a request without a JSON body must say.
        headers.insert(
            crate::guard::REQUEST_HEADER,
            reqwest::header::HeaderValue::from_static("1"),
        );
        Self {
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("building the HTTP client"),
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            server: server.into(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let unreachable = |source| CliError::Unreachable {
            server: self.server.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let mut message = value
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {status}"));
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            message = format!("the server refused the request ({status})");
            for e in errors {
                let field = e.get("field").and_then(Value::as_str).unwrap_or("?");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("?");
                message.push_str(&format!("\n  {field}: {msg}"));
            }
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            // Signing in is the answer to every 401 but a failed sign-in's.
            if path != "/login" {
                message.push_str(&format!(
                    "\nsign in: flotilla login --server {}",
                    credentials::key(&self.server)
                ));
            }
            return Err(CliError::Unauthenticated(message));
        }
        Err(CliError::Refused(message))
    }

    async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// Runs a client command against `server`, with `token` (else the stored one); `flotilla
/// user` works on the database instead.
pub async fn run(
    server: String,
    output: Output,
    token: Option<String>,
    command: Command,
) -> ExitCode {
    let result = match &command {
        Command::Login(args) => accounts::login(&server, output, args).await,
        Command::Logout => accounts::logout(&server, output).await,
        Command::User(args) => users::run(args, output).await,
        _ => match stored_token(&server, token) {
            Ok(token) => {
                let client = Client::new(&server, token.as_deref());
                execute(&client, output, command).await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// `--token`, else the token `flotilla login` stored for `server`, else none (the server
/// then answers 401 where it must, and the CLI says how to sign in).
fn stored_token(server: &str, token: Option<String>) -> Result<Option<String>, CliError> {
    if let Some(token) = token.filter(|t| !t.trim().is_empty()) {
        return Ok(Some(token));
    }
    let Ok(path) = credentials::default_path() else {
        return Ok(None);
    };
    Ok(credentials::Credentials::load(&path)?
        .token(server)
        .map(str::to_string))
}

async fn execute(client: &Client, output: Output, command: Command) -> Result<String, CliError> {
    use reqwest::Method;
    let value = match &command {
        Command::Serve(_) | Command::MockHypervisor(_) => {
            unreachable!("servers are not client commands")
        }
        Command::Login(_) | Command::Logout | Command::User(_) => {
            unreachable!("handled by run")
        }
        Command::Whoami => accounts::whoami(client).await?,
        Command::Token(cmd) => accounts::token(client, cmd).await?,
        Command::Role(cmd) => accounts::role(client, cmd).await?,
        Command::ScaleSet(ScaleSetCommand::List) => client.get("/scale-sets").await?,
        Command::ScaleSet(ScaleSetCommand::Create(args)) => {
            client
                .call(Method::POST, "/scale-sets", Some(create_body(args)?))
                .await?
        }
        Command::ScaleSet(ScaleSetCommand::Show { name }) => {
            let set = client
                .get(&format!("/scale-sets/{}", percent_encode(name)))
                .await?;
            let instances = client
                .get(&format!("/scale-sets/{}/instances", percent_encode(name)))
                .await?;
            json!({"scale_set": set, "instances": instances["items"]})
        }
        Command::ScaleSet(ScaleSetCommand::Scale { name, capacity }) => {
            client
                .call(
                    Method::PUT,
                    &format!("/scale-sets/{}/capacity", percent_encode(name)),
                    Some(json!({ "capacity": capacity })),
                )
                .await?
        }
        Command::ScaleSet(ScaleSetCommand::Delete { name, wait }) => {
            let v = client
                .call(
                    Method::DELETE,
                    &format!("/scale-sets/{}", percent_encode(name)),
                    None,
                )
                .await?;
            if *wait {
                wait_gone(client, name).await?;
            }
            v
        }
        Command::Instance(InstanceCommand::List { scale_set }) => {
            client
                .get(&format!(
                    "/scale-sets/{}/instances",
                    percent_encode(scale_set)
                ))
                .await?
        }
        Command::Instance(InstanceCommand::WarmPool { scale_set }) => {
            client
                .get(&format!(
                    "/scale-sets/{}/warm-pool",
                    percent_encode(scale_set)
                ))
                .await?
        }
        Command::Instance(InstanceCommand::Console { scale_set, id }) => {
            client
                .get(&format!(
                    "/scale-sets/{}/instances/{}/console",
                    percent_encode(scale_set),
                    percent_encode(id)
                ))
                .await?
        }
        Command::Hosts => client.get("/backend").await?,
        Command::Host(HostCommand::Maintenance { name }) => {
            client
                .call(
                    Method::POST,
                    &format!("/backend/hosts/{}/maintenance", percent_encode(name)),
                    None,
                )
                .await?
        }
        Command::Host(HostCommand::EndMaintenance { name }) => {
            client
                .call(
                    Method::POST,
                    &format!("/backend/hosts/{}/maintenance/end", percent_encode(name)),
                    None,
                )
                .await?
        }
        Command::Host(HostCommand::Status) => client.get("/backend/maintenance").await?,
        Command::Instance(InstanceCommand::Protect {
            scale_set,
            id,
            scale_in,
            scale_set_actions,
        }) => {
            client
                .call(
                    Method::PUT,
                    &format!(
                        "/scale-sets/{}/instances/{}/protection",
                        percent_encode(scale_set),
                        percent_encode(id)
                    ),
                    Some(json!({
                        "protect_from_scale_in": scale_in,
                        "protect_from_scale_set_actions": scale_set_actions,
                    })),
                )
                .await?
        }
        Command::Instance(InstanceCommand::Busy {
            scale_set,
            id,
            seconds,
        }) => {
            client
                .call(
                    Method::PUT,
                    &format!(
                        "/scale-sets/{}/instances/{}/busy",
                        percent_encode(scale_set),
                        percent_encode(id)
                    ),
                    Some(json!({ "seconds": seconds })),
                )
                .await?
        }
        Command::Instance(InstanceCommand::Complete {
            scale_set,
            id,
            hook,
            result,
        }) => {
            client
                .call(
                    Method::POST,
                    &format!(
                        "/scale-sets/{}/instances/{}/lifecycle/{}/complete",
                        percent_encode(scale_set),
                        percent_encode(id),
                        percent_encode(hook)
                    ),
                    Some(json!({ "result": result })),
                )
                .await?
        }
        Command::Instance(InstanceCommand::Heartbeat {
            scale_set,
            id,
            hook,
        }) => {
            client
                .call(
                    Method::POST,
                    &format!(
                        "/scale-sets/{}/instances/{}/lifecycle/{}/heartbeat",
                        percent_encode(scale_set),
                        percent_encode(id),
                        percent_encode(hook)
                    ),
                    None,
                )
                .await?
        }
        Command::ScaleSet(ScaleSetCommand::Update { name, file }) => {
            let patch = read_json(file)?;
            client
                .call(
                    Method::PATCH,
                    &format!("/scale-sets/{}", percent_encode(name)),
                    Some(patch),
                )
                .await?
        }
        Command::Instance(
            InstanceCommand::Drain { scale_set, id } | InstanceCommand::Enable { scale_set, id },
        ) => {
            let enabled = matches!(command, Command::Instance(InstanceCommand::Enable { .. }));
            client
                .call(
                    Method::PUT,
                    &format!(
                        "/scale-sets/{}/instances/{}/load-balancer",
                        percent_encode(scale_set),
                        percent_encode(id)
                    ),
                    Some(json!({ "enabled": enabled })),
                )
                .await?
        }
        Command::Repairs(RepairsCommand::Show { scale_set }) => {
            let set = client
                .get(&format!("/scale-sets/{}", percent_encode(scale_set)))
                .await?;
            let overview = client
                .get(&format!(
                    "/scale-sets/{}/repairs",
                    percent_encode(scale_set)
                ))
                .await?;
            json!({"policy": set["automatic_repairs"], "overview": overview})
        }
        Command::Repairs(RepairsCommand::Resume { scale_set }) => {
            client
                .call(
                    Method::POST,
                    &format!("/scale-sets/{}/repairs/resume", percent_encode(scale_set)),
                    None,
                )
                .await?
        }
        Command::LoadBalancer { scale_set } => {
            let mut all = client.get("/load-balancer").await?;
            if let (Some(set), Some(items)) = (scale_set, all["items"].as_array_mut()) {
                items.retain(|f| f["scale_set"] == set.as_str());
            }
            all
        }
        Command::Instance(cmd) => {
            let (scale_set, id, action) = instance_action(cmd);
            client
                .call(
                    Method::POST,
                    &format!(
                        "/scale-sets/{}/instances/{}/{action}",
                        percent_encode(scale_set),
                        percent_encode(id)
                    ),
                    None,
                )
                .await?
        }
        Command::Autoscale(cmd) => autoscale::autoscale(client, cmd).await?,
        Command::Metrics(args) => autoscale::metrics(client, args).await?,
        Command::Demand(cmd) => autoscale::demand(client, cmd).await?,
        Command::Model(cmd) => rollouts::model(client, cmd).await?,
        Command::Rollout(cmd) => rollouts::rollout(client, cmd).await?,
        Command::Activity(args) => {
            let mut path = format!("/activity?limit={}", args.limit);
            if let Some(s) = &args.scale_set {
                path.push_str(&format!("&scale_set={}", percent_encode(s)));
            }
            if let Some(a) = &args.actor {
                path.push_str(&format!("&actor={}", percent_encode(a)));
            }
            client.get(&path).await?
        }
    };
    if output == Output::Json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ));
    }
    Ok(render(&command, &value))
}

fn instance_action(cmd: &InstanceCommand) -> (&str, &str, InstanceAction) {
    match cmd {
        InstanceCommand::Start { scale_set, id } => (scale_set, id, InstanceAction::Start),
        InstanceCommand::Stop { scale_set, id } => (scale_set, id, InstanceAction::Stop),
        InstanceCommand::Deallocate { scale_set, id } => {
            (scale_set, id, InstanceAction::Deallocate)
        }
        InstanceCommand::Restart { scale_set, id } => (scale_set, id, InstanceAction::Restart),
        InstanceCommand::Reimage { scale_set, id } => (scale_set, id, InstanceAction::Reimage),
        InstanceCommand::Delete { scale_set, id } => (scale_set, id, InstanceAction::Delete),
        InstanceCommand::List { .. }
        | InstanceCommand::WarmPool { .. }
        | InstanceCommand::Console { .. }
        | InstanceCommand::Protect { .. }
        | InstanceCommand::Busy { .. }
        | InstanceCommand::Complete { .. }
        | InstanceCommand::Heartbeat { .. }
        | InstanceCommand::Drain { .. }
        | InstanceCommand::Enable { .. } => {
            unreachable!("handled by the caller")
        }
    }
}

/// A JSON document from a file, or standard input for `-`.
fn read_json(file: &str) -> Result<Value, CliError> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| CliError::Input(format!("cannot read {file}: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{file} is not valid JSON: {e}")))
}

fn create_body(args: &CreateArgs) -> Result<Value, CliError> {
    if let Some(file) = &args.file {
        let mut value = read_json(file)?;
        if let Some(obj) = value.as_object_mut() {
            obj.entry("name").or_insert_with(|| json!(args.name));
        }
        return Ok(value);
    }
    let user_data = match &args.user_data_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::Input(format!("cannot read user data {}: {e}", path.display()))
        })?),
        None => None,
    };
    Ok(json!({
        "name": args.name,
        "model": {
            "image": args.image,
            "vcpus": args.vcpus,
            "memory_mib": args.memory_mib,
            "disk_gib": args.disk_gib,
            "user_data": user_data,
            "app_port": args.app_port,
        },
        "capacity": args.capacity,
        "zones": args.zones,
        "scale_in_policy": {"rules": [args.scale_in_policy]},
        "overprovision": args.overprovision,
    }))
}

async fn wait_gone(client: &Client, name: &str) -> Result<(), CliError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        match client
            .get(&format!("/scale-sets/{}", percent_encode(name)))
            .await
        {
            Err(CliError::Refused(_)) => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) if std::time::Instant::now() > deadline => {
                return Err(CliError::Refused(format!(
                    "{name} is still being deleted after 5 minutes"
                )));
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

fn render(command: &Command, value: &Value) -> String {
    let parse_set = |v: &Value| serde_json::from_value::<ScaleSet>(v.clone()).ok();
    let parse_instances =
        |v: &Value| serde_json::from_value::<Vec<Instance>>(v.clone()).unwrap_or_default();
    match command {
        Command::ScaleSet(ScaleSetCommand::List) => {
            let sets: Vec<ScaleSet> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            sets_table(&sets)
        }
        Command::ScaleSet(ScaleSetCommand::Show { .. }) => {
            let mut out = String::new();
            if let Some(set) = parse_set(&value["scale_set"]) {
                out.push_str(&set_summary(&set));
            }
            out.push('\n');
            out.push_str(&instances_table(&parse_instances(&value["instances"])));
            out
        }
        Command::ScaleSet(ScaleSetCommand::Delete { name, wait }) => {
            if *wait {
                format!("deleted scale set {name}\n")
            } else {
                format!("deleting scale set {name}\n")
            }
        }
        Command::ScaleSet(_) => parse_set(value)
            .map(|s| set_summary(&s))
            .unwrap_or_default(),
        Command::Instance(InstanceCommand::List { .. }) => {
            instances_table(&parse_instances(&value["items"]))
        }
        Command::Instance(InstanceCommand::Console { .. }) => {
            value["output"].as_str().unwrap_or_default().to_owned()
        }
        Command::Instance(InstanceCommand::WarmPool { .. }) => warm_pool_text(value),
        Command::Hosts => serde_json::from_value::<BackendInfo>(value.clone())
            .map(|b| hosts_text(&b))
            .unwrap_or_default(),
        Command::Host(HostCommand::Maintenance { .. }) => {
            serde_json::from_value::<MaintenanceStatus>(value.clone())
                .map(|m| maintenance_text(&[m]))
                .unwrap_or_default()
        }
        Command::Host(HostCommand::EndMaintenance { name }) => {
            format!("host {name} takes new instances again\n")
        }
        Command::Host(HostCommand::Status) => {
            serde_json::from_value::<Vec<MaintenanceStatus>>(value["items"].clone())
                .map(|m| maintenance_text(&m))
                .unwrap_or_default()
        }
        Command::Instance(_) => serde_json::from_value::<Instance>(value.clone())
            .map(|i| instances_table(&[i]))
            .unwrap_or_default(),
        Command::Repairs(RepairsCommand::Show { scale_set }) => repairs_text(scale_set, value),
        Command::Repairs(RepairsCommand::Resume { scale_set }) => {
            format!("automatic repairs of {scale_set} resumed\n")
        }
        Command::LoadBalancer { .. } => {
            let frontends: Vec<FrontendStats> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            load_balancer_text(&frontends)
        }
        Command::Activity(_) => {
            let rows: Vec<Vec<String>> = value["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|a| {
                            let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
                            vec![
                                a["id"].to_string(),
                                s("started_at").chars().take(19).collect(),
                                s("actor"),
                                s("operation"),
                                s("target"),
                                s("result"),
                                a["duration_ms"]
                                    .as_i64()
                                    .map(|d| format!("{d}ms"))
                                    .unwrap_or_default(),
                                s("error"),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            table(
                &[
                    "ID",
                    "STARTED",
                    "ACTOR",
                    "OPERATION",
                    "TARGET",
                    "RESULT",
                    "TOOK",
                    "ERROR",
                ],
                &rows,
            )
        }
        Command::Autoscale(cmd) => autoscale::render_autoscale(cmd, value),
        Command::Metrics(_) => autoscale::render_metrics(value),
        Command::Demand(cmd) => autoscale::render_demand(cmd, value),
        Command::Model(cmd) => rollouts::render_model(cmd, value),
        Command::Rollout(cmd) => rollouts::render_rollout(cmd, value),
        Command::Whoami => accounts::render_me(value),
        Command::Token(cmd) => accounts::render_token(cmd, value),
        Command::Role(cmd) => accounts::render_role(cmd, value),
        Command::Serve(_)
        | Command::MockHypervisor(_)
        | Command::Login(_)
        | Command::Logout
        | Command::User(_) => String::new(),
    }
}

fn repairs_text(scale_set: &str, value: &Value) -> String {
    let policy = &value["policy"];
    let o = &value["overview"];
    let mut out = format!(
        "scale set:     {scale_set}\nrepairs:       {}\naction:        {}\ngrace period:  {} s\nstatus:        {}\nlimit:         {} at once ({} in transition)\n",
        if policy["enabled"] == true {
            "enabled"
        } else {
            "disabled"
        },
        policy["repair_action"].as_str().unwrap_or(""),
        policy["grace_period_seconds"],
        match o["status"]["suspended_reason"].as_str() {
            Some(why) => format!("SUSPENDED: {why}"),
            None => format!(
                "active ({} failed in a row)",
                o["status"]["consecutive_failures"]
            ),
        },
        o["limit"],
        o["in_transition"],
    );
    for (title, key) in [("due now", "due"), ("waiting", "waiting")] {
        let rows: Vec<Vec<String>> = o[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|r| {
                        vec![
                            r["instance"].as_str().unwrap_or("").to_string(),
                            r["reason"].as_str().unwrap_or("").to_string(),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !rows.is_empty() {
            out.push_str(&format!("\n{title}:\n"));
            out.push_str(&table(&["INSTANCE", "REASON"], &rows));
        }
    }
    out
}

fn hosts_text(backend: &BackendInfo) -> String {
    let zones: Vec<String> = backend
        .zones
        .iter()
        .map(|z| {
            let down = if z.available { "" } else { ", down" };
            format!("{} ({} fault domains{down})", z.name, z.fault_domains)
        })
        .collect();
    let mut out = format!(
        "backend {}\nzones: {}\nimages: {}\n",
        backend.kind,
        zones.join(", "),
        backend.images.join(", ")
    );
    if !backend.hosts.is_empty() {
        let rows: Vec<Vec<String>> = backend
            .hosts
            .iter()
            .map(|h| {
                // A limit of 0 (the mock's hosts) is no limit.
                let limit = |n: u64| {
                    if n == 0 {
                        "unlimited".to_string()
                    } else {
                        n.to_string()
                    }
                };
                let closed = backend
                    .maintenance
                    .iter()
                    .find(|m| m.record.host == h.name)
                    .map(|m| match m.record.reason {
                        MaintenanceReason::Maintenance => "under maintenance".to_string(),
                        MaintenanceReason::Unreachable => "unreachable".to_string(),
                    });
                vec![
                    h.name.clone(),
                    h.zone.clone(),
                    h.fault_domain.to_string(),
                    format!("{}/{}", h.used_vcpus, limit(u64::from(h.vcpus))),
                    format!("{}/{} MiB", h.used_memory_mib, limit(h.memory_mib)),
                    format!("{}/{}", h.running, h.vms),
                    closed
                        .or_else(|| h.error.clone())
                        .unwrap_or_else(|| "available".into()),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &[
                "HOST",
                "ZONE",
                "FD",
                "VCPUS",
                "MEMORY",
                "RUNNING/VMS",
                "STATE",
            ],
            &rows,
        ));
    }
    out
}

/// Each closed host: a line with its progress, then its instances still waiting and why.
fn maintenance_text(hosts: &[MaintenanceStatus]) -> String {
    if hosts.is_empty() {
        return "no host is under maintenance\n".into();
    }
    let mut out = String::new();
    for m in hosts {
        let r = &m.record;
        out.push_str(&format!(
            "host {} (zone {}, fault domain {}): {} since {} by {}; {} of {} moved{}\n",
            r.host,
            r.zone,
            r.fault_domain,
            r.reason.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.started_by,
            m.moved,
            r.instances_at_start,
            if m.empty { ", empty" } else { "" }
        ));
        if !m.waiting.is_empty() {
            let rows: Vec<Vec<String>> = m
                .waiting
                .iter()
                .map(|w| {
                    vec![
                        w.instance.clone(),
                        w.scale_set.clone(),
                        w.step.clone(),
                        w.reason.clone(),
                    ]
                })
                .collect();
            out.push_str(&table(&["INSTANCE", "SCALE SET", "STEP", "WHY"], &rows));
        }
    }
    out
}

fn load_balancer_text(frontends: &[FrontendStats]) -> String {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}ms")).unwrap_or_default();
    let mut out = String::new();
    for f in frontends {
        out.push_str(&format!(
            "{}/{}  {} on {}  requests {}  2xx {} 4xx {} 5xx {}  active {}  p50 {} p99 {}\n",
            f.scale_set,
            f.name,
            f.protocol,
            f.listen,
            f.requests,
            f.responses.success,
            f.responses.client_error,
            f.responses.server_error,
            f.active_connections,
            ms(f.latency.quantile(0.5)),
            ms(f.latency.quantile(0.99)),
        ));
        let rows: Vec<Vec<String>> = f
            .backends
            .iter()
            .map(|b| {
                vec![
                    b.pool.clone(),
                    b.id.clone(),
                    b.addr.clone(),
                    b.state.clone(),
                    b.requests.to_string(),
                    b.failures.to_string(),
                    b.active.to_string(),
                    ms(b.latency.quantile(0.5)),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "POOL", "INSTANCE", "ADDRESS", "STATE", "REQUESTS", "FAILURES", "ACTIVE", "P50",
            ],
            &rows,
        ));
        out.push('\n');
    }
    if frontends.is_empty() {
        out.push_str("no load balancer frontends\n");
    }
    out
}

fn set_summary(set: &ScaleSet) -> String {
    format!(
        "name:          {}\nstate:         {}\ncapacity:      {}\nmodel:         v{} {} · {} vCPU · {} MiB · {} GiB\nzones:         {}\nscale-in:      {:?}\ncreated:       {}\n",
        set.name(),
        serde_json::to_value(set.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        set.spec.capacity,
        set.model_version,
        set.spec.model.image,
        set.spec.model.vcpus,
        set.spec.model.memory_mib,
        set.spec.model.disk_gib,
        set.spec.zones.join(", "),
        set.spec.scale_in_policy.rule(),
        set.created_at.format("%Y-%m-%d %H:%M:%S"),
    )
}

fn sets_table(sets: &[ScaleSet]) -> String {
    let rows: Vec<Vec<String>> = sets
        .iter()
        .map(|s| {
            vec![
                s.name().to_string(),
                s.spec.capacity.to_string(),
                format!("v{}", s.model_version),
                s.spec.model.image.clone(),
                s.spec.zones.join(","),
                serde_json::to_value(s.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                s.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "CAPACITY", "MODEL", "IMAGE", "ZONES", "STATE", "CREATED",
        ],
        &rows,
    )
}

/// The pool's arithmetic, then one row per member.
fn warm_pool_text(value: &Value) -> String {
    let members =
        serde_json::from_value::<Vec<Instance>>(value["items"].clone()).unwrap_or_default();
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.zone.clone(),
                i.warm
                    .warm_pool_state
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                i.power_state.to_string(),
                match i.warm.warm_prepared_at {
                    Some(at) => at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    None => "being prepared".into(),
                },
                format!("v{}", i.model_version),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        value["explanation"].as_str().unwrap_or_default(),
        table(
            &["ID", "ZONE", "POOL STATE", "POWER", "PREPARED", "MODEL"],
            &rows
        )
    )
}

fn instances_table(instances: &[Instance]) -> String {
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            let protection = match (i.protect_from_scale_in, i.protect_from_scale_set_actions) {
                (_, true) => "all",
                (true, false) => "scale-in",
                _ => "",
            };
            let lifecycle = match (&i.lifecycle.lifecycle_state, &i.lifecycle.lifecycle_hook) {
                (Some(state), Some(hook)) => format!("{state} ({hook})"),
                (Some(state), None) => state.to_string(),
                _ if i.busy_until.is_some_and(|b| b > chrono::Utc::now()) => "busy".into(),
                _ => String::new(),
            };
            vec![
                i.id.clone(),
                i.zone.clone(),
                i.fault_domain.to_string(),
                format!(
                    "v{}{}",
                    i.model_version,
                    if i.latest_model { "" } else { " (old)" }
                ),
                i.provisioning_state.to_string(),
                i.power_state.to_string(),
                i.health_state.to_string(),
                protection.to_string(),
                lifecycle,
                i.address.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in instances {
        *counts.entry(i.power_state.to_string()).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let mut out = table(
        &[
            "ID",
            "ZONE",
            "FD",
            "MODEL",
            "PROVISIONING",
            "POWER",
            "HEALTH",
            "PROTECTED",
            "LIFECYCLE",
            "ADDRESS",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} instances{}{}\n",
        instances.len(),
        if summary.is_empty() { "" } else { ": " },
        summary.join(", ")
    ));
    out
}

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from(["flotilla", "scale-set", "scale", "web", "5", "-o", "json"])
            .unwrap();
        assert_eq!(cli.output, Output::Json);
        assert!(matches!(
            cli.command,
            Command::ScaleSet(ScaleSetCommand::Scale { capacity: 5, .. })
        ));
        assert!(Cli::try_parse_from(["flotilla", "scale-set", "scale", "web", "-1"]).is_err());
        let cli = Cli::try_parse_from(["flotilla", "instance", "restart", "web", "web_0"]).unwrap();
        let Command::Instance(cmd) = &cli.command else {
            panic!()
        };
        assert_eq!(instance_action(cmd).2, InstanceAction::Restart);
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn account_commands_parse() {
        let cli = Cli::try_parse_from([
            "flotilla",
            "user",
            "add",
            "bob",
            "--role",
            "reader",
            "--data-dir",
            "/srv/flotilla",
            "--password-stdin",
        ])
        .unwrap();
        let Command::User(args) = &cli.command else {
            panic!()
        };
        assert_eq!(args.database.url(), "sqlite:/srv/flotilla/flotilla.db");
        assert!(matches!(
            &args.command,
            users::UserCommand::Add { name, role: Some(role), password_stdin: true }
                if name == "bob" && role == "reader"
        ));
        // The data directory may come before the subcommand too.
        let cli =
            Cli::try_parse_from(["flotilla", "user", "--data-dir", "d", "passwd", "bob"]).unwrap();
        let Command::User(args) = &cli.command else {
            panic!()
        };
        assert_eq!(args.database.url(), "sqlite:d/flotilla.db");

        let cli = Cli::try_parse_from(["flotilla", "token", "list", "--all", "--token", "flt_x"])
            .unwrap();
        assert_eq!(cli.token.as_deref(), Some("flt_x"));
        assert!(matches!(
            cli.command,
            Command::Token(accounts::TokenCommand::List { all: true })
        ));
        assert!(Cli::try_parse_from(["flotilla", "role", "assign", "bob"]).is_err());
        let cli = Cli::try_parse_from(["flotilla", "activity", "--actor", "bob"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Activity(ActivityArgs { actor: Some(ref a), .. }) if a == "bob"
        ));
    }

    #[test]
    fn local_refusals_name_each_field_and_sources_follow() {
        let mut errors = flotilla_domain::ValidationErrors::single("name", "bad");
        errors.push("password", "at least 10 characters");
        assert_eq!(
            report(&CliError::Invalid(errors)),
            "error: invalid input\n  name: bad\n  password: at least 10 characters"
        );
    }
}
