//! The libvirt backend's define+start rate on libvirt's test driver (no daemon, no QEMU):
//! 1,000 VMs created one after another through the `Backend` trait — each an overlay in
//! the host's pool, a cloud-init seed ISO, a definition, a start — then listed, then deleted.
//! The test driver's pools hold 100 GiB each, so the VMs (1 GiB disks) are spread over
//! [`HOSTS`] simulated hosts of one zone. Prints figures, asserts nothing.
//!
//! Run: `cargo bench -p flotilla-backend --features libvirt --bench libvirt`.

use std::time::Instant;

use flotilla_backend::libvirt::{Libvirt, LibvirtConfig, simulated_host};
use flotilla_backend::{Backend, VmSpec};
use flotilla_domain::Model;

const VMS: usize = 1_000;
const HOSTS: usize = 12;
const INSTALLATION: &str = "bench";

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hosts: Vec<String> = (0..HOSTS)
        .map(|h| {
            let uri = simulated_host(
                &dir.path().join(format!("host-{h}.xml")),
                10_000,
                10_000_000,
                &["tiny-http"],
            )
            .expect("host file");
            format!("1={uri}")
        })
        .collect();
    let backend = Libvirt::open(
        LibvirtConfig {
            state_dir: Some(dir.path().join("state")),
            ..LibvirtConfig::from_hosts(&hosts.join(",")).expect("hosts")
        },
        INSTALLATION,
    )
    .await
    .expect("open the test host");
    let model = Model {
        image: "tiny-http".into(),
        vcpus: 1,
        memory_mib: 96,
        disk_gib: 1,
        data_disks: Vec::new(),
        user_data: None,
        user_data_length: None,
        user_data_sha256: None,
        tags: Default::default(),
        app_port: 80,
    };
    let started = Instant::now();
    for i in 0..VMS {
        let spec = VmSpec {
            id: format!("bench_{i}"),
            scale_set: "bench".into(),
            zone: "1".into(),
            fault_domain: (i % HOSTS) as u32,
            model_version: 1,
            model: model.clone(),
            lease_generation: None,
            closed_fault_domains: Vec::new(),
        };
        backend.create(&spec).await.expect("create");
    }
    let took = started.elapsed();
    println!(
        "define+start of {VMS} VMs on the test driver ({HOSTS} hosts): {:.2} s, {:.0} VMs/s, {:.2} ms per VM",
        took.as_secs_f64(),
        VMS as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / VMS as f64
    );
    let started = Instant::now();
    let listed = backend.list(Some("bench")).await.expect("list");
    println!(
        "list of {} VMs: {:.1} ms",
        listed.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    for vm in &listed {
        backend.delete(&vm.id, true).await.expect("delete");
    }
    println!(
        "delete of {} VMs: {:.2} s",
        listed.len(),
        started.elapsed().as_secs_f64()
    );
}
