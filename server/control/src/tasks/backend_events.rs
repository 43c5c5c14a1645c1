//! The `backend_events` task: wakes the scale set of every VM the backend says changed (a
//! guest that powered itself off is seen at once, not at the next periodic pass); after
//! missed announcements, every set. A backend that announces nothing leaves it idle.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::broadcast::error::RecvError;

use crate::context::Context;
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::{Control, Task};

pub(crate) struct BackendEvents {
    ctx: Context,
    wake: SetWaker,
}

impl BackendEvents {
    pub(crate) fn new(ctx: Context, wake: SetWaker) -> Self {
        Self { ctx, wake }
    }

    /// Wakes the set of VM `id`; answers which.
    async fn follow(&self, id: &str) -> crate::Result<String> {
        let owner = self
            .ctx
            .store
            .get_instance(id)
            .await
            .map_err(crate::Error::store("get instance"))?;
        Ok(match owner {
            Some(instance) => {
                self.wake.wake(&instance.scale_set);
                format!("{id} changed: woke {}", instance.scale_set)
            }
            None => format!("{id} changed: not an instance of this fleet"),
        })
    }

    async fn wake_all(&self) -> crate::Result<String> {
        let sets = self.ctx.read_sets().await?;
        for set in &sets {
            self.wake.wake(set.name());
        }
        Ok(format!(
            "announcements missed: woke {} scale set(s)",
            sets.len()
        ))
    }
}

impl Task for BackendEvents {
    fn name(&self) -> &'static str {
        "backend_events"
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let Some(mut changes) = self.ctx.backend.state_changes() else {
                control.doing("idle: the backend announces no changes");
                control.stop().cancelled().await;
                return;
            };
            loop {
                let id = tokio::select! {
                    () = control.stop().cancelled() => return,
                    id = changes.recv() => id,
                };
                match id {
                    Ok(id) => control.activation(self.follow(&id)).await,
                    Err(RecvError::Lagged(_)) => control.activation(self.wake_all()).await,
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }
}
