//! The event bus: a bounded broadcast of [`Event`]s. A slow subscriber misses events and is
//! told so (`Lagged`); it then re-reads state instead of the bus growing without bound.

use flotilla_domain::Event;
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: events are for whoever listens now.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
