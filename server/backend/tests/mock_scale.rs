//! The mock at scale: 10,000 VMs in one process, each with its own listener, created from
//! 64 tasks at once. Prints the figures; asserts nothing about time (a benchmark's job).
//!
//! Its own test binary, so its thousands of binds do not race the port checks of
//! `mock.rs` (cargo runs test binaries one after another).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_backend::{Backend, VmSpec};
use flotilla_domain::{Model, PowerState};

const VMS: u64 = 10_000;
const TASKS: u64 = 64;

fn spec(ordinal: u64) -> VmSpec {
    VmSpec {
        id: format!("big_{ordinal}"),
        scale_set: "big".into(),
        zone: ["1", "2", "3"][(ordinal % 3) as usize].into(),
        fault_domain: ((ordinal / 3) % 3) as u32,
        model_version: 1,
        model: Model {
            image: "debian-12".into(),
            vcpus: 1,
            memory_mib: 512,
            disk_gib: 10,
            data_disks: Vec::new(),
            user_data: None,
            user_data_length: None,
            user_data_sha256: None,
            tags: Default::default(),
            app_port: 80,
        },
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_vms_each_serving_on_its_own_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = MockConfig::instant().with_state_dir(dir.path());
    let mock = Arc::new(Mock::open(config).await.expect("open"));

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let mock = mock.clone();
        tasks.spawn(async move {
            for ordinal in (task..VMS).step_by(TASKS as usize) {
                let vm = mock.create(&spec(ordinal)).await.expect("create");
                assert_eq!(vm.power_state, PowerState::Running);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("creating task");
    }
    let created = started.elapsed();

    let started = Instant::now();
    let all = mock.list(None).await.expect("list");
    let listed = started.elapsed();
    assert_eq!(all.len(), VMS as usize);
    assert!(all.iter().all(|vm| vm.power_state == PowerState::Running));
    let addresses: BTreeSet<&str> = all.iter().filter_map(|vm| vm.address.as_deref()).collect();
    assert_eq!(addresses.len(), VMS as usize, "every VM has its own port");
    assert_eq!(
        mock.list(Some("big")).await.expect("list").len(),
        VMS as usize
    );

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for vm in [&all[0], &all[all.len() / 2], &all[all.len() - 1]] {
        let address = vm.address.as_deref().expect("address");
        let body: serde_json::Value = client
            .get(format!("http://{address}/"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["instance_id"], vm.id.as_str());
    }

    println!(
        "created {VMS} VMs from {TASKS} tasks in {created:?} ({:.0}/s); list(None) took {listed:?}",
        VMS as f64 / created.as_secs_f64()
    );

    let started = Instant::now();
    mock.close().await;
    println!("closed {VMS} listeners in {:?}", started.elapsed());
    drop(mock);

    let started = Instant::now();
    let reopened = Mock::open(MockConfig::instant().with_state_dir(dir.path()))
        .await
        .expect("reopen");
    let running = reopened
        .list(None)
        .await
        .expect("list")
        .iter()
        .filter(|vm| vm.power_state == PowerState::Running)
        .count();
    println!(
        "reopened {VMS} VMs from the journal in {:?}",
        started.elapsed()
    );
    assert_eq!(running, VMS as usize);
    reopened.close().await;
}
