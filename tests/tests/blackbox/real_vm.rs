//! A scale set of real QEMU guests through `flotilla serve --backend libvirt` (software
//! emulation). Runs when `FLOTILLA_TEST_REAL_VMS=1` (`make test-vm`, and `make test` sets
//! it); otherwise it says it is skipped and passes.
//!
//! It builds the tiny guest from Debian packages (`scripts/tiny-guest.sh`: Debian's cloud
//! kernel, a busybox initramfs serving HTTP), starts libvirt's daemons unless they already
//! run, puts the image in a storage pool of its own, then through the REST API: capacity
//! 0 → 3 (timed until all three answer HTTP), 3 → 2, answers from both through the load
//! balancer, a guest powered off behind Flotilla's back started again on libvirt's event
//! (no periodic pass), the guests' statistics in the metrics, the user data reaching the
//! guest through its cloud-init seed, a restart (the
//! boot counter on the instance's disk goes to 2), a reimage (a fresh overlay: back to 1),
//! the console log, a scale-out from a warm pool parked paused against a cold boot (both
//! timed until the new guest answers HTTP; the paused one must be faster), and the set
//! deleted — no domain, disk, seed or daemon left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_tests::{Api, TestServer, free_port, wait_until};
use serde_json::{Value, json};

const URI: &str = "qemu:///system";
const POOL: &str = "flotilla-vm-test";

fn virsh(args: &[&str]) -> Result<String, String> {
    let output = Command::new("virsh")
        .args(["-q", "-c", URI])
        .args(args)
        .output()
        .map_err(|e| format!("running virsh: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a command");
    assert!(status.success(), "{command:?} failed");
}

/// libvirt's daemons, started here unless they already ran; stopped on drop (only those
/// started here), with a deadline before they are killed.
struct Daemons {
    started: Vec<PathBuf>,
}

impl Daemons {
    fn start(run_dir: &Path) -> Daemons {
        let mut started = Vec::new();
        if virsh(&["version"]).is_err() {
            for daemon in ["virtlogd", "libvirtd"] {
                let pid_file = run_dir.join(format!("{daemon}.pid"));
                run(Command::new(daemon).arg("-d").arg("-p").arg(&pid_file));
                started.push(pid_file);
            }
        }
        let daemons = Daemons { started };
        let deadline = Instant::now() + Duration::from_secs(60);
        // The first connection probes QEMU's capabilities (~8 s).
        while let Err(e) = virsh(&["version"]) {
            assert!(Instant::now() < deadline, "libvirtd does not answer: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
        daemons
    }

    fn pids(&self) -> Vec<String> {
        self.started
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .map(|p| p.trim().to_owned())
            .collect()
    }
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Powers off and removes the test's guests (`tiny_*`). Guests an aborted run left belong to
/// that run's installation, which the next run's Flotilla rightly never touches: the test
/// clears its own debris, before it starts and when it ends, however it ends.
fn clear_guests() {
    let names = virsh(&["list", "--all", "--name"]).unwrap_or_default();
    for name in names
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with("tiny_"))
    {
        let _ = virsh(&["destroy", name]);
        let _ = virsh(&["undefine", name]);
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        clear_guests();
        for pid in self.pids().into_iter().rev() {
            let _ = Command::new("kill").arg(&pid).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while alive(&pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive(&pid) {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        }
    }
}

/// Lets QEMU (user `libvirt-qemu`) into `dir`.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn get_text(url: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let response = client.get(url).send().await.ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// Waits until every instance of `set` answers `GET /` itself; answers the instances.
async fn wait_answering(api: &Api, set: &str, n: usize, timeout: Duration) -> Vec<Value> {
    wait_until(
        &format!("{set}'s {n} guests answer HTTP"),
        timeout,
        || async {
            let items = api.instances(set).await;
            if items.len() != n {
                return false;
            }
            for i in &items {
                let Some(address) = i["address"].as_str() else {
                    return false;
                };
                let id = i["id"].as_str().unwrap_or_default();
                match get_text(&format!("http://{address}/")).await {
                    Some(text) if text.starts_with(&format!("tiny {id} ")) => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await;
    api.instances(set).await
}

async fn boots(instance: &Value) -> Option<String> {
    let address = instance["address"].as_str()?;
    get_text(&format!("http://{address}/boots"))
        .await
        .map(|t| t.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_set_of_real_guests() {
    if std::env::var("FLOTILLA_TEST_REAL_VMS").as_deref() != Ok("1") {
        eprintln!(
            "real_vm: skipped — set FLOTILLA_TEST_REAL_VMS=1 (make test-vm) to boot real guests"
        );
        return;
    }
    let began = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guest = root.join("target/tiny-guest");
    run(Command::new("bash")
        .arg(root.join("scripts/tiny-guest.sh"))
        .arg(&guest));

    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let daemons = Daemons::start(dir.path());
    clear_guests();
    let pool = dir.path().join("pool");
    std::fs::create_dir(&pool).unwrap();
    open_up(&pool);
    for file in ["tiny.vmlinuz", "tiny.initrd", "tiny.qcow2"] {
        std::fs::copy(guest.join(file), pool.join(file)).unwrap();
    }
    let _ = virsh(&["pool-destroy", POOL]);
    virsh(&[
        "pool-create-as",
        POOL,
        "dir",
        "--target",
        &pool.display().to_string(),
    ])
    .expect("create the storage pool");
    let state = dir.path().join("state");
    let config = dir.path().join("libvirt.json");
    let port_base = free_port();
    std::fs::write(
        &config,
        json!({
            "hosts": [{"uri": URI, "zone": "1", "vcpus": 4, "memory_mib": 1024, "pool": POOL}],
            "port_base": port_base,
            "shutdown_timeout_seconds": 10,
            "state_dir": state,
        })
        .to_string(),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start_with(
        &data,
        &[
            "--backend",
            "libvirt",
            "--libvirt-config",
            &config.display().to_string(),
            // No periodic pass to lean on: what is not asked for through the API must come
            // from libvirt's lifecycle events.
            "--reconcile-interval",
            "1h",
            "--metrics-interval",
            "1s",
        ],
    )
    .await;
    let api = server.api();
    let (_, backend) = api.get("/backend").await;
    assert_eq!(backend["images"], json!(["tiny"]), "{backend}");

    let frontend = free_port();
    // The guests try the control plane's API port on the host (10.0.2.2 is the host's
    // loopback under QEMU user networking) and, as a control that the check works, their
    // own web server.
    let api_port = server.url.rsplit(':').next().unwrap().to_owned();
    let user_data = format!(
        "#cloud-config\n# hello from user data\n# flotilla-reach 10.0.2.2 {api_port}\n# flotilla-reach 127.0.0.1 80\n"
    );
    let (status, body) = api
        .post(
            "/scale-sets",
            json!({
                "name": "tiny",
                "model": {"image": "tiny", "vcpus": 1, "memory_mib": 128, "disk_gib": 1,
                          "user_data": user_data, "app_port": 80},
                "capacity": 0,
                "zones": ["1"],
                "health_probe": {"protocol": "http", "port": 80, "path": "/health",
                                 "interval_seconds": 3, "timeout_seconds": 2,
                                 "healthy_threshold": 1, "unhealthy_threshold": 10,
                                 "grace_period_seconds": 0},
                "load_balancer": {"frontends": [{"name": "web", "protocol": "http",
                                                 "port": frontend, "algorithm": "round_robin"}]},
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Capacity 0 → 3: timed until all three guests answer HTTP.
    let scaling = Instant::now();
    let (status, body) = api
        .put("/scale-sets/tiny/capacity", json!({"capacity": 3}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_answering(&api, "tiny", 3, Duration::from_secs(90)).await;
    println!(
        "real guests: capacity 0 → 3 until all three answer HTTP: {:.1} s",
        scaling.elapsed().as_secs_f64()
    );

    // 3 → 2, then both answer through the load balancer.
    let (status, body) = api
        .put("/scale-sets/tiny/capacity", json!({"capacity": 2}))
        .await;
    assert_eq!(status, 200, "{body}");
    let items = api.wait_healthy("tiny", 2).await;
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let lb = format!("http://127.0.0.1:{frontend}/");
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    wait_until(
        "both guests answer through the load balancer",
        Duration::from_secs(30),
        || async {
            if let Some(text) = get_text(&lb).await
                && let Some(id) = text.split_whitespace().nth(1)
            {
                seen.lock().unwrap().insert(id.to_owned());
            }
            seen.lock().unwrap().len() == 2
        },
    )
    .await;
    assert_eq!(
        seen.into_inner().unwrap().into_iter().collect::<Vec<_>>(),
        ids
    );

    // A guest powered off behind Flotilla's back: libvirt's event wakes the set at once,
    // and it is started again — well before the prober could notice (10 failed probes,
    // 3 s apart) and there is no periodic pass.
    virsh(&["destroy", &ids[1]]).expect("power a guest off");
    wait_answering(&api, "tiny", 2, Duration::from_secs(25)).await;

    // The guests' statistics reach the metrics pipeline: CPU time, resident memory, disk.
    wait_until(
        "the guests' CPU, memory and disk figures are collected",
        Duration::from_secs(30),
        || async {
            let (_, answer) = api
                .get("/scale-sets/tiny/metrics?metric=cpu_percent,memory_percent,disk_read_bytes_per_second,disk_write_bytes_per_second")
                .await;
            let peak = |metric: &str| {
                answer["series"]
                    .as_array()
                    .and_then(|all| all.iter().find(|s| s["metric"] == metric))
                    .and_then(|s| s["points"].as_array())
                    .map_or(0.0, |points| {
                        points
                            .iter()
                            .filter_map(|p| p["maximum"].as_f64())
                            .fold(0.0, f64::max)
                    })
            };
            peak("cpu_percent") > 0.0
                && peak("memory_percent") > 0.0
                && peak("disk_read_bytes_per_second") + peak("disk_write_bytes_per_second") > 0.0
        },
    )
    .await;

    // The user data reached the guest through its seed; the console shows the boot.
    let first = &items[0];
    let address = first["address"].as_str().unwrap();
    let seen_user_data = get_text(&format!("http://{address}/user-data")).await;
    assert_eq!(seen_user_data.as_deref(), Some(user_data.as_str()));
    // The guest cannot reach the host: not the API port, nothing (the network is
    // restricted to the forwarded app port); its own server answers, so the check works.
    let reach = format!("http://{address}/reach");
    wait_until("the guest tried", Duration::from_secs(30), || async {
        get_text(&reach)
            .await
            .is_some_and(|r| r.lines().count() == 2)
    })
    .await;
    assert_eq!(
        get_text(&reach).await.as_deref(),
        Some(format!("10.0.2.2:{api_port} closed\n127.0.0.1:80 open\n").as_str()),
        "a guest must not reach the control plane"
    );
    let id = &ids[0];

    // The application inside asks for a busy lease through its metadata endpoint, the one
    // address its network reaches (10.0.2.100): the lease is its own instance's, set as
    // the guest; then it ends it the same way.
    for (seconds, leased) in [(600, true), (0, false)] {
        let answer = get_text(&format!("http://{address}/cgi-bin/busy?{seconds}"))
            .await
            .unwrap_or_default();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        assert!(answer.contains(&format!("\"id\":\"{id}\"")), "{answer}");
        let (_, instance) = api.get(&format!("/scale-sets/tiny/instances/{id}")).await;
        assert_eq!(instance["busy_until"].is_string(), leased, "{instance}");
    }
    let (_, activity) = api
        .get("/activity?operation=instance.busy&scale_set=tiny")
        .await;
    let actors: Vec<&str> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["actor"].as_str())
        .collect();
    let guest = format!("guest:{id}");
    assert_eq!(actors, [guest.as_str(); 2], "{activity}");
    let (status, console) = api
        .get(&format!("/scale-sets/tiny/instances/{id}/console"))
        .await;
    assert_eq!(status, 200, "{console}");
    let output = console["output"].as_str().unwrap();
    assert!(output.contains("Linux version"), "{output}");
    assert!(
        output.contains(&format!("FLOTILLA-READY {id} boot 1")),
        "{output}"
    );

    // Restart: the same disk boots again; reimage: a fresh disk.
    assert_eq!(boots(first).await.as_deref(), Some("1"));
    for (action, expected) in [("restart", "2"), ("reimage", "1")] {
        let (status, body) = api
            .post_empty(&format!("/scale-sets/tiny/instances/{id}/{action}"))
            .await;
        assert_eq!(status, 202, "{action}: {body}");
        wait_until(
            &format!("{id} boots again after its {action} (boot {expected})"),
            Duration::from_secs(60),
            || async {
                let items = api.instances("tiny").await;
                let Some(vm) = items.iter().find(|i| i["id"] == id.as_str()) else {
                    return false;
                };
                vm["provisioning_state"] == "succeeded"
                    && boots(vm).await.as_deref() == Some(expected)
            },
        )
        .await;
    }

    // A warm pool parked paused: its member serves sooner than a cold create boots one.
    let (status, body) = api
        .patch(
            "/scale-sets/tiny",
            json!({"warm_pool": {"min_size": 1, "pool_state": "paused"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the pool's guest is prepared and paused",
        Duration::from_secs(90),
        || async {
            let (_, pool) = api.get("/scale-sets/tiny/warm-pool").await;
            pool["items"].as_array().is_some_and(|items| {
                items.len() == 1
                    && items[0]["warm_prepared_at"].is_string()
                    && items[0]["power_state"] == "paused"
            })
        },
    )
    .await;
    let warm = Instant::now();
    let (status, body) = api
        .put("/scale-sets/tiny/capacity", json!({"capacity": 3}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_answering(&api, "tiny", 3, Duration::from_secs(60)).await;
    let warm = warm.elapsed().as_secs_f64();
    let (status, body) = api
        .patch("/scale-sets/tiny", json!({"warm_pool": null}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until("the pool is emptied", Duration::from_secs(60), || async {
        let (_, pool) = api.get("/scale-sets/tiny/warm-pool").await;
        pool["items"].as_array().is_some_and(|i| i.is_empty())
    })
    .await;
    let cold = Instant::now();
    let (status, body) = api
        .put("/scale-sets/tiny/capacity", json!({"capacity": 4}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_answering(&api, "tiny", 4, Duration::from_secs(90)).await;
    let cold = cold.elapsed().as_secs_f64();
    println!(
        "real guests: scale-out by one until it answers HTTP: {warm:.1} s from a paused warm pool, {cold:.1} s cold"
    );
    assert!(warm < cold, "paused {warm:.1} s, cold {cold:.1} s");

    // Delete: nothing of the set is left on the host.
    let (status, body) = api.delete("/scale-sets/tiny").await;
    assert_eq!(status, 202, "{body}");
    wait_until("the set is gone", Duration::from_secs(60), || async {
        api.get_status("/scale-sets/tiny").await == 404
    })
    .await;
    server.stop().await;
    let domains = virsh(&["list", "--all", "--name"]).unwrap();
    for id in &ids {
        assert!(
            !domains.contains(id.as_str()),
            "domain {id} left: {domains}"
        );
    }
    let volumes = virsh(&["vol-list", POOL]).unwrap();
    assert!(!volumes.contains(".overlay"), "disks left: {volumes}");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(left, ["metadata"], "seeds or logs left: {left:?}");
    let sockets: Vec<_> = std::fs::read_dir(state.join("metadata"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(sockets.is_empty(), "metadata sockets left: {sockets:?}");
    virsh(&["pool-destroy", POOL]).expect("remove the storage pool");
    let pids = daemons.pids();
    drop(daemons);
    for pid in pids {
        assert!(!alive(&pid), "daemon {pid} still runs");
    }
    println!(
        "real guests: the whole test took {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
