//! Load balancer statistics as the API, the portal and `/metrics` show them: snapshots of
//! the counters `flotilla-lb` keeps per frontend and per pool member.

use serde::{Deserialize, Serialize};

/// A latency histogram snapshot, Prometheus style.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Histogram {
    /// Upper bounds in milliseconds; `counts` has one more entry, for `+Inf`.
    pub bounds_ms: Vec<f64>,
    /// Cumulative counts (`le`), the last one being `+Inf` (= `count`).
    pub counts: Vec<u64>,
    pub sum_ms: f64,
    pub count: u64,
}

impl Histogram {
    /// What was recorded since `earlier` (a previous reading of the same histogram); the
    /// whole histogram when the bounds differ or the counts went back (a restart).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        if earlier.bounds_ms != self.bounds_ms
            || earlier.count > self.count
            || earlier.counts.len() != self.counts.len()
        {
            return self.clone();
        }
        Histogram {
            bounds_ms: self.bounds_ms.clone(),
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum_ms: self.sum_ms - earlier.sum_ms,
            count: self.count - earlier.count,
        }
    }

    /// Adds `other`'s counts (same bounds) to these.
    pub fn add(&mut self, other: &Histogram) {
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_ms += other.sum_ms;
        self.count += other.count;
    }

    /// Estimates the `q`-quantile (0..=1) in milliseconds by linear interpolation inside
    /// the bucket, like Prometheus' `histogram_quantile`; observations above the last bound
    /// are reported as that bound. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count as f64;
        let i = self.counts.iter().position(|&c| c as f64 >= rank)?;
        if i >= self.bounds_ms.len() {
            return self.bounds_ms.last().copied();
        }
        let (lo, below) = if i == 0 {
            (0.0, 0)
        } else {
            (self.bounds_ms[i - 1], self.counts[i - 1])
        };
        let hi = self.bounds_ms[i];
        let in_bucket = (self.counts[i] - below) as f64;
        if in_bucket == 0.0 {
            return Some(hi);
        }
        Some(lo + (hi - lo) * (rank - below as f64) / in_bucket)
    }
}

/// Responses by status class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusClasses {
    pub informational: u64,
    pub success: u64,
    pub redirection: u64,
    pub client_error: u64,
    pub server_error: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FrontendStats {
    pub scale_set: String,
    pub name: String,
    /// `http`, `https` or `tcp`.
    pub protocol: String,
    pub listen: String,
    /// HTTP requests (L7) or accepted connections (L4).
    pub requests: u64,
    /// L7 only, including the load balancer's own 502/503/504.
    pub responses: StatusClasses,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub active_connections: u64,
    /// L7: request received → response head sent. L4: accept → backend connected.
    pub latency: Histogram,
    /// Members of every pool the frontend routes to (default pool and rule pools).
    pub backends: Vec<BackendStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendStats {
    pub pool: String,
    pub id: String,
    pub addr: String,
    /// `serving`, `draining`, `disabled` or `removed` (gone from the pool, work in flight).
    pub state: String,
    /// Requests (L7) or connections (L4) sent to it, retries included.
    pub requests: u64,
    /// Responses it answered, by status class.
    pub responses: StatusClasses,
    /// Connect errors and timeouts, resets, non-HTTP answers, response timeouts.
    pub failures: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Requests or TCP connections in flight.
    pub active: u64,
    /// L7: request sent → response head received. L4: connect time.
    pub latency: Histogram,
}
