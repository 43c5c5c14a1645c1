//! The scale set: its specification (the central model plus every policy), the stored
//! view with generation and model version, and partial updates.
//!
//! Field names follow Azure's in snake_case (DESIGN.md §4); every optional setting has a
//! documented default so `{"name","model","capacity","zones"}` is a complete request.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::autoscale::AutoscaleSetting;
use crate::demand::Demand;
use crate::lifecycle::{self, LifecycleHook};
use crate::repair::RepairStatus;
use crate::secret::UserDataDigest;
use crate::validation::{ValidationErrors, check_name};
use crate::warm_pool::WarmPool;

/// Largest capacity a scale set may ask for.
pub const MAX_CAPACITY: u32 = 10_000;

/// The instance template: every instance of a scale set is created from one version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Model {
    /// Image name, as listed by the backend (`debian-12`).
    pub image: String,
    /// Virtual CPUs, 1–64.
    pub vcpus: u32,
    /// Memory in MiB, 128–1,048,576.
    pub memory_mib: u32,
    /// OS disk size in GiB, 1–4,096.
    pub disk_gib: u32,
    /// Extra data disks, at most 16, unique LUNs 0–63.
    #[serde(default)]
    pub data_disks: Vec<DataDisk>,
    /// cloud-init user data, at most 64 KiB. Write-only: reads give `null` with
    /// `user_data_length` and `user_data_sha256`; a write that leaves it out (or `null`, or
    /// `"(redacted)"`) keeps the stored user data, and `""` removes it.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Reads only: the stored user data's length in bytes (ignored on writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data_length: Option<u64>,
    /// Reads only: the SHA-256 (lowercase hex) of the stored user data (ignored on writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data_sha256: Option<String>,
    /// Free-form tags, at most 50.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The port the application serves on inside each instance (default 80).
    #[serde(default = "default_app_port")]
    pub app_port: u16,
}

fn default_app_port() -> u16 {
    80
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataDisk {
    pub lun: u32,
    pub size_gib: u32,
}

impl Model {
    /// The model as reads show it: the user data replaced by its length and SHA-256.
    pub fn redacted(mut self) -> Model {
        let digest = self.user_data.take().map(|u| UserDataDigest::of(&u));
        self.user_data_length = digest.as_ref().map(|d| d.length);
        self.user_data_sha256 = digest.map(|d| d.sha256);
        self
    }

    /// The model to store from one a client sent: where it sends no user data (or
    /// [`REDACTED`]) `previous`'s is kept, `""` removes it; the read-only fields go.
    pub fn keep_user_data(&mut self, previous: Option<&Model>) {
        self.user_data_length = None;
        self.user_data_sha256 = None;
        match self.user_data.as_deref() {
            None | Some(REDACTED) => {
                self.user_data = previous.and_then(|p| p.user_data.clone());
            }
            Some("") => self.user_data = None,
            Some(_) => {}
        }
    }

    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.image.is_empty() {
            errors.push("image", "must not be empty");
        } else if self.image.len() > 128
            || !self
                .image
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-/".contains(c))
        {
            errors.push(
                "image",
                "must be at most 128 characters of letters, digits and . _ : - /",
            );
        }
        errors.range("vcpus", self.vcpus, 1, 64);
        errors.range("memory_mib", self.memory_mib, 128, 1_048_576);
        errors.range("disk_gib", self.disk_gib, 1, 4096);
        if self.data_disks.len() > 16 {
            errors.push("data_disks", "at most 16 data disks");
        }
        let mut luns = BTreeSet::new();
        for (i, disk) in self.data_disks.iter().enumerate() {
            errors.range(format!("data_disks[{i}].lun"), disk.lun, 0, 63);
            errors.range(
                format!("data_disks[{i}].size_gib"),
                disk.size_gib,
                1,
                32_767,
            );
            if !luns.insert(disk.lun) {
                errors.push(
                    format!("data_disks[{i}].lun"),
                    format!("duplicate LUN {}", disk.lun),
                );
            }
        }
        if let Some(data) = &self.user_data
            && data.len() > 64 * 1024
        {
            errors.push(
                "user_data",
                format!("must be at most 65536 bytes, got {}", data.len()),
            );
        }
        if self.tags.len() > 50 {
            errors.push("tags", "at most 50 tags");
        }
        for (k, v) in &self.tags {
            if k.is_empty() || k.len() > 128 {
                errors.push(format!("tags.{k}"), "tag names must be 1–128 characters");
            }
            if v.len() > 256 {
                errors.push(
                    format!("tags.{k}"),
                    "tag values must be at most 256 characters",
                );
            }
        }
        if self.app_port == 0 {
            errors.push("app_port", "must be between 1 and 65535, got 0");
        }
        errors
    }
}

/// Which instances scale-in removes first, after balancing zones and fault domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScaleInRule {
    /// Balance zones, then fault domains, then remove the highest instance id.
    #[default]
    Default,
    /// Balance zones, then remove the most recently created.
    NewestVm,
    /// Balance zones, then remove the oldest.
    OldestVm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaleInPolicy {
    /// Exactly one rule (as in Azure, the list form is kept for compatibility).
    #[serde(default = "default_scale_in_rules")]
    pub rules: Vec<ScaleInRule>,
    /// Delete VMs without a graceful shutdown.
    #[serde(default)]
    pub force_deletion: bool,
}

fn default_scale_in_rules() -> Vec<ScaleInRule> {
    vec![ScaleInRule::Default]
}

impl Default for ScaleInPolicy {
    fn default() -> Self {
        Self {
            rules: default_scale_in_rules(),
            force_deletion: false,
        }
    }
}

impl ScaleInPolicy {
    pub fn rule(&self) -> ScaleInRule {
        self.rules.first().copied().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeProtocol {
    Http,
    Https,
    Tcp,
}

/// Application health probe of each instance (Azure's Application Health extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthProbe {
    pub protocol: ProbeProtocol,
    pub port: u16,
    /// Request path for HTTP(S) (default `/health`).
    #[serde(default = "default_probe_path")]
    pub path: String,
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    /// Consecutive successes to become healthy.
    #[serde(default = "one")]
    pub healthy_threshold: u32,
    /// Consecutive failures to become unhealthy.
    #[serde(default = "two")]
    pub unhealthy_threshold: u32,
    /// Seconds after create or start during which failures do not count.
    #[serde(default)]
    pub grace_period_seconds: u32,
}

fn default_probe_path() -> String {
    "/health".into()
}
fn default_interval() -> u32 {
    5
}
fn default_timeout() -> u32 {
    2
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}

impl HealthProbe {
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.port == 0 {
            errors.push("port", "must be between 1 and 65535, got 0");
        }
        if self.protocol != ProbeProtocol::Tcp && !self.path.starts_with('/') {
            errors.push("path", "must start with '/'");
        }
        errors.range("interval_seconds", self.interval_seconds, 1, 3600);
        errors.range("timeout_seconds", self.timeout_seconds, 1, 3600);
        if self.timeout_seconds >= self.interval_seconds {
            errors.push(
                "timeout_seconds",
                format!(
                    "must be less than interval_seconds ({}), or probes overlap and can never succeed in time",
                    self.interval_seconds
                ),
            );
        }
        errors.range("healthy_threshold", self.healthy_threshold, 1, 10);
        errors.range("unhealthy_threshold", self.unhealthy_threshold, 1, 10);
        errors.range("grace_period_seconds", self.grace_period_seconds, 0, 7200);
        errors
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RepairAction {
    #[default]
    Replace,
    Restart,
    Reimage,
}

impl RepairAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Restart => "restart",
            Self::Reimage => "reimage",
        }
    }
}

/// Automatic instance repairs (Azure `automaticRepairsPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutomaticRepairs {
    #[serde(default)]
    pub enabled: bool,
    /// Seconds an instance stays unhealthy before it is repaired, 0–5,400, default 600
    /// (Azure's PT10M–PT90M; Flotilla also takes shorter ones, to try policies on the mock).
    #[serde(default = "default_repair_grace")]
    pub grace_period_seconds: u32,
    #[serde(default)]
    pub repair_action: RepairAction,
}

fn default_repair_grace() -> u32 {
    600
}

impl Default for AutomaticRepairs {
    fn default() -> Self {
        Self {
            enabled: false,
            grace_period_seconds: default_repair_grace(),
            repair_action: RepairAction::Replace,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FrontendProtocol {
    /// L7 HTTP/1.1 (keep-alive to clients and instances).
    Http,
    /// L7 with TLS terminated at the frontend (`tls` required).
    Https,
    /// L4: each TCP connection goes to one instance.
    Tcp,
}

/// What the API and the portal show instead of a frontend's private key. Sent back
/// unchanged in a patch, it keeps the key the frontend of the same name has.
pub use crate::secret::REDACTED;

/// Puts back the private keys a patch sent as [`REDACTED`], from `old`'s frontends of the
/// same name.
fn keep_redacted_keys(next: &mut Option<LoadBalancer>, old: Option<&LoadBalancer>) {
    let Some(next) = next else {
        return;
    };
    for f in &mut next.frontends {
        let kept = old
            .into_iter()
            .flat_map(|lb| &lb.frontends)
            .find(|o| o.name == f.name)
            .and_then(|o| o.tls.as_ref());
        if let (Some(tls), Some(kept)) = (&mut f.tls, kept)
            && tls.private_key_pem == REDACTED
        {
            tls.private_key_pem = kept.private_key_pem.clone();
        }
    }
}

/// A PEM certificate chain and private key for an HTTPS frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TlsCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

/// An L7 rule: requests whose path starts with `path_prefix` go to another scale set's
/// pool (Application Gateway's path-based routing). The longest matching prefix wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoutingRule {
    pub path_prefix: String,
    pub scale_set: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    RoundRobin,
    LeastConnections,
    IpHash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Frontend {
    pub name: String,
    pub protocol: FrontendProtocol,
    /// Port the frontend listens on (on the control plane's host).
    pub port: u16,
    /// Port on each instance traffic goes to (default: the model's app port).
    #[serde(default)]
    pub backend_port: Option<u16>,
    #[serde(default)]
    pub algorithm: Algorithm,
    /// The certificate of an HTTPS frontend.
    #[serde(default)]
    pub tls: Option<TlsCertificate>,
    /// Path-prefix rules to other scale sets' pools (HTTP and HTTPS only).
    #[serde(default)]
    pub rules: Vec<RoutingRule>,
    /// Seconds to connect to an instance before trying another (default 2).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u32,
    /// Seconds an instance has to answer a request's headers before 504 (default 30).
    #[serde(default = "default_response_timeout")]
    pub response_timeout_seconds: u32,
    /// Seconds an idle client connection is kept open (default 60).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u32,
    /// Seconds an instance leaving the pool has to finish its requests (default 30).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_seconds: u32,
    /// Client connections open at once (default 10,000); more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Requests (L7) or connections (L4) in flight per instance (default: no cap). An
    /// instance at its cap gets nothing new; when every instance is, a request is answered
    /// 503 (L7) or a connection closed (L4) at once.
    #[serde(default)]
    pub max_connections_per_member: Option<u32>,
    /// Seconds a transfer may stall — an instance that stops sending a response body, a
    /// client that stops reading one, either side of a TCP connection that stops reading —
    /// before the connection is cut (default 60).
    #[serde(default = "default_body_timeout")]
    pub body_timeout_seconds: u32,
}

fn default_connect_timeout() -> u32 {
    2
}
fn default_response_timeout() -> u32 {
    30
}
fn default_idle_timeout() -> u32 {
    60
}
fn default_drain_timeout() -> u32 {
    30
}
fn default_max_connections() -> u32 {
    10_000
}
fn default_body_timeout() -> u32 {
    60
}

impl Frontend {
    /// A frontend with every optional setting at its default.
    pub fn new(name: &str, protocol: FrontendProtocol, port: u16) -> Self {
        Self {
            name: name.into(),
            protocol,
            port,
            backend_port: None,
            algorithm: Algorithm::default(),
            tls: None,
            rules: vec![],
            connect_timeout_seconds: default_connect_timeout(),
            response_timeout_seconds: default_response_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            drain_timeout_seconds: default_drain_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_member: None,
            body_timeout_seconds: default_body_timeout(),
        }
    }

    fn validate(&self, ctx: &ValidationContext) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if self.backend_port == Some(0) {
            errors.push("backend_port", "must be between 1 and 65535, got 0");
        }
        match (self.protocol, &self.tls) {
            (FrontendProtocol::Https, None) => {
                errors.push("tls", "an https frontend needs a certificate and key")
            }
            (FrontendProtocol::Http | FrontendProtocol::Tcp, Some(_)) => errors.push(
                "tls",
                format!(
                    "only https frontends take a certificate, not {}",
                    self.protocol.as_str()
                ),
            ),
            (_, Some(tls)) => {
                if !tls.certificate_pem.contains("-----BEGIN CERTIFICATE-----") {
                    errors.push("tls.certificate_pem", "must be a PEM certificate chain");
                }
                if tls.private_key_pem == REDACTED {
                    errors.push(
                        "tls.private_key_pem",
                        "the API does not show keys; send the key itself",
                    );
                } else if !tls.private_key_pem.contains("PRIVATE KEY-----") {
                    errors.push("tls.private_key_pem", "must be a PEM private key");
                }
            }
            _ => {}
        }
        if self.protocol == FrontendProtocol::Tcp && !self.rules.is_empty() {
            errors.push("rules", "path rules need an http or https frontend");
        }
        let mut prefixes = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let p = &rule.path_prefix;
            if !p.starts_with('/') {
                errors.push(format!("rules[{i}].path_prefix"), "must start with '/'");
            } else if p.contains("//")
                || p.split('/').any(|seg| seg == "." || seg == "..")
                || p.contains('\\')
                || p.contains('%')
                || p.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                errors.push(
                    format!("rules[{i}].path_prefix"),
                    "must be a plain path: no '.' or '..' segments, '//', '%' escapes, backslashes or spaces (requests are matched on their normalised path)",
                );
            } else if !prefixes.insert(&rule.path_prefix) {
                errors.push(
                    format!("rules[{i}].path_prefix"),
                    format!("prefix {:?} is listed twice", rule.path_prefix),
                );
            }
            if let Some(known) = &ctx.known_scale_sets
                && !known.contains(&rule.scale_set)
            {
                errors.push(
                    format!("rules[{i}].scale_set"),
                    format!("no scale set named {:?}", rule.scale_set),
                );
            }
        }
        errors.range(
            "connect_timeout_seconds",
            self.connect_timeout_seconds,
            1,
            60,
        );
        errors.range(
            "response_timeout_seconds",
            self.response_timeout_seconds,
            1,
            3600,
        );
        errors.range("idle_timeout_seconds", self.idle_timeout_seconds, 1, 3600);
        errors.range("drain_timeout_seconds", self.drain_timeout_seconds, 0, 3600);
        errors.range("max_connections", self.max_connections, 1, 1_000_000);
        if let Some(cap) = self.max_connections_per_member {
            errors.range("max_connections_per_member", cap, 1, 100_000);
        }
        errors.range("body_timeout_seconds", self.body_timeout_seconds, 1, 3600);
        errors
    }
}

impl FrontendProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadBalancer {
    #[serde(default)]
    pub frontends: Vec<Frontend>,
}

impl LoadBalancer {
    /// Frontends' private keys replaced by [`REDACTED`].
    pub fn redacted(mut self) -> Self {
        for tls in self.frontends.iter_mut().filter_map(|f| f.tls.as_mut()) {
            tls.private_key_pem = REDACTED.into();
        }
        self
    }

    pub fn validate(&self, ctx: &ValidationContext) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let mut names = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for (i, f) in self.frontends.iter().enumerate() {
            if let Err(message) = check_name(&f.name) {
                errors.push(format!("frontends[{i}].name"), message);
            } else if !names.insert(&f.name) {
                errors.push(
                    format!("frontends[{i}].name"),
                    format!("duplicate frontend {:?}", f.name),
                );
            }
            if f.port == 0 {
                errors.push(
                    format!("frontends[{i}].port"),
                    "must be between 1 and 65535, got 0",
                );
            } else if !ports.insert(f.port) {
                errors.push(
                    format!("frontends[{i}].port"),
                    format!("port {} is used by another frontend", f.port),
                );
            }
            errors.nest(&format!("frontends[{i}]"), f.validate(ctx));
        }
        if self.frontends.len() > 8 {
            errors.push("frontends", "at most 8 frontends");
        }
        errors
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpgradeMode {
    #[default]
    Manual,
    Automatic,
    Rolling,
}

/// Azure's `rollingUpgradePolicy`, with its defaults, plus AWS instance refresh's
/// checkpoints and bake time, a canary batch and a per-instance deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollingPolicy {
    /// Largest batch, in percent of the capacity (5–100; at least one instance).
    #[serde(default = "twenty")]
    pub max_batch_instance_percent: u32,
    /// Checked before every batch: unhealthy instances of the whole set, in percent of the
    /// capacity, above which the rollout holds (5–100).
    #[serde(default = "twenty")]
    pub max_unhealthy_instance_percent: u32,
    /// Checked after every batch: upgraded instances that are unhealthy, in percent of the
    /// capacity, above which the rollout stops (0–100).
    #[serde(default = "twenty")]
    pub max_unhealthy_upgraded_instance_percent: u32,
    #[serde(default)]
    pub pause_time_between_batches_seconds: u32,
    /// Create each batch's replacements first and remove the old instances once the new
    /// ones serve: capacity never drops.
    #[serde(default)]
    pub max_surge: bool,
    #[serde(default)]
    pub prioritize_unhealthy_instances: bool,
    /// On a breach of the post-batch gate, put the upgraded instances back on the version
    /// they ran (and the scale set's model with them).
    #[serde(default)]
    pub rollback_failed_instances_on_policy_breach: bool,
    /// Batches may mix zones (otherwise one zone's share at a time).
    #[serde(default)]
    pub enable_cross_zone_upgrade: bool,
    /// Pause when this share of the instances is upgraded, until approved (`resume`) or for
    /// a delay (AWS's `CheckpointPercentages`).
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
    /// After the last batch, watch the upgraded instances this long before the rollout is
    /// complete; a breach meanwhile counts like one after a batch (0–172,800).
    #[serde(default)]
    pub bake_time_seconds: u32,
    /// A first batch of this many instances, then wait for approval (0: no canary).
    #[serde(default)]
    pub canary_instances: u32,
    /// How long one instance may take from the start of its update to healthy before it
    /// counts as failed (10–7,200).
    #[serde(default = "ten_minutes")]
    pub instance_timeout_seconds: u32,
}

/// A pause of a rolling upgrade once `percent` of its instances are upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    /// 1–99.
    pub percent: u32,
    /// Resume by itself after this long; `None`: wait for approval.
    #[serde(default)]
    pub wait_seconds: Option<u32>,
}

fn twenty() -> u32 {
    20
}

fn ten_minutes() -> u32 {
    600
}

impl Default for RollingPolicy {
    fn default() -> Self {
        Self {
            max_batch_instance_percent: 20,
            max_unhealthy_instance_percent: 20,
            max_unhealthy_upgraded_instance_percent: 20,
            pause_time_between_batches_seconds: 0,
            max_surge: false,
            prioritize_unhealthy_instances: false,
            rollback_failed_instances_on_policy_breach: false,
            enable_cross_zone_upgrade: false,
            checkpoints: Vec::new(),
            bake_time_seconds: 0,
            canary_instances: 0,
            instance_timeout_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpgradePolicy {
    #[serde(default)]
    pub mode: UpgradeMode,
    #[serde(default)]
    pub rolling: RollingPolicy,
}

impl UpgradePolicy {
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let r = &self.rolling;
        errors.range(
            "rolling.max_batch_instance_percent",
            r.max_batch_instance_percent,
            5,
            100,
        );
        errors.range(
            "rolling.max_unhealthy_instance_percent",
            r.max_unhealthy_instance_percent,
            5,
            100,
        );
        errors.range(
            "rolling.max_unhealthy_upgraded_instance_percent",
            r.max_unhealthy_upgraded_instance_percent,
            0,
            100,
        );
        errors.range(
            "rolling.pause_time_between_batches_seconds",
            r.pause_time_between_batches_seconds,
            0,
            3600,
        );
        errors.range("rolling.bake_time_seconds", r.bake_time_seconds, 0, 172_800);
        errors.range("rolling.canary_instances", r.canary_instances, 0, 10_000);
        errors.range(
            "rolling.instance_timeout_seconds",
            r.instance_timeout_seconds,
            10,
            7200,
        );
        if r.checkpoints.len() > 10 {
            errors.push("rolling.checkpoints", "at most 10 checkpoints");
        }
        let mut previous = 0;
        for (i, c) in r.checkpoints.iter().enumerate() {
            let field = format!("rolling.checkpoints[{i}]");
            errors.range(format!("{field}.percent"), c.percent, 1, 99);
            if c.percent <= previous {
                errors.push(
                    format!("{field}.percent"),
                    format!("checkpoints must rise: {} follows {previous}", c.percent),
                );
            }
            previous = previous.max(c.percent);
            if let Some(wait) = c.wait_seconds {
                errors.range(format!("{field}.wait_seconds"), wait, 1, 86_400);
            }
        }
        if r.max_batch_instance_percent > r.max_unhealthy_instance_percent {
            errors.push(
                "rolling.max_batch_instance_percent",
                format!(
                    "must not exceed max_unhealthy_instance_percent ({})",
                    r.max_unhealthy_instance_percent
                ),
            );
        }
        errors
    }
}

/// Everything a user states about a scale set: the create request and the stored desire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaleSetSpec {
    /// Unique name, `^[a-z][a-z0-9-]{0,62}$`.
    pub name: String,
    pub model: Model,
    /// Desired number of instances, 0–10,000.
    pub capacity: u32,
    /// Zones to spread over; empty means every zone the backend offers.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Fault domains per zone to spread over, 1–5; 1 means "max spreading" over every fault
    /// domain the zone has (as in Azure).
    #[serde(default = "one")]
    pub platform_fault_domain_count: u32,
    /// Strict zone balance: never place an instance where it would unbalance zones by more
    /// than one (fails instead). Best-effort (false) is the default.
    #[serde(default)]
    pub zone_balance: bool,
    #[serde(default)]
    pub scale_in_policy: ScaleInPolicy,
    /// Create 20 % extra instances on scale-out and delete the surplus once enough succeeded.
    #[serde(default)]
    pub overprovision: bool,
    /// New instances start protected from scale-in.
    #[serde(default)]
    pub new_instances_protected_from_scale_in: bool,
    #[serde(default)]
    pub health_probe: Option<HealthProbe>,
    #[serde(default)]
    pub automatic_repairs: AutomaticRepairs,
    #[serde(default)]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default)]
    pub upgrade_policy: UpgradePolicy,
    /// Autoscale (`PUT /scale-sets/{name}/autoscale`): profiles with bounds, rules, target
    /// tracking and schedules. `None` or not `enabled`: the capacity is set by hand.
    #[serde(default)]
    pub autoscale: Option<AutoscaleSetting>,
    /// A candidate setting evaluated beside the live one on the same metrics
    /// (`PUT /scale-sets/{name}/autoscale/shadow`): its decisions are stored, never acted on.
    #[serde(default)]
    pub autoscale_shadow: Option<AutoscaleSetting>,
    /// The mock's synthetic demand (`PUT /scale-sets/{name}/demand`).
    #[serde(default)]
    pub demand: Option<Demand>,
    /// Waits on the instances' launch and removal ([`crate::lifecycle`]).
    #[serde(default)]
    pub lifecycle_hooks: Vec<LifecycleHook>,
    /// Instances prepared ahead of scale-out ([`crate::warm_pool`]); `null`: none.
    #[serde(default)]
    pub warm_pool: Option<WarmPool>,
}

/// What validation needs to know about the world (the backend's zones).
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    pub known_zones: Vec<String>,
    /// The scale sets load balancer rules may route to (`None`: not checked, as in the
    /// browser).
    pub known_scale_sets: Option<Vec<String>>,
}

impl ScaleSetSpec {
    /// A minimal valid spec, for tests and examples.
    pub fn example(name: &str, capacity: u32) -> Self {
        Self {
            name: name.into(),
            model: Model {
                image: "debian-12".into(),
                vcpus: 2,
                memory_mib: 2048,
                disk_gib: 10,
                data_disks: vec![],
                user_data: None,
                user_data_length: None,
                user_data_sha256: None,
                tags: BTreeMap::new(),
                app_port: 80,
            },
            capacity,
            zones: vec!["1".into(), "2".into(), "3".into()],
            platform_fault_domain_count: 1,
            zone_balance: false,
            scale_in_policy: ScaleInPolicy::default(),
            overprovision: false,
            new_instances_protected_from_scale_in: false,
            health_probe: None,
            automatic_repairs: AutomaticRepairs::default(),
            load_balancer: None,
            upgrade_policy: UpgradePolicy::default(),
            autoscale: None,
            autoscale_shadow: None,
            demand: None,
            lifecycle_hooks: Vec::new(),
            warm_pool: None,
        }
    }

    /// The spec as shown outside the control plane: frontends' private keys and webhook
    /// secrets replaced by [`REDACTED`], webhook URLs by their shown form, the user data by
    /// its length and SHA-256.
    pub fn redacted(mut self) -> Self {
        self.model = self.model.redacted();
        self.load_balancer = self.load_balancer.map(LoadBalancer::redacted);
        self.autoscale = self.autoscale.map(AutoscaleSetting::redacted);
        self.autoscale_shadow = self.autoscale_shadow.map(AutoscaleSetting::redacted);
        self.lifecycle_hooks = lifecycle::redacted(self.lifecycle_hooks);
        self
    }

    /// Probes and frontends aimed at ports the instances do not serve on. A member's
    /// address is its host's address with the port forwarded to the model's `app_port`
    /// (libvirt and the mock alike), so any other port would reach the *host's* services,
    /// not the instance: only the app port is allowed.
    pub fn unforwarded_ports(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let app_port = self.model.app_port;
        let only = |port: u16| {
            format!(
                "port {port} is not forwarded to the instances: only the model's app_port ({app_port}) is; use {app_port}"
            )
        };
        if let Some(probe) = &self.health_probe
            && probe.port != app_port
            && probe.port != 0
        {
            errors.push("health_probe.port", only(probe.port));
        }
        for (i, f) in self
            .load_balancer
            .iter()
            .flat_map(|lb| &lb.frontends)
            .enumerate()
        {
            if let Some(port) = f.backend_port
                && port != app_port
                && port != 0
            {
                errors.push(
                    format!("load_balancer.frontends[{i}].backend_port"),
                    format!("{} (or leave it out)", only(port)),
                );
            }
        }
        errors
    }

    /// Makes probes and frontends aimed at the old app port follow the model's new one (the
    /// only port forwarded to the instances), when a new model version changes it.
    pub fn follow_app_port(&mut self, old_app_port: u16) {
        let new = self.model.app_port;
        if let Some(probe) = &mut self.health_probe
            && probe.port == old_app_port
        {
            probe.port = new;
        }
        for f in self
            .load_balancer
            .iter_mut()
            .flat_map(|lb| &mut lb.frontends)
        {
            if f.backend_port == Some(old_app_port) {
                f.backend_port = Some(new);
            }
        }
    }

    /// Every problem with this spec, each naming its field.
    pub fn validate(&self, ctx: &ValidationContext) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Err(message) = check_name(&self.name) {
            errors.push("name", message);
        }
        errors.nest("model", self.model.validate());
        errors.range("capacity", self.capacity, 0, MAX_CAPACITY);
        self.validate_settings(ctx, &mut errors);
        errors.into_result()
    }

    /// The checks shared by create and update (everything but name, model and capacity).
    fn validate_settings(&self, ctx: &ValidationContext, errors: &mut ValidationErrors) {
        if self.zones.is_empty() {
            errors.push("zones", "at least one zone is required");
        }
        let mut seen = BTreeSet::new();
        for (i, zone) in self.zones.iter().enumerate() {
            if !ctx.known_zones.iter().any(|z| z == zone) {
                errors.push(
                    format!("zones[{i}]"),
                    format!(
                        "unknown zone {zone:?}; known zones: {}",
                        ctx.known_zones.join(", ")
                    ),
                );
            } else if !seen.insert(zone) {
                errors.push(
                    format!("zones[{i}]"),
                    format!("zone {zone:?} is listed twice"),
                );
            }
        }
        errors.range(
            "platform_fault_domain_count",
            self.platform_fault_domain_count,
            1,
            5,
        );
        if self.scale_in_policy.rules.len() != 1 {
            errors.push("scale_in_policy.rules", "exactly one rule is required");
        }
        if let Some(probe) = &self.health_probe {
            errors.nest("health_probe", probe.validate());
        }
        let repairs = &self.automatic_repairs;
        errors.range(
            "automatic_repairs.grace_period_seconds",
            repairs.grace_period_seconds,
            0,
            5400,
        );
        if repairs.enabled && self.health_probe.is_none() {
            errors.push(
                "automatic_repairs.enabled",
                "automatic repairs need a health_probe",
            );
        }
        if let Some(lb) = &self.load_balancer {
            errors.nest("load_balancer", lb.validate(ctx));
        }
        errors.0.extend(self.unforwarded_ports().0);
        errors.nest("upgrade_policy", self.upgrade_policy.validate());
        if self.upgrade_policy.mode == UpgradeMode::Rolling && self.health_probe.is_none() {
            errors.push(
                "upgrade_policy.mode",
                "rolling upgrades need a health_probe",
            );
        }
        if let Some(shadow) = &self.autoscale_shadow {
            errors.nest("autoscale_shadow", shadow.validate());
        }
        if let Some(autoscale) = &self.autoscale {
            errors.nest("autoscale", autoscale.validate());
        }
        if let Some(demand) = &self.demand {
            errors.nest("demand", demand.validate());
        }
        errors
            .0
            .extend(lifecycle::validate(&self.lifecycle_hooks).0);
        if let Some(pool) = &self.warm_pool {
            errors.0.extend(pool.validate().0);
        }
    }

    /// Applies `patch` to a copy of `self`, checking the rules that depend on the old value
    /// (zones may be added but not removed) and validating the result.
    pub fn patched(
        &self,
        patch: &ScaleSetPatch,
        ctx: &ValidationContext,
    ) -> Result<ScaleSetSpec, ValidationErrors> {
        let mut next = self.clone();
        let mut errors = ValidationErrors::default();
        if let Some(capacity) = patch.capacity {
            next.capacity = capacity;
        }
        if let Some(zones) = &patch.zones {
            if let Some(removed) = self.zones.iter().find(|z| !zones.contains(z)) {
                errors.push(
                    "zones",
                    format!("zones can be added but not removed; zone {removed:?} is missing"),
                );
            }
            next.zones = zones.clone();
        }
        if let Some(n) = patch.platform_fault_domain_count
            && n != self.platform_fault_domain_count
        {
            errors.push(
                "platform_fault_domain_count",
                "cannot change after creation",
            );
        }
        if let Some(v) = patch.zone_balance {
            next.zone_balance = v;
        }
        if let Some(v) = &patch.scale_in_policy {
            next.scale_in_policy = v.clone();
        }
        if let Some(v) = patch.overprovision {
            next.overprovision = v;
        }
        if let Some(v) = patch.new_instances_protected_from_scale_in {
            next.new_instances_protected_from_scale_in = v;
        }
        if let Some(v) = &patch.health_probe {
            next.health_probe = v.clone();
        }
        if let Some(v) = &patch.automatic_repairs {
            next.automatic_repairs = v.clone();
        }
        if let Some(v) = &patch.load_balancer {
            next.load_balancer = v.clone();
            keep_redacted_keys(&mut next.load_balancer, self.load_balancer.as_ref());
        }
        if let Some(v) = &patch.upgrade_policy {
            next.upgrade_policy = v.clone();
        }
        if let Some(v) = &patch.autoscale {
            next.autoscale = v.clone();
            if let Some(setting) = &mut next.autoscale {
                setting.keep_secrets(self.autoscale.as_ref());
            }
        }
        if let Some(v) = &patch.lifecycle_hooks {
            next.lifecycle_hooks = v.clone();
            lifecycle::keep_secrets(&mut next.lifecycle_hooks, &self.lifecycle_hooks);
        }
        if let Some(v) = &patch.warm_pool {
            next.warm_pool = v.clone();
        }
        if patch.capacity.is_some_and(|c| c != self.capacity)
            && next.autoscale.as_ref().is_some_and(|a| a.enabled)
        {
            errors.push(
                "capacity",
                "autoscale is enabled: it sets the capacity; disable it or change its profiles' bounds",
            );
        }
        if let Err(more) = next.validate(ctx) {
            errors.0.extend(more.0);
        }
        errors.into_result().map(|()| next)
    }
}

/// A partial update (`PATCH /scale-sets/{name}`): absent fields are left as they are;
/// `null` clears the optional settings (`health_probe`, `load_balancer`, `autoscale`,
/// `warm_pool`). The model changes
/// through `PUT /scale-sets/{name}/model`, which makes a new model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaleSetPatch {
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub zones: Option<Vec<String>>,
    #[serde(default)]
    pub platform_fault_domain_count: Option<u32>,
    #[serde(default)]
    pub zone_balance: Option<bool>,
    #[serde(default)]
    pub scale_in_policy: Option<ScaleInPolicy>,
    #[serde(default)]
    pub overprovision: Option<bool>,
    #[serde(default)]
    pub new_instances_protected_from_scale_in: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<HealthProbe>))]
    pub health_probe: Option<Option<HealthProbe>>,
    #[serde(default)]
    pub automatic_repairs: Option<AutomaticRepairs>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<LoadBalancer>))]
    pub load_balancer: Option<Option<LoadBalancer>>,
    #[serde(default)]
    pub upgrade_policy: Option<UpgradePolicy>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AutoscaleSetting>))]
    pub autoscale: Option<Option<AutoscaleSetting>>,
    /// Replaces the hooks; webhooks sent as reads show them keep their stored URL and
    /// secret (matched by hook name).
    #[serde(default)]
    pub lifecycle_hooks: Option<Vec<LifecycleHook>>,
    /// `null` removes the pool (its members are deleted).
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<WarmPool>))]
    pub warm_pool: Option<Option<WarmPool>>,
}

impl ScaleSetPatch {
    /// The patch as the activity log records it: its secrets redacted as reads redact them.
    pub fn redacted(mut self) -> Self {
        if let Some(Some(lb)) = self.load_balancer {
            self.load_balancer = Some(Some(lb.redacted()));
        }
        if let Some(Some(autoscale)) = self.autoscale {
            self.autoscale = Some(Some(autoscale.redacted()));
        }
        self.lifecycle_hooks = self.lifecycle_hooks.map(lifecycle::redacted);
        self
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScaleSetState {
    Active,
    /// Being deleted: the reconciler removes every instance, then the record.
    Deleting,
}

/// A stored scale set: the spec plus what the control plane keeps about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaleSet {
    #[serde(flatten)]
    pub spec: ScaleSetSpec,
    /// The latest model version; instances on it have `latest_model = true`.
    pub model_version: u32,
    /// Bumped by every change; guards writes against stale actors.
    pub generation: i64,
    pub state: ScaleSetState,
    /// The automatic repair service's state (suspended or not, failures in a row).
    #[serde(default)]
    pub repairs: RepairStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Read with the spec streamed ([`crate::flatten`]), not buffered as serde's flatten would.
impl<'de> Deserialize<'de> for ScaleSet {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        /// [`ScaleSet`]'s own fields.
        #[derive(Deserialize)]
        struct Own {
            model_version: u32,
            generation: i64,
            state: ScaleSetState,
            #[serde(default)]
            repairs: RepairStatus,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
        }
        let (spec, own) = crate::flatten::split::<_, _, Own>(de)?;
        Ok(ScaleSet {
            spec,
            model_version: own.model_version,
            generation: own.generation,
            state: own.state,
            repairs: own.repairs,
            created_at: own.created_at,
            updated_at: own.updated_at,
        })
    }
}

impl ScaleSet {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The set as shown outside the control plane: every secret of its spec redacted
    /// ([`ScaleSetSpec::redacted`]).
    pub fn redacted(mut self) -> Self {
        self.spec = self.spec.redacted();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ValidationContext {
        ValidationContext {
            known_zones: vec!["1".into(), "2".into(), "3".into()],
            known_scale_sets: Some(vec!["web".into(), "api".into()]),
        }
    }

    fn fields(spec: &ScaleSetSpec) -> Vec<String> {
        match spec.validate(&ctx()) {
            Ok(()) => vec![],
            Err(e) => e.0.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn design_example_parses_with_defaults() {
        let spec: ScaleSetSpec = serde_json::from_str(
            r#"{"name":"web","model":{"image":"debian-12","vcpus":2,"memory_mib":2048,"disk_gib":10,"user_data":null,"app_port":80},"capacity":3,"zones":["1","2","3"]}"#,
        )
        .unwrap();
        assert_eq!(spec, ScaleSetSpec::example("web", 3));
        assert_eq!(fields(&spec), Vec::<String>::new());
        assert_eq!(spec.upgrade_policy.rolling.max_batch_instance_percent, 20);
        assert_eq!(spec.automatic_repairs.grace_period_seconds, 600);
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = Box<dyn Fn(&mut ScaleSetSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|s| s.name = "Web!".into())),
            ("capacity", Box::new(|s| s.capacity = 10_001)),
            ("model.vcpus", Box::new(|s| s.model.vcpus = 0)),
            ("model.vcpus", Box::new(|s| s.model.vcpus = 65)),
            ("model.memory_mib", Box::new(|s| s.model.memory_mib = 64)),
            (
                "model.memory_mib",
                Box::new(|s| s.model.memory_mib = 2_000_000),
            ),
            ("model.disk_gib", Box::new(|s| s.model.disk_gib = 0)),
            ("model.image", Box::new(|s| s.model.image = String::new())),
            (
                "model.image",
                Box::new(|s| s.model.image = "<script>".into()),
            ),
            ("model.app_port", Box::new(|s| s.model.app_port = 0)),
            (
                "model.user_data",
                Box::new(|s| s.model.user_data = Some("x".repeat(70_000))),
            ),
            (
                "zones[1]",
                Box::new(|s| s.zones = vec!["1".into(), "9".into()]),
            ),
            (
                "zones[1]",
                Box::new(|s| s.zones = vec!["1".into(), "1".into()]),
            ),
            ("zones", Box::new(|s| s.zones = vec![])),
            (
                "platform_fault_domain_count",
                Box::new(|s| s.platform_fault_domain_count = 6),
            ),
            (
                "scale_in_policy.rules",
                Box::new(|s| s.scale_in_policy.rules = vec![]),
            ),
            (
                "automatic_repairs.enabled",
                Box::new(|s| s.automatic_repairs.enabled = true),
            ),
            (
                "automatic_repairs.grace_period_seconds",
                Box::new(|s| s.automatic_repairs.grace_period_seconds = 5401),
            ),
            (
                "health_probe.timeout_seconds",
                Box::new(|s| {
                    s.health_probe = Some(HealthProbe {
                        protocol: ProbeProtocol::Http,
                        port: 80,
                        path: "/health".into(),
                        interval_seconds: 5,
                        timeout_seconds: 5,
                        healthy_threshold: 1,
                        unhealthy_threshold: 2,
                        grace_period_seconds: 0,
                    })
                }),
            ),
            (
                "upgrade_policy.rolling.max_batch_instance_percent",
                Box::new(|s| s.upgrade_policy.rolling.max_batch_instance_percent = 50),
            ),
            (
                "upgrade_policy.mode",
                Box::new(|s| s.upgrade_policy.mode = UpgradeMode::Rolling),
            ),
            (
                "load_balancer.frontends[0].tls",
                Box::new(|s| {
                    s.load_balancer = Some(LoadBalancer {
                        frontends: vec![Frontend::new("a", FrontendProtocol::Https, 443)],
                    });
                }),
            ),
            (
                "load_balancer.frontends[0].rules[0].scale_set",
                Box::new(|s| {
                    let mut f = Frontend::new("a", FrontendProtocol::Http, 8080);
                    f.rules.push(RoutingRule {
                        path_prefix: "/api".into(),
                        scale_set: "nowhere".into(),
                    });
                    s.load_balancer = Some(LoadBalancer { frontends: vec![f] });
                }),
            ),
            (
                "load_balancer.frontends[0].rules",
                Box::new(|s| {
                    let mut f = Frontend::new("a", FrontendProtocol::Tcp, 8080);
                    f.rules.push(RoutingRule {
                        path_prefix: "/api".into(),
                        scale_set: "web".into(),
                    });
                    s.load_balancer = Some(LoadBalancer { frontends: vec![f] });
                }),
            ),
            (
                "load_balancer.frontends[1].port",
                Box::new(|s| {
                    let f = Frontend::new("a", FrontendProtocol::Http, 8080);
                    let mut g = f.clone();
                    g.name = "b".into();
                    s.load_balancer = Some(LoadBalancer {
                        frontends: vec![f, g],
                    });
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut spec = ScaleSetSpec::example("web", 3);
            mutate(&mut spec);
            assert_eq!(
                fields(&spec),
                vec![field.to_string()],
                "expected only {field}"
            );
        }
    }

    #[test]
    fn patch_adds_zones_but_never_removes() {
        let spec = ScaleSetSpec {
            zones: vec!["1".into(), "2".into()],
            ..ScaleSetSpec::example("web", 3)
        };
        let add = ScaleSetPatch {
            zones: Some(vec!["1".into(), "2".into(), "3".into()]),
            ..Default::default()
        };
        assert_eq!(spec.patched(&add, &ctx()).unwrap().zones.len(), 3);
        let remove = ScaleSetPatch {
            zones: Some(vec!["1".into()]),
            ..Default::default()
        };
        let err = spec.patched(&remove, &ctx()).unwrap_err();
        assert_eq!(err.0[0].field, "zones");
    }

    #[test]
    fn patch_null_clears_and_absent_keeps() {
        let mut spec = ScaleSetSpec::example("web", 3);
        spec.load_balancer = Some(LoadBalancer::default());
        let keep: ScaleSetPatch = serde_json::from_str(r#"{"overprovision":true}"#).unwrap();
        let next = spec.patched(&keep, &ctx()).unwrap();
        assert!(next.overprovision);
        assert!(next.load_balancer.is_some());
        let clear: ScaleSetPatch = serde_json::from_str(r#"{"load_balancer":null}"#).unwrap();
        assert!(
            spec.patched(&clear, &ctx())
                .unwrap()
                .load_balancer
                .is_none()
        );
    }

    #[test]
    fn keys_are_redacted_and_a_redacted_key_is_kept_by_a_patch() {
        let tls = TlsCertificate {
            certificate_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"
                .into(),
        };
        let mut spec = ScaleSetSpec::example("web", 1);
        spec.load_balancer = Some(LoadBalancer {
            frontends: vec![Frontend {
                tls: Some(tls.clone()),
                ..Frontend::new("tls", FrontendProtocol::Https, 8443)
            }],
        });
        let set = ScaleSet {
            spec: spec.clone(),
            model_version: 1,
            generation: 1,
            state: ScaleSetState::Active,
            repairs: RepairStatus::default(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let shown = set.redacted();
        let shown_lb = shown.spec.load_balancer.clone().unwrap();
        assert_eq!(
            shown_lb.frontends[0].tls.as_ref().unwrap().private_key_pem,
            REDACTED
        );
        // Sending what was shown back, with another port, keeps the key.
        let mut lb = shown_lb.clone();
        lb.frontends[0].port = 9443;
        let patch = ScaleSetPatch {
            load_balancer: Some(Some(lb)),
            ..ScaleSetPatch::default()
        };
        let next = spec.patched(&patch, &ctx()).unwrap();
        let f = &next.load_balancer.unwrap().frontends[0];
        assert_eq!((f.port, f.tls.as_ref().unwrap()), (9443, &tls));
        // A new frontend must bring its key.
        let mut renamed = shown_lb;
        renamed.frontends[0].name = "other".into();
        let patch = ScaleSetPatch {
            load_balancer: Some(Some(renamed)),
            ..ScaleSetPatch::default()
        };
        let err = spec.patched(&patch, &ctx()).unwrap_err();
        assert_eq!(
            err.0[0].field,
            "load_balancer.frontends[0].tls.private_key_pem"
        );
    }

    #[test]
    fn stored_scale_set_round_trips_flattened() {
        let set = ScaleSet {
            spec: ScaleSetSpec::example("web", 3),
            model_version: 1,
            generation: 4,
            state: ScaleSetState::Active,
            repairs: RepairStatus::default(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["name"], "web");
        assert_eq!(json["capacity"], 3);
        assert_eq!(json["model"]["vcpus"], 2);
        let back: ScaleSet = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, set);
        let back: ScaleSet = serde_json::from_str(&json.to_string()).unwrap();
        assert_eq!(back, set);
        // The set's own fields and the spec's are each named when missing.
        for field in ["generation", "capacity"] {
            let mut missing = json.clone();
            missing.as_object_mut().unwrap().remove(field);
            let err = serde_json::from_str::<ScaleSet>(&missing.to_string()).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("missing field `{field}`")),
                "{err}"
            );
        }
    }
}
