//! The libvirt backend against libvirt's test driver (in-process, no daemon, no QEMU): the
//! conformance suite on three simulated hosts, one per zone, then what only libvirt does —
//! host capacity, fault domains as hosts, the view rebuilt from libvirt's metadata by a new
//! backend, and an unreachable host named.
//!
//! Each `Libvirt::open` of a `test:///<file>` URI gets its own fresh copy of that host, so
//! every case starts from empty hosts (and the test driver's own `test` domain, which is
//! not Flotilla's and must be ignored).

use std::path::Path;
use std::sync::Arc;

use flotilla_backend::conformance::Subject;
use flotilla_backend::libvirt::{HostConfig, Libvirt, LibvirtConfig};
use flotilla_backend::{Backend, BackendError, VmSpec};
use flotilla_domain::{Model, PowerState};

/// A simulated host: a `<node>` with its own running domain `test`.
fn host_file(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(
        &path,
        "<node>\
           <cpu><mhz>2000</mhz><model>x86_64</model><active>8</active><max>8</max>\
           <nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads></cpu>\
           <memory>16777216</memory>\
           <domain type='test'><name>test</name><memory>65536</memory>\
             <os><type>hvm</type></os></domain>\
         </node>",
    )
    .expect("write the host file");
    format!("test://{}", path.display())
}

fn config(dir: &Path, hosts: &[(&str, &str, u32, u64)]) -> LibvirtConfig {
    LibvirtConfig {
        hosts: hosts
            .iter()
            .map(|(name, zone, vcpus, memory_mib)| HostConfig {
                uri: host_file(dir, name),
                zone: (*zone).into(),
                vcpus: *vcpus,
                memory_mib: *memory_mib,
                address: "127.0.0.1".into(),
            })
            .collect(),
        images: vec!["debian-12".into(), "tiny-http".into()],
        port_base: 20_000,
        shutdown_timeout_seconds: 5,
    }
}

async fn three_zones() -> (tempfile::TempDir, Libvirt) {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        ("a", "1", 64, 65_536),
        ("b", "2", 64, 65_536),
        ("c", "3", 64, 65_536),
    ];
    let backend = Libvirt::open(config(dir.path(), &hosts))
        .await
        .expect("open the test hosts");
    (dir, backend)
}

mod conformance_test_driver {
    use super::*;
    flotilla_backend::backend_conformance!(async {
        let (dir, backend) = three_zones().await;
        // The host files only need to exist while connecting.
        drop(dir);
        Subject::new(Arc::new(backend))
    });
}

fn model(vcpus: u32, memory_mib: u32) -> Model {
    Model {
        image: "tiny-http".into(),
        vcpus,
        memory_mib,
        disk_gib: 1,
        data_disks: Vec::new(),
        user_data: None,
        tags: Default::default(),
        app_port: 80,
    }
}

fn spec(id: &str, zone: &str, fault_domain: u32, model: Model) -> VmSpec {
    VmSpec {
        id: id.into(),
        scale_set: "web".into(),
        zone: zone.into(),
        fault_domain,
        model_version: 1,
        model,
    }
}

#[tokio::test]
async fn hosts_are_fault_domains_and_their_capacity_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        ("a", "1", 4, 4096),
        ("b", "1", 2, 2048),
        ("c", "2", 2, 2048),
    ];
    let backend = Libvirt::open(config(dir.path(), &hosts)).await.unwrap();
    let zones = backend.zones().await.unwrap();
    let offered: Vec<(&str, u32)> = zones
        .iter()
        .map(|z| (z.name.as_str(), z.fault_domains))
        .collect();
    assert_eq!(offered, [("1", 2), ("2", 1)]);

    // Fault domain 1 of zone 1 is host b: 2 vCPUs, 2 GiB.
    let first = backend
        .create(&spec("web_0", "1", 1, model(2, 1024)))
        .await
        .unwrap();
    assert_eq!((first.zone.as_str(), first.fault_domain), ("1", 1));
    assert_eq!(first.power_state, PowerState::Running);
    match backend.create(&spec("web_1", "1", 1, model(1, 512))).await {
        Err(BackendError::CreateFailed { id, reason }) => {
            assert_eq!(id, "web_1");
            assert!(reason.contains("out of capacity"), "{reason}");
            assert!(reason.contains("0 vCPUs"), "{reason}");
        }
        other => panic!("expected the host to be full, got {other:?}"),
    }
    // Nothing was left behind by the refusal.
    assert!(backend.get("web_1").await.unwrap().is_none());
    // A deallocated VM holds no reservation: the room is there again, and its start is
    // refused while another VM took it.
    backend.deallocate("web_0").await.unwrap();
    let second = backend
        .create(&spec("web_1", "1", 1, model(2, 1024)))
        .await
        .unwrap();
    assert_eq!(second.power_state, PowerState::Running);
    assert!(matches!(
        backend.start("web_0").await,
        Err(BackendError::CreateFailed { .. })
    ));
    assert_eq!(
        backend.get("web_0").await.unwrap().unwrap().power_state,
        PowerState::Deallocated
    );
    // Ports are unique on a host.
    let other = backend
        .create(&spec("web_2", "1", 0, model(1, 512)))
        .await
        .unwrap();
    assert_ne!(other.address, second.address);
}

#[tokio::test]
async fn a_new_backend_rebuilds_the_view_from_libvirt_alone() {
    // `test:///default` is shared by every connection of the process while one is open:
    // the second backend is a restarted control plane looking at the same host.
    let default = LibvirtConfig {
        hosts: vec![HostConfig {
            uri: "test:///default".into(),
            zone: "1".into(),
            vcpus: 8,
            memory_mib: 8192,
            address: "127.0.0.1".into(),
        }],
        images: vec!["tiny-http".into()],
        port_base: 20_000,
        shutdown_timeout_seconds: 5,
    };
    let first = Libvirt::open(default.clone()).await.unwrap();
    let created = first
        .create(&spec("web_0", "1", 0, model(1, 512)))
        .await
        .unwrap();
    first
        .create(&spec("web_1", "1", 0, model(1, 512)))
        .await
        .unwrap();
    first.stop("web_1", true).await.unwrap();

    let second = Libvirt::open(default).await.unwrap();
    let listed = second.list(None).await.unwrap();
    let seen: Vec<(&str, PowerState, Option<&str>)> = listed
        .iter()
        .map(|v| (v.id.as_str(), v.power_state, v.address.as_deref()))
        .collect();
    // The test driver's own `test` domain is not Flotilla's and is not listed.
    assert_eq!(
        seen,
        [
            ("web_0", PowerState::Running, created.address.as_deref()),
            ("web_1", PowerState::Stopped, None),
        ]
    );
    assert_eq!(
        (listed[1].scale_set.as_str(), listed[1].model_version),
        ("web", 1)
    );
    // It places around what it found: a new VM takes another port.
    let third = second
        .create(&spec("web_2", "1", 0, model(1, 512)))
        .await
        .unwrap();
    assert_ne!(third.address, created.address);
    let restarted = second.start("web_1").await.unwrap();
    assert_ne!(
        restarted.address, third.address,
        "each VM keeps its own port"
    );
    for id in ["web_0", "web_1", "web_2"] {
        second.delete(id, true).await.unwrap();
    }
    assert!(first.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_host_is_named() {
    let config = LibvirtConfig {
        hosts: vec![HostConfig {
            uri: "test:///nonexistent/host.xml".into(),
            zone: "1".into(),
            vcpus: 1,
            memory_mib: 1024,
            address: "127.0.0.1".into(),
        }],
        images: vec!["debian-12".into()],
        port_base: 20_000,
        shutdown_timeout_seconds: 5,
    };
    match Libvirt::open(config).await {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("test:///nonexistent/host.xml"), "{text}");
        }
        Ok(_) => panic!("a host that cannot be reached must fail the open"),
    }
}
