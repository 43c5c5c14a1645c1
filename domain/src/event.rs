//! Events the control plane publishes: the portal's live updates and the SSE stream.

use serde::{Deserialize, Serialize};

use crate::activity::Activity;
use crate::instance::Instance;
use crate::lifecycle::Notice;
use crate::rollout::RolloutView;
use crate::scale_set::ScaleSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ScaleSetChanged {
        scale_set: Box<ScaleSet>,
    },
    ScaleSetRemoved {
        name: String,
    },
    InstanceChanged {
        instance: Box<Instance>,
    },
    InstanceRemoved {
        scale_set: String,
        id: String,
    },
    Activity {
        activity: Box<Activity>,
    },
    RolloutChanged {
        rollout: Box<RolloutView>,
    },
    /// An instance began waiting on a lifecycle hook, or a wait ended or was extended.
    Lifecycle {
        notice: Box<Notice>,
    },
}

impl Event {
    /// The SSE event name (`event:` line).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ScaleSetChanged { .. } => "scale_set_changed",
            Event::ScaleSetRemoved { .. } => "scale_set_removed",
            Event::InstanceChanged { .. } => "instance_changed",
            Event::InstanceRemoved { .. } => "instance_removed",
            Event::Activity { .. } => "activity",
            Event::RolloutChanged { .. } => "rollout_changed",
            Event::Lifecycle { .. } => "lifecycle",
        }
    }

    /// The scale set the event concerns, for per-set subscriptions.
    pub fn scale_set(&self) -> Option<&str> {
        match self {
            Event::ScaleSetChanged { scale_set } => Some(scale_set.name()),
            Event::ScaleSetRemoved { name } => Some(name),
            Event::InstanceChanged { instance } => Some(&instance.scale_set),
            Event::InstanceRemoved { scale_set, .. } => Some(scale_set),
            Event::Activity { activity } => activity.scale_set.as_deref(),
            Event::RolloutChanged { rollout } => Some(&rollout.rollout.scale_set),
            Event::Lifecycle { notice } => Some(&notice.scale_set),
        }
    }
}
