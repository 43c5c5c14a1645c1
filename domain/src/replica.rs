//! Control-plane replicas and the leases they hold.
//!
//! Several `flotilla serve` processes share one database; the tasks that write act only
//! under a lease held in it. A lease has one holder, an expiry from the database's clock
//! and a generation — the fencing token — raised whenever the lease starts a new term (a
//! new holder, or the same one after it let the lease expire). Every write a task makes is
//! checked against that generation in the same transaction, so a holder that lost its lease
//! cannot write after its successor has begun.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The lease of the tasks that write for the whole fleet (the reconciler with its repairs,
/// the prober, the autoscaler, rollouts, webhooks, metric roll-ups, the orphan sweep and
/// retention). Per-shard leases will be named `shard/<n>`.
pub const LEADER_LEASE: &str = "leader";

/// One lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub name: String,
    /// The replica holding it (or the last one that did, once expired).
    pub holder: String,
    /// The fencing token: raised at every new term.
    pub generation: i64,
    /// When the current term began.
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    /// By the database's clock; after it, another replica may take the lease.
    pub expires_at: DateTime<Utc>,
}

/// A control-plane process, as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replica {
    /// Unique per process start.
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// Flotilla's version.
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat, by the database's clock.
    pub heartbeat_at: DateTime<Utc>,
}

/// What one replica's load balancer frontends have counted since it started, as it last
/// recorded them (the leader adds every replica's into each set's traffic metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendCounters {
    pub replica: String,
    /// When they were read, by the database's clock (rates are per this clock).
    pub at: DateTime<Utc>,
    pub frontends: Vec<crate::load_balancer::FrontendStats>,
}

/// A lease as a replica's entry shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldLease {
    pub name: String,
    pub generation: i64,
    pub expires_at: DateTime<Utc>,
}

/// A replica with the leases it holds (`GET /api/v1/control/replicas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaStatus {
    #[serde(flatten)]
    pub replica: Replica,
    /// The unexpired leases it holds, by name.
    pub leases: Vec<HeldLease>,
}

impl ReplicaStatus {
    /// Each replica with the leases it holds unexpired at `now`, oldest replica first.
    pub fn gather(replicas: Vec<Replica>, leases: &[Lease], now: DateTime<Utc>) -> Vec<Self> {
        let mut all: Vec<Self> = replicas
            .into_iter()
            .map(|replica| {
                let mut held: Vec<HeldLease> = leases
                    .iter()
                    .filter(|l| l.holder == replica.id && l.expires_at > now)
                    .map(|l| HeldLease {
                        name: l.name.clone(),
                        generation: l.generation,
                        expires_at: l.expires_at,
                    })
                    .collect();
                held.sort_by(|a, b| a.name.cmp(&b.name));
                Self {
                    replica,
                    leases: held,
                }
            })
            .collect();
        all.sort_by(|a, b| {
            (a.replica.started_at, &a.replica.id).cmp(&(b.replica.started_at, &b.replica.id))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn replica(id: &str, started: i64) -> Replica {
        Replica {
            id: id.into(),
            host: "h".into(),
            version: "0.1.0".into(),
            started_at: at(started),
            heartbeat_at: at(started),
        }
    }

    fn lease(name: &str, holder: &str, generation: i64, expires: i64) -> Lease {
        Lease {
            name: name.into(),
            holder: holder.into(),
            generation,
            acquired_at: at(0),
            renewed_at: at(0),
            expires_at: at(expires),
        }
    }

    #[test]
    fn a_replica_shows_only_the_unexpired_leases_it_holds() {
        let leases = [
            lease("leader", "b", 7, 20),
            lease("shard/1", "a", 2, 5),
            lease("shard/0", "b", 3, 30),
        ];
        let all = ReplicaStatus::gather(vec![replica("b", 2), replica("a", 1)], &leases, at(10));
        assert_eq!(all[0].replica.id, "a");
        assert!(all[0].leases.is_empty(), "a's lease expired at 5");
        let names: Vec<_> = all[1].leases.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["leader", "shard/0"]);
        assert_eq!(all[1].leases[0].generation, 7);
    }
}
