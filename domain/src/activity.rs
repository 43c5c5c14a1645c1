//! The activity log: one append-only entry per operation, by people or by the control
//! loops — who, what, on which resource, when, how long, and the result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityResult {
    InProgress,
    Succeeded,
    Failed,
}

impl ActivityResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ActivityResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "in_progress" => Ok(Self::InProgress),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "unknown result {other:?}; expected in_progress, succeeded or failed"
            )),
        }
    }
}

/// An entry about to be written; the store assigns the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewActivity {
    /// Dotted operation name: `scale_set.create`, `instance.restart`, `reconcile`.
    pub operation: String,
    /// Who asked: `api`, `cli`, `portal`, or `system:<loop>`.
    pub actor: String,
    pub scale_set: Option<String>,
    /// The resource acted on (a scale set or instance id).
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub result: ActivityResult,
    pub error: Option<String>,
    /// Operation-specific facts (old and new capacity, created ids, the plan's notes…).
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    pub id: i64,
    pub operation: String,
    pub actor: String,
    pub scale_set: Option<String>,
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Milliseconds from start to end, once ended.
    pub duration_ms: Option<i64>,
    pub result: ActivityResult,
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    /// The control-plane replica that wrote the entry (`None` for entries older than
    /// replicas, and for `flotilla user …` run on the database directly).
    pub replica: Option<String>,
    /// The generation of the lease the writer held, when a task acting under the lease
    /// wrote it (`None` for what a request did, on whichever replica served it).
    pub lease_generation: Option<i64>,
}

impl Activity {
    /// The entry `new` as stored under `id`, written by `replica` under `lease_generation`.
    pub fn from_new(
        id: i64,
        new: NewActivity,
        replica: Option<String>,
        lease_generation: Option<i64>,
    ) -> Self {
        Self {
            id,
            replica,
            lease_generation,
            duration_ms: new
                .ended_at
                .map(|end| (end - new.started_at).num_milliseconds()),
            operation: new.operation,
            actor: new.actor,
            scale_set: new.scale_set,
            target: new.target,
            started_at: new.started_at,
            ended_at: new.ended_at,
            result: new.result,
            error: new.error,
            details: new.details,
        }
    }
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityFilter {
    pub scale_set: Option<String>,
    /// Only entries by this actor (a user, a token's name as `user/token`, `system:…`).
    pub actor: Option<String>,
    pub operation: Option<String>,
    pub result: Option<ActivityResult>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries with an id below this (the previous page's last id).
    pub before_id: Option<i64>,
    /// At most this many (1–1,000).
    pub limit: u32,
}
