//! The event bus: a bounded broadcast of [`Event`]s. A slow subscriber misses events and is
//! told so (`Lagged`); it then re-reads state instead of the bus growing without bound.
//!
//! Events this replica caused also go out on a second broadcast, [`EventBus::local`], which
//! the relay forwards to the other replicas; what the relay brings back from them is
//! published with [`EventBus::publish_relayed`], on the first broadcast only, so nothing
//! echoes between replicas.

use flotilla_domain::Event;
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    local: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        let (local, _) = broadcast::channel(capacity);
        Self { tx, local }
    }

    /// Publishes an event this replica caused.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: events are for whoever listens now.
        let _ = self.local.send(event.clone());
        let _ = self.tx.send(event);
    }

    /// Publishes an event another replica caused (the relay re-read it from the store).
    pub fn publish_relayed(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Every event, this replica's and the others'.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// The events this replica caused.
    pub fn local(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}
