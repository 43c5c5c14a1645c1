//! The `retention` task: the activity log and model versions do not grow without bound.
//!
//! Every [`EVERY`] (and once shortly after start), entries of the activity log older than
//! `activity_retention` that have ended are deleted (deliveries still in progress stay),
//! and each scale set keeps its newest `model_versions_kept` model versions plus every
//! version still needed — the current one, any an instance is on, and the source and
//! target of an active rollout (what a rollback goes back to); the pure
//! [`flotilla_domain::rollout::prunable_versions`] decides. Metric roll-ups and autoscale
//! decisions have their own retention in the metrics collector.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_domain::rollout::prunable_versions;
use futures::future::BoxFuture;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tasks::{Control, Task};

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(600);
/// The first pass, shortly after start (not at once: starting is busy enough).
const FIRST: Duration = Duration::from_secs(30);

pub(crate) struct Retention {
    ctx: Context,
}

impl Retention {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

impl Task for Retention {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut delay = FIRST;
            while control.next(delay).await {
                delay = EVERY;
                control
                    .activation(async {
                        let (activity, versions) = once(&self.ctx).await?;
                        if activity + versions > 0 {
                            tracing::info!(
                                activity,
                                versions,
                                "retention: pruned old activity entries and model versions"
                            );
                        }
                        Ok::<_, crate::Error>(format!(
                            "{activity} activity entries and {versions} model version(s) pruned"
                        ))
                    })
                    .await;
            }
        })
    }
}

/// One pass; answers how many activity entries and model versions went.
pub(crate) async fn once(ctx: &Context) -> Result<(u64, u64)> {
    let store = &ctx.store;
    let retention =
        chrono::Duration::from_std(ctx.config.activity_retention).unwrap_or(chrono::Duration::MAX);
    let activity = match ctx.clock.now().checked_sub_signed(retention) {
        Some(before) => store
            .prune_activity(before)
            .await
            .map_err(Error::store("prune the activity log"))?,
        None => 0,
    };
    let mut versions = 0;
    let active = ctx.active_rollouts().await?;
    for set in store
        .list_scale_sets()
        .await
        .map_err(Error::store("list scale sets"))?
    {
        let name = set.name();
        let stored: Vec<u32> = store
            .list_model_versions(name)
            .await
            .map_err(Error::store("list model versions"))?
            .iter()
            .map(|v| v.version)
            .collect();
        if stored.len() <= ctx.config.model_versions_kept as usize {
            continue;
        }
        let mut in_use: BTreeSet<u32> = store
            .list_instances(name)
            .await
            .map_err(Error::store("list instances"))?
            .iter()
            .map(|i| i.model_version)
            .collect();
        for r in active.iter().filter(|r| r.scale_set == name) {
            in_use.extend([r.from_version, r.target_version]);
        }
        let prune = prunable_versions(
            &stored,
            set.model_version,
            &in_use,
            ctx.config.model_versions_kept,
        );
        if !prune.is_empty() {
            versions += store
                .delete_model_versions(name, &prune)
                .await
                .map_err(Error::store("delete model versions"))?;
        }
    }
    Ok((activity, versions))
}
