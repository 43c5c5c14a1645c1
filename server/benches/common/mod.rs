//! What the fleet and prober benchmarks share: a started fleet on SQLite (a file in a
//! temporary directory) over a zero-latency mock (or one configured otherwise), with the open-file limit raised for
//! thousands of mock VMs serving HTTP.

use std::sync::Arc;

use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_control::{Fleet, FleetConfig, SystemClock};

pub struct Bench {
    pub fleet: Fleet,
    pub mock: Arc<Mock>,
    _dir: tempfile::TempDir,
}

impl Bench {
    #[allow(dead_code)] // The warm pool benchmark starts on a mock of its own.
    pub async fn start(config: FleetConfig) -> anyhow::Result<Self> {
        Self::start_on(config, MockConfig::instant()).await
    }

    /// As [`Bench::start`], over a mock configured as `mock` (its state kept in the
    /// temporary directory).
    pub async fn start_on(config: FleetConfig, mock: MockConfig) -> anyhow::Result<Self> {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let dir = tempfile::tempdir()?;
        let store =
            flotilla_store::connect(&format!("sqlite:{}", dir.path().join("bench.db").display()))
                .await?;
        let mock = Arc::new(Mock::open(mock.with_state_dir(dir.path().join("mock"))).await?);
        let fleet = Fleet::new(store, mock.clone(), Arc::new(SystemClock), config);
        fleet.start().await?;
        Ok(Self {
            fleet,
            mock,
            _dir: dir,
        })
    }

    pub async fn stop(self) {
        self.fleet.shutdown().await;
        self.mock.shutdown();
    }
}

/// User + system CPU time of this process, from /proc/self/stat (clock ticks of 10 ms).
#[allow(dead_code)] // Not every benchmark including this module reads the CPU time.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
