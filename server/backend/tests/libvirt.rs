//! The libvirt backend against libvirt's test driver (in-process, no daemon, no QEMU): the
//! conformance suite on three simulated hosts, one per zone, then what only libvirt does —
//! host capacity, fault domains as hosts, the view rebuilt from libvirt's metadata by a new
//! backend, parked (paused, saved) VMs read back from libvirt, and an unreachable host
//! named and worked around. With `FLOTILLA_TEST_REAL_VMS=1` (`make test-vm`), a host served
//! by a libvirtd of the test's own is cut off, crashes and comes back.
//!
//! Each `Libvirt::open` of a `test:///<file>` URI gets its own fresh copy of that host, so
//! every case starts from empty hosts (and the test driver's own `test` domain, which is
//! not Flotilla's and must be ignored).

use std::path::Path;
use std::sync::Arc;

use flotilla_backend::conformance::Subject;
use flotilla_backend::libvirt::testing::{Cable, Daemon, RecordingGuests};
use flotilla_backend::libvirt::{HostConfig, Libvirt, LibvirtConfig, simulated_host};
use flotilla_backend::{Backend, BackendError, VmSpec};
use flotilla_domain::{Model, PowerState, WarmPoolState};

/// The installation the backends under test act for.
const INSTALLATION: &str = "test";

fn config(dir: &Path, hosts: &[(&str, &str, u32, u64)]) -> LibvirtConfig {
    LibvirtConfig {
        hosts: hosts
            .iter()
            .map(|(name, zone, vcpus, memory_mib)| HostConfig {
                uri: simulated_host(
                    &dir.join(format!("{name}.xml")),
                    64,
                    131_072,
                    &["debian-12", "tiny-http"],
                )
                .expect("write the host file"),
                zone: (*zone).into(),
                name: None,
                vcpus: Some(*vcpus),
                memory_mib: Some(*memory_mib),
                address: "127.0.0.1".into(),
                pool: "default".into(),
                accelerate: false,
            })
            .collect(),
        port_base: 20_000,
        shutdown_timeout_seconds: 5,
        state_dir: Some(dir.join("state")),
        kernel_cmdline: "console=ttyS0".into(),
    }
}

mod conformance_test_driver {
    use super::*;
    flotilla_backend::backend_conformance!(async {
        // The seeds live in the state directory while the case runs: cargo's scratch
        // directory for tests, one per case (each deletes its VMs, and with them their files).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("libvirt-conformance")
            .join(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = [
            ("a", "1", 64, 65_536),
            ("b", "2", 64, 65_536),
            ("c", "3", 64, 65_536),
        ];
        let backend = Libvirt::open(config(&dir, &hosts), INSTALLATION)
            .await
            .expect("open the test hosts");
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
        user_data_length: None,
        user_data_sha256: None,
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
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

#[tokio::test]
async fn hosts_are_fault_domains_and_placement_honours_their_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        ("a", "1", 4, 4096),
        ("b", "1", 2, 2048),
        ("c", "2", 2, 2048),
    ];
    let backend = Libvirt::open(config(dir.path(), &hosts), INSTALLATION)
        .await
        .unwrap();
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
    // Host b is full: the next VM asking for it goes to the zone's other host.
    let moved = backend
        .create(&spec("web_1", "1", 1, model(4, 1024)))
        .await
        .unwrap();
    assert_eq!(moved.fault_domain, 0, "{moved:?}");
    // The zone is full: the refusal names each host's free capacity, and nothing is left.
    match backend.create(&spec("web_2", "1", 1, model(1, 512))).await {
        Err(BackendError::CreateFailed { id, reason }) => {
            assert_eq!(id, "web_2");
            assert!(reason.contains("zone 1 is out of capacity"), "{reason}");
            assert!(
                reason.contains("host 1-fd1 (test://")
                    && reason.contains("b.xml) has 0 vCPUs and 1024 MiB free"),
                "{reason}"
            );
            assert!(
                reason.contains("a.xml) has 0 vCPUs and 3072 MiB free"),
                "{reason}"
            );
        }
        other => panic!("expected the zone to be full, got {other:?}"),
    }
    assert!(backend.get("web_2").await.unwrap().is_none());
    let hosts = backend.hosts().await.unwrap();
    let used: Vec<(u32, u32, u64, u32)> = hosts
        .iter()
        .map(|h| (h.fault_domain, h.used_vcpus, h.used_memory_mib, h.vms))
        .collect();
    assert_eq!(used, [(0, 4, 1024, 1), (1, 2, 1024, 1), (0, 0, 0, 0)]);
    assert_eq!(hosts[0].images, ["debian-12", "tiny-http"]);
    // A deallocated VM holds no reservation: the room is there again, and its start is
    // refused while another VM took it.
    backend.deallocate("web_0").await.unwrap();
    let second = backend
        .create(&spec("web_2", "1", 1, model(2, 1024)))
        .await
        .unwrap();
    assert_eq!(
        (second.power_state, second.fault_domain),
        (PowerState::Running, 1)
    );
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
        .create(&spec("web_3", "2", 0, model(1, 512)))
        .await
        .unwrap();
    assert_ne!(other.address, second.address);
}

#[tokio::test]
async fn placement_never_chooses_a_closed_host() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        ("a", "1", 2, 2048),
        ("b", "1", 8, 8192),
        ("c", "1", 4, 4096),
    ];
    let mut config = config(dir.path(), &hosts);
    config.hosts[1].name = Some("big".into());
    let backend = Libvirt::open(config, INSTALLATION).await.unwrap();
    let listed = backend.hosts().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["1-fd0", "big", "1-fd2"]);
    assert!(
        listed[1]
            .uri
            .as_deref()
            .is_some_and(|u| u.ends_with("/b.xml")),
        "{listed:?}"
    );
    let closed = |id: &str, fault_domain: u32, model: Model, shut: &[u32]| {
        let mut spec = spec(id, "1", fault_domain, model);
        spec.closed_fault_domains = shut.to_vec();
        spec
    };

    // Its own host closed, the VM goes to the roomiest open one…
    let vm = backend
        .create(&closed("web_0", 0, model(1, 512), &[0]))
        .await
        .unwrap();
    assert_eq!(vm.fault_domain, 1, "{vm:?}");
    // … never to a closed one, however roomy…
    let vm = backend
        .create(&closed("web_1", 0, model(1, 512), &[0, 1]))
        .await
        .unwrap();
    assert_eq!(vm.fault_domain, 2, "{vm:?}");
    // … and not to its own host either when that is closed, though it has room.
    let vm = backend
        .create(&closed("web_2", 1, model(1, 512), &[1]))
        .await
        .unwrap();
    assert_eq!(vm.fault_domain, 2, "{vm:?}");

    // Room only on a closed host: refused as a full zone is, naming the closed host.
    let big = || model(4, 2048);
    match backend.create(&closed("web_3", 0, big(), &[1])).await {
        Err(BackendError::CreateFailed { id, reason }) => {
            assert_eq!(id, "web_3");
            assert!(reason.contains("zone 1 is out of capacity"), "{reason}");
            assert!(
                reason.contains("host big (") && reason.contains("b.xml) is closed"),
                "{reason}"
            );
            assert!(
                reason.contains("a.xml) has 2 vCPUs and 2048 MiB free"),
                "{reason}"
            );
            assert!(
                reason.contains("c.xml) has 2 vCPUs and 3072 MiB free"),
                "{reason}"
            );
        }
        other => panic!("expected the zone to be full, got {other:?}"),
    }
    assert!(backend.get("web_3").await.unwrap().is_none());
    // Every host closed: the same.
    assert!(matches!(
        backend
            .create(&closed("web_3", 0, model(1, 256), &[0, 1, 2]))
            .await,
        Err(BackendError::CreateFailed { .. })
    ));
    // Open again, the roomy host takes it.
    let vm = backend
        .create(&closed("web_3", 0, big(), &[]))
        .await
        .unwrap();
    assert_eq!(vm.fault_domain, 1, "{vm:?}");
}

#[tokio::test]
async fn host_names_default_to_zone_and_fault_domain_and_are_checked() {
    let mut config =
        LibvirtConfig::from_hosts("1=test:///a.xml, 1=test:///b.xml, 2=test:///c.xml").unwrap();
    assert_eq!(config.host_names(), ["1-fd0", "1-fd1", "2-fd0"]);
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    config.hosts[1].name = Some("rack-b".into());
    assert_eq!(config.host_names(), ["1-fd0", "rack-b", "2-fd0"]);
    for good in ["0", "b-2", &"r".repeat(63)] {
        config.hosts[1].name = Some(good.into());
        assert!(
            config.problems().is_empty(),
            "{good:?}: {:?}",
            config.problems()
        );
    }
    let too_long = "r".repeat(64);
    for bad in ["", "Rack-b", "-rack", "rack_b", "rack b", too_long.as_str()] {
        config.hosts[1].name = Some(bad.into());
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
        assert!(
            problems[0].starts_with(&format!("hosts[1].name: {bad:?} ")),
            "{problems:?}"
        );
    }
    // Names are unique, default names included.
    config.hosts[1].name = Some("2-fd0".into());
    assert_eq!(
        config.problems(),
        [
            "hosts[2].name: \"2-fd0\" (its default) is also the name of hosts[1]; host names \
          must be unique"
        ]
    );
    config.hosts[1].name = Some("1-fd0".into());
    assert_eq!(
        config.problems(),
        ["hosts[1].name: \"1-fd0\" is also the name of hosts[0]; host names must be unique"]
    );

    // The configuration file's form: `name` is optional.
    let parsed: LibvirtConfig = serde_json::from_str(
        r#"{"hosts": [{"uri": "qemu:///system", "zone": "1", "name": "kvm-1"},
                      {"uri": "qemu+ssh://b/system", "zone": "1"}]}"#,
    )
    .unwrap();
    assert_eq!(parsed.hosts[0].name.as_deref(), Some("kvm-1"));
    assert_eq!(parsed.host_names(), ["kvm-1", "1-fd1"]);

    // Refused at open, before any host is reached, naming the field.
    let dir = tempfile::tempdir().unwrap();
    let mut config = self::config(dir.path(), &[("a", "1", 2, 2048), ("b", "1", 2, 2048)]);
    config.hosts[1].name = Some("1-fd0".into());
    let text = Libvirt::open(config.clone(), INSTALLATION)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("hosts[1].name"), "{text}");
    // Errors name a host by its name and URI.
    config.hosts[1].name = Some("rack-b".into());
    config.hosts[1].pool = "images".into();
    let text = Libvirt::open(config, INSTALLATION)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("host rack-b (test://"), "{text}");
}

#[tokio::test]
async fn storage_seed_and_console_follow_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Libvirt::open(config(dir.path(), &[("a", "1", 8, 8192)]), INSTALLATION)
        .await
        .unwrap();
    assert_eq!(backend.images().await.unwrap(), ["debian-12", "tiny-http"]);
    let mut with_data = model(1, 512);
    with_data.user_data = Some("#cloud-config\nruncmd: [echo hello]\n".into());
    backend
        .create(&spec("web_0", "1", 0, with_data))
        .await
        .unwrap();
    let seed = dir.path().join("state/web_0/seed.iso");
    let iso = std::fs::read(&seed).expect("the seed is written");
    assert!(String::from_utf8_lossy(&iso).contains("runcmd: [echo hello]"));
    // The test driver runs no guest: the console log is empty, not an error.
    assert_eq!(backend.console("web_0").await.unwrap(), "");
    assert!(matches!(
        backend.console("web_9").await,
        Err(BackendError::NotFound { .. })
    ));
    // Reimage writes the new model's seed.
    let mut next = model(1, 512);
    next.user_data = Some("#cloud-config\nruncmd: [echo again]\n".into());
    backend.reimage("web_0", &next, 2).await.unwrap();
    let iso = std::fs::read(&seed).unwrap();
    assert!(String::from_utf8_lossy(&iso).contains("echo again"));
    // A missing base image fails the create naming the image, pool and host; nothing stays.
    let mut missing = model(1, 512);
    missing.image = "windows-11".into();
    match backend.create(&spec("web_1", "1", 0, missing)).await {
        Err(BackendError::CreateFailed { reason, .. }) => {
            assert!(
                reason.contains("windows-11.qcow2 is missing from storage pool \"default\""),
                "{reason}"
            );
        }
        other => panic!("expected a missing image, got {other:?}"),
    }
    assert!(backend.get("web_1").await.unwrap().is_none());
    assert!(!dir.path().join("state/web_1").exists());
    backend.delete("web_0", true).await.unwrap();
    assert!(!dir.path().join("state/web_0").exists());
    assert!(backend.list(None).await.unwrap().is_empty());
}

/// The few libvirt calls this test makes itself, on `test:///default` (which every
/// connection of this process shares): a domain powered off or redefined behind the
/// backend's back, a volume looked up.
mod raw {
    use std::ffi::{CString, c_char, c_uint, c_void};

    #[link(name = "virt")]
    unsafe extern "C" {
        fn virConnectOpen(name: *const c_char) -> *mut c_void;
        fn virDomainLookupByName(conn: *mut c_void, name: *const c_char) -> *mut c_void;
        fn virDomainDestroy(dom: *mut c_void) -> i32;
        fn virDomainUndefine(dom: *mut c_void) -> i32;
        fn virDomainHasManagedSaveImage(dom: *mut c_void, flags: c_uint) -> i32;
        fn virStorageVolLookupByName(pool: *mut c_void, name: *const c_char) -> *mut c_void;
        fn virStoragePoolLookupByName(conn: *mut c_void, name: *const c_char) -> *mut c_void;
        fn virGetLastErrorMessage() -> *const c_char;
        fn virDomainSetMetadata(
            dom: *mut c_void,
            kind: i32,
            metadata: *const c_char,
            key: *const c_char,
            uri: *const c_char,
            flags: c_uint,
        ) -> i32;
    }

    /// Replaces domain `name`'s Flotilla metadata with `xml`, live and persistent: what a
    /// domain made before installations had ids carries.
    pub fn set_metadata(name: &str, xml: &str) {
        let xml = CString::new(xml).unwrap();
        let key = CString::new("flotilla").unwrap();
        let uri = CString::new("https://flotilla.invalid/xmlns/instance/1").unwrap();
        // SAFETY: a valid domain reference and valid C strings.
        let status = unsafe {
            virDomainSetMetadata(domain(name), 2, xml.as_ptr(), key.as_ptr(), uri.as_ptr(), 3)
        };
        // SAFETY: libvirt's thread-local last error message, a valid C string.
        let why = unsafe { std::ffi::CStr::from_ptr(virGetLastErrorMessage()) };
        assert_eq!(status, 0, "set the metadata: {why:?}");
    }

    /// A new connection to `test:///default` (kept open).
    fn connect() -> *mut c_void {
        let uri = CString::new("test:///default").unwrap();
        // SAFETY: a valid C string.
        let conn = unsafe { virConnectOpen(uri.as_ptr()) };
        assert!(!conn.is_null(), "open test:///default");
        conn
    }

    /// Domain `name` of `test:///default`.
    fn domain(name: &str) -> *mut c_void {
        let name = CString::new(name).unwrap();
        // SAFETY: an open connection and a valid C string.
        let dom = unsafe { virDomainLookupByName(connect(), name.as_ptr()) };
        assert!(!dom.is_null(), "find the domain");
        dom
    }

    /// Powers domain `name` off, as a guest shutting itself down would.
    pub fn power_off(name: &str) {
        // SAFETY: a valid domain reference.
        assert_eq!(unsafe { virDomainDestroy(domain(name)) }, 0, "power it off");
    }

    /// Removes domain `name` (powered off), keeping its storage: what a crash between a
    /// create's steps leaves.
    pub fn forget(name: &str) {
        let dom = domain(name);
        // SAFETY: a valid domain reference.
        unsafe {
            virDomainDestroy(dom);
            assert_eq!(virDomainUndefine(dom), 0, "undefine it");
        }
    }

    /// Whether domain `name` has a managed save image (a saved state).
    pub fn has_saved_state(name: &str) -> bool {
        // SAFETY: a valid domain reference.
        let answer = unsafe { virDomainHasManagedSaveImage(domain(name), 0) };
        assert!(answer >= 0, "ask for the managed save image");
        answer == 1
    }

    /// Whether `default-pool` holds volume `name`.
    pub fn has_volume(name: &str) -> bool {
        let pool = CString::new("default-pool").unwrap();
        let name = CString::new(name).unwrap();
        // SAFETY: an open connection and valid C strings.
        unsafe {
            let pool = virStoragePoolLookupByName(connect(), pool.as_ptr());
            assert!(!pool.is_null(), "find default-pool");
            !virStorageVolLookupByName(pool, name.as_ptr()).is_null()
        }
    }
}

/// Waits up to 30 s for `backend`'s host `host` to be available again (`hosts` is what
/// reconnects a host left alone, as the control plane's host watch asks every 2 s).
async fn until_available(backend: &Libvirt, host: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hosts = backend.hosts().await.unwrap();
        if hosts[host].available {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "host {} did not come back: {:?}",
            hosts[host].name,
            hosts[host].error
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A host whose libvirtd is cut off, then crashes, then comes back: the other host goes on;
/// the lost host's VMs are listed as last seen, operations on them fail `HostUnavailable`,
/// a delete gives one up; the backend connects again by itself. Needs `libvirtd`: runs when
/// `FLOTILLA_TEST_REAL_VMS=1` (`make test-vm`); otherwise it says it is skipped and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_goes_away_and_comes_back() {
    if std::env::var("FLOTILLA_TEST_REAL_VMS").as_deref() != Ok("1") {
        eprintln!(
            "a_host_that_goes_away_and_comes_back: skipped — set FLOTILLA_TEST_REAL_VMS=1 (make \
             test-vm) to run a libvirt daemon"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path()).await;
    let held = daemon.hold(&["tiny-http"]).await;
    let cable = Cable::lay(&dir.path().join("cable.sock"), &daemon.socket());
    let mut config = config(dir.path(), &[("a", "1", 8, 8192), ("b", "1", 8, 8192)]);
    config.hosts[1].uri = cable.uri();
    config.hosts[1].pool = "default-pool".into();
    let backend = Libvirt::open(config, INSTALLATION).await.unwrap();
    assert_eq!(backend.images().await.unwrap(), ["tiny-http"]);
    let web_0 = backend
        .create(&spec("web_0", "1", 0, model(1, 512)))
        .await
        .unwrap();
    let mut on_b = Vec::new();
    for id in ["web_1", "web_2"] {
        let vm = backend
            .create(&spec(id, "1", 1, model(1, 512)))
            .await
            .unwrap();
        assert_eq!(vm.fault_domain, 1, "{vm:?}");
        on_b.push(vm);
    }
    let before = backend.list(None).await.unwrap();
    assert_eq!(before.len(), 3);

    // Cut off: host b's VMs are listed as last seen, and the other host goes on.
    cable.cut();
    assert_eq!(backend.list(None).await.unwrap(), before);
    assert_eq!(backend.list(Some("web")).await.unwrap(), before);
    let hosts = backend.hosts().await.unwrap();
    assert!(hosts[0].available, "{hosts:?}");
    assert!(!hosts[1].available, "{hosts:?}");
    assert_eq!((hosts[1].vms, hosts[1].running), (2, 2), "as last seen");
    assert!(
        hosts[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("host 1-fd1 (test+unix:///default")),
        "{hosts:?}"
    );
    assert_eq!(backend.zones().await.unwrap()[0].closed_fault_domains, [1]);
    for result in [
        backend.get("web_1").await.map(drop),
        backend.start("web_1").await.map(drop),
        backend.stop("web_1", true).await.map(drop),
    ] {
        match result {
            Err(BackendError::HostUnavailable { host }) => assert_eq!(host, "1-fd1"),
            other => panic!("expected HostUnavailable, got {other:?}"),
        }
    }
    assert_eq!(
        backend.stop("web_0", true).await.unwrap().power_state,
        PowerState::Stopped
    );
    assert_eq!(backend.start("web_0").await.unwrap().address, web_0.address);
    // New VMs go to the host that answers, even when asked for the lost one.
    let web_3 = backend
        .create(&spec("web_3", "1", 1, model(1, 512)))
        .await
        .unwrap();
    assert_eq!(web_3.fault_domain, 0, "{web_3:?}");
    assert_eq!(
        backend.images().await.unwrap(),
        ["debian-12", "tiny-http"],
        "host a's alone"
    );
    let ids: Vec<String> = backend
        .metrics(None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), 2, "host a's running VMs: {ids:?}");
    // A VM on the lost host is given up at once: no longer listed, nor found.
    backend.delete("web_1", false).await.unwrap();
    let ids = listed_ids(&backend).await;
    assert_eq!(ids, ["web_0", "web_2", "web_3"]);
    assert!(matches!(
        backend.get("web_2").await,
        Err(BackendError::HostUnavailable { .. })
    ));

    // Mended: the host is connected again by itself and read afresh — the VM given up is
    // there again (the control plane deletes it: it has no instance record any more).
    cable.mend();
    until_available(&backend, 1).await;
    let ids = listed_ids(&backend).await;
    assert_eq!(ids, ["web_0", "web_1", "web_2", "web_3"]);
    assert_eq!(backend.get("web_2").await.unwrap().unwrap(), on_b[1]);
    backend.delete("web_1", true).await.unwrap();
    assert!(backend.get("web_1").await.unwrap().is_none());
    assert_eq!(
        held.domains().await,
        ["test", "web_2"],
        "deleted on the host itself"
    );

    // The daemon crashes: the same, and once it runs again (its test host empty: the test
    // driver keeps nothing) the host is connected again, events included.
    daemon.kill();
    let listed = backend.list(None).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["web_0", "web_2", "web_3"]);
    assert!(!backend.hosts().await.unwrap()[1].available);
    assert!(matches!(
        backend.start("web_2").await,
        Err(BackendError::HostUnavailable { .. })
    ));
    daemon.run().await;
    let _held = daemon.hold(&["tiny-http"]).await;
    until_available(&backend, 1).await;
    let ids = listed_ids(&backend).await;
    assert_eq!(ids, ["web_0", "web_3"], "host b is read afresh");
    let mut changes = backend.state_changes().unwrap();
    let web_4 = backend
        .create(&spec("web_4", "1", 1, model(1, 512)))
        .await
        .unwrap();
    assert_eq!(web_4.fault_domain, 1, "{web_4:?}");
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while changes.recv().await.unwrap() != "web_4" {}
    })
    .await
    .expect("host b's events come through the new connection");
    for id in ["web_0", "web_3", "web_4"] {
        backend.delete(id, true).await.unwrap();
    }
    assert!(backend.list(None).await.unwrap().is_empty());
}

/// The ids of the VMs `backend` lists, in order.
async fn listed_ids(backend: &Libvirt) -> Vec<String> {
    let listed = backend.list(None).await.unwrap();
    listed.into_iter().map(|v| v.id).collect()
}

/// The tests on `test:///default` (shared by the whole process) run one at a time.
static DEFAULT_HOST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `test:///default` held for one test (with image `tiny-http`), a state directory, and a
/// backend open on both.
async fn on_the_shared_host() -> (
    tokio::sync::MutexGuard<'static, ()>,
    tempfile::TempDir,
    Libvirt,
) {
    let held = DEFAULT_HOST.lock().await;
    flotilla_backend::libvirt::share_test_host(&["tiny-http"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = Libvirt::open(default_host(dir.path()), INSTALLATION)
        .await
        .unwrap();
    (held, dir, backend)
}

/// One host on `test:///default`, its state in `dir`.
fn default_host(dir: &Path) -> LibvirtConfig {
    LibvirtConfig {
        hosts: vec![HostConfig {
            uri: "test:///default".into(),
            zone: "1".into(),
            name: None,
            vcpus: Some(8),
            memory_mib: Some(8192),
            address: "127.0.0.1".into(),
            pool: "default-pool".into(),
            accelerate: false,
        }],
        port_base: 20_000,
        shutdown_timeout_seconds: 5,
        state_dir: Some(dir.to_owned()),
        kernel_cmdline: "console=ttyS0".into(),
    }
}

#[tokio::test]
async fn a_new_backend_rebuilds_the_view_from_libvirt_alone() {
    // `test:///default` is shared by every connection of the process while one is open:
    // the second backend is a restarted control plane looking at the same host.
    let (_one_at_a_time, dir, first) = on_the_shared_host().await;
    let default = default_host(dir.path());
    let created = first
        .create(&spec("web_0", "1", 0, model(1, 512)))
        .await
        .unwrap();
    first
        .create(&spec("web_1", "1", 0, model(1, 512)))
        .await
        .unwrap();
    first.stop("web_1", true).await.unwrap();

    let second = Libvirt::open(default, INSTALLATION).await.unwrap();
    // A guest that powers off by itself is announced.
    let mut changes = second.state_changes().expect("libvirt announces changes");
    raw::power_off("web_0");
    // (Announcements of the first backend's own operations may still be on their way.)
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while changes.recv().await.unwrap() != "web_0" {}
    })
    .await
    .expect("web_0 announced within 5 s");
    assert_eq!(
        second.get("web_0").await.unwrap().unwrap().power_state,
        PowerState::Stopped
    );
    second.start("web_0").await.unwrap();
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

    // A crash between a create's steps leaves storage without a domain: a new create of
    // the same id replaces the stale disk and seed, and a delete removes the storage even
    // when there is no domain.
    let web_9 = spec("web_9", "1", 0, model(1, 512));
    second.create(&web_9).await.unwrap();
    raw::forget("web_9");
    assert!(raw::has_volume("web_9.overlay"));
    assert!(dir.path().join("web_9/seed.iso").exists());
    second.create(&web_9).await.unwrap();
    raw::forget("web_9");
    assert!(second.get("web_9").await.unwrap().is_none());
    second.delete("web_9", true).await.unwrap();
    assert!(!raw::has_volume("web_9.overlay"), "the disk is removed");
    assert!(!dir.path().join("web_9").exists(), "the seed is removed");
}

#[tokio::test]
async fn an_unreachable_host_and_a_bad_configuration_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // No host answers: nothing could work, the open fails naming each.
    let mut config = LibvirtConfig::from_hosts(
        "1=test:///nonexistent/host.xml, 1=test:///nonexistent/other.xml",
    )
    .unwrap();
    config.state_dir = Some(dir.path().to_owned());
    match Libvirt::open(config.clone(), INSTALLATION).await {
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("host 1-fd0 (test:///nonexistent/host.xml)")
                    && text.contains("host 1-fd1 (test:///nonexistent/other.xml)"),
                "{text}"
            );
        }
        Ok(_) => panic!("with no host answering the open must fail"),
    }
    // One answers: the open succeeds; the other is listed unavailable, naming it, with its
    // configured size, closed to placement, and left out of images.
    let good = simulated_host(&dir.path().join("good.xml"), 4, 4096, &["tiny-http"]).unwrap();
    config.hosts[0].uri = good.clone();
    config.hosts[1].vcpus = Some(6);
    let backend = Libvirt::open(config.clone(), INSTALLATION).await.unwrap();
    let hosts = backend.hosts().await.unwrap();
    assert_eq!((hosts[0].available, hosts[0].vcpus), (true, 4), "{hosts:?}");
    assert_eq!(
        (hosts[1].available, hosts[1].vcpus, hosts[1].memory_mib),
        (false, 6, 0),
        "its size is what the configuration says, else unknown: {hosts:?}"
    );
    let error = hosts[1].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("host 1-fd1 (test:///nonexistent/other.xml)"),
        "{error}"
    );
    let zones = backend.zones().await.unwrap();
    assert_eq!(
        (
            zones[0].fault_domains,
            zones[0].closed_fault_domains.clone()
        ),
        (2, vec![1])
    );
    assert_eq!(backend.images().await.unwrap(), ["tiny-http"]);
    // A VM asked for on the unreachable host goes to the one that answers; one too big for
    // it is refused naming both.
    let vm = backend
        .create(&spec("web_0", "1", 1, model(1, 512)))
        .await
        .unwrap();
    assert_eq!(vm.fault_domain, 0, "{vm:?}");
    match backend.create(&spec("web_1", "1", 1, model(8, 512))).await {
        Err(BackendError::CreateFailed { reason, .. }) => {
            assert!(
                reason.contains("host 1-fd1 (test:///nonexistent/other.xml) cannot be read"),
                "{reason}"
            );
            assert!(reason.contains("has 3 vCPUs and 3584 MiB free"), "{reason}");
        }
        other => panic!("expected the zone to be full, got {other:?}"),
    }
    let listed = backend.list(None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    // Nothing was ever seen on the unreachable host: a VM absent elsewhere is absent.
    assert!(backend.get("web_9").await.unwrap().is_none());
    assert!(matches!(
        backend.start("web_9").await,
        Err(BackendError::NotFound { .. })
    ));
    backend.delete("web_9", true).await.unwrap();
    backend.delete("web_0", true).await.unwrap();
    assert!(backend.list(None).await.unwrap().is_empty());
    config.hosts.truncate(1);
    config.hosts[0].uri = "test:///nonexistent/host.xml".into();
    config.hosts[0].vcpus = None;
    // A host without the storage pool is named with the pool.
    let uri = simulated_host(&dir.path().join("a.xml"), 2, 2048, &[]).unwrap();
    config.hosts[0].uri = uri.clone();
    config.hosts[0].pool = "images".into();
    let text = Libvirt::open(config.clone(), INSTALLATION)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!(
            "host 1-fd0 ({uri}) has no storage pool \"images\""
        )),
        "{text}"
    );
    // Without limits a host offers its whole size.
    config.hosts[0].pool = "default".into();
    let backend = Libvirt::open(config.clone(), INSTALLATION).await.unwrap();
    let host = &backend.hosts().await.unwrap()[0];
    assert_eq!(
        (host.vcpus, host.memory_mib, host.available),
        (2, 2048, true)
    );
    // Bad configurations: each problem names its field.
    config.hosts.push(config.hosts[0].clone());
    config.hosts[1].vcpus = Some(0);
    config.hosts[1].address = "localhost:80".into();
    let problems = config.problems();
    assert_eq!(
        problems,
        [
            "hosts[1].vcpus: must be at least 1",
            "hosts[1].address: \"localhost:80\" is not an IP address",
            &format!("hosts[1].uri: {uri:?} is listed twice"),
        ]
    );
    let text = Libvirt::open(config, INSTALLATION)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("hosts[1].vcpus"), "{text}");
    assert!(
        LibvirtConfig::from_hosts("1=qemu:///system, 2=qemu+ssh://b/system").is_ok_and(|c| c.hosts
            [1]
        .zone
            == "2"
            && c.hosts[1].uri == "qemu+ssh://b/system")
    );
    assert_eq!(
        LibvirtConfig::from_hosts("qemu:///system").unwrap_err(),
        "libvirt host \"qemu:///system\": expected zone=uri"
    );
}

/// Two installations on the same host, at the same time: each lists the other's domains
/// with their installation id and changes none of them — nor their disks or seeds; a domain
/// made before installations had ids is adopted by whoever asks.
#[tokio::test]
async fn two_installations_on_the_same_host_never_touch_each_other() {
    let _one_at_a_time = DEFAULT_HOST.lock().await;
    flotilla_backend::libvirt::share_test_host(&["tiny-http"]).unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Libvirt::open(default_host(dir_a.path()), "inst-a")
        .await
        .unwrap();
    let b = Libvirt::open(default_host(dir_b.path()), "inst-b")
        .await
        .unwrap();
    a.create(&spec("web_0", "1", 0, model(1, 256)))
        .await
        .unwrap();
    let theirs = b.list(None).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].installation_id.as_deref(), Some("inst-a"));
    match b.create(&spec("web_0", "1", 0, model(1, 256))).await {
        Err(BackendError::Foreign { installation, .. }) => {
            assert_eq!(installation.as_deref(), Some("inst-a"));
        }
        other => panic!("expected Foreign, got {other:?}"),
    }
    b.delete("web_0", true).await.unwrap();
    assert!(matches!(
        b.stop("web_0", true).await,
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(
        b.reimage("web_0", &model(1, 256), 2).await,
        Err(BackendError::NotFound { .. })
    ));
    let vm = a.get("web_0").await.unwrap().expect("still there");
    assert_eq!(vm.power_state, PowerState::Running);
    assert!(raw::has_volume("web_0.overlay"), "B left A's disk alone");
    assert!(dir_a.path().join("web_0/seed.iso").exists(), "and its seed");

    // B's own VM, beside A's.
    let mut api = spec("api_0", "1", 0, model(1, 256));
    api.scale_set = "api".into();
    assert_eq!(
        b.create(&api).await.unwrap().installation_id.as_deref(),
        Some("inst-b")
    );
    a.delete("api_0", true).await.unwrap();
    assert!(
        b.get("api_0").await.unwrap().is_some(),
        "A left B's VM alone"
    );

    // A domain from before installations had ids: neither may change it until one adopts it.
    let port = vm
        .address
        .as_deref()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    raw::set_metadata(
        "web_0",
        &format!(
            "<instance><scale-set>web</scale-set><zone>1</zone><fault-domain>0</fault-domain>\
             <model-version>1</model-version><image>tiny-http</image><vcpus>1</vcpus>\
             <memory-mib>256</memory-mib><port>{port}</port>\
             <deallocated>false</deallocated></instance>"
        ),
    );
    assert_eq!(a.get("web_0").await.unwrap().unwrap().installation_id, None);
    assert!(matches!(
        a.stop("web_0", true).await,
        Err(BackendError::NotFound { .. })
    ));
    assert_eq!(
        a.adopt("web_0").await.unwrap().installation_id.as_deref(),
        Some("inst-a")
    );
    assert!(matches!(
        b.adopt("web_0").await,
        Err(BackendError::Foreign { .. })
    ));
    let listed = b.list(Some("web")).await.unwrap();
    assert_eq!(
        listed[0].installation_id.as_deref(),
        Some("inst-a"),
        "the adoption is in libvirt"
    );
    assert_eq!(listed[0].address, vm.address, "the facts are as they were");

    a.delete("web_0", true).await.unwrap();
    b.delete("api_0", true).await.unwrap();
    assert!(a.list(None).await.unwrap().is_empty());
    assert!(!raw::has_volume("web_0.overlay") && !raw::has_volume("api_0.overlay"));
}

/// Warm pool parking: a paused VM is announced, reads `paused` without an address and has
/// no metrics; a saved one holds its reservation and no saved state is left behind by
/// anything; a restarted control plane reads both back from libvirt (`list` and `get`
/// alike) and brings them back on their own ports; stop, deallocate and delete work from
/// either state.
#[tokio::test]
async fn parked_vms_read_back_from_libvirt_and_leave_no_saved_state_behind() {
    let (_one_at_a_time, dir, first) = on_the_shared_host().await;
    let paused_vm = first
        .create(&spec("park_0", "1", 0, model(1, 256)))
        .await
        .unwrap();
    let saved_vm = first
        .create(&spec("park_1", "1", 0, model(1, 256)))
        .await
        .unwrap();
    let mut changes = first.state_changes().expect("libvirt announces changes");
    let paused = first.park("park_0", WarmPoolState::Paused).await.unwrap();
    assert_eq!(
        (paused.power_state, paused.address),
        (PowerState::Paused, None)
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while changes.recv().await.unwrap() != "park_0" {}
    })
    .await
    .expect("the suspension announced within 5 s");
    let saved = first.park("park_1", WarmPoolState::Saved).await.unwrap();
    assert_eq!(
        (saved.power_state, saved.address),
        (PowerState::Saved, None)
    );
    assert!(raw::has_saved_state("park_1"));
    assert!(
        first.metrics(None).await.unwrap().is_empty(),
        "neither runs"
    );
    let host = &first.hosts().await.unwrap()[0];
    assert_eq!(
        (host.vms, host.running, host.used_memory_mib),
        (2, 0, 512),
        "both keep their reservation"
    );

    // A restarted control plane reads them from libvirt.
    let second = Libvirt::open(default_host(dir.path()), INSTALLATION)
        .await
        .unwrap();
    let listed = second.list(None).await.unwrap();
    let seen: Vec<(&str, PowerState)> = listed
        .iter()
        .map(|v| (v.id.as_str(), v.power_state))
        .collect();
    assert_eq!(
        seen,
        [
            ("park_0", PowerState::Paused),
            ("park_1", PowerState::Saved)
        ]
    );
    assert_eq!(
        second.get("park_1").await.unwrap().unwrap().power_state,
        PowerState::Saved
    );
    // Resumed and restored, each on its own port; the saved state is used up.
    let resumed = second.start("park_0").await.unwrap();
    assert_eq!(
        (resumed.power_state, resumed.address),
        (PowerState::Running, paused_vm.address)
    );
    let restored = second.start("park_1").await.unwrap();
    assert_eq!(
        (restored.power_state, restored.address),
        (PowerState::Running, saved_vm.address)
    );
    assert!(!raw::has_saved_state("park_1"));

    // Stop from either state: stopped, no saved state left for the next start to restore.
    second.park("park_0", WarmPoolState::Paused).await.unwrap();
    second.park("park_1", WarmPoolState::Saved).await.unwrap();
    for id in ["park_0", "park_1"] {
        assert_eq!(
            second.stop(id, false).await.unwrap().power_state,
            PowerState::Stopped,
            "{id}"
        );
    }
    assert!(!raw::has_saved_state("park_1"));
    // Deallocate from saved lets the saved memory go too.
    second.start("park_1").await.unwrap();
    second.park("park_1", WarmPoolState::Saved).await.unwrap();
    assert_eq!(
        second.deallocate("park_1").await.unwrap().power_state,
        PowerState::Deallocated
    );
    assert!(!raw::has_saved_state("park_1"));
    // Delete from either state removes the domain, saved state included.
    second.start("park_0").await.unwrap();
    second.park("park_0", WarmPoolState::Paused).await.unwrap();
    second.start("park_1").await.unwrap();
    second.park("park_1", WarmPoolState::Saved).await.unwrap();
    for id in ["park_0", "park_1"] {
        second.delete(id, false).await.unwrap();
        assert!(second.get(id).await.unwrap().is_none(), "{id} is gone");
    }
    assert!(first.list(None).await.unwrap().is_empty());
}

/// Asks for a lease through VM `id`'s metadata socket, as QEMU forwards a guest's request,
/// and answers the status line.
async fn ask_busy(state: &Path, id: &str, seconds: u32) -> std::io::Result<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let socket = state.join("metadata").join(format!("{id}.sock"));
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    let body = format!("{{\"seconds\":{seconds}}}");
    stream
        .write_all(
            format!(
                "PUT /busy HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    let mut status = String::new();
    tokio::io::BufReader::new(stream)
        .read_line(&mut status)
        .await?;
    Ok(status.trim_end().to_owned())
}

#[tokio::test]
async fn each_vm_has_a_metadata_socket_that_speaks_for_it_alone() {
    use std::os::unix::fs::PermissionsExt;
    let (_one_at_a_time, dir, first) = on_the_shared_host().await;
    let before = Arc::new(RecordingGuests::default());
    first.serve_guests(before.clone());
    for id in ["web_0", "web_1"] {
        first
            .create(&spec(id, "1", 0, model(1, 512)))
            .await
            .unwrap();
    }
    let socket = dir.path().join("metadata/web_1.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o007, 0, "nobody else connects: {mode:o}");
    // The socket is the VM's identity: what comes through it acts on that VM alone.
    assert_eq!(
        ask_busy(dir.path(), "web_1", 60).await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        *before.asked.lock().unwrap(),
        [("web".to_owned(), "web_1".to_owned(), 60)]
    );

    // A restarted control plane takes the sockets of the VMs it lists.
    let second = Libvirt::open(default_host(dir.path()), INSTALLATION)
        .await
        .unwrap();
    let after = Arc::new(RecordingGuests::default());
    second.serve_guests(after.clone());
    second.list(None).await.unwrap();
    assert_eq!(
        ask_busy(dir.path(), "web_0", 0).await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        *after.asked.lock().unwrap(),
        [("web".to_owned(), "web_0".to_owned(), 0)]
    );
    assert_eq!(before.asked.lock().unwrap().len(), 1);

    // A deleted VM's socket goes with it; one deleted elsewhere at the next full list.
    second.delete("web_0", true).await.unwrap();
    assert!(!dir.path().join("metadata/web_0.sock").exists());
    assert!(ask_busy(dir.path(), "web_0", 60).await.is_err());
    raw::forget("web_1");
    second.list(None).await.unwrap();
    assert!(!socket.exists());
    first.delete("web_1", true).await.unwrap();
}
