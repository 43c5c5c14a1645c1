//! Encoding and decoding shared by both backends: the row shapes and their decoding into
//! domain records (enums from their snake_case strings, JSON documents, integer ranges),
//! the column values of an instance as bound, and the in-memory steps around the batch
//! writes (which records a write returns, which ids were stale, which id was taken).
//! Nothing here does I/O.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use flotilla_domain::access::{ApiToken, Role, RoleAssignment, User, UserSource};
use flotilla_domain::autoscale::decision::Decision;
use flotilla_domain::instance::{Lifecycle, StateCount, Warm};
use flotilla_domain::maintenance::{HostMaintenance, MaintenanceReason};
use flotilla_domain::metrics::{Metric, MinuteTicks, Point, Rollup};
use flotilla_domain::replica::{FrontendCounters, Lease, Replica};
use flotilla_domain::rollout::{Rollout, RolloutState};
use flotilla_domain::{
    Activity, ActivityResult, Instance, NewActivity, ProbeResult, ProvisioningState, ScaleSet,
    ScaleSetSpec, ScaleSetState,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Kind, ModelVersion, Result, StoreError, Written};

// ---------------------------------------------------------------------------------------
// Errors

/// Wraps a driver error with the operation it interrupted.
pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { operation, source }
}

/// Whether the error is a unique (or primary key) violation, by the database's error kind.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

fn corrupt(what: &'static str, message: impl Display) -> StoreError {
    StoreError::Corrupt {
        what,
        source: <serde_json::Error as serde::de::Error>::custom(message),
    }
}

pub(crate) fn not_found(kind: Kind, key: impl Into<String>) -> StoreError {
    StoreError::NotFound {
        kind,
        key: key.into(),
    }
}

pub(crate) fn scale_set_exists(name: &str) -> StoreError {
    StoreError::AlreadyExists {
        kind: Kind::ScaleSet,
        key: name.to_owned(),
    }
}

/// `NotFound` when the set has no stored generation, `Conflict` when it differs from the
/// caller's.
pub(crate) fn check_generation(set: &ScaleSet, stored: Option<i64>) -> Result<()> {
    match stored {
        Some(g) if g == set.generation => Ok(()),
        other => Err(stale_or_missing(set, other)),
    }
}

/// The error for a generation-guarded write that found `stored` (the set's generation, if
/// the set exists) instead of the caller's.
pub(crate) fn stale_or_missing(set: &ScaleSet, stored: Option<i64>) -> StoreError {
    match stored {
        None => not_found(Kind::ScaleSet, set.name()),
        Some(_) => StoreError::Conflict {
            kind: Kind::ScaleSet,
            key: set.name().to_owned(),
            expected: set.generation,
        },
    }
}

// ---------------------------------------------------------------------------------------
// Codecs

/// Timestamps are kept to the microsecond, the precision of both databases; records a
/// write returns are truncated the same way, so they equal what a later read gives.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Integers are stored as signed 64-bit (SQLite has no other). Ordinals count up from 0,
/// one per created instance, and never come near 2^63; saturating keeps this total.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u32(what: &'static str, n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt(what, format!("{n} is out of range")))
}

pub(crate) fn to_u64(what: &'static str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| corrupt(what, format!("{n} is out of range")))
}

pub(crate) fn ordinal(n: i64) -> Result<u64> {
    to_u64("scale set next ordinal", n)
}

fn parse_enum<T: FromStr<Err = String>>(what: &'static str, s: &str) -> Result<T> {
    s.parse().map_err(|message: String| corrupt(what, message))
}

/// Serializes a document for a JSON (text) column.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Invariant: the stored documents (specs, models, id lists, `serde_json::Value`) have
    // string map keys and no non-finite floats, so serializing them cannot fail.
    serde_json::to_string(value).expect("stored JSON documents always serialize")
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { what, source })
}

/// `ScaleSetState` has no `as_str`: its snake_case serde name is the stored string.
pub(crate) fn state_str(state: ScaleSetState) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => s,
        // Invariant: a unit enum variant serializes as a JSON string.
        other => unreachable!("ScaleSetState serialized as {other:?}"),
    }
}

fn parse_state(s: String) -> Result<ScaleSetState> {
    serde_json::from_value(serde_json::Value::String(s)).map_err(|source| StoreError::Corrupt {
        what: "scale set state",
        source,
    })
}

// ---------------------------------------------------------------------------------------
// Rows

/// A row of `scale_sets`.
#[derive(sqlx::FromRow)]
pub struct ScaleSetRow {
    name: String,
    capacity: i64,
    model_version: i64,
    generation: i64,
    state: String,
    spec: String,
    repairs: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl IntoDomain for ScaleSetRow {
    type Domain = ScaleSet;
    fn into_domain(self) -> Result<ScaleSet> {
        let mut spec: ScaleSetSpec = from_json("scale set spec", &self.spec)?;
        spec.name = self.name;
        spec.capacity = to_u32("scale set capacity", self.capacity)?;
        Ok(ScaleSet {
            spec,
            model_version: to_u32("scale set model version", self.model_version)?,
            generation: self.generation,
            state: parse_state(self.state)?,
            repairs: from_json("scale set repair status", &self.repairs)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A row of `model_versions`.
#[derive(sqlx::FromRow)]
pub struct ModelVersionRow {
    scale_set: String,
    version: i64,
    model: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl IntoDomain for ModelVersionRow {
    type Domain = ModelVersion;
    fn into_domain(self) -> Result<ModelVersion> {
        Ok(ModelVersion {
            model: from_json("model", &self.model)?,
            version: to_u32("model version", self.version)?,
            scale_set: self.scale_set,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}

/// A set's instances version and model version.
#[derive(sqlx::FromRow)]
pub struct InstancesVersionRow {
    instances_version: i64,
    model_version: i64,
    created_at: DateTime<Utc>,
}

impl IntoDomain for InstancesVersionRow {
    type Domain = crate::InstancesVersion;
    fn into_domain(self) -> Result<crate::InstancesVersion> {
        Ok(crate::InstancesVersion {
            instances: to_u64("scale set instances version", self.instances_version)?,
            model: to_u32("scale set model version", self.model_version)?,
            created_at: self.created_at,
        })
    }
}

/// A row of the instance counts by state.
#[derive(sqlx::FromRow)]
pub struct StateCountRow {
    scale_set: String,
    power_state: String,
    health_state: String,
    provisioning_state: String,
    latest_model: bool,
    count: i64,
}

impl IntoDomain for StateCountRow {
    type Domain = StateCount;
    fn into_domain(self) -> Result<StateCount> {
        Ok(StateCount {
            power_state: parse_enum("instance power state", &self.power_state)?,
            health_state: parse_enum("instance health state", &self.health_state)?,
            provisioning_state: parse_enum(
                "instance provisioning state",
                &self.provisioning_state,
            )?,
            latest_model: self.latest_model,
            count: to_u64("instance count", self.count)?,
            scale_set: self.scale_set,
        })
    }
}

/// A row of `instances`, with `latest_model` derived by the query.
#[derive(sqlx::FromRow)]
pub struct InstanceRow {
    id: String,
    scale_set: String,
    ordinal: i64,
    zone: String,
    fault_domain: i64,
    model_version: i64,
    provisioning_state: String,
    power_state: String,
    health_state: String,
    desired_power: String,
    pending: Option<String>,
    protect_from_scale_in: bool,
    protect_from_scale_set_actions: bool,
    address: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    health_changed_at: Option<DateTime<Utc>>,
    load_balancer_enabled: bool,
    repair_attempts: i64,
    retiring: bool,
    lifecycle: Option<String>,
    busy_until: Option<DateTime<Utc>>,
    warm: Option<String>,
    generation: i64,
    latest_model: bool,
}

impl IntoDomain for InstanceRow {
    type Domain = Instance;
    fn into_domain(self) -> Result<Instance> {
        Ok(Instance {
            ordinal: to_u64("instance ordinal", self.ordinal)?,
            fault_domain: to_u32("instance fault domain", self.fault_domain)?,
            model_version: to_u32("instance model version", self.model_version)?,
            provisioning_state: parse_enum(
                "instance provisioning state",
                &self.provisioning_state,
            )?,
            power_state: parse_enum("instance power state", &self.power_state)?,
            health_state: parse_enum("instance health state", &self.health_state)?,
            health_changed_at: self.health_changed_at,
            last_probe: None,
            load_balancer_enabled: self.load_balancer_enabled,
            repair_attempts: to_u32("instance repair attempts", self.repair_attempts)?,
            retiring: self.retiring,
            lifecycle: self
                .lifecycle
                .map(|l| from_json("instance lifecycle", &l))
                .transpose()?
                .unwrap_or_default(),
            busy_until: self.busy_until,
            warm: self
                .warm
                .map(|w| from_json("instance warm pool", &w))
                .transpose()?
                .unwrap_or_default(),
            desired_power: parse_enum("instance desired power", &self.desired_power)?,
            pending: self
                .pending
                .map(|p| parse_enum("instance pending action", &p))
                .transpose()?,
            id: self.id,
            scale_set: self.scale_set,
            zone: self.zone,
            latest_model: self.latest_model,
            protect_from_scale_in: self.protect_from_scale_in,
            protect_from_scale_set_actions: self.protect_from_scale_set_actions,
            address: self.address,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            generation: self.generation,
        })
    }
}

/// A row of `activity`.
#[derive(sqlx::FromRow)]
pub struct ActivityRow {
    id: i64,
    operation: String,
    actor: String,
    scale_set: Option<String>,
    target: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    result: String,
    error: Option<String>,
    details: String,
    replica: Option<String>,
    lease_generation: Option<i64>,
}

impl IntoDomain for ActivityRow {
    type Domain = Activity;
    fn into_domain(self) -> Result<Activity> {
        Ok(Activity {
            duration_ms: self
                .ended_at
                .map(|end| (end - self.started_at).num_milliseconds()),
            result: parse_enum::<ActivityResult>("activity result", &self.result)?,
            details: from_json("activity details", &self.details)?,
            id: self.id,
            operation: self.operation,
            actor: self.actor,
            scale_set: self.scale_set,
            target: self.target,
            started_at: self.started_at,
            ended_at: self.ended_at,
            error: self.error,
            replica: self.replica,
            lease_generation: self.lease_generation,
        })
    }
}

/// A row of `autoscale_decisions`: the decision is its JSON `document`; the columns the
/// lists filter on are authoritative for their fields.
#[derive(sqlx::FromRow)]
pub struct DecisionRow {
    id: i64,
    scale_set: String,
    at: DateTime<Utc>,
    operation: String,
    document: String,
}

impl IntoDomain for DecisionRow {
    type Domain = Decision;
    fn into_domain(self) -> Result<Decision> {
        let decision: Decision = from_json("autoscale decision", &self.document)?;
        let operation = serde_json::from_value(serde_json::Value::String(self.operation)).map_err(
            |source| StoreError::Corrupt {
                what: "autoscale decision operation",
                source,
            },
        )?;
        Ok(Decision {
            id: self.id,
            scale_set: self.scale_set,
            at: self.at,
            operation,
            ..decision
        })
    }
}

/// A row of `rollouts`: the rollout is its JSON `document`; the columns are authoritative
/// for their fields.
#[derive(sqlx::FromRow)]
pub struct RolloutRow {
    id: i64,
    scale_set: String,
    state: String,
    generation: i64,
    document: String,
}

impl IntoDomain for RolloutRow {
    type Domain = Rollout;
    fn into_domain(self) -> Result<Rollout> {
        let rollout: Rollout = from_json("rollout", &self.document)?;
        let state = RolloutState::parse(&self.state)
            .ok_or_else(|| corrupt("rollout state", format!("unknown state {:?}", self.state)))?;
        Ok(Rollout {
            id: self.id,
            scale_set: self.scale_set,
            state,
            generation: self.generation,
            ..rollout
        })
    }
}

/// A row of `metric_ticks`.
#[derive(sqlx::FromRow)]
pub struct TicksRow {
    scale_set: String,
    minute: DateTime<Utc>,
    ticks: String,
}

impl IntoDomain for TicksRow {
    type Domain = MinuteTicks;
    fn into_domain(self) -> Result<MinuteTicks> {
        Ok(MinuteTicks {
            scale_set: self.scale_set,
            minute: self.minute,
            ticks: self.ticks,
        })
    }
}

/// A row of `metric_rollups`.
#[derive(sqlx::FromRow)]
pub struct RollupRow {
    scale_set: String,
    metric: String,
    minute: DateTime<Utc>,
    average: f64,
    minimum: f64,
    maximum: f64,
    total: f64,
    count: i64,
}

impl IntoDomain for RollupRow {
    type Domain = Rollup;
    fn into_domain(self) -> Result<Rollup> {
        let metric = Metric::parse(&self.metric)
            .ok_or_else(|| corrupt("metric name", format!("unknown metric {:?}", self.metric)))?;
        Ok(Rollup {
            scale_set: self.scale_set,
            metric,
            point: Point {
                at: self.minute,
                average: self.average,
                minimum: self.minimum,
                maximum: self.maximum,
                total: self.total,
                count: to_u32("metric roll-up count", self.count)?,
            },
        })
    }
}

/// A row of `users`, with its password hash.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    name: String,
    source: String,
    password_hash: Option<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
    created_by: String,
}

impl IntoDomain for UserRow {
    type Domain = (User, Option<String>);
    fn into_domain(self) -> Result<(User, Option<String>)> {
        let source = UserSource::parse(&self.source)
            .ok_or_else(|| corrupt("user source", format!("unknown source {:?}", self.source)))?;
        let user = User {
            name: self.name,
            source,
            disabled: self.disabled,
            created_at: self.created_at,
            created_by: self.created_by,
        };
        Ok((user, self.password_hash))
    }
}

/// A row of `role_assignments`.
#[derive(sqlx::FromRow)]
pub struct RoleAssignmentRow {
    user_name: String,
    role: String,
    scale_set: String,
    created_at: DateTime<Utc>,
    created_by: String,
}

impl IntoDomain for RoleAssignmentRow {
    type Domain = RoleAssignment;
    fn into_domain(self) -> Result<RoleAssignment> {
        Ok(RoleAssignment {
            role: parse_enum::<Role>("role", &self.role)?,
            scale_set: scope_from_column(self.scale_set),
            user: self.user_name,
            created_at: self.created_at,
            created_by: self.created_by,
        })
    }
}

/// A row of `leases`.
#[derive(sqlx::FromRow)]
pub struct LeaseRow {
    name: String,
    holder: String,
    generation: i64,
    acquired_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl IntoDomain for LeaseRow {
    type Domain = Lease;
    fn into_domain(self) -> Result<Lease> {
        Ok(Lease {
            name: self.name,
            holder: self.holder,
            generation: self.generation,
            acquired_at: self.acquired_at,
            renewed_at: self.renewed_at,
            expires_at: self.expires_at,
        })
    }
}

/// A row of `replicas`.
#[derive(sqlx::FromRow)]
pub struct ReplicaRow {
    id: String,
    host: String,
    version: String,
    started_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
}

impl IntoDomain for ReplicaRow {
    type Domain = Replica;
    fn into_domain(self) -> Result<Replica> {
        Ok(Replica {
            id: self.id,
            host: self.host,
            version: self.version,
            started_at: self.started_at,
            heartbeat_at: self.heartbeat_at,
        })
    }
}

/// A replica's recorded frontend counters (`replicas.frontends`).
#[derive(sqlx::FromRow)]
pub struct FrontendCountersRow {
    id: String,
    frontends_at: DateTime<Utc>,
    frontends: String,
}

impl IntoDomain for FrontendCountersRow {
    type Domain = FrontendCounters;
    fn into_domain(self) -> Result<FrontendCounters> {
        Ok(FrontendCounters {
            replica: self.id,
            at: self.frontends_at,
            frontends: from_json("a replica's frontend counters", &self.frontends)?,
        })
    }
}

/// A row of `probe_results`.
#[derive(sqlx::FromRow)]
pub struct ProbeRow {
    instance_id: String,
    at: DateTime<Utc>,
    success: bool,
    latency_us: i64,
    detail: String,
}

impl IntoDomain for ProbeRow {
    type Domain = (String, ProbeResult);
    fn into_domain(self) -> Result<(String, ProbeResult)> {
        Ok((
            self.instance_id,
            ProbeResult {
                at: self.at,
                success: self.success,
                latency_us: u64::try_from(self.latency_us)
                    .map_err(|_| corrupt("a probe result", "negative latency"))?,
                detail: self.detail,
            },
        ))
    }
}

/// A probe result's column values, in the order of `PROBE_ROWS`.
pub(crate) struct ProbeValues<'a> {
    pub instance_id: &'a str,
    pub at: DateTime<Utc>,
    pub success: bool,
    pub latency_us: i64,
    pub detail: &'a str,
}

impl<'a> ProbeValues<'a> {
    pub(crate) fn of((id, r): &'a (String, ProbeResult)) -> Self {
        Self {
            instance_id: id,
            at: r.at,
            success: r.success,
            latency_us: i64::try_from(r.latency_us).unwrap_or(i64::MAX),
            detail: &r.detail,
        }
    }
}

/// A row of `host_maintenance`.
#[derive(sqlx::FromRow)]
pub struct HostMaintenanceRow {
    host: String,
    zone: String,
    fault_domain: i64,
    reason: String,
    started_at: DateTime<Utc>,
    started_by: String,
    instances_at_start: i64,
}

impl IntoDomain for HostMaintenanceRow {
    type Domain = HostMaintenance;
    fn into_domain(self) -> Result<HostMaintenance> {
        let reason = MaintenanceReason::parse(&self.reason).ok_or_else(|| {
            corrupt(
                "host maintenance reason",
                format!("unknown reason {:?}", self.reason),
            )
        })?;
        Ok(HostMaintenance {
            fault_domain: to_u32("host maintenance fault domain", self.fault_domain)?,
            instances_at_start: to_u32("host maintenance instance count", self.instances_at_start)?,
            reason,
            host: self.host,
            zone: self.zone,
            started_at: self.started_at,
            started_by: self.started_by,
        })
    }
}

/// A row of `api_tokens` (never its hash).
#[derive(sqlx::FromRow)]
pub struct TokenRow {
    id: i64,
    name: String,
    user_name: String,
    role: Option<String>,
    scale_set: Option<String>,
    prefix: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl IntoDomain for TokenRow {
    type Domain = ApiToken;
    fn into_domain(self) -> Result<ApiToken> {
        Ok(ApiToken {
            role: self
                .role
                .map(|r| parse_enum::<Role>("API token role", &r))
                .transpose()?,
            id: self.id,
            name: self.name,
            user: self.user_name,
            scale_set: self.scale_set,
            prefix: self.prefix,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A role assignment's scope as its column holds it: the set's name, or `''` for every
/// set (the key `(user_name, scale_set)` must hold for global assignments too, and NULLs
/// are distinct in a key).
pub(crate) fn scope_column(scale_set: Option<&str>) -> &str {
    scale_set.unwrap_or("")
}

fn scope_from_column(scale_set: String) -> Option<String> {
    Some(scale_set).filter(|s| !s.is_empty())
}

/// A row type and the domain record it decodes into.
pub trait IntoDomain: Sized {
    type Domain;
    fn into_domain(self) -> Result<Self::Domain>;
}

/// One-column rows: ids, generations, model versions, ordinals.
impl<T> IntoDomain for (T,) {
    type Domain = T;
    fn into_domain(self) -> Result<T> {
        Ok(self.0)
    }
}

/// Decodes every row, failing on the first corrupt one.
pub(crate) fn decode_all<R: IntoDomain>(rows: Vec<R>) -> Result<Vec<R::Domain>> {
    rows.into_iter().map(IntoDomain::into_domain).collect()
}

// ---------------------------------------------------------------------------------------
// Batch writes: the values bound, and the in-memory steps around the statements

/// An instance's column values, converted once for whichever statement binds them.
pub(crate) struct InstanceValues<'a> {
    pub id: &'a str,
    pub scale_set: &'a str,
    pub ordinal: i64,
    pub zone: &'a str,
    pub fault_domain: i64,
    pub model_version: i64,
    pub provisioning_state: &'static str,
    pub power_state: &'static str,
    pub health_state: &'static str,
    pub desired_power: &'static str,
    pub pending: Option<&'static str>,
    pub protect_from_scale_in: bool,
    pub protect_from_scale_set_actions: bool,
    pub address: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub health_changed_at: Option<DateTime<Utc>>,
    pub load_balancer_enabled: bool,
    pub repair_attempts: i64,
    pub retiring: bool,
    /// `None` while in service.
    pub lifecycle: Option<String>,
    pub busy_until: Option<DateTime<Utc>>,
    /// `None` unless in (or returning to) the warm pool.
    pub warm: Option<String>,
    pub generation: i64,
}

impl<'a> InstanceValues<'a> {
    pub(crate) fn of(i: &'a Instance) -> Self {
        Self {
            id: &i.id,
            scale_set: &i.scale_set,
            ordinal: to_i64(i.ordinal),
            zone: &i.zone,
            fault_domain: i64::from(i.fault_domain),
            model_version: i64::from(i.model_version),
            provisioning_state: i.provisioning_state.as_str(),
            power_state: i.power_state.as_str(),
            health_state: i.health_state.as_str(),
            desired_power: i.desired_power.as_str(),
            pending: i.pending.map(|p| p.as_str()),
            protect_from_scale_in: i.protect_from_scale_in,
            protect_from_scale_set_actions: i.protect_from_scale_set_actions,
            address: i.address.as_deref(),
            last_error: i.last_error.as_deref(),
            created_at: i.created_at,
            updated_at: i.updated_at,
            health_changed_at: i.health_changed_at,
            load_balancer_enabled: i.load_balancer_enabled,
            repair_attempts: i64::from(i.repair_attempts),
            retiring: i.retiring,
            lifecycle: (i.lifecycle != Lifecycle::default()).then(|| to_json(&i.lifecycle)),
            busy_until: i.busy_until,
            warm: (i.warm != Warm::default()).then(|| to_json(&i.warm)),
            generation: i.generation,
        }
    }
}

/// The records with their `scale_set` replaced.
pub(crate) fn renamed(instances: &[Instance], scale_set: &str) -> Vec<Instance> {
    instances
        .iter()
        .map(|i| Instance {
            scale_set: scale_set.to_owned(),
            ..i.clone()
        })
        .collect()
}

/// The records `insert_instances` returns: as given, under `scale_set`, generation 1.
pub(crate) fn inserted(
    scale_set: &str,
    instances: &[Instance],
    set_model_version: i64,
) -> Vec<Instance> {
    instances
        .iter()
        .map(|i| Instance {
            scale_set: scale_set.to_owned(),
            latest_model: i64::from(i.model_version) == set_model_version,
            created_at: micros(i.created_at),
            updated_at: micros(i.updated_at),
            generation: 1,
            ..i.clone()
        })
        .collect()
}

/// The `AlreadyExists` for a batch that hit a unique violation, naming the first id
/// repeated within the batch, else the first of `taken` (those found stored).
pub(crate) fn instance_exists(instances: &[Instance], taken: &[String]) -> StoreError {
    let mut seen = HashSet::new();
    let repeated = instances.iter().find(|i| !seen.insert(i.id.as_str()));
    let taken: HashSet<&str> = taken.iter().map(String::as_str).collect();
    let key = repeated
        .or_else(|| instances.iter().find(|i| taken.contains(i.id.as_str())))
        .or(instances.first())
        .map(|i| i.id.clone())
        .unwrap_or_default();
    StoreError::AlreadyExists {
        kind: Kind::Instance,
        key,
    }
}

/// The first record of each id in an update batch. Later repeats carry a generation the
/// first write supersedes, so they come out stale, as if the batch were written in order.
pub(crate) fn first_of_each_id(instances: &[Instance]) -> Vec<&Instance> {
    let mut seen = HashSet::new();
    instances
        .iter()
        .filter(|i| seen.insert(i.id.as_str()))
        .collect()
}

/// The distinct scale sets a batch touches.
pub(crate) fn sets_of(instances: &[Instance]) -> Vec<&str> {
    let mut sets: Vec<&str> = instances.iter().map(|i| i.scale_set.as_str()).collect();
    sets.sort_unstable();
    sets.dedup();
    sets
}

/// The outcome of a guarded batch update, in the batch's order: `written_ids` are those the
/// statements matched; `set_models` maps each touched set to its model version.
pub(crate) fn written(
    instances: &[Instance],
    written_ids: &HashSet<String>,
    set_models: &HashMap<&str, i64>,
) -> Written {
    let mut out = Written::default();
    let mut done = HashSet::new();
    for i in instances {
        if written_ids.contains(&i.id) && done.insert(i.id.as_str()) {
            out.written.push(Instance {
                latest_model: set_models.get(i.scale_set.as_str())
                    == Some(&i64::from(i.model_version)),
                created_at: micros(i.created_at),
                updated_at: micros(i.updated_at),
                generation: i.generation + 1,
                ..i.clone()
            });
        } else {
            out.stale.push(i.id.clone());
        }
    }
    out
}

/// Given the stored instances among the requested `ids`, fails with `NotFound` on the first
/// id missing, and returns those to mark (not yet deleting) as they will be stored.
pub(crate) fn to_mark(
    found: Vec<Instance>,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Instance>> {
    let present: HashSet<&str> = found.iter().map(|i| i.id.as_str()).collect();
    if let Some(missing) = ids.iter().find(|id| !present.contains(id.as_str())) {
        return Err(not_found(Kind::Instance, missing.clone()));
    }
    Ok(found
        .into_iter()
        .filter(|i| i.provisioning_state != ProvisioningState::Deleting)
        .map(|i| Instance {
            provisioning_state: ProvisioningState::Deleting,
            updated_at: micros(now),
            generation: i.generation + 1,
            ..i
        })
        .collect())
}

/// The set with its capacity lowered by `marked` (never below 0) at `now`.
pub(crate) fn decremented(set: &ScaleSet, marked: usize, now: DateTime<Utc>) -> ScaleSet {
    let mut next = set.clone();
    let marked = u32::try_from(marked).unwrap_or(u32::MAX);
    next.spec.capacity = set.spec.capacity.saturating_sub(marked);
    next.updated_at = now;
    next
}

/// The entry `append_activity` returns, as stored.
pub(crate) fn appended(
    id: i64,
    entry: &NewActivity,
    replica: Option<&str>,
    lease_generation: Option<i64>,
) -> Activity {
    let mut entry = entry.clone();
    entry.started_at = micros(entry.started_at);
    entry.ended_at = entry.ended_at.map(micros);
    Activity::from_new(id, entry, replica.map(str::to_string), lease_generation)
}

/// The decision `append_decision` stores and returns (before its id is known): `at` kept
/// to the microsecond, as its column.
pub(crate) fn decision_as_stored(decision: &Decision) -> Decision {
    Decision {
        id: 0,
        at: micros(decision.at),
        ..decision.clone()
    }
}

/// A rollout as stored: times to the microsecond, as the database keeps them.
pub(crate) fn rollout_as_stored(rollout: &Rollout) -> Rollout {
    Rollout {
        created_at: micros(rollout.created_at),
        updated_at: micros(rollout.updated_at),
        finished_at: rollout.finished_at.map(micros),
        ..rollout.clone()
    }
}

/// The user `create_user` returns, as stored.
pub(crate) fn user_as_stored(user: &User) -> User {
    User {
        created_at: micros(user.created_at),
        ..user.clone()
    }
}

/// The assignment `put_role_assignment` returns, as stored (`Some("")` reads back as the
/// global scope it is stored as).
pub(crate) fn assignment_as_stored(assignment: &RoleAssignment) -> RoleAssignment {
    RoleAssignment {
        scale_set: assignment.scale_set.clone().and_then(scope_from_column),
        created_at: micros(assignment.created_at),
        ..assignment.clone()
    }
}

/// The token `insert_token` returns, as stored with its new `id`.
pub(crate) fn token_as_stored(token: &ApiToken, id: i64) -> ApiToken {
    ApiToken {
        id,
        created_at: micros(token.created_at),
        expires_at: token.expires_at.map(micros),
        last_used_at: token.last_used_at.map(micros),
        revoked_at: token.revoked_at.map(micros),
        ..token.clone()
    }
}

/// The token already taken (by a hash collision, which a caller drawing 170 random bits
/// never meets): named by its prefix, never its hash.
pub(crate) fn token_exists(token: &ApiToken) -> StoreError {
    StoreError::AlreadyExists {
        kind: Kind::Token,
        key: token.prefix.clone(),
    }
}

/// The stored document of a decision.
pub(crate) fn decision_document(decision: &Decision) -> String {
    to_json(decision)
}

/// The roll-ups a batch writes: one per scale set, metric and minute (to the microsecond,
/// as stored) — the last given, as if the batch were written in order — sorted by that key
/// as the primary key orders it (names bytewise), so that concurrent writers, and a set's
/// deletion walking that index, lock shared rows in one order; and a PostgreSQL upsert
/// never meets one row twice in a statement, which it refuses.
pub(crate) fn last_of_each_minute(rows: &[Rollup]) -> Vec<&Rollup> {
    let mut order: Vec<(usize, &Rollup)> = rows.iter().enumerate().collect();
    order.sort_by_cached_key(|&(n, r)| {
        let key = (r.scale_set.as_str(), r.metric.as_str(), micros(r.point.at));
        (key, n)
    });
    let same = |a: &Rollup, b: &Rollup| {
        a.scale_set == b.scale_set
            && a.metric == b.metric
            && micros(a.point.at) == micros(b.point.at)
    };
    let mut out: Vec<&Rollup> = Vec::with_capacity(order.len());
    for (_, r) in order {
        match out.last_mut() {
            Some(last) if same(last, r) => *last = r,
            _ => out.push(r),
        }
    }
    out
}

/// A roll-up's column values, in the order of `ROLLUP_ROWS`.
pub(crate) struct RollupValues<'a> {
    pub scale_set: &'a str,
    pub metric: &'static str,
    pub minute: DateTime<Utc>,
    pub average: f64,
    pub minimum: f64,
    pub maximum: f64,
    pub total: f64,
    pub count: i64,
}

impl<'a> RollupValues<'a> {
    pub(crate) fn of(r: &'a Rollup) -> Self {
        Self {
            scale_set: &r.scale_set,
            metric: r.metric.as_str(),
            minute: r.point.at,
            average: r.point.average,
            minimum: r.point.minimum,
            maximum: r.point.maximum,
            total: r.point.total,
            count: i64::from(r.point.count),
        }
    }
}
