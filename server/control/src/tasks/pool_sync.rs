//! The `pool_sync` task: keeps every load balancer pool equal to its set's serving
//! instances. It marks a set dirty on every instance event and, at most every [`SYNC`],
//! re-reads the dirty sets' instances and hands them to the load balancer; after the event
//! bus lagged (or when activated) it re-reads every set. A set being deleted loses its
//! frontends and pool at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_domain::{Event, ScaleSetState};
use futures::future::BoxFuture;
use tokio::sync::broadcast::error::RecvError;

use crate::context::Context;
use crate::tasks::{Control, Scope, Task};

/// How often dirty pools are re-read and handed to the load balancer.
const SYNC: Duration = Duration::from_millis(50);

pub(crate) struct PoolSync {
    ctx: Context,
}

impl PoolSync {
    pub(crate) fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Hands the load balancer the pools of `dirty` (all sets when `all`); the sets it
    /// could not read stay dirty.
    async fn sync(&self, dirty: &mut HashSet<String>, all: &mut bool) -> crate::Result<String> {
        let ctx = &self.ctx;
        if std::mem::take(all) {
            match ctx.read_sets().await {
                Ok(sets) => dirty.extend(sets.into_iter().map(|s| s.spec.name)),
                Err(e) => {
                    *all = true;
                    return Err(e);
                }
            }
        }
        let mut synced = 0;
        let mut failed = None;
        for set in std::mem::take(dirty) {
            match ctx.refresh_pool(&set).await {
                Ok(()) => synced += 1,
                Err(e) => {
                    dirty.insert(set);
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(format!("{synced} pool(s) synced")),
        }
    }
}

impl Task for PoolSync {
    fn name(&self) -> &'static str {
        "pool_sync"
    }

    /// Every replica serves load balancer frontends, each following the pools itself.
    fn scope(&self) -> Scope {
        Scope::Replica
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let ctx = &self.ctx;
            let mut events = ctx.events.subscribe();
            let mut dirty: HashSet<String> = HashSet::new();
            let mut all = true;
            let mut tick = tokio::time::interval(SYNC);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = control.stop().cancelled() => return,
                    () = control.activated() => all = true,
                    event = events.recv() => match event {
                        Ok(Event::InstanceChanged { instance }) => { dirty.insert(instance.scale_set); }
                        Ok(Event::InstanceRemoved { scale_set, .. }) => { dirty.insert(scale_set); }
                        Ok(Event::ScaleSetChanged { scale_set }) => {
                            if scale_set.state == ScaleSetState::Deleting {
                                ctx.balancer.remove_set(scale_set.name()).await;
                            }
                        }
                        Ok(Event::ScaleSetRemoved { name }) => ctx.balancer.remove_set(&name).await,
                        Ok(
                            Event::Activity { .. }
                            | Event::RolloutChanged { .. }
                            | Event::Lifecycle { .. },
                        ) => {}
                        Err(RecvError::Lagged(_)) => all = true,
                        Err(RecvError::Closed) => return,
                    },
                    _ = tick.tick() => {
                        if all || !dirty.is_empty() {
                            control.activation(self.sync(&mut dirty, &mut all)).await;
                        }
                    }
                }
            }
        })
    }
}
