//! The mock hypervisor: the conformance suite in three set-ups (zero latency, stepped with
//! latency, timer with latency), then what only the mock does — real HTTP, faults,
//! deterministic randomness, stepped time and persistence across a reopen.
//!
//! The 10,000-VM test lives in `mock_scale.rs`, its own binary, so its thousands of binds
//! do not race the port checks here.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use flotilla_backend::conformance::Subject;
use flotilla_backend::mock::{JOURNAL_FILE, Mock, MockConfig, Mode};
use flotilla_backend::{Backend, BackendError, VmSpec};
use flotilla_domain::{Fault, Model, ObservedVm, PowerState, WarmPoolState};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod conformance_instant {
    use super::*;
    flotilla_backend::backend_conformance!(async {
        let mock = Arc::new(Mock::open(MockConfig::instant()).await.expect("open"));
        Subject::new(mock)
    });
}

mod conformance_stepped {
    use super::*;
    flotilla_backend::backend_conformance!(async {
        let mock = Arc::new(Mock::open(MockConfig::stepped()).await.expect("open"));
        Subject::new(mock.clone())
            .with_time(mock)
            .with_poll(Duration::from_millis(100))
    });
}

mod conformance_timer {
    use super::*;
    flotilla_backend::backend_conformance!(async {
        let config = MockConfig::default().with_latency(Duration::from_millis(20));
        let mock = Arc::new(Mock::open(config).await.expect("open"));
        Subject::new(mock).with_timeout(Duration::from_secs(10))
    });
}

// ----- fixtures --------------------------------------------------------------------------------

fn model() -> Model {
    flotilla_backend::conformance::model_on("debian-12")
}

fn spec(set: &str, ordinal: u64, zone: &str) -> VmSpec {
    VmSpec {
        id: format!("{set}_{ordinal}"),
        scale_set: set.into(),
        zone: zone.into(),
        fault_domain: (ordinal % 3) as u32,
        model_version: 1,
        model: model(),
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

async fn instant() -> Mock {
    Mock::open(MockConfig::instant()).await.expect("open")
}

async fn stepped(latency: Duration, jitter: f64) -> Mock {
    let config = MockConfig::stepped()
        .with_latency(latency)
        .with_jitter(jitter);
    Mock::open(config).await.expect("open")
}

async fn create(mock: &Mock, set: &str, ordinal: u64, zone: &str) -> ObservedVm {
    mock.create(&spec(set, ordinal, zone))
        .await
        .expect("create")
}

async fn vm(mock: &Mock, id: &str) -> ObservedVm {
    mock.get(id).await.expect("get").expect("the VM exists")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

async fn http_get(address: &str, path: &str) -> (u16, serde_json::Value) {
    let response = client()
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// One `GET` on an open connection; `None` when the server closed it.
async fn raw_get(stream: &mut TcpStream, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let request = format!("GET {path} HTTP/1.1\r\nHost: mock\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status line");
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]);
                return Ok::<_, std::io::Error>(Some((status, body.to_string())));
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the server answers or closes within 5 s")
        .unwrap_or(None)
}

async fn assert_refused(address: &str) {
    match TcpStream::connect(address).await {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("{address} still accepts connections"),
    }
}

fn port(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

// ----- HTTP ------------------------------------------------------------------------------------

#[tokio::test]
async fn every_running_vm_serves_its_identity_over_http() {
    let mock = instant().await;
    let a = create(&mock, "web", 0, "1").await;
    let b = create(&mock, "api", 1, "2").await;
    assert_eq!(
        a.power_state,
        PowerState::Running,
        "zero latency: running at once"
    );
    let (a_address, b_address) = (a.address.expect("address"), b.address.expect("address"));
    assert!(a_address.starts_with("127.0.0.1:"));
    assert_ne!(a_address, b_address, "each VM has its own port");

    let (status, body) = http_get(&a_address, "/").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({
            "instance_id": "web_0", "scale_set": "web", "model_version": 1,
            "zone": "1", "fault_domain": 0, "image": "debian-12"
        })
    );
    let (_, body) = http_get(&b_address, "/").await;
    assert_eq!(body["instance_id"], "api_1");
    assert_eq!(body["fault_domain"], 1);

    let (status, body) = http_get(&a_address, "/health").await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"status": "healthy"}))
    );
    assert_eq!(http_get(&a_address, "/nope").await.0, 404);
    let post = client()
        .post(format!("http://{a_address}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(post.status().as_u16(), 404);
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let mock = instant().await;
    let address = create(&mock, "web", 0, "1").await.address.expect("address");
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    for path in ["/", "/health", "/", "/missing", "/health"] {
        let (status, _) = raw_get(&mut stream, path)
            .await
            .expect("answered on the same connection");
        assert!(status == 200 || (path == "/missing" && status == 404));
    }
}

#[tokio::test]
async fn reimage_serves_the_new_model_version() {
    let mock = instant().await;
    create(&mock, "web", 0, "1").await;
    let mut next = model();
    next.image = "alpine-3.20".into();
    let vm = mock.reimage("web_0", &next, 2).await.expect("reimage");
    assert_eq!(vm.power_state, PowerState::Running);
    let (_, body) = http_get(&vm.address.expect("address"), "/").await;
    assert_eq!(body["model_version"], 2);
    assert_eq!(body["image"], "alpine-3.20");
}

#[tokio::test]
async fn unhealthy_answers_503_until_healthy() {
    let mock = instant().await;
    let address = create(&mock, "web", 0, "1").await.address.expect("address");
    let faults = mock.faults().expect("the mock injects faults");
    faults
        .inject(Fault::Unhealthy {
            instance: "web_0".into(),
        })
        .await
        .expect("inject");
    let (status, body) = http_get(&address, "/health").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unhealthy")));
    assert_eq!(
        http_get(&address, "/").await.0,
        200,
        "the app still answers"
    );
    assert_eq!(
        faults.active().await,
        [Fault::Unhealthy {
            instance: "web_0".into()
        }]
    );

    // The fault belongs to the instance: it survives a restart.
    let restarted = mock.restart("web_0").await.expect("restart");
    let address = restarted.address.expect("address");
    assert_eq!(http_get(&address, "/health").await.0, 503);

    faults
        .inject(Fault::Healthy {
            instance: "web_0".into(),
        })
        .await
        .expect("inject");
    assert_eq!(http_get(&address, "/health").await.0, 200);
    assert!(faults.active().await.is_empty());
}

#[tokio::test]
async fn crash_closes_the_port_and_cuts_kept_alive_connections() {
    let mock = instant().await;
    let address = create(&mock, "web", 0, "1").await.address.expect("address");
    let mut kept = TcpStream::connect(&address).await.expect("connect");
    assert_eq!(raw_get(&mut kept, "/").await.map(|r| r.0), Some(200));

    let faults = mock.faults().expect("faults");
    faults
        .inject(Fault::Crash {
            instance: "web_0".into(),
        })
        .await
        .expect("crash");
    let crashed = vm(&mock, "web_0").await;
    assert_eq!(crashed.power_state, PowerState::Stopped);
    assert_eq!(crashed.address, None);
    assert_eq!(
        raw_get(&mut kept, "/").await,
        None,
        "the kept-alive connection is cut"
    );
    assert_refused(&address).await;
    assert!(
        faults.active().await.is_empty(),
        "a crash is an event, not a lasting fault"
    );

    let started = mock.start("web_0").await.expect("start");
    let again = started.address.expect("address");
    assert_eq!(http_get(&again, "/").await.0, 200);
}

#[tokio::test]
async fn stop_deallocate_and_delete_close_the_port() {
    let mock = instant().await;
    for ordinal in 0..3 {
        create(&mock, "web", ordinal, "1").await;
    }
    let addresses: Vec<String> = mock
        .list(Some("web"))
        .await
        .expect("list")
        .into_iter()
        .map(|vm| vm.address.expect("running"))
        .collect();
    let mut kept = TcpStream::connect(&addresses[2]).await.expect("connect");
    assert!(raw_get(&mut kept, "/health").await.is_some());

    mock.stop("web_0", false).await.expect("stop");
    mock.deallocate("web_1").await.expect("deallocate");
    mock.delete("web_2", false).await.expect("delete");
    for address in &addresses {
        assert_refused(address).await;
    }
    assert_eq!(raw_get(&mut kept, "/health").await, None);
}

#[tokio::test]
async fn a_restarted_vm_keeps_its_port_when_it_can() {
    let mock = instant().await;
    let before = create(&mock, "web", 0, "1").await.address.expect("address");
    let after = mock
        .restart("web_0")
        .await
        .expect("restart")
        .address
        .expect("address");
    assert_eq!(port(&before), port(&after));
    mock.stop("web_0", true).await.expect("stop");
    let started = mock
        .start("web_0")
        .await
        .expect("start")
        .address
        .expect("address");
    assert_eq!(port(&before), port(&started));
}

// ----- states ----------------------------------------------------------------------------------

/// A stepped mock (1 s latency, no jitter) holding `web_0` in `state`.
async fn vm_in(state: PowerState) -> Mock {
    let mock = stepped(Duration::from_secs(1), 0.0).await;
    create(&mock, "web", 0, "1").await;
    let second = Duration::from_secs(1);
    match state {
        PowerState::Starting => {}
        PowerState::Running => mock.advance(second).await,
        PowerState::Stopping | PowerState::Stopped => {
            mock.advance(second).await;
            mock.stop("web_0", false).await.expect("stop");
        }
        PowerState::Deallocating | PowerState::Deallocated => {
            mock.advance(second).await;
            mock.deallocate("web_0").await.expect("deallocate");
        }
        PowerState::Paused => {
            mock.advance(second).await;
            mock.park("web_0", WarmPoolState::Paused)
                .await
                .expect("pause");
        }
        PowerState::Saved => {
            mock.advance(second).await;
            mock.park("web_0", WarmPoolState::Saved)
                .await
                .expect("save");
        }
    }
    if state.settled() == state && state != PowerState::Running {
        mock.advance(second).await;
    }
    assert_eq!(vm(&mock, "web_0").await.power_state, state, "fixture");
    mock
}

#[tokio::test]
async fn power_operations_by_state() {
    use PowerState::*;
    // From each state: what start, stop, deallocate, restart and reimage answer at once
    // (`None`: InvalidState); each then settles where its answer settles.
    let table: [(PowerState, [Option<PowerState>; 5]); 8] = [
        (
            Starting,
            [
                Some(Starting),
                Some(Stopping),
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
        (
            Running,
            [
                Some(Running),
                Some(Stopping),
                Some(Deallocating),
                Some(Starting),
                Some(Starting),
            ],
        ),
        (
            Stopping,
            [
                Some(Starting),
                Some(Stopping),
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
        (
            Stopped,
            [
                Some(Starting),
                Some(Stopped),
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
        (
            Deallocating,
            [
                Some(Starting),
                None,
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
        (
            Deallocated,
            [
                Some(Starting),
                None,
                Some(Deallocated),
                None,
                Some(Starting),
            ],
        ),
        // Parked for a warm pool: a stop discards the memory at once.
        (
            Paused,
            [
                Some(Starting),
                Some(Stopped),
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
        (
            Saved,
            [
                Some(Starting),
                Some(Stopped),
                Some(Deallocating),
                None,
                Some(Starting),
            ],
        ),
    ];
    assert_eq!(table.len(), PowerState::ALL.len(), "every state covered");
    let operations = ["start", "stop", "deallocate", "restart", "reimage"];
    for (from, answers) in table {
        for (operation, expected) in operations.iter().zip(answers) {
            let mock = vm_in(from).await;
            let outcome = match *operation {
                "start" => mock.start("web_0").await,
                "stop" => mock.stop("web_0", false).await,
                "deallocate" => mock.deallocate("web_0").await,
                "restart" => mock.restart("web_0").await,
                _ => mock.reimage("web_0", &model(), 2).await,
            };
            match (expected, outcome) {
                (Some(state), Ok(vm)) => {
                    assert_eq!(vm.power_state, state, "{operation} from {from}");
                    mock.advance(Duration::from_secs(1)).await;
                    let settled = vm_state(&mock).await;
                    assert_eq!(settled, state.settled(), "{operation} from {from} settles");
                }
                (None, Err(BackendError::InvalidState { .. })) => {
                    assert_eq!(
                        vm_state(&mock).await,
                        from,
                        "a refused {operation} changes nothing"
                    );
                }
                (expected, outcome) => {
                    panic!("{operation} from {from}: expected {expected:?}, got {outcome:?}")
                }
            }
        }
    }
}

async fn vm_state(mock: &Mock) -> PowerState {
    vm(mock, "web_0").await.power_state
}

#[tokio::test]
async fn create_checks_its_spec_and_leaves_nothing_on_error() {
    let mock = instant().await;
    let mut bad_domain = spec("web", 0, "1");
    bad_domain.fault_domain = 3;
    let mut bad_image = spec("web", 1, "1");
    bad_image.model.image = "windows-95".into();
    // Asked for a closed fault domain, the mock refuses rather than places elsewhere.
    let mut closed = spec("web", 2, "1");
    closed.closed_fault_domains = vec![0, closed.fault_domain];
    for bad in [bad_domain, bad_image, closed] {
        match mock.create(&bad).await {
            Err(BackendError::CreateFailed { id, .. }) => assert_eq!(id, bad.id),
            other => panic!("expected CreateFailed, got {other:?}"),
        }
        assert_eq!(mock.get(&bad.id).await.expect("get"), None);
    }
    assert!(mock.list(None).await.expect("list").is_empty());
}

#[tokio::test]
async fn forced_stop_completes_inside_the_call() {
    let mock = stepped(Duration::from_secs(1), 0.0).await;
    create(&mock, "web", 0, "1").await;
    mock.advance(Duration::from_secs(1)).await;
    let stopping = mock.stop("web_0", false).await.expect("stop");
    assert_eq!(stopping.power_state, PowerState::Stopping);
    let stopped = mock.stop("web_0", true).await.expect("forced stop");
    assert_eq!(stopped.power_state, PowerState::Stopped);
}

// ----- faults ----------------------------------------------------------------------------------

#[tokio::test]
async fn fault_injection_validates_its_input() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    let cases = [
        (Fault::CreateFailureRate { rate: 1.5 }, "invalid"),
        (Fault::SlowBoot { seconds: 4000 }, "invalid"),
        (
            Fault::Crash {
                instance: String::new(),
            },
            "invalid",
        ),
        (
            Fault::Crash {
                instance: "web_9".into(),
            },
            "not found",
        ),
        (
            Fault::Unhealthy {
                instance: "web_9".into(),
            },
            "not found",
        ),
        (
            Fault::Healthy {
                instance: "web_9".into(),
            },
            "not found",
        ),
        (Fault::ZoneDown { zone: "9".into() }, "unknown zone"),
        (Fault::ZoneUp { zone: "9".into() }, "unknown zone"),
        (
            Fault::HostDown {
                host: String::new(),
            },
            "invalid",
        ),
        (
            Fault::HostDown {
                host: "9-fd0".into(),
            },
            "unknown host",
        ),
        (
            Fault::HostDown {
                host: "1-fd3".into(),
            },
            "unknown host",
        ),
        (
            Fault::HostUp {
                host: "1-fd01".into(),
            },
            "unknown host",
        ),
        (Fault::HostUp { host: "1".into() }, "unknown host"),
    ];
    for (fault, expected) in cases {
        let outcome = faults.inject(fault.clone()).await;
        let matched = match (&outcome, expected) {
            (Err(BackendError::InvalidFault(_)), "invalid") => true,
            (Err(BackendError::NotFound { id }), "not found") => id == "web_9",
            (Err(BackendError::UnknownZone { zone }), "unknown zone") => zone == "9",
            (Err(BackendError::UnknownHost { host }), "unknown host") => match &fault {
                Fault::HostDown { host: asked } | Fault::HostUp { host: asked } => host == asked,
                _ => false,
            },
            _ => false,
        };
        assert!(matched, "{fault:?}: expected {expected}, got {outcome:?}");
    }
    assert!(faults.active().await.is_empty());
}

#[tokio::test]
async fn zone_down_stops_its_vms_and_zone_up_starts_them_again() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    create(&mock, "web", 0, "1").await;
    let in_two = create(&mock, "web", 1, "2").await.address.expect("address");
    create(&mock, "web", 2, "2").await;
    mock.stop("web_2", false).await.expect("stop");

    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down");
    let zones = mock.zones().await.expect("zones");
    let available: Vec<(&str, bool)> = zones
        .iter()
        .map(|z| (z.name.as_str(), z.available))
        .collect();
    assert_eq!(available, [("1", true), ("2", false), ("3", true)]);
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Running);
    let down = vm(&mock, "web_1").await;
    assert_eq!(
        (down.power_state, down.address),
        (PowerState::Stopped, None)
    );
    assert_refused(&in_two).await;
    assert_eq!(
        faults.active().await,
        [Fault::ZoneDown { zone: "2".into() }]
    );

    match mock.create(&spec("web", 3, "2")).await {
        Err(BackendError::ZoneUnavailable { zone }) => assert_eq!(zone, "2"),
        other => panic!("expected ZoneUnavailable, got {other:?}"),
    }
    assert_eq!(mock.get("web_3").await.expect("get"), None);
    for outcome in [
        mock.start("web_1").await,
        mock.reimage("web_1", &model(), 2).await,
    ] {
        assert!(
            matches!(outcome, Err(BackendError::ZoneUnavailable { .. })),
            "{outcome:?}"
        );
    }
    // A zone that is already down stays down; other zones still take creates.
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down again");
    create(&mock, "web", 4, "3").await;

    faults
        .inject(Fault::ZoneUp { zone: "2".into() })
        .await
        .expect("zone up");
    let back = vm(&mock, "web_1").await;
    assert_eq!(
        back.power_state,
        PowerState::Running,
        "running before the outage"
    );
    assert_eq!(http_get(&back.address.expect("address"), "/").await.0, 200);
    assert_eq!(
        vm(&mock, "web_2").await.power_state,
        PowerState::Stopped,
        "stopped before the outage: stays stopped"
    );
    assert!(faults.active().await.is_empty());
    create(&mock, "web", 3, "2").await;
}

#[tokio::test]
async fn a_vm_stopped_during_an_outage_stays_stopped() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    create(&mock, "web", 0, "2").await;
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("down");
    mock.deallocate("web_0")
        .await
        .expect("deallocate during the outage");
    faults
        .inject(Fault::ZoneUp { zone: "2".into() })
        .await
        .expect("up");
    assert_eq!(
        vm(&mock, "web_0").await.power_state,
        PowerState::Deallocated
    );
}

#[tokio::test]
async fn clear_lifts_every_lasting_fault() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    create(&mock, "web", 0, "1").await;
    let healthy_probe = create(&mock, "web", 1, "3").await.address.expect("address");
    for fault in [
        Fault::ZoneDown { zone: "1".into() },
        Fault::Unhealthy {
            instance: "web_1".into(),
        },
        Fault::CreateFailureRate { rate: 0.3 },
        Fault::SlowBoot { seconds: 5 },
    ] {
        faults.inject(fault).await.expect("inject");
    }
    assert_eq!(faults.active().await.len(), 4);
    faults.clear().await.expect("clear");
    assert!(faults.active().await.is_empty());
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Running);
    assert_eq!(http_get(&healthy_probe, "/health").await.0, 200);
    assert_eq!(
        create(&mock, "web", 2, "1").await.power_state,
        PowerState::Running
    );
}

/// A VM in `zone` on fault domain `fault_domain` with `vcpus` and `memory_mib`.
fn spec_on(id: &str, zone: &str, fault_domain: u32, vcpus: u32, memory_mib: u32) -> VmSpec {
    let mut spec = spec("web", 0, zone);
    spec.id = id.into();
    spec.fault_domain = fault_domain;
    spec.model.vcpus = vcpus;
    spec.model.memory_mib = memory_mib;
    spec
}

#[tokio::test]
async fn hosts_are_the_fault_domains_of_each_zone_with_their_vms() {
    let config = MockConfig::instant()
        .with_zones(["1", "2"])
        .with_fault_domains(2);
    let mock = Mock::open(config.clone()).await.expect("open");
    for (id, zone, fd, vcpus, memory) in [
        ("web_0", "1", 0, 1, 512),
        ("web_1", "1", 0, 2, 1024),
        ("web_2", "1", 1, 4, 4096),
        ("web_3", "2", 1, 1, 256),
    ] {
        mock.create(&spec_on(id, zone, fd, vcpus, memory))
            .await
            .expect("create");
    }
    mock.stop("web_1", true).await.expect("stop");
    mock.deallocate("web_2").await.expect("deallocate");

    let hosts = mock.hosts().await.expect("hosts");
    let seen: Vec<(&str, &str, u32, u32, u32, u32, u64)> = hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.zone.as_str(),
                h.fault_domain,
                h.vms,
                h.running,
                h.used_vcpus,
                h.used_memory_mib,
            )
        })
        .collect();
    // A stopped VM keeps its reservation, a deallocated one holds nothing.
    assert_eq!(
        seen,
        [
            ("1-fd0", "1", 0, 2, 1, 3, 1536),
            ("1-fd1", "1", 1, 1, 0, 0, 0),
            ("2-fd0", "2", 0, 0, 0, 0, 0),
            ("2-fd1", "2", 1, 1, 1, 1, 256),
        ]
    );
    for host in &hosts {
        assert_eq!((host.vcpus, host.memory_mib), (0, 0), "unlimited: {host:?}");
        assert_eq!(host.uri, None);
        assert_eq!(host.images, config.images);
        assert!(host.available && host.error.is_none(), "{host:?}");
    }

    // A zone down takes its hosts with it.
    let faults = mock.faults().expect("faults");
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down");
    let hosts = mock.hosts().await.expect("hosts");
    let down: Vec<(&str, bool)> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.available))
        .collect();
    assert_eq!(
        down,
        [
            ("1-fd0", true),
            ("1-fd1", true),
            ("2-fd0", false),
            ("2-fd1", false)
        ]
    );
    let error = hosts[3].error.as_deref().expect("an error");
    assert!(error.contains("zone 2 is down"), "{error}");
    assert_eq!((hosts[3].vms, hosts[3].running), (1, 0));
}

#[tokio::test]
async fn host_down_stops_its_vms_and_host_up_starts_them_again() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    let on_host = mock
        .create(&spec_on("web_0", "1", 0, 1, 512))
        .await
        .expect("create")
        .address
        .expect("address");
    mock.create(&spec_on("web_1", "1", 1, 1, 512))
        .await
        .expect("create");
    mock.create(&spec_on("web_2", "1", 0, 1, 512))
        .await
        .expect("create");
    mock.stop("web_2", false).await.expect("stop");

    faults
        .inject(Fault::HostDown {
            host: "1-fd0".into(),
        })
        .await
        .expect("host down");
    let down = vm(&mock, "web_0").await;
    assert_eq!(
        (down.power_state, down.address),
        (PowerState::Stopped, None)
    );
    assert_refused(&on_host).await;
    assert_eq!(
        vm(&mock, "web_1").await.power_state,
        PowerState::Running,
        "the zone's other hosts are unaffected"
    );
    assert_eq!(
        faults.active().await,
        [Fault::HostDown {
            host: "1-fd0".into()
        }]
    );
    let zone = &mock.zones().await.expect("zones")[0];
    assert_eq!(
        (zone.available, zone.closed_fault_domains.as_slice()),
        (true, &[0][..]),
        "the zone is up, its host is closed"
    );
    let host = &mock.hosts().await.expect("hosts")[0];
    assert_eq!((host.name.as_str(), host.available), ("1-fd0", false));
    assert!(
        host.error
            .as_deref()
            .is_some_and(|e| e.contains("host 1-fd0 is down")),
        "{host:?}"
    );

    // Nothing is created or started there; elsewhere in the zone, creates go on.
    match mock.create(&spec_on("web_3", "1", 0, 1, 512)).await {
        Err(BackendError::HostUnavailable { host }) => assert_eq!(host, "1-fd0"),
        other => panic!("expected HostUnavailable, got {other:?}"),
    }
    assert_eq!(mock.get("web_3").await.expect("get"), None);
    for outcome in [
        mock.start("web_2").await,
        mock.reimage("web_0", &model(), 2).await,
    ] {
        assert!(
            matches!(outcome, Err(BackendError::HostUnavailable { .. })),
            "{outcome:?}"
        );
    }
    mock.create(&spec_on("web_4", "1", 1, 1, 512))
        .await
        .expect("create on another host");
    // Down already: stays down, once.
    faults
        .inject(Fault::HostDown {
            host: "1-fd0".into(),
        })
        .await
        .expect("host down again");
    assert_eq!(faults.active().await.len(), 1);

    faults
        .inject(Fault::HostUp {
            host: "1-fd0".into(),
        })
        .await
        .expect("host up");
    let back = vm(&mock, "web_0").await;
    assert_eq!(
        back.power_state,
        PowerState::Running,
        "running before the outage"
    );
    assert_eq!(http_get(&back.address.expect("address"), "/").await.0, 200);
    assert_eq!(
        vm(&mock, "web_2").await.power_state,
        PowerState::Stopped,
        "stopped before the outage: stays stopped"
    );
    assert!(faults.active().await.is_empty());
    assert!(
        mock.zones().await.expect("zones")[0]
            .closed_fault_domains
            .is_empty()
    );
    mock.create(&spec_on("web_3", "1", 0, 1, 512))
        .await
        .expect("create once the host is up");
}

/// A VM out with both its host and its zone starts again only once both are back, in
/// either order; `clear` lifts a host down.
#[tokio::test]
async fn a_vm_returns_when_both_its_host_and_its_zone_are_up() {
    let mock = instant().await;
    let faults = mock.faults().expect("faults");
    for (id, fd) in [("web_0", 0), ("web_1", 1)] {
        mock.create(&spec_on(id, "2", fd, 1, 512))
            .await
            .expect("create");
    }
    let host_down = Fault::HostDown {
        host: "2-fd0".into(),
    };
    faults.inject(host_down.clone()).await.expect("host down");
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down");
    faults
        .inject(Fault::ZoneUp { zone: "2".into() })
        .await
        .expect("zone up");
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Stopped);
    assert_eq!(vm(&mock, "web_1").await.power_state, PowerState::Running);
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down");
    faults
        .inject(Fault::HostUp {
            host: "2-fd0".into(),
        })
        .await
        .expect("host up");
    assert_eq!(
        vm(&mock, "web_0").await.power_state,
        PowerState::Stopped,
        "its zone is still down"
    );
    faults.inject(host_down).await.expect("host down");
    faults.clear().await.expect("clear");
    assert!(faults.active().await.is_empty());
    for id in ["web_0", "web_1"] {
        assert_eq!(vm(&mock, id).await.power_state, PowerState::Running, "{id}");
    }
}

#[tokio::test]
async fn a_host_down_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = MockConfig::instant().with_state_dir(dir.path());
    let mock = Mock::open(config.clone()).await.expect("open");
    mock.create(&spec_on("web_0", "3", 2, 1, 512))
        .await
        .expect("create");
    let down = Fault::HostDown {
        host: "3-fd2".into(),
    };
    mock.faults()
        .expect("faults")
        .inject(down.clone())
        .await
        .expect("host down");
    mock.close().await;
    drop(mock);

    let mock = Mock::open(config).await.expect("reopen");
    let faults = mock.faults().expect("faults");
    assert_eq!(faults.active().await, [down]);
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Stopped);
    assert!(matches!(
        mock.create(&spec_on("web_1", "3", 2, 1, 512)).await,
        Err(BackendError::HostUnavailable { .. })
    ));
    assert_eq!(
        mock.hosts().await.expect("hosts")[8].used_memory_mib,
        512,
        "the VM's memory was journaled"
    );
    // The outage was remembered: its VM that ran starts again.
    faults.clear().await.expect("clear");
    let web_0 = vm(&mock, "web_0").await;
    assert_eq!(web_0.power_state, PowerState::Running);
    assert_eq!(http_get(&web_0.address.expect("address"), "/").await.0, 200);
}

/// Creates `web_0..count` with a 30 % failure rate; answers the ids that failed.
async fn failing_creates(seed: u64, count: u64) -> (Vec<String>, usize) {
    let mock = Mock::open(MockConfig::instant().with_seed(seed))
        .await
        .expect("open");
    mock.faults()
        .expect("faults")
        .inject(Fault::CreateFailureRate { rate: 0.3 })
        .await
        .expect("inject");
    let mut failed = Vec::new();
    for ordinal in 0..count {
        let spec = spec("web", ordinal, "1");
        match mock.create(&spec).await {
            Ok(vm) => assert_eq!(vm.power_state, PowerState::Running),
            Err(BackendError::CreateFailed { id, .. }) => {
                assert_eq!(
                    mock.get(&id).await.expect("get"),
                    None,
                    "nothing left behind"
                );
                failed.push(id);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let listed = mock.list(None).await.expect("list").len();
    (failed, listed)
}

#[tokio::test]
async fn create_failure_rate_fails_a_deterministic_share_and_leaves_nothing() {
    let (failed, listed) = failing_creates(42, 200).await;
    assert!(
        (30..=90).contains(&failed.len()),
        "about 30 % of 200 fail, got {}",
        failed.len()
    );
    assert_eq!(listed, 200 - failed.len());
    let (again, _) = failing_creates(42, 200).await;
    assert_eq!(failed, again, "the same seed fails the same creates");
    let (other, _) = failing_creates(7, 200).await;
    assert_ne!(failed, other, "another seed fails others");
}

// ----- time ------------------------------------------------------------------------------------

#[tokio::test]
async fn stepped_mode_moves_only_when_advanced_and_slow_boot_adds_to_latency() {
    let mock = stepped(Duration::from_secs(1), 0.0).await;
    let faults = mock.faults().expect("faults");
    faults
        .inject(Fault::SlowBoot { seconds: 30 })
        .await
        .expect("slow boot");
    assert_eq!(
        create(&mock, "web", 0, "1").await.power_state,
        PowerState::Starting
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        vm(&mock, "web_0").await.power_state,
        PowerState::Starting,
        "no advance, no move"
    );

    mock.advance(Duration::from_secs(30)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Starting);
    mock.advance(Duration::from_millis(999)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Starting);
    mock.advance(Duration::from_millis(1)).await;
    let running = vm(&mock, "web_0").await;
    assert_eq!(
        running.power_state,
        PowerState::Running,
        "after latency + slow boot"
    );
    assert_eq!(
        http_get(&running.address.expect("address"), "/").await.0,
        200
    );
    assert_eq!(mock.now(), Duration::from_secs(31));

    // Stopping is not a boot: the latency alone.
    mock.stop("web_0", false).await.expect("stop");
    mock.advance(Duration::from_secs(1)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Stopped);

    faults
        .inject(Fault::SlowBoot { seconds: 0 })
        .await
        .expect("clear slow boot");
    mock.start("web_0").await.expect("start");
    mock.advance(Duration::from_secs(1)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Running);
}

#[tokio::test]
async fn latency_jitter_stays_within_bounds() {
    let mock = stepped(Duration::from_secs(1), 0.5).await;
    let count = 40;
    for ordinal in 0..count {
        create(&mock, "web", ordinal, "1").await;
    }
    let step = Duration::from_millis(10);
    let mut became_running = std::collections::BTreeMap::new();
    let mut now = Duration::ZERO;
    while now < Duration::from_millis(1600) {
        for vm in mock.list(Some("web")).await.expect("list") {
            if vm.power_state == PowerState::Running {
                became_running.entry(vm.id).or_insert(now);
            }
        }
        mock.advance(step).await;
        now += step;
    }
    assert_eq!(
        became_running.len(),
        count as usize,
        "every VM runs by 1.5 s"
    );
    let times: BTreeSet<Duration> = became_running.values().copied().collect();
    let (first, last) = (times.first().copied(), times.last().copied());
    assert!(
        first >= Some(Duration::from_millis(500)),
        "none before latency × 0.5: {first:?}"
    );
    assert!(
        last <= Some(Duration::from_millis(1510)),
        "none after latency × 1.5: {last:?}"
    );
    assert!(times.len() >= 10, "jitter spreads the boots: {times:?}");
}

#[tokio::test(start_paused = true)]
async fn timer_mode_applies_transitions_on_its_own() {
    let config = MockConfig::default()
        .with_latency(Duration::from_secs(1))
        .with_jitter(0.0);
    assert_eq!(config.mode, Mode::Timer);
    let mock = Mock::open(config).await.expect("open");
    assert_eq!(
        create(&mock, "web", 0, "1").await.power_state,
        PowerState::Starting
    );
    tokio::time::sleep(Duration::from_millis(999)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Starting);
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Running);
    mock.stop("web_0", false).await.expect("stop");
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(vm(&mock, "web_0").await.power_state, PowerState::Stopped);
}

// ----- deletes ---------------------------------------------------------------------------------

/// A stepped mock (1 s latency, no jitter) with `web_0` and `web_1` running.
async fn two_running() -> Mock {
    let mock = stepped(Duration::from_secs(1), 0.0).await;
    create(&mock, "web", 0, "1").await;
    create(&mock, "web", 1, "2").await;
    mock.advance(Duration::from_secs(1)).await;
    mock
}

#[tokio::test]
async fn a_delete_takes_the_latency_and_the_vm_serves_no_more_meanwhile() {
    let mock = two_running().await;
    let address = vm(&mock, "web_0").await.address.expect("address");
    let mut kept = TcpStream::connect(&address).await.expect("connect");
    assert!(raw_get(&mut kept, "/health").await.is_some());

    let mut delete = std::pin::pin!(mock.delete("web_0", false));
    // Long enough for the port to close; no virtual time passes meanwhile.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), delete.as_mut())
            .await
            .is_err(),
        "a delete with latency answers once the VM is gone"
    );
    let deleting = vm(&mock, "web_0").await;
    assert_eq!(
        (deleting.power_state, deleting.address),
        (PowerState::Stopping, None)
    );
    assert_refused(&address).await;
    assert_eq!(raw_get(&mut kept, "/health").await, None);
    let console = mock.console("web_0").await.expect("console");
    assert!(console.contains("being deleted"), "{console}");
    let running: Vec<String> = mock
        .metrics(None)
        .await
        .expect("metrics")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(running, ["web_1"], "a VM being deleted takes no demand");

    // Nothing but another delete applies to a VM on its way out.
    let outcomes = [
        ("start", mock.start("web_0").await),
        ("stop", mock.stop("web_0", true).await),
        ("deallocate", mock.deallocate("web_0").await),
        ("restart", mock.restart("web_0").await),
        ("reimage", mock.reimage("web_0", &model(), 2).await),
        ("create", mock.create(&spec("web", 0, "1")).await),
    ];
    for (operation, outcome) in outcomes {
        match outcome {
            Err(BackendError::InvalidState { state, .. }) => {
                assert_eq!(state, "deleting", "{operation}")
            }
            other => panic!("{operation} while deleting: expected InvalidState, got {other:?}"),
        }
    }
    let faults = mock.faults().expect("faults");
    faults
        .inject(Fault::Crash {
            instance: "web_0".into(),
        })
        .await
        .expect("a crash of a VM being deleted changes nothing");
    assert_eq!(vm_state(&mock).await, PowerState::Stopping);

    // Halfway through, a second delete waits for the same removal: no new timer.
    mock.advance(Duration::from_millis(500)).await;
    let mut again = std::pin::pin!(mock.delete("web_0", true));
    assert!(again.as_mut().now_or_never().is_none());
    mock.advance(Duration::from_millis(499)).await;
    assert!(delete.as_mut().now_or_never().is_none(), "not before 1 s");
    assert_eq!(vm_state(&mock).await, PowerState::Stopping);

    mock.advance(Duration::from_millis(1)).await;
    delete.await.expect("delete");
    again
        .await
        .expect("the second delete answers with the first");
    assert_eq!(mock.get("web_0").await.expect("get"), None);
    let listed: Vec<String> = mock
        .list(None)
        .await
        .expect("list")
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(listed, ["web_1"]);
    assert_eq!(mock.now(), Duration::from_secs(2));
}

#[tokio::test]
async fn delete_latency_jitter_stays_within_bounds() {
    let mock = stepped(Duration::from_secs(1), 0.5).await;
    let count = 40;
    for ordinal in 0..count {
        create(&mock, "web", ordinal, "1").await;
    }
    mock.advance(Duration::from_secs(2)).await;
    let ids: Vec<String> = (0..count).map(|o| format!("web_{o}")).collect();
    let deletes = futures::future::join_all(ids.iter().map(|id| mock.delete(id, false)));
    let step = Duration::from_millis(10);
    let watch = async {
        let mut gone_at = std::collections::BTreeMap::new();
        let mut now = Duration::ZERO;
        while now < Duration::from_millis(1600) {
            let listed = mock.list(Some("web")).await.expect("list");
            assert!(
                listed.iter().all(|v| v.power_state == PowerState::Stopping),
                "listed as stopping until gone: {listed:?}"
            );
            for id in &ids {
                if listed.iter().all(|v| v.id != *id) {
                    gone_at.entry(id.clone()).or_insert(now);
                }
            }
            mock.advance(step).await;
            now += step;
        }
        gone_at
    };
    let (answers, gone_at) = tokio::join!(deletes, watch);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(gone_at.len(), count as usize, "every VM is gone by 1.5 s");
    let times: BTreeSet<Duration> = gone_at.values().copied().collect();
    let (first, last) = (times.first().copied(), times.last().copied());
    assert!(
        first >= Some(Duration::from_millis(500)),
        "none before latency × 0.5: {first:?}"
    );
    assert!(
        last <= Some(Duration::from_millis(1510)),
        "none after latency × 1.5: {last:?}"
    );
    assert!(times.len() >= 10, "jitter spreads the deletes: {times:?}");
}

#[tokio::test]
async fn with_zero_latency_a_delete_completes_inside_the_call() {
    let mock = stepped(Duration::ZERO, 0.5).await;
    let address = create(&mock, "web", 0, "1").await.address.expect("address");
    tokio::time::timeout(Duration::from_secs(5), mock.delete("web_0", false))
        .await
        .expect("no advance needed")
        .expect("delete");
    assert_eq!(mock.get("web_0").await.expect("get"), None);
    assert_refused(&address).await;
    assert_eq!(mock.now(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn timer_mode_deletes_after_the_latency() {
    let config = MockConfig::default()
        .with_latency(Duration::from_secs(1))
        .with_jitter(0.0);
    let mock = Mock::open(config).await.expect("open");
    create(&mock, "web", 0, "1").await;
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(vm_state(&mock).await, PowerState::Running);

    let started = tokio::time::Instant::now();
    let watch = async {
        tokio::time::sleep(Duration::from_millis(999)).await;
        vm_state(&mock).await
    };
    let (deleted, midway) = tokio::join!(mock.delete("web_0", false), watch);
    deleted.expect("delete");
    assert_eq!(midway, PowerState::Stopping);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(mock.get("web_0").await.expect("get"), None);
}

#[tokio::test]
async fn a_zone_going_down_finishes_the_deletes_in_it() {
    let mock = two_running().await;
    let (deleted, ()) = tokio::join!(mock.delete("web_1", false), async {
        assert_eq!(vm(&mock, "web_1").await.power_state, PowerState::Stopping);
        mock.faults()
            .expect("faults")
            .inject(Fault::ZoneDown { zone: "2".into() })
            .await
            .expect("zone down");
    });
    deleted.expect("delete");
    assert_eq!(mock.get("web_1").await.expect("get"), None);
    assert_eq!(mock.now(), Duration::from_secs(1), "without time passing");
}

// ----- lifecycle and persistence ---------------------------------------------------------------

#[tokio::test]
async fn shutdown_closes_every_port_and_refuses_operations() {
    let mock = instant().await;
    let mut addresses = Vec::new();
    for ordinal in 0..3 {
        addresses.push(
            create(&mock, "web", ordinal, "1")
                .await
                .address
                .expect("address"),
        );
    }
    mock.close().await;
    for address in &addresses {
        assert_refused(address).await;
    }
    assert!(matches!(
        mock.list(None).await,
        Err(BackendError::Io { .. })
    ));
    assert!(matches!(
        mock.create(&spec("web", 9, "1")).await,
        Err(BackendError::Io { .. })
    ));
}

#[tokio::test]
async fn persistence_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = MockConfig::instant().with_state_dir(dir.path());
    let mock = Mock::open(config.clone()).await.expect("open");
    for ordinal in 0..6 {
        let zone = ["1", "2", "3"][ordinal as usize % 3];
        create(&mock, "web", ordinal, zone).await;
    }
    // Some history, which compaction must fold away.
    for _ in 0..5 {
        mock.restart("web_0").await.expect("restart");
    }
    mock.stop("web_1", false).await.expect("stop");
    mock.delete("web_2", false).await.expect("delete");
    let faults = mock.faults().expect("faults");
    faults
        .inject(Fault::Unhealthy {
            instance: "web_3".into(),
        })
        .await
        .expect("inject");
    faults
        .inject(Fault::ZoneDown { zone: "3".into() })
        .await
        .expect("zone down");
    faults
        .inject(Fault::CreateFailureRate { rate: 0.25 })
        .await
        .expect("inject");
    let before: Vec<ObservedVm> = mock.list(None).await.expect("list");
    mock.close().await;
    drop(mock);

    let mock = Mock::open(config.clone()).await.expect("reopen");
    let after = mock.list(None).await.expect("list");
    let states: Vec<(&str, PowerState)> = after
        .iter()
        .map(|v| (v.id.as_str(), v.power_state))
        .collect();
    assert_eq!(
        states,
        [
            ("web_0", PowerState::Running),
            ("web_1", PowerState::Stopped),
            ("web_3", PowerState::Running),
            ("web_4", PowerState::Running),
            ("web_5", PowerState::Stopped),
        ]
    );
    for vm in after
        .iter()
        .filter(|v| v.power_state == PowerState::Running)
    {
        let address = vm.address.as_deref().expect("address");
        let (status, body) = http_get(address, "/").await;
        assert_eq!(
            (status, body["instance_id"].as_str()),
            (200, Some(vm.id.as_str()))
        );
    }
    let kept_ports = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.address.is_some() && b.address == a.address)
        .count();
    assert!(
        kept_ports > 0,
        "VMs serve on their previous ports when free"
    );
    let web_3 = after[2].address.as_deref().expect("address");
    assert_eq!(
        http_get(web_3, "/health").await.0,
        503,
        "the unhealthy fault persisted"
    );
    let faults = mock.faults().expect("faults");
    assert_eq!(
        faults.active().await,
        [
            Fault::ZoneDown { zone: "3".into() },
            Fault::Unhealthy {
                instance: "web_3".into()
            },
            Fault::CreateFailureRate { rate: 0.25 },
        ]
    );
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("journal");
    assert_eq!(
        journal.lines().count(),
        after.len() + 1,
        "compacted: one line per VM and the faults"
    );

    // The zone outage was remembered: its VM that ran starts again.
    faults.clear().await.expect("clear");
    let web_5 = vm(&mock, "web_5").await;
    assert_eq!(web_5.power_state, PowerState::Running);
    assert_eq!(http_get(&web_5.address.expect("address"), "/").await.0, 200);
    // Dropped without `close`: the journal is closed all the same.
    drop(mock);

    let mock = Mock::open(config).await.expect("reopen again");
    let running = mock
        .list(None)
        .await
        .expect("list")
        .iter()
        .filter(|v| v.power_state == PowerState::Running)
        .count();
    assert_eq!(running, 4, "all but the stopped web_1");
    assert!(mock.faults().expect("faults").active().await.is_empty());
}

#[tokio::test]
async fn transitional_vms_finish_their_transition_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = MockConfig::stepped().with_state_dir(dir.path());
    let mock = Mock::open(config.clone()).await.expect("open");
    create(&mock, "web", 0, "1").await;
    create(&mock, "web", 1, "1").await;
    create(&mock, "web", 2, "1").await;
    mock.advance(Duration::from_secs(2)).await;
    mock.stop("web_1", false).await.expect("stop");
    mock.deallocate("web_2").await.expect("deallocate");
    create(&mock, "web", 3, "1").await;
    let states: Vec<PowerState> = mock
        .list(None)
        .await
        .expect("list")
        .iter()
        .map(|v| v.power_state)
        .collect();
    assert_eq!(
        states,
        [
            PowerState::Running,
            PowerState::Stopping,
            PowerState::Deallocating,
            PowerState::Starting
        ]
    );
    drop(mock);

    let mock = Mock::open(config).await.expect("reopen");
    let after = mock.list(None).await.expect("list");
    let states: Vec<PowerState> = after.iter().map(|v| v.power_state).collect();
    assert_eq!(
        states,
        [
            PowerState::Running,
            PowerState::Stopped,
            PowerState::Deallocated,
            PowerState::Running
        ]
    );
    let web_3 = after[3].address.as_deref().expect("address");
    assert_eq!(http_get(web_3, "/").await.0, 200);
}

#[tokio::test]
async fn a_delete_in_progress_completes_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = MockConfig::stepped()
        .with_jitter(0.0)
        .with_state_dir(dir.path());
    let mock = Mock::open(config.clone()).await.expect("open");
    for ordinal in 0..3 {
        create(&mock, "web", ordinal, "1").await;
    }
    mock.advance(Duration::from_secs(1)).await;
    // Dropped before it answers: the delete goes on.
    assert!(mock.delete("web_0", false).now_or_never().is_none());
    // Shut down while it waits: the call fails, the journal still says deleting.
    let (deleted, ()) = tokio::join!(mock.delete("web_1", false), async { mock.close().await });
    assert!(
        matches!(deleted, Err(BackendError::Io { .. })),
        "{deleted:?}"
    );
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("journal");
    let last = journal.lines().last().expect("a line");
    assert!(
        last.contains(r#""id":"web_1""#) && last.contains(r#""deleting":true"#),
        "{last}"
    );
    drop(mock);

    let mock = Mock::open(config.clone()).await.expect("reopen");
    let ids: Vec<String> = mock
        .list(None)
        .await
        .expect("list")
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(ids, ["web_2"], "the deletes finished, nothing came back");
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("journal");
    assert_eq!(
        journal.lines().count(),
        2,
        "compacted: web_2 and the faults"
    );
    tokio::time::timeout(Duration::from_secs(5), mock.delete("web_0", false))
        .await
        .expect("an absent VM's delete answers at once")
        .expect("delete");
    drop(mock);

    let mock = Mock::open(config).await.expect("reopen again");
    assert_eq!(mock.list(None).await.expect("list").len(), 1);
}

#[tokio::test]
async fn a_corrupt_journal_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(JOURNAL_FILE), "not json\n{}\n").expect("write");
    let error = Mock::open(MockConfig::instant().with_state_dir(dir.path()))
        .await
        .expect_err("corrupt journal");
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[tokio::test]
async fn invalid_configuration_is_named() {
    for (config, field) in [
        (
            MockConfig::default().with_zones(Vec::<String>::new()),
            "zones",
        ),
        (MockConfig::default().with_zones(["1", "1"]), "zones"),
        (MockConfig::default().with_fault_domains(0), "fault_domains"),
        (MockConfig::default().with_jitter(2.0), "jitter"),
    ] {
        let error = Mock::open(config).await.expect_err("invalid");
        assert!(error.to_string().contains(field), "{error}");
    }
}

/// Two installations, one after the other, on one journal: each sees the other's VMs with
/// their installation id and can change none of them — a create of a taken id is `Foreign`,
/// a delete leaves the VM, every other operation is `NotFound` —, and a VM journaled before
/// installations had ids is adopted once, by whoever asks first.
#[tokio::test]
async fn another_installations_vms_are_listed_and_never_touched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open = |id: &str| {
        Mock::open(
            MockConfig::instant()
                .with_state_dir(dir.path())
                .with_installation_id(id),
        )
    };
    let a = open("inst-a").await.expect("open a");
    assert_eq!(a.installation_id(), "inst-a");
    create(&a, "web", 0, "1").await;
    create(&a, "web", 1, "2").await;
    a.close().await;

    let b = open("inst-b").await.expect("open b");
    let seen = b.list(None).await.expect("list");
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|vm| vm.installation_id.as_deref() == Some("inst-a")),
        "{seen:?}"
    );
    match b.create(&spec("web", 0, "1")).await {
        Err(BackendError::Foreign { id, installation }) => {
            assert_eq!(
                (id.as_str(), installation.as_deref()),
                ("web_0", Some("inst-a"))
            );
        }
        other => panic!("create of another installation's id: expected Foreign, got {other:?}"),
    }
    b.delete("web_0", true).await.expect("a delete succeeds");
    for (what, outcome) in [
        ("start", b.start("web_1").await),
        ("stop", b.stop("web_1", true).await),
        ("deallocate", b.deallocate("web_1").await),
        ("restart", b.restart("web_1").await),
        ("reimage", b.reimage("web_1", &model(), 2).await),
    ] {
        assert!(
            matches!(outcome, Err(BackendError::NotFound { .. })),
            "{what}: {outcome:?}"
        );
    }
    assert!(matches!(
        b.faults()
            .expect("faults")
            .inject(Fault::Crash {
                instance: "web_1".into()
            })
            .await,
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(
        b.adopt("web_1").await,
        Err(BackendError::Foreign { .. })
    ));
    let mine = create(&b, "api", 0, "1").await;
    assert_eq!(mine.installation_id.as_deref(), Some("inst-b"));
    b.close().await;

    let a = open("inst-a").await.expect("reopen a");
    let web: Vec<(String, PowerState)> = a
        .list(Some("web"))
        .await
        .expect("list")
        .into_iter()
        .map(|vm| (vm.id, vm.power_state))
        .collect();
    assert_eq!(
        web,
        [
            ("web_0".to_string(), PowerState::Running),
            ("web_1".to_string(), PowerState::Running)
        ],
        "B changed none of A's VMs"
    );
    assert_eq!(
        vm(&a, "api_0").await.installation_id.as_deref(),
        Some("inst-b")
    );
    a.close().await;

    // A journal line from before installations had ids carries none: adopted on request.
    let journal = dir.path().join(JOURNAL_FILE);
    let text = std::fs::read_to_string(&journal).expect("journal");
    std::fs::write(
        &journal,
        text.replace(",\"installation_id\":\"inst-a\"", ""),
    )
    .unwrap();
    let a = open("inst-a").await.expect("reopen a");
    assert_eq!(vm(&a, "web_0").await.installation_id, None);
    assert!(matches!(
        a.start("web_0").await,
        Err(BackendError::NotFound { .. })
    ));
    let adopted = a.adopt("web_0").await.expect("adopt");
    assert_eq!(adopted.installation_id.as_deref(), Some("inst-a"));
    a.adopt("web_0")
        .await
        .expect("adopting again changes nothing");
    a.close().await;
    let b = open("inst-b").await.expect("reopen b");
    assert!(matches!(
        b.adopt("web_0").await,
        Err(BackendError::Foreign { .. })
    ));
    assert_eq!(
        vm(&b, "web_0").await.installation_id.as_deref(),
        Some("inst-a"),
        "the adoption was journaled"
    );
}
