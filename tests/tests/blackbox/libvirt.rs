//! `flotilla serve --backend libvirt` on libvirt's test driver (run with the `libvirt`
//! feature; `make test` builds with it): three simulated hosts, one per zone, carry a scale
//! set through the REST API — spread over the zones, scaled in, deleted, nothing left —, a
//! VM larger than any host fails with the hosts' numbers, the hosts and the console are
//! shown, a host put under maintenance is emptied onto its zone's other host, and a bad
//! configuration stops the server with a message naming it. With
//! `FLOTILLA_TEST_REAL_VMS=1` (`make test-vm`), a host served by a libvirtd of the test's
//! own is cut off, then crashes, and comes back each time: its instances are replaced and
//! what it kept is deleted. The real-VM test is `real_vm.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_backend::libvirt::simulated_host;
use flotilla_backend::libvirt::testing::{Cable, Daemon};
use flotilla_tests::{Api, TestServer, count_by, wait_until};
use serde_json::{Value, json};

use super::lifecycle::vm_ids;

/// A configuration file with three simulated hosts (zones 1–3, 8 vCPUs and 16 GiB each,
/// images `debian-12` and `ubuntu-24.04`).
fn config_file(dir: &std::path::Path) -> String {
    let hosts: Vec<Value> = ["1", "2", "3"]
        .iter()
        .map(|zone| {
            let uri = simulated_host(
                &dir.join(format!("host-{zone}.xml")),
                8,
                16_384,
                &["debian-12", "ubuntu-24.04"],
            )
            .unwrap();
            json!({"uri": uri, "zone": zone})
        })
        .collect();
    let file = dir.join("libvirt.json");
    std::fs::write(&file, json!({"hosts": hosts}).to_string()).unwrap();
    file.display().to_string()
}

/// A server on three simulated hosts (see [`config_file`]) and its data directory.
async fn on_three_hosts() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path());
    let server = TestServer::start_with(
        dir.path(),
        &["--backend", "libvirt", "--libvirt-config", &file],
    )
    .await;
    (dir, server)
}

#[tokio::test]
async fn a_scale_set_runs_on_libvirt_hosts() {
    let (_dir, server) = on_three_hosts().await;
    let api = server.api();
    // The hosts, their zones, sizes and images are visible; the images come from them.
    let (_, backend) = api.get("/backend").await;
    assert_eq!(
        backend["images"],
        json!(["debian-12", "ubuntu-24.04"]),
        "{backend}"
    );
    let hosts = backend["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{backend}");
    assert_eq!(
        (hosts[0]["vcpus"].as_u64(), hosts[0]["memory_mib"].as_u64()),
        (Some(8), Some(16_384))
    );
    api.create_set("web", 3, json!({})).await;
    let items = api.wait_running("web", 3).await;
    assert_eq!(count_by(&items, "zone").len(), 3, "{items:?}");
    for i in &items {
        let address = i["address"].as_str().unwrap_or_default();
        assert!(address.starts_with("127.0.0.1:200"), "{i}");
    }
    // A model larger than any host: the create fails naming each host and its free
    // capacity, on the instance, and no domain is left behind.
    let big = json!({"model": {"image": "debian-12", "vcpus": 16, "memory_mib": 2048,
                               "disk_gib": 10, "user_data": null, "app_port": 80}});
    api.create_set("big", 1, big).await;
    wait_until(
        "the big instance fails",
        Duration::from_secs(30),
        || async {
            api.instances("big").await.iter().any(|i| {
                i["provisioning_state"] == "failed"
                    && i["last_error"].as_str().is_some_and(|e| {
                        e.contains("out of capacity for 16 vCPUs")
                            && e.contains("has 6 vCPUs and 14336 MiB free")
                    })
            })
        },
    )
    .await;
    let vms = |body: Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, listed) = api.get("/backend/vms").await;
    assert!(
        vms(listed.clone()).iter().all(|id| id.starts_with("web_")),
        "{listed}"
    );

    // Scale in, then delete: the backend holds no VM afterwards.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let items = api.wait_running("web", 1).await;
    // The console log of a VM (the test driver runs no guest: empty), and of none.
    let id = items[0]["id"].as_str().unwrap();
    let (status, body) = api
        .get(&format!("/scale-sets/web/instances/{id}/console"))
        .await;
    assert_eq!((status, body["output"].as_str()), (200, Some("")), "{body}");
    let (status, body) = api.get("/scale-sets/web/instances/web_99/console").await;
    assert_eq!(status, 404, "{body}");
    let (_, backend) = api.get("/backend").await;
    let used: u64 = backend["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["used_vcpus"].as_u64().unwrap())
        .sum();
    assert_eq!(used, 2, "one web VM of 2 vCPUs: {backend}");
    for set in ["web", "big"] {
        let (status, body) = api.delete(&format!("/scale-sets/{set}")).await;
        assert_eq!(status, 202, "{body}");
    }
    wait_until("the sets are gone", Duration::from_secs(30), || async {
        api.get_status("/scale-sets/web").await == 404
            && api.get_status("/scale-sets/big").await == 404
    })
    .await;
    let (_, listed) = api.get("/backend/vms").await;
    assert!(
        vms(listed.clone()).is_empty(),
        "no VM left behind: {listed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_bad_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libvirt.json");
    let start = |extra: Vec<String>| {
        let dir = dir.path().to_owned();
        async move {
            let mut args = vec!["--backend".to_owned(), "libvirt".to_owned()];
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let args = flotilla_tests::serve_args(&dir, &args);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let error = flotilla::run(args, listener, std::future::pending())
                .await
                .expect_err("a bad configuration stops the server");
            format!("{error:#}")
        }
    };
    std::fs::write(&file, "{\"hosts\": 3}").unwrap();
    let config = vec!["--libvirt-config".to_owned(), file.display().to_string()];
    let text = start(config.clone()).await;
    assert!(
        text.contains("libvirt.json: not a libvirt configuration"),
        "{text}"
    );
    std::fs::write(
        &file,
        json!({"hosts": [{"uri": "test:///default", "zone": "1", "vcpus": 0}]}).to_string(),
    )
    .unwrap();
    let text = start(config).await;
    assert!(
        text.contains("hosts[0].vcpus: must be at least 1"),
        "{text}"
    );
    let text = start(vec!["--libvirt-host".into(), "qemu:///system".into()]).await;
    assert!(
        text.contains("--libvirt-host: libvirt host \"qemu:///system\": expected zone=uri"),
        "{text}"
    );
}

#[tokio::test]
async fn hosts_given_as_zone_uri_pairs_offer_their_whole_size() {
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = ["1", "2"]
        .iter()
        .map(|zone| {
            let uri = simulated_host(
                &dir.path().join(format!("h{zone}.xml")),
                4,
                8192,
                &["debian-12"],
            )
            .unwrap();
            format!("{zone}={uri}")
        })
        .collect();
    let server = TestServer::start_with(
        dir.path(),
        &["--backend", "libvirt", "--libvirt-host", &hosts.join(",")],
    )
    .await;
    let (_, backend) = server.api().get("/backend").await;
    let sizes: Vec<(&str, u64, u64)> = backend["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["zone"].as_str().unwrap(),
                h["vcpus"].as_u64().unwrap(),
                h["memory_mib"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sizes, [("1", 4, 8192), ("2", 4, 8192)], "{backend}");
    assert_eq!(backend["images"], json!(["debian-12"]));
    server.stop().await;
}

/// Two installations at once on the same libvirt host (the test driver's shared
/// `test:///default`), and a third with a fresh data directory pointed at it: each sees the
/// others' VMs as foreign, and none deletes or adopts a VM of another.
#[tokio::test]
async fn installations_sharing_hosts_never_touch_each_other() {
    flotilla_backend::libvirt::share_test_host(&["debian-12"]).unwrap();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| {
        let file = dir.join("libvirt.json");
        std::fs::write(
            &file,
            json!({"hosts": [{"uri": flotilla_backend::libvirt::SHARED_TEST_HOST, "zone": "1",
                              "vcpus": 64, "memory_mib": 65536, "pool": "default-pool"}],
                   "port_base": 23_000})
            .to_string(),
        )
        .unwrap();
        file.display().to_string()
    };
    let start = |dir: &std::path::Path| {
        let file = config(dir);
        let dir = dir.to_owned();
        async move {
            TestServer::start_with(
                &dir,
                &[
                    "--backend",
                    "libvirt",
                    "--libvirt-config",
                    &file,
                    "--orphan-grace",
                    "1s",
                ],
            )
            .await
        }
    };
    let small = json!({"zones": ["1"], "model": {"image": "debian-12", "vcpus": 1,
        "memory_mib": 256, "disk_gib": 1, "user_data": null, "app_port": 80}});
    let a = start(dirs[0].path()).await;
    let b = start(dirs[1].path()).await;
    a.api().create_set("alpha", 2, small.clone()).await;
    b.api().create_set("beta", 1, small.clone()).await;
    a.api().wait_running("alpha", 2).await;
    b.api().wait_running("beta", 1).await;
    // A fresh data directory pointed at the same host.
    let c = start(dirs[2].path()).await;
    // Several reconcile passes and orphan sweeps of each, past every grace period.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (server, own) in [(&a, "alpha"), (&b, "beta"), (&c, "")] {
        let (_, body) = server.api().get("/backend/vms").await;
        let vms: Vec<(String, bool)> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["foreign"].as_bool().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, bool)> = ["alpha_0", "alpha_1", "beta_0"]
            .iter()
            .map(|id| (id.to_string(), !id.starts_with(own) || own.is_empty()))
            .collect();
        assert_eq!(vms, expected, "as {own:?} sees them");
        let (_, log) = server
            .api()
            .get("/activity?operation=backend.orphans_removed")
            .await;
        assert_eq!(log["items"], json!([]), "{own:?} removed nothing");
    }
    a.api().wait_running("alpha", 2).await;
    b.api().wait_running("beta", 1).await;
    for (server, set) in [(&a, "alpha"), (&b, "beta")] {
        let (status, body) = server.api().delete(&format!("/scale-sets/{set}")).await;
        assert_eq!(status, 202, "{body}");
        wait_until("the set is gone", Duration::from_secs(30), || async {
            server.api().get_status(&format!("/scale-sets/{set}")).await == 404
        })
        .await;
    }
    let (_, body) = c.api().get("/backend/vms").await;
    assert_eq!(body["items"], json!([]), "each deleted its own");
    for server in [a, b, c] {
        server.stop().await;
    }
}

#[tokio::test]
async fn host_maintenance_moves_instances_to_the_zones_other_host() {
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<Value> = ["rack-a", "rack-b"]
        .iter()
        .map(|name| {
            let uri = simulated_host(
                &dir.path().join(format!("{name}.xml")),
                8,
                16_384,
                &["debian-12"],
            )
            .unwrap();
            json!({"name": name, "uri": uri, "zone": "1"})
        })
        .collect();
    let file = dir.path().join("libvirt.json");
    std::fs::write(&file, json!({"hosts": hosts}).to_string()).unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &[
            "--backend",
            "libvirt",
            "--libvirt-config",
            &file.display().to_string(),
        ],
    )
    .await;
    let api = server.api();
    let (_, backend) = api.get("/backend").await;
    let names: Vec<&str> = backend["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rack-a", "rack-b"], "{backend}");
    api.create_set("web", 2, json!({"zones": ["1"]})).await;
    let items = api.wait_running("web", 2).await;
    assert_eq!(
        count_by(&items, "fault_domain").len(),
        2,
        "one per host: {items:?}"
    );

    let (status, body) = api.post_empty("/backend/hosts/rack-a/maintenance").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances_at_start"], 1, "{body}");
    wait_until("rack-a is empty", Duration::from_secs(60), || async {
        let (_, m) = api.get("/backend/maintenance").await;
        m["items"][0]["empty"] == true
    })
    .await;
    let items = api.wait_running("web", 2).await;
    assert!(items.iter().all(|i| i["fault_domain"] == 1), "{items:?}");
    let (_, backend) = api.get("/backend").await;
    assert_eq!(backend["hosts"][0]["vms"], 0, "{backend}");
    assert_eq!(backend["zones"][0]["closed_fault_domains"], json!([0]));
    let (status, body) = api
        .post_empty("/backend/hosts/rack-a/maintenance/end")
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// Sends `body` as `PUT /busy` through VM `id`'s metadata socket, as QEMU forwards a
/// guest's request, and answers the status and the answer's body.
async fn guest_asks(data_dir: &std::path::Path, id: &str, body: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = data_dir.join(format!("libvirt/metadata/{id}.sock"));
    let mut stream = tokio::net::UnixStream::connect(&socket)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    let request = format!(
        "PUT /busy HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // The endpoint keeps the stream open: the answer ends at its Content-Length.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            if body.len() >= length {
                let status = head[9..12].parse().unwrap();
                return (status, serde_json::from_str(body).unwrap());
            }
        }
        assert!(n > 0, "the stream ended: {text:?}");
    }
}

#[tokio::test]
async fn a_guest_sets_its_own_busy_lease_and_scale_in_spares_it() {
    let (dir, server) = on_three_hosts().await;
    let api = server.api();
    api.create_set("web", 2, json!({"zones": ["1"]})).await;
    let items = api.wait_running("web", 2).await;
    // The newest instance: the one scale-in would remove.
    let id = items[1]["id"].as_str().unwrap().to_owned();
    let instance = |id: String| {
        let api = api.clone();
        async move { api.get(&format!("/scale-sets/web/instances/{id}")).await.1 }
    };

    // Through its own socket a guest reaches its own instance only.
    let (status, answer) = guest_asks(dir.path(), &id, r#"{"seconds":600}"#).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["id"].as_str(), answer["scale_set"].as_str()),
        (Some(id.as_str()), Some("web"))
    );
    let until = instance(id.clone()).await["busy_until"].clone();
    // (The record keeps microseconds.)
    let second = |t: &Value| t.as_str().map(|t| t[..19].to_owned());
    assert!(
        until.is_string() && second(&answer["busy_until"]) == second(&until),
        "{answer} {until}"
    );
    assert!(instance(items[0]["id"].as_str().unwrap().to_owned()).await["busy_until"].is_null());
    let (_, activity) = api.get("/activity?operation=instance.busy").await;
    assert_eq!(
        activity["items"][0]["actor"],
        format!("guest:{id}"),
        "{activity}"
    );

    // Beyond the maximum, or not the lease's body: refused by field, nothing changes.
    for (body, field) in [
        (r#"{"seconds":99999}"#, "seconds"),
        (r#"{"seconds":1,"id":"web_0"}"#, "body"),
    ] {
        let (status, answer) = guest_asks(dir.path(), &id, body).await;
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(field),
            "{answer}"
        );
        assert_eq!(instance(id.clone()).await["busy_until"], until);
    }

    // Scale-in leaves the busy instance and takes the other.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let left = api.wait_running("web", 1).await;
    assert_eq!(left[0]["id"], id.as_str(), "{left:?}");
    let (status, answer) = guest_asks(dir.path(), &id, r#"{"seconds":0}"#).await;
    assert_eq!(
        (status, answer["busy_until"].is_null()),
        (200, true),
        "{answer}"
    );
    server.stop().await;
}

/// Waits until host `host` is closed as unreachable by the control plane.
async fn until_closed_as_unreachable(api: &Api, host: &str) {
    wait_until(
        &format!("{host} is closed as unreachable"),
        Duration::from_secs(20),
        || async {
            let (_, m) = api.get("/backend/maintenance").await;
            m["items"].as_array().unwrap().iter().any(|m| {
                m["host"] == host
                    && m["reason"] == "unreachable"
                    && m["started_by"] == "system:hosts"
            })
        },
    )
    .await;
}

/// Waits until no host is closed, and answers the targets of the `host.reachable` entries.
async fn until_all_open(api: &Api) -> Vec<String> {
    wait_until("every host is open", Duration::from_secs(30), || async {
        let (_, m) = api.get("/backend/maintenance").await;
        m["items"] == json!([])
    })
    .await;
    let (_, log) = api.get("/activity?operation=host.reachable").await;
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until set `web` has `n` instances, all running on fault domain 0 (`rack-a`), and
/// answers their ids.
async fn until_all_on_rack_a(api: &Api, n: usize) -> BTreeSet<String> {
    wait_until(
        &format!("{n} instances run on rack-a"),
        Duration::from_secs(60),
        || async {
            let items = api.instances("web").await;
            items.len() == n
                && items.iter().all(|i| {
                    i["fault_domain"] == 0
                        && i["power_state"] == "running"
                        && i["provisioning_state"] == "succeeded"
                })
        },
    )
    .await;
    api.instances("web")
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A host lost through the real server: zone 1 is `rack-a` (a simulated host) and `rack-b`
/// (the test driver served by a libvirtd of the test's own, reached through a [`Cable`]).
/// The cable is cut — the daemon lives on, and so does the domain on it —: the host is
/// closed as unreachable, its instance replaced on `rack-a` and its record removed (the
/// backend gives the VM up). Mended, the host opens by itself, the domain that appears
/// again, which no record holds, is deleted on the host itself (disk included) — no VM
/// without a record —, and the host takes new instances. Then the daemon crashes: the same
/// replacement, and once it runs again (fresh: the test driver keeps nothing) the host
/// opens again. Needs `libvirtd`: runs when `FLOTILLA_TEST_REAL_VMS=1` (`make test-vm`);
/// otherwise it says it is skipped and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_host_is_closed_replaced_and_cleaned_up_when_back() {
    if std::env::var("FLOTILLA_TEST_REAL_VMS").as_deref() != Ok("1") {
        eprintln!(
            "libvirt::a_lost_host_is_closed_replaced_and_cleaned_up_when_back: \
             skipped — set FLOTILLA_TEST_REAL_VMS=1 (make test-vm) to run a libvirt daemon"
        );
        return;
    }
    let began = std::time::Instant::now();
    let (host_dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut daemon = Daemon::start(host_dir.path()).await;
    let held = daemon.hold(&["debian-12"]).await;
    let cable = Cable::lay(&host_dir.path().join("cable.sock"), &daemon.socket());
    let rack_a =
        simulated_host(&data.path().join("rack-a.xml"), 8, 16_384, &["debian-12"]).unwrap();
    let file = data.path().join("libvirt.json");
    std::fs::write(
        &file,
        json!({"hosts": [
                  {"name": "rack-a", "uri": rack_a, "zone": "1"},
                  {"name": "rack-b", "uri": cable.uri(), "zone": "1", "vcpus": 8,
                   "memory_mib": 16_384, "pool": "default-pool"}],
               "port_base": 24_000})
        .to_string(),
    )
    .unwrap();
    let server = TestServer::start_with(
        data.path(),
        &[
            "--backend",
            "libvirt",
            "--libvirt-config",
            &file.display().to_string(),
            "--host-unreachable-after",
            "1s",
        ],
    )
    .await;
    let api = server.api();
    let small = json!({"zones": ["1"], "model": {"image": "debian-12", "vcpus": 1,
        "memory_mib": 256, "disk_gib": 1, "user_data": null, "app_port": 80}});
    api.create_set("web", 2, small).await;
    let items = api.wait_running("web", 2).await;
    let on = |fault_domain: u64| {
        items
            .iter()
            .find(|i| i["fault_domain"] == fault_domain)
            .and_then(|i| i["id"].as_str())
            .unwrap_or_else(|| panic!("one instance per host: {items:?}"))
            .to_owned()
    };
    let (kept, lost) = (on(0), on(1));
    assert!(held.domains().await.contains(&lost), "{lost} is on rack-b");

    // Cut off: closed as unreachable, its instance replaced on rack-a and given up.
    cable.cut();
    until_closed_as_unreachable(&api, "rack-b").await;
    let records = until_all_on_rack_a(&api, 2).await;
    assert!(
        records.contains(&kept) && !records.contains(&lost),
        "{records:?}"
    );
    let (status, body) = api.get(&format!("/scale-sets/web/instances/{lost}")).await;
    assert_eq!(status, 404, "the lost instance's record is gone: {body}");
    let (_, log) = api.get("/activity?operation=host.unreachable").await;
    assert_eq!(log["items"][0]["target"], "rack-b", "{log}");
    let (_, backend) = api.get("/backend").await;
    assert_eq!(backend["hosts"][1]["available"], false, "{backend}");
    assert_eq!(vm_ids(&api).await, records, "the lost VM is given up");
    assert!(
        held.domains().await.contains(&lost),
        "its domain lives on behind the cut"
    );

    // Mended: the host opens by itself, and the domain no record holds is deleted there.
    cable.mend();
    assert_eq!(until_all_open(&api).await, ["rack-b"]);
    wait_until(
        "the lost VM is deleted on rack-b",
        Duration::from_secs(30),
        || async { held.domains().await == ["test"] },
    )
    .await;
    let volumes = held.volumes().await;
    assert!(
        !volumes.iter().any(|v| v.starts_with(&lost)),
        "its disk too: {volumes:?}"
    );
    let (_, log) = api
        .get("/activity?operation=reconcile&scale_set=web&limit=1000")
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["details"]["orphans_deleted"] == 1),
        "the set's reconciler deleted it: {log}"
    );
    assert_eq!(vm_ids(&api).await, records, "no VM without a record");
    // Open, it takes new instances.
    let (status, body) = api
        .put("/scale-sets/web/capacity", json!({"capacity": 4}))
        .await;
    assert_eq!(status, 200, "{body}");
    let items = api.wait_running("web", 4).await;
    let placed: Vec<(String, usize)> = count_by(&items, "fault_domain").into_iter().collect();
    assert_eq!(
        placed,
        [("0".into(), 2), ("1".into(), 2)],
        "the new ones on rack-b: {items:?}"
    );
    assert_eq!(held.domains().await.len(), 3, "two of them on rack-b");

    // The daemon crashes: the host is closed and its instances replaced again; once it
    // runs again — its test host fresh, nothing left on it — the host opens by itself.
    daemon.kill();
    until_closed_as_unreachable(&api, "rack-b").await;
    let records = until_all_on_rack_a(&api, 4).await;
    daemon.run().await;
    let held = daemon.hold(&["debian-12"]).await;
    assert_eq!(until_all_open(&api).await, ["rack-b", "rack-b"]);
    assert_eq!(held.domains().await, ["test"]);
    assert_eq!(vm_ids(&api).await, records, "no VM without a record");
    server.stop().await;
    eprintln!(
        "libvirt: a host cut off and back, then crashed and back, end to end in {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
