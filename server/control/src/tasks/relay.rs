//! The `relay` task (every replica): what one replica changes reaches every replica's event
//! stream, and a write through any replica wakes the leader's loop for the set.
//!
//! Outgoing, it batches the events this replica caused into notices of ids only — `s` a
//! scale set, `i` an instance, `a` an activity entry, `r` a rollout, `*` everything — and
//! sends them over the database's notifications (PostgreSQL `NOTIFY`, at most
//! [`MAX_NOTICE`] bytes each, the sender's replica id on the first line); the leader's
//! metrics collector sends `t` lines the same way ([`announce`]): each set's latest tick,
//! which the other replicas take into their live charts as they are. Incoming, it
//! re-reads each record named from the store and publishes it on the local bus, makes this
//! replica's load balancer frontends follow a changed set's spec, and wakes the set's loop
//! (which runs on the leader only). After a lost connection, or when it fell
//! behind, it re-reads everything. On SQLite there is one replica: it stays idle.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_domain::{ActivityFilter, Event, ScaleSetState};
use flotilla_store::{MAX_NOTICE, Notice, Notices};
use futures::future::BoxFuture;
use tokio::sync::broadcast::error::RecvError;

use crate::context::Context;
use crate::error::{Error, Result, chain};
use crate::tasks::metrics::Metrics;
use crate::tasks::reconciler::driver::SetWaker;
use crate::tasks::{Control, Scope, Task};

/// The notification channel replicas share.
pub(crate) const CHANNEL: &str = "flotilla_changes";

/// How long outgoing notices gather before they go (one `NOTIFY` for a burst).
const GATHER: Duration = Duration::from_millis(20);

pub(crate) struct Relay {
    ctx: Context,
    wake: SetWaker,
    replica: String,
    /// Where the leader's metric ticks go on a replica that does not collect.
    metrics: Arc<Metrics>,
}

/// Sends `lines` (notices of the relay's format) to the other replicas as `sender`.
pub(crate) async fn announce(ctx: &Context, sender: &str, lines: impl IntoIterator<Item = String>) {
    let mut gathered = Lines::default();
    for line in lines {
        gathered.push(line);
    }
    for payload in gathered.payloads(sender) {
        if let Err(e) = ctx.store.notify(CHANNEL, &payload).await {
            tracing::warn!(error = %chain(&e), "could not tell the other replicas of changes");
        }
    }
}

impl Relay {
    pub(crate) fn new(
        ctx: Context,
        wake: SetWaker,
        replica: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            ctx,
            wake,
            replica,
            metrics,
        }
    }

    /// Forwards this replica's events until told to stop.
    async fn send(&self, control: &Control) {
        let mut local = self.ctx.events.local();
        loop {
            let first = tokio::select! {
                () = control.stop().cancelled() => return,
                e = local.recv() => e,
            };
            let mut lines = Lines::default();
            match first {
                Ok(event) => lines.push(notice(&event)),
                Err(RecvError::Lagged(_)) => lines.push("*".into()),
                Err(RecvError::Closed) => return,
            }
            tokio::time::sleep(GATHER).await;
            loop {
                match local.try_recv() {
                    Ok(event) => lines.push(notice(&event)),
                    Err(broadcast_error) => {
                        use tokio::sync::broadcast::error::TryRecvError;
                        if matches!(broadcast_error, TryRecvError::Lagged(_)) {
                            lines.push("*".into());
                            continue;
                        }
                        break;
                    }
                }
            }
            announce(&self.ctx, &self.replica, lines.lines).await;
        }
    }

    /// Re-reads and publishes what the other replicas announce.
    async fn receive(&self, control: &Control, mut notices: Box<dyn Notices>) {
        loop {
            let notice = tokio::select! {
                () = control.stop().cancelled() => return,
                n = notices.next() => n,
            };
            match notice {
                Ok(Notice::Payload(payload)) => {
                    let mut lines = payload.lines();
                    if lines.next() == Some(self.replica.as_str()) {
                        continue;
                    }
                    let lines: Vec<&str> = lines.collect();
                    control.activation(self.apply(&lines)).await;
                }
                Ok(Notice::Resync) => control.activation(self.apply(&["*"])).await,
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "notifications failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn apply(&self, lines: &[&str]) -> Result<String> {
        for line in lines {
            // The leader's metric ticks: taken in as they are.
            if let Some(tick) = line.strip_prefix("t\t") {
                if !self.metrics.adopt(tick.split('\t')) {
                    tracing::warn!(notice = %line, "unreadable metric tick ignored");
                }
                continue;
            }
            let mut parts = line.split('\t');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("s"), Some(set), None) => self.set(set).await?,
                (Some("i"), Some(set), Some(id)) => self.instance(set, id).await?,
                (Some("a"), Some(id), None) => self.activity(id).await?,
                (Some("r"), Some(set), Some(id)) => self.rollout(set, id).await?,
                (Some("*"), None, None) => return self.everything().await,
                _ => tracing::warn!(notice = %line, "unknown change notice ignored"),
            }
        }
        Ok(format!("{} change(s) from other replicas", lines.len()))
    }

    async fn set(&self, name: &str) -> Result<()> {
        let found = self
            .ctx
            .store
            .get_scale_set(name)
            .await
            .map_err(Error::store("get scale set"))?;
        // This replica's frontends follow the spec, whoever stored it.
        match &found {
            Some(set) if set.state == ScaleSetState::Active => {
                let spec = set.spec.load_balancer.as_ref();
                self.ctx.balancer.follow(name, spec).await;
            }
            _ => self.ctx.balancer.remove_set(name).await,
        }
        self.ctx.events.publish_relayed(match found {
            Some(set) => Event::ScaleSetChanged {
                scale_set: Box::new(set.redacted()),
            },
            None => Event::ScaleSetRemoved { name: name.into() },
        });
        self.wake.wake(name);
        Ok(())
    }

    async fn instance(&self, set: &str, id: &str) -> Result<()> {
        let found = self
            .ctx
            .store
            .get_instance(id)
            .await
            .map_err(Error::store("get instance"))?;
        self.ctx.events.publish_relayed(match found {
            Some(instance) => Event::InstanceChanged {
                instance: Box::new(instance),
            },
            None => Event::InstanceRemoved {
                scale_set: set.into(),
                id: id.into(),
            },
        });
        self.wake.wake(set);
        Ok(())
    }

    async fn activity(&self, id: &str) -> Result<()> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(());
        };
        let filter = ActivityFilter {
            before_id: Some(id.saturating_add(1)),
            limit: 1,
            ..ActivityFilter::default()
        };
        let found = self
            .ctx
            .store
            .list_activity(&filter)
            .await
            .map_err(Error::store("list activity"))?;
        if let Some(activity) = found.into_iter().find(|a| a.id == id) {
            self.ctx.events.publish_relayed(Event::Activity {
                activity: Box::new(activity),
            });
        }
        Ok(())
    }

    async fn rollout(&self, set: &str, id: &str) -> Result<()> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(());
        };
        let found = self
            .ctx
            .store
            .get_rollout(set, id)
            .await
            .map_err(Error::store("get rollout"))?;
        if let Some(rollout) = found {
            self.ctx.events.publish_relayed(Event::RolloutChanged {
                rollout: Box::new(rollout.into()),
            });
        }
        Ok(())
    }

    /// Every set and instance, re-read and published; every set's loop woken.
    async fn everything(&self) -> Result<String> {
        let sets = self.ctx.read_sets().await?;
        for set in &sets {
            self.wake.wake(set.name());
            self.ctx.events.publish_relayed(Event::ScaleSetChanged {
                scale_set: Box::new(set.clone().redacted()),
            });
        }
        let instances = self
            .ctx
            .store
            .list_all_instances()
            .await
            .map_err(Error::store("list instances"))?;
        let n = instances.len();
        for instance in instances {
            self.ctx.events.publish_relayed(Event::InstanceChanged {
                instance: Box::new(instance),
            });
        }
        Ok(format!(
            "re-read everything: {} scale set(s), {n} instance(s)",
            sets.len()
        ))
    }
}

/// The notice of an event: the kind and ids of what changed.
fn notice(event: &Event) -> String {
    match event {
        Event::ScaleSetChanged { scale_set } => format!("s\t{}", scale_set.name()),
        Event::ScaleSetRemoved { name } => format!("s\t{name}"),
        Event::InstanceChanged { instance } => {
            format!("i\t{}\t{}", instance.scale_set, instance.id)
        }
        Event::InstanceRemoved { scale_set, id } => format!("i\t{scale_set}\t{id}"),
        // Other replicas re-read the instance (its lifecycle fields tell the same).
        Event::Lifecycle { notice } => format!("i\t{}\t{}", notice.scale_set, notice.instance),
        Event::Activity { activity } => format!("a\t{}", activity.id),
        Event::RolloutChanged { rollout } => {
            format!("r\t{}\t{}", rollout.rollout.scale_set, rollout.rollout.id)
        }
    }
}

/// Notices gathered for sending, each once, in order.
#[derive(Default)]
struct Lines {
    seen: HashSet<String>,
    lines: Vec<String>,
}

impl Lines {
    fn push(&mut self, line: String) {
        if self.seen.insert(line.clone()) {
            self.lines.push(line);
        }
    }

    /// The notices as payloads of at most `MAX_NOTICE` bytes, each starting with the
    /// sender's line. `*` alone replaces the others (everything is re-read anyway).
    fn payloads(self, sender: &str) -> Vec<String> {
        let lines = if self.seen.contains("*") {
            vec!["*".to_string()]
        } else {
            self.lines
        };
        let mut payloads = Vec::new();
        let mut current = sender.to_string();
        for line in lines {
            if current.len() + 1 + line.len() > MAX_NOTICE && current.len() > sender.len() {
                payloads.push(std::mem::replace(&mut current, sender.to_string()));
            }
            current.push('\n');
            current.push_str(&line);
        }
        if current.len() > sender.len() {
            payloads.push(current);
        }
        payloads
    }
}

impl Task for Relay {
    fn name(&self) -> &'static str {
        "relay"
    }

    fn scope(&self) -> Scope {
        Scope::Replica
    }

    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let notices = match self.ctx.store.listen(CHANNEL).await {
                Ok(Some(notices)) => notices,
                Ok(None) => {
                    control.doing("idle: one replica (the database has no notifications)");
                    control.stop().cancelled().await;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %chain(&e), "cannot listen for other replicas' changes");
                    control.report(|s| s.last_result = chain(&e));
                    control.stop().cancelled().await;
                    return;
                }
            };
            control.doing("relaying changes between replicas");
            tokio::join!(self.send(&control), self.receive(&control, notices));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_deduplicated_and_split_under_the_limit() {
        let mut lines = Lines::default();
        for n in 0..2_000 {
            lines.push(format!("i\tweb\tweb_{n}"));
        }
        lines.push("i\tweb\tweb_1".into());
        let payloads = lines.payloads("replica-1");
        assert!(payloads.len() > 2);
        let mut seen = 0;
        for p in &payloads {
            assert!(p.len() <= MAX_NOTICE, "{}", p.len());
            let mut l = p.lines();
            assert_eq!(l.next(), Some("replica-1"));
            seen += l.count();
        }
        assert_eq!(seen, 2_000);
    }

    #[test]
    fn everything_replaces_the_other_notices() {
        let mut lines = Lines::default();
        lines.push("s\tweb".into());
        lines.push("*".into());
        assert_eq!(lines.payloads("r"), ["r\n*"]);
    }
}
