//! Live pages: in the browser, a page subscribes to the server's event stream
//! (`/api/v1/events`, Server-Sent Events) and re-reads its data when something it shows
//! changed. Events only say *that* something changed: the page refetches its resource, at
//! most once per [`DEBOUNCE`], so a burst of events costs one read. `lagged` (events were
//! missed) triggers a refetch too. `EventSource` reconnects by itself after a server
//! restart, and the `ready` event it then receives also triggers a refetch.
//!
//! On the server this does nothing: effects run only in the browser.

use flotilla_domain::url::percent_encode;
#[cfg(feature = "hydrate")]
use leptos::prelude::*;

/// The events after which a page re-reads its data.
pub const EVENTS: &[&str] = &[
    "ready",
    "lagged",
    "scale_set_changed",
    "scale_set_removed",
    "instance_changed",
    "instance_removed",
];

/// How long a refetch waits for more events.
pub const DEBOUNCE_MS: u64 = 300;

/// The event stream's URL, for one scale set or for the whole fleet.
pub fn events_url(scale_set: Option<&str>) -> String {
    match scale_set {
        Some(name) => format!("/api/v1/events?scale_set={}", percent_encode(name)),
        None => "/api/v1/events".to_string(),
    }
}

/// Calls `refetch` (debounced) whenever the stream at `url()` says something changed, for
/// as long as the calling component lives; a new URL opens a new stream.
pub fn use_live_updates(
    url: impl Fn() -> String + Send + Sync + 'static,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::subscribe(url(), refetch.clone()));
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, refetch);
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{Event, EventSource};

    use super::{DEBOUNCE_MS, EVENTS};

    /// Opens the stream and closes it when the current owner (the effect's run) is cleaned
    /// up.
    pub(super) fn subscribe(url: String, refetch: impl Fn() + Clone + 'static) {
        let source = match EventSource::new(&url) {
            Ok(source) => source,
            Err(e) => {
                leptos::logging::warn!("live updates unavailable for {url}: {e:?}");
                return;
            }
        };
        let scheduled = Rc::new(Cell::new(false));
        let on_event = Closure::<dyn Fn(Event)>::new(move |_: Event| {
            if scheduled.replace(true) {
                return;
            }
            let scheduled = scheduled.clone();
            let refetch = refetch.clone();
            set_timeout(
                move || {
                    scheduled.set(false);
                    refetch();
                },
                Duration::from_millis(DEBOUNCE_MS),
            );
        });
        for kind in EVENTS {
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        }
        let held = SendWrapper::new((source, on_event));
        on_cleanup(move || {
            let (source, _listener) = held.take();
            source.close();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_scale_set() {
        assert_eq!(events_url(None), "/api/v1/events");
        assert_eq!(events_url(Some("web-1")), "/api/v1/events?scale_set=web-1");
        assert_eq!(events_url(Some("a b")), "/api/v1/events?scale_set=a%20b");
    }

    #[test]
    fn missed_events_and_reconnects_refetch_too() {
        for kind in [
            "lagged",
            "ready",
            "instance_changed",
            "instance_removed",
            "scale_set_changed",
        ] {
            assert!(EVENTS.contains(&kind), "{kind}");
        }
        assert!(!EVENTS.contains(&"activity"));
    }
}
