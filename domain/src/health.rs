//! Health probing: the result of one probe and the state machine that turns a stream of
//! results into Azure's health states.
//!
//! Rules (Azure's Application Health extension and load balancer probes):
//! - a running instance starts `initializing`; `healthy_threshold` consecutive successes
//!   make it `healthy`, `unhealthy_threshold` consecutive failures make it `unhealthy`;
//! - a success resets the failure count and a failure the success count;
//! - during the grace period after the instance was created or started, failures do not
//!   count (an initializing instance stays initializing), successes do;
//! - an instance that is not running is `unknown` (set by the reconciler, not here).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::instance::HealthState;
use crate::scale_set::HealthProbe;

/// The outcome of one probe of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeResult {
    pub at: DateTime<Utc>,
    pub success: bool,
    /// Time from connect to the answer (or to the failure), in microseconds.
    pub latency_us: u64,
    /// `200 OK`, `503 Service Unavailable`, `connected`, `connection refused`,
    /// `timed out after 2 s`…
    pub detail: String,
}

/// Consecutive results of one instance and the state they have led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCounter {
    pub state: HealthState,
    successes: u32,
    failures: u32,
}

impl HealthCounter {
    pub fn new(state: HealthState) -> Self {
        Self {
            state,
            successes: 0,
            failures: 0,
        }
    }

    /// Folds one result in; answers the new state when it changed.
    pub fn observe(
        &mut self,
        success: bool,
        probe: &HealthProbe,
        in_grace: bool,
    ) -> Option<HealthState> {
        if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            if !(in_grace && self.state == HealthState::Initializing) {
                self.failures = self.failures.saturating_add(1);
            }
        }
        let next = if self.successes >= probe.healthy_threshold.max(1) {
            HealthState::Healthy
        } else if self.failures >= probe.unhealthy_threshold.max(1) {
            HealthState::Unhealthy
        } else {
            self.state
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

/// Whether `now` is still inside the probe's grace period after `running_since`.
pub fn in_grace(probe: &HealthProbe, running_since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - running_since < chrono::Duration::seconds(i64::from(probe.grace_period_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale_set::ProbeProtocol;
    use HealthState::*;

    fn probe(healthy: u32, unhealthy: u32) -> HealthProbe {
        HealthProbe {
            protocol: ProbeProtocol::Http,
            port: 80,
            path: "/health".into(),
            interval_seconds: 5,
            timeout_seconds: 2,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            grace_period_seconds: 30,
        }
    }

    /// Feeds results ('+' success, '-' failure) and collects the state after each.
    fn run(p: &HealthProbe, results: &str, grace: bool) -> Vec<HealthState> {
        let mut c = HealthCounter::new(Initializing);
        results
            .chars()
            .map(|r| {
                c.observe(r == '+', p, grace);
                c.state
            })
            .collect()
    }

    #[test]
    fn thresholds_flip_states() {
        let p = probe(2, 3);
        assert_eq!(
            run(&p, "+-+--+++---", false),
            [
                Initializing,
                Initializing,
                Initializing,
                Initializing,
                Initializing,
                Initializing,
                Healthy,
                Healthy,
                Healthy,
                Healthy,
                Unhealthy
            ]
        );
    }

    #[test]
    fn grace_ignores_failures_while_initializing_only() {
        let p = probe(1, 1);
        assert_eq!(run(&p, "---", true), [Initializing; 3]);
        assert_eq!(run(&p, "-+-", true), [Initializing, Healthy, Unhealthy]);
        assert_eq!(run(&p, "-", false), [Unhealthy]);
    }

    #[test]
    fn observe_reports_only_changes() {
        let p = probe(1, 2);
        let mut c = HealthCounter::new(Initializing);
        assert_eq!(c.observe(true, &p, false), Some(Healthy));
        assert_eq!(c.observe(true, &p, false), None);
        assert_eq!(c.observe(false, &p, false), None);
        assert_eq!(c.observe(false, &p, false), Some(Unhealthy));
    }
}
