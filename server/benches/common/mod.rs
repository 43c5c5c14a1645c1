//! What the fleet and prober benchmarks share: a started fleet on SQLite (a file in a
//! temporary directory) over a zero-latency mock, with the open-file limit raised for
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
    pub async fn start() -> anyhow::Result<Self> {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let dir = tempfile::tempdir()?;
        let store =
            flotilla_store::connect(&format!("sqlite:{}", dir.path().join("bench.db").display()))
                .await?;
        let mock = Arc::new(
            Mock::open(MockConfig::instant().with_state_dir(dir.path().join("mock"))).await?,
        );
        let fleet = Fleet::new(
            store,
            mock.clone(),
            Arc::new(SystemClock),
            FleetConfig::default(),
        );
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
