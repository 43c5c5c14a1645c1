//! Live pages: in the browser, a page subscribes to the server's event stream
//! (`/api/v1/events`, Server-Sent Events) and re-reads its data when something it shows
//! changed. Events only say *that* something changed: the page refetches its resource, at
//! most once per [`DEBOUNCE`], so a burst of events costs one read. `lagged` (events were
//! missed) triggers a refetch too. `EventSource` reconnects by itself after a server
//! restart, and the `ready` event it then receives also triggers a refetch.
//!
//! A page listens to the events that change what it shows: state changes ([`EVENTS`]),
//! new activity entries ([`ACTIVITY_EVENTS`]), both ([`EVENTS_WITH_ACTIVITY`]), or the
//! steps of rollouts ([`ROLLOUT_EVENTS`]).
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

/// The events after which an activity log re-reads its newest entries.
pub const ACTIVITY_EVENTS: &[&str] = &["ready", "lagged", "activity"];

/// [`EVENTS`] and [`ACTIVITY_EVENTS`]: for a page that shows states and the log's figures.
pub const EVENTS_WITH_ACTIVITY: &[&str] = &[
    "ready",
    "lagged",
    "scale_set_changed",
    "scale_set_removed",
    "instance_changed",
    "instance_removed",
    "activity",
];

/// The events after which a rollout's view re-reads the rollouts.
pub const ROLLOUT_EVENTS: &[&str] = &["ready", "lagged", "rollout_changed"];

/// How long a refetch waits for more events.
pub const DEBOUNCE_MS: u64 = 300;

/// The event stream's URL, for one scale set or for the whole fleet.
pub fn events_url(scale_set: Option<&str>) -> String {
    match scale_set {
        Some(name) => format!("/api/v1/events?scale_set={}", percent_encode(name)),
        None => "/api/v1/events".to_string(),
    }
}

/// Calls `refetch` (debounced) whenever the stream at `url()` says a scale set or an
/// instance changed ([`EVENTS`]), for as long as the calling component lives; a new URL
/// opens a new stream.
pub fn use_live_updates(
    url: impl Fn() -> String + Send + Sync + 'static,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) {
    use_live_events(url, EVENTS, refetch);
}

/// As [`use_live_updates`], after any of the events named in `kinds`.
pub fn use_live_events(
    url: impl Fn() -> String + Send + Sync + 'static,
    kinds: &'static [&'static str],
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if crate::app::hydrated() {
            browser::subscribe(url(), kinds, refetch.clone());
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, kinds, refetch);
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

    use super::DEBOUNCE_MS;

    /// Opens the stream, listening to `kinds`, and closes it when the current owner (the
    /// effect's run) is cleaned up.
    pub(super) fn subscribe(url: String, kinds: &[&str], refetch: impl Fn() + Clone + 'static) {
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
        for kind in kinds {
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

    #[test]
    fn activity_logs_hear_new_entries_and_reconnects() {
        for kind in ["activity", "ready", "lagged"] {
            assert!(ACTIVITY_EVENTS.contains(&kind), "{kind}");
        }
        assert!(!ACTIVITY_EVENTS.contains(&"instance_changed"));
    }

    #[test]
    fn rollout_views_hear_every_step_and_reconnects() {
        for kind in ["rollout_changed", "ready", "lagged"] {
            assert!(ROLLOUT_EVENTS.contains(&kind), "{kind}");
        }
        assert!(!EVENTS.contains(&"rollout_changed"));
    }

    #[test]
    fn events_with_activity_are_both_lists() {
        let mut both: Vec<&str> = EVENTS.iter().chain(ACTIVITY_EVENTS).copied().collect();
        both.sort();
        both.dedup();
        let mut listed = EVENTS_WITH_ACTIVITY.to_vec();
        listed.sort();
        assert_eq!(listed, both);
    }
}
