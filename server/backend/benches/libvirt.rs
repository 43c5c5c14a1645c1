//! The libvirt backend's define+start rate on libvirt's test driver (no daemon, no QEMU):
//! 1,000 VMs created one after another through the `Backend` trait on one simulated host,
//! then listed, then deleted. Prints figures, asserts nothing.
//!
//! Run: `cargo bench -p flotilla-backend --features libvirt --bench libvirt`.

use std::time::Instant;

use flotilla_backend::libvirt::{HostConfig, Libvirt, LibvirtConfig};
use flotilla_backend::{Backend, VmSpec};
use flotilla_domain::Model;

const VMS: usize = 1_000;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("host.xml");
    std::fs::write(&host, "<node><memory>1073741824</memory></node>").expect("host file");
    let backend = Libvirt::open(LibvirtConfig {
        hosts: vec![HostConfig {
            uri: format!("test://{}", host.display()),
            zone: "1".into(),
            vcpus: 10_000,
            memory_mib: 10_000_000,
            address: "127.0.0.1".into(),
        }],
        images: vec!["tiny-http".into()],
        port_base: 20_000,
        shutdown_timeout_seconds: 30,
    })
    .await
    .expect("open the test host");
    let model = Model {
        image: "tiny-http".into(),
        vcpus: 1,
        memory_mib: 96,
        disk_gib: 1,
        data_disks: Vec::new(),
        user_data: None,
        tags: Default::default(),
        app_port: 80,
    };
    let started = Instant::now();
    for i in 0..VMS {
        let spec = VmSpec {
            id: format!("bench_{i}"),
            scale_set: "bench".into(),
            zone: "1".into(),
            fault_domain: 0,
            model_version: 1,
            model: model.clone(),
        };
        backend.create(&spec).await.expect("create");
    }
    let took = started.elapsed();
    println!(
        "define+start of {VMS} VMs on the test driver: {:.2} s, {:.0} VMs/s, {:.2} ms per VM",
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
