//! Counters (atomics, updated on the hot path without locks), their serializable
//! snapshots, and the Prometheus text rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use flotilla_domain::load_balancer::{BackendStats, FrontendStats, Histogram, StatusClasses};

/// Upper bounds of the latency buckets, in milliseconds (a `+Inf` bucket follows).
pub const BOUNDS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// A latency histogram updated with relaxed atomics; per-bucket (not cumulative) counts.
#[derive(Debug, Default)]
pub(crate) struct AtomicHistogram {
    buckets: [AtomicU64; BOUNDS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let ms = us as f64 / 1000.0;
        let i = BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        let mut counts = Vec::with_capacity(self.buckets.len());
        let mut total = 0;
        for b in &self.buckets {
            total += b.load(Relaxed);
            counts.push(total);
        }
        Histogram {
            bounds_ms: BOUNDS_MS.to_vec(),
            counts,
            sum_ms: self.sum_us.load(Relaxed) as f64 / 1000.0,
            count: total,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct AtomicStatusClasses([AtomicU64; 5]);

impl AtomicStatusClasses {
    pub(crate) fn record(&self, status: u16) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.0[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatusClasses {
        let g = |i: usize| self.0[i].load(Relaxed);
        StatusClasses {
            informational: g(0),
            success: g(1),
            redirection: g(2),
            client_error: g(3),
            server_error: g(4),
        }
    }
}

/// Counters of one frontend. Bytes are body bytes (L7) or stream bytes (L4):
/// `bytes_in` flows from clients to backends, `bytes_out` from backends to clients.
#[derive(Debug, Default)]
pub(crate) struct FrontendCounters {
    pub requests: AtomicU64,
    pub responses: AtomicStatusClasses,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub active_connections: AtomicU64,
    pub latency: AtomicHistogram,
    /// Times the listener stopped accepting at `max_connections`.
    pub connection_limit_waits: AtomicU64,
    /// Requests (L7) or connections (L4) turned away because every member was at
    /// `max_connections_per_member`.
    pub member_cap_refusals: AtomicU64,
    /// Requests refused with 400 by the proxy (framing, path; those hyper refuses while
    /// parsing are not seen).
    pub refused_requests: AtomicU64,
}

impl FrontendCounters {
    pub(crate) fn refusals(&self) -> Refusals {
        Refusals {
            connection_limit_waits: self.connection_limit_waits.load(Relaxed),
            member_cap_refusals: self.member_cap_refusals.load(Relaxed),
            refused_requests: self.refused_requests.load(Relaxed),
        }
    }
}

/// Counters of a frontend's limits and refusals, exported in Prometheus only (the
/// snapshot types belong to `flotilla-domain`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Refusals {
    pub connection_limit_waits: u64,
    pub member_cap_refusals: u64,
    pub refused_requests: u64,
}

/// Counters of one pool member, shared by every frontend routing to its pool.
#[derive(Debug, Default)]
pub(crate) struct BackendCounters {
    pub requests: AtomicU64,
    pub responses: AtomicStatusClasses,
    pub failures: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub latency: AtomicHistogram,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn classes(s: &StatusClasses) -> [u64; 5] {
    [
        s.informational,
        s.success,
        s.redirection,
        s.client_error,
        s.server_error,
    ]
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, count) in h.bounds_ms.iter().zip(&h.counts) {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {count}",
            bound / 1000.0
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_ms / 1000.0);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

type Get<T> = fn(&T) -> u64;

/// One Prometheus series per item for each `(name, kind, help, value)`.
fn series<T>(
    out: &mut String,
    items: &[T],
    labels: &[String],
    table: &[(&str, &str, &str, Get<T>)],
) {
    for (name, kind, help, get) in table {
        header(out, name, kind, help);
        for (item, l) in items.iter().zip(labels) {
            let _ = writeln!(out, "{name}{{{l}}} {}", get(item));
        }
    }
}

/// Renders frontends (`refusals` in the same order), then every backend once (a pool
/// routed by two frontends is not repeated).
pub(crate) fn render(
    out: &mut String,
    frontends: &[FrontendStats],
    refusals: &[Refusals],
    backends: &[BackendStats],
) {
    let fl: Vec<String> = frontends
        .iter()
        .map(|f| {
            format!(
                "scale_set=\"{}\",frontend=\"{}\",protocol=\"{}\"",
                escape(&f.scale_set),
                escape(&f.name),
                f.protocol
            )
        })
        .collect();
    let bl: Vec<String> = backends
        .iter()
        .map(|b| {
            format!(
                "pool=\"{}\",backend=\"{}\",addr=\"{}\"",
                escape(&b.pool),
                escape(&b.id),
                b.addr
            )
        })
        .collect();

    series(
        out,
        frontends,
        &fl,
        &[
            (
                "flotilla_lb_frontend_requests_total",
                "counter",
                "HTTP requests or TCP connections accepted.",
                |f| f.requests,
            ),
            (
                "flotilla_lb_frontend_bytes_in_total",
                "counter",
                "Bytes from clients towards backends.",
                |f| f.bytes_in,
            ),
            (
                "flotilla_lb_frontend_bytes_out_total",
                "counter",
                "Bytes from backends towards clients.",
                |f| f.bytes_out,
            ),
            (
                "flotilla_lb_frontend_active_connections",
                "gauge",
                "Client connections open.",
                |f| f.active_connections,
            ),
        ],
    );
    series(
        out,
        refusals,
        &fl,
        &[
            (
                "flotilla_lb_frontend_connection_limit_waits_total",
                "counter",
                "Times the listener stopped accepting at max_connections.",
                |r| r.connection_limit_waits,
            ),
            (
                "flotilla_lb_frontend_member_cap_refusals_total",
                "counter",
                "Requests (503) or TCP connections (closed) turned away with every member at max_connections_per_member.",
                |r| r.member_cap_refusals,
            ),
            (
                "flotilla_lb_frontend_refused_requests_total",
                "counter",
                "Requests refused with 400 for ambiguous framing or an unsafe path.",
                |r| r.refused_requests,
            ),
        ],
    );
    let name = "flotilla_lb_frontend_responses_total";
    header(
        out,
        name,
        "counter",
        "Responses sent to clients by status class.",
    );
    for (f, l) in frontends.iter().zip(&fl) {
        for (class, n) in CLASSES.iter().zip(classes(&f.responses)) {
            let _ = writeln!(out, "{name}{{{l},class=\"{class}\"}} {n}");
        }
    }
    let name = "flotilla_lb_frontend_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Request received to response head sent (L7), accept to backend connected (L4).",
    );
    for (f, l) in frontends.iter().zip(&fl) {
        histogram(out, name, l, &f.latency);
    }

    // Members are left out entirely when none are given (`--metrics-per-instance` off).
    if backends.is_empty() {
        return;
    }
    series(
        out,
        backends,
        &bl,
        &[
            (
                "flotilla_lb_backend_requests_total",
                "counter",
                "Requests or connections sent to the member, retries included.",
                |b| b.requests,
            ),
            (
                "flotilla_lb_backend_failures_total",
                "counter",
                "Connect errors, timeouts, resets and invalid responses.",
                |b| b.failures,
            ),
            (
                "flotilla_lb_backend_bytes_in_total",
                "counter",
                "Bytes sent to the member.",
                |b| b.bytes_in,
            ),
            (
                "flotilla_lb_backend_bytes_out_total",
                "counter",
                "Bytes received from the member.",
                |b| b.bytes_out,
            ),
            (
                "flotilla_lb_backend_active",
                "gauge",
                "Requests or TCP connections in flight.",
                |b| b.active,
            ),
        ],
    );
    let name = "flotilla_lb_backend_responses_total";
    header(
        out,
        name,
        "counter",
        "Responses from the member by status class.",
    );
    for (b, l) in backends.iter().zip(&bl) {
        for (class, n) in CLASSES.iter().zip(classes(&b.responses)) {
            let _ = writeln!(out, "{name}{{{l},class=\"{class}\"}} {n}");
        }
    }
    let name = "flotilla_lb_backend_state";
    header(out, name, "gauge", "1 for the member's current state.");
    for (b, l) in backends.iter().zip(&bl) {
        let _ = writeln!(out, "{name}{{{l},state=\"{}\"}} 1", b.state);
    }
    let name = "flotilla_lb_backend_response_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Request sent to response head received (L7), connect time (L4).",
    );
    for (b, l) in backends.iter().zip(&bl) {
        histogram(out, name, l, &b.latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_estimates_quantiles() {
        let h = AtomicHistogram::default();
        for ms in [0.5, 1.5, 1.5, 3.0, 20_000.0] {
            h.record(Duration::from_micros((ms * 1000.0) as u64));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(&s.counts[..4], &[1, 3, 4, 4]);
        assert_eq!(*s.counts.last().unwrap(), 5);
        assert!((s.sum_ms - 20_006.5).abs() < 1e-6);
        // rank 2.5 falls in (1, 2], the second bucket holding ranks 1..3.
        assert_eq!(s.quantile(0.5), Some(1.75));
        assert_eq!(s.quantile(1.0), Some(10_000.0));
        assert_eq!(AtomicHistogram::default().snapshot().quantile(0.5), None);
    }

    #[test]
    fn status_classes() {
        let c = AtomicStatusClasses::default();
        for s in [101, 200, 204, 301, 404, 502, 999] {
            c.record(s);
        }
        let s = c.snapshot();
        assert_eq!(
            (
                s.informational,
                s.success,
                s.redirection,
                s.client_error,
                s.server_error
            ),
            (1, 2, 1, 1, 2)
        );
    }
}
