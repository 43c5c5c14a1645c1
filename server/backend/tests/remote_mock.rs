//! The mock hypervisor as a service: the conformance suite against [`RemoteMock`] talking
//! real HTTP to a server in this process on 127.0.0.1:0, then what only the service does —
//! errors rebuilt variant for variant, refusal without the token, changes streamed to every
//! replica, one simulator per installation, state that outlives the server.

use std::sync::Arc;
use std::time::Duration;

use flotilla_backend::conformance::Subject;
use flotilla_backend::mock::remote::server::{self, Hypervisor};
use flotilla_backend::mock::remote::{MockUrl, RemoteMock};
use flotilla_backend::mock::{Mock, MockConfig};
use flotilla_backend::{Backend, BackendError, VmSpec};
use flotilla_domain::demand::{Demand, Pattern};
use flotilla_domain::{Fault, Model, PowerState};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TOKEN: &str = "test-mock-token";

/// A mock hypervisor served in this process; stops when dropped.
struct Served {
    url: MockUrl,
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Served {
    async fn start(config: MockConfig) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Served::on(listener, config).await
    }

    async fn on(listener: TcpListener, config: MockConfig) -> Served {
        let address = listener.local_addr().expect("address");
        let hypervisor = Hypervisor::open(config, TOKEN.into())
            .await
            .expect("open the hypervisor");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(Arc::new(hypervisor), listener, async {
            let _ = stopped.await;
        }));
        Served {
            url: MockUrl::parse(&format!("http://{address}")).expect("a loopback URL"),
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn client(&self, installation: &str) -> RemoteMock {
        RemoteMock::connect(self.url.clone(), TOKEN, installation)
            .await
            .expect("connect")
    }

    /// Stops the server and waits until every installation's mock is closed.
    async fn stop(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("served");
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A subject on a server that lives as long as the test's runtime.
async fn subject(config: MockConfig) -> Subject {
    let served = Served::start(config).await;
    let client = served.client("conformance").await;
    // The server task stops with the runtime at the end of the test.
    std::mem::forget(served);
    Subject::new(Arc::new(client)).with_timeout(Duration::from_secs(10))
}

mod conformance_instant {
    use super::*;
    flotilla_backend::backend_conformance!(subject(MockConfig::instant()));
}

mod conformance_timer {
    use super::*;
    flotilla_backend::backend_conformance!(subject(
        MockConfig::default().with_latency(Duration::from_millis(20))
    ));
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
        fault_domain: 0,
        model_version: 1,
        model: model(),
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Whether `id` is announced on `changes` within `within` (other ids are skipped).
async fn hears(
    changes: &mut tokio::sync::broadcast::Receiver<String>,
    id: &str,
    within: Duration,
) -> bool {
    let heard = async {
        loop {
            match changes.recv().await {
                Ok(changed) if changed == id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await
                }
            }
        }
    };
    tokio::time::timeout(within, heard).await.is_ok()
}

async fn announced(changes: &mut tokio::sync::broadcast::Receiver<String>, id: &str) {
    assert!(
        hears(changes, id, Duration::from_secs(5)).await,
        "{id} was not announced"
    );
}

/// Creates VMs `<set>_0`, `<set>_1`… through `remote` until each of `followers` has heard
/// of one: their change streams are open (they connect in the background).
async fn until_heard(
    remote: &RemoteMock,
    set: &str,
    followers: &mut [&mut tokio::sync::broadcast::Receiver<String>],
) {
    let open = async {
        for n in 0.. {
            let vm = remote.create(&spec(set, n, "1")).await.expect("create");
            let mut all = true;
            for follower in followers.iter_mut() {
                all &= hears(follower, &vm.id, Duration::from_millis(300)).await;
            }
            if all {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), open)
        .await
        .expect("the change streams open");
}

// ----- errors ----------------------------------------------------------------------------------

/// Each error the simulator raises reaches the client as the same variant with the same
/// fields; `Foreign` from a VM another installation left in this one's journal.
#[tokio::test]
async fn errors_come_back_as_the_same_variant() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A VM of installation `other` in the journal of installation `ours`.
    let intruder = Mock::open(
        MockConfig::instant()
            .with_state_dir(dir.path().join("ours"))
            .with_installation_id("other"),
    )
    .await
    .expect("open");
    intruder.create(&spec("web", 9, "1")).await.expect("create");
    intruder.close().await;

    let served = Served::start(MockConfig::instant().with_state_dir(dir.path())).await;
    let remote = served.client("ours").await;
    match remote.create(&spec("web", 9, "1")).await {
        Err(BackendError::Foreign { id, installation }) => {
            assert_eq!(
                (id.as_str(), installation.as_deref()),
                ("web_9", Some("other"))
            );
        }
        other => panic!("expected Foreign, got {other:?}"),
    }
    match remote.start("web_404").await {
        Err(BackendError::NotFound { id }) => assert_eq!(id, "web_404"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match remote.create(&spec("web", 0, "9")).await {
        Err(BackendError::UnknownZone { zone }) => assert_eq!(zone, "9"),
        other => panic!("expected UnknownZone, got {other:?}"),
    }
    let mut bad_domain = spec("web", 0, "1");
    bad_domain.fault_domain = 7;
    match remote.create(&bad_domain).await {
        Err(BackendError::CreateFailed { id, reason }) => {
            assert_eq!(id, "web_0");
            assert!(reason.contains("fault domains 0 to 2"), "{reason}");
        }
        other => panic!("expected CreateFailed, got {other:?}"),
    }
    let faults = remote.faults().expect("the remote mock injects faults");
    match faults.inject(Fault::CreateFailureRate { rate: 2.0 }).await {
        Err(BackendError::InvalidFault(errors)) => assert!(!errors.0.is_empty()),
        other => panic!("expected InvalidFault, got {other:?}"),
    }
    remote.create(&spec("web", 1, "1")).await.expect("create");
    remote.stop("web_1", true).await.expect("stop");
    match remote.restart("web_1").await {
        Err(BackendError::InvalidState {
            id,
            operation,
            state,
        }) => assert_eq!(
            (id.as_str(), operation, state.as_str()),
            ("web_1", "restart", "stopped")
        ),
        other => panic!("expected InvalidState, got {other:?}"),
    }
    faults
        .inject(Fault::ZoneDown { zone: "2".into() })
        .await
        .expect("zone down");
    match remote.create(&spec("web", 2, "2")).await {
        Err(BackendError::ZoneUnavailable { zone }) => assert_eq!(zone, "2"),
        other => panic!("expected ZoneUnavailable, got {other:?}"),
    }
    assert_eq!(
        faults.active().await,
        [Fault::ZoneDown { zone: "2".into() }]
    );
    faults.clear().await.expect("clear");
    assert!(faults.active().await.is_empty());
    served.stop().await;
}

/// The hosts come over the wire as the mock lists them, and host faults travel both ways:
/// `host_down` in, `HostUnavailable` and `UnknownHost` back, a closed create refused.
#[tokio::test]
async fn hosts_and_host_faults_travel() {
    let config = MockConfig::instant().with_zones(["1", "2"]);
    let served = Served::start(config.clone()).await;
    let remote = served.client("ours").await;
    remote.create(&spec("web", 0, "2")).await.expect("create");
    let hosts = remote.hosts().await.expect("hosts");
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["1-fd0", "1-fd1", "1-fd2", "2-fd0", "2-fd1", "2-fd2"]
    );
    assert_eq!(
        (hosts[3].vms, hosts[3].running, hosts[3].used_vcpus),
        (1, 1, 1)
    );
    assert!(hosts.iter().all(|h| h.uri.is_none() && h.available));
    assert_eq!(hosts[0].images, config.images);

    let faults = remote.faults().expect("faults");
    let down = Fault::HostDown {
        host: "2-fd0".into(),
    };
    faults.inject(down.clone()).await.expect("host down");
    assert_eq!(faults.active().await, [down]);
    assert_eq!(
        remote
            .get("web_0")
            .await
            .expect("get")
            .expect("VM")
            .power_state,
        PowerState::Stopped
    );
    assert!(!remote.hosts().await.expect("hosts")[3].available);
    match remote.create(&spec("web", 1, "2")).await {
        Err(BackendError::HostUnavailable { host }) => assert_eq!(host, "2-fd0"),
        other => panic!("expected HostUnavailable, got {other:?}"),
    }
    match faults
        .inject(Fault::HostUp {
            host: "3-fd0".into(),
        })
        .await
    {
        Err(BackendError::UnknownHost { host }) => assert_eq!(host, "3-fd0"),
        other => panic!("expected UnknownHost, got {other:?}"),
    }
    let mut closed = spec("web", 2, "1");
    closed.closed_fault_domains = vec![0];
    match remote.create(&closed).await {
        Err(BackendError::CreateFailed { reason, .. }) => {
            assert!(reason.contains("closed"), "{reason}");
        }
        other => panic!("expected CreateFailed, got {other:?}"),
    }
    faults.clear().await.expect("clear");
    assert_eq!(
        remote
            .get("web_0")
            .await
            .expect("get")
            .expect("VM")
            .power_state,
        PowerState::Running
    );
    served.stop().await;
}

/// A transport failure is an I/O error naming the operation: a stopped server refuses.
#[tokio::test]
async fn an_unreachable_hypervisor_is_an_io_error() {
    let served = Served::start(MockConfig::instant()).await;
    let remote = served.client("ours").await;
    served.stop().await;
    match remote.list(None).await {
        Err(BackendError::Io { operation, source }) => {
            assert_eq!(operation, "list");
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

// ----- refusal ---------------------------------------------------------------------------------

/// Without the token, or with a wrong one, every request is 401 and changes nothing: a
/// create sent that way leaves no VM behind.
#[tokio::test]
async fn requests_without_the_token_are_refused_and_change_nothing() {
    let served = Served::start(MockConfig::instant()).await;
    let create = serde_json::json!({"op": "create", "spec": spec("web", 0, "1")});
    let url = format!("http://{}/v1/backend", served.address);
    for authorization in [
        None,
        Some("Bearer wrong-token"),
        Some(TOKEN),
        Some("Basic x"),
    ] {
        let mut request = http()
            .post(&url)
            .header("x-flotilla-installation", "ours")
            .json(&create);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    for path in ["/v1/changes", "/v1/healthz"] {
        let response = http()
            .get(format!("http://{}{path}", served.address))
            .bearer_auth("wrong-token")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{path}");
    }
    let remote = served.client("ours").await;
    assert!(remote.list(None).await.expect("list").is_empty());
    match RemoteMock::connect(served.url.clone(), "wrong-token", "ours").await {
        Err(BackendError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
        }
        other => panic!("a wrong token must not connect: {other:?}"),
    }
    served.stop().await;
}

// ----- changes, installations, persistence -----------------------------------------------------

/// Two replicas of one installation share one simulator: what one does, the other lists,
/// and both hear of it on their change streams.
#[tokio::test]
async fn replicas_of_an_installation_share_vms_and_hear_every_change() {
    let served = Served::start(MockConfig::default().with_latency(Duration::from_millis(20))).await;
    let first = served.client("ours").await;
    let second = served.client("ours").await;
    let mut heard_first = first.state_changes().expect("changes are announced");
    let mut heard_second = second.state_changes().expect("changes are announced");
    until_heard(&first, "warm", &mut [&mut heard_first, &mut heard_second]).await;

    first.create(&spec("web", 0, "1")).await.expect("create");
    // The transition to running is announced too, after the latency.
    announced(&mut heard_second, "web_0").await;
    let listed = second.list(Some("web")).await.expect("list");
    assert_eq!(listed.len(), 1);
    second.stop("web_0", true).await.expect("stop");
    announced(&mut heard_first, "web_0").await;
    let vm = first.get("web_0").await.expect("get").expect("exists");
    assert_eq!(vm.power_state, PowerState::Stopped);

    // The synthetic demand one replica sets, the other reads.
    let sim = first.simulation().expect("the remote mock simulates");
    let demand = Demand {
        pattern: Pattern::Constant { rps: 120.0 },
        noise_percent: 0.0,
        seed: 1,
        started_at: None,
    };
    sim.set_demand("web", Some(demand)).await.expect("set");
    let rps = second
        .simulation()
        .expect("simulates")
        .demand_rps("web")
        .await;
    assert_eq!(rps.expect("read"), Some(120.0));
    served.stop().await;
}

/// Each installation has a simulator of its own: neither lists the other's VMs.
#[tokio::test]
async fn installations_do_not_see_each_other() {
    let served = Served::start(MockConfig::instant()).await;
    let a = served.client("inst-a").await;
    let b = served.client("inst-b").await;
    a.create(&spec("web", 0, "1")).await.expect("create");
    assert_eq!(a.list(None).await.expect("list").len(), 1);
    assert!(b.list(None).await.expect("list").is_empty());
    assert_eq!(b.installation_id(), "inst-b");
    assert!(b.get("web_0").await.expect("get").is_none());
    served.stop().await;
}

/// VMs outlive the server, as real VMs outlive a hypervisor's API: a server opened again on
/// the same state serves them again at once — before any client calls — and a client's
/// change stream reconnects by itself.
#[tokio::test]
async fn vms_outlive_the_server_and_the_change_stream_reconnects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = MockConfig::instant().with_state_dir(dir.path());
    let served = Served::start(config.clone()).await;
    let address = served.address;
    let remote = served.client("ours").await;
    let mut heard = remote.state_changes().expect("changes are announced");
    let vm = remote.create(&spec("web", 0, "1")).await.expect("create");
    let vm_address = vm.address.expect("running");
    served.stop().await;
    assert!(
        tokio::net::TcpStream::connect(&vm_address).await.is_err(),
        "the VM's port closes with the server"
    );

    let listener = TcpListener::bind(address)
        .await
        .expect("the same port again");
    let served = Served::on(listener, config).await;
    // Served again before any client called.
    let response = http()
        .get(format!("http://{vm_address}/"))
        .send()
        .await
        .expect("the VM serves again");
    assert_eq!(response.status(), 200);
    let listed = remote.list(None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].installation_id.as_deref(), Some("ours"));

    // The same client hears changes again once its stream has reconnected.
    until_heard(&remote, "after", &mut [&mut heard]).await;
    served.stop().await;
}
