//! Test support for hosts that go away and come back (cargo feature `conformance`, with
//! `libvirt`): a [`Daemon`] of the test's own serving libvirt's test driver on a unix
//! socket — a host that can crash and start again —, a [`Cable`] in front of that socket —
//! a network that can be cut and mended while the host lives on — and a [`HeldHost`], the
//! test's own connection straight to the daemon, which keeps the test driver's state (a
//! daemon's `test:///default` is fresh again once no connection holds it) and reads it.
//!
//! Needs `libvirtd` (and `setpriv` when the test runs as root). Failures panic with what
//! was expected, as in the conformance suite.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ffi::Conn;
use super::{add_base_volumes, virt};

/// The URI of the test driver's host served on unix socket `socket`.
pub fn test_driver_uri(socket: &Path) -> String {
    format!("test+unix:///default?socket={}", socket.display())
}

/// The uid and gid of `nobody`, which the daemon runs as when the test runs as root (root's
/// libvirtd is the privileged one: the system's sockets and directories, whatever
/// `XDG_RUNTIME_DIR` says).
const NOBODY: u32 = 65_534;

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A libvirtd of the test's own — unprivileged (as `nobody` when the test runs as root), its
/// runtime directory, socket, settings and log under a directory of the test's — serving
/// libvirt's test driver on its unix socket. Killed when dropped.
pub struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts one with its files under `dir` (made searchable by all: the daemon may run as
    /// another user; the directories above it must be too) and waits until it listens.
    pub async fn start(dir: &Path) -> Daemon {
        use std::os::unix::fs::PermissionsExt;
        let root = running_as_root();
        std::fs::create_dir_all(dir).expect("make the daemon's directory");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .expect("open the daemon's directory to it");
        for sub in ["run", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("make the daemon's directories");
            if root {
                std::os::unix::fs::chown(dir.join(sub), Some(NOBODY), Some(NOBODY))
                    .expect("give the daemon its directories");
            }
        }
        let mut daemon = Daemon {
            dir: dir.to_owned(),
            child: None,
        };
        daemon.run().await;
        daemon
    }

    /// Its unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/libvirt/libvirt-sock")
    }

    /// The URI of its test host, reached straight through its socket.
    pub fn uri(&self) -> String {
        test_driver_uri(&self.socket())
    }

    /// Starts it (again, after [`Daemon::kill`]: its test host is fresh) and waits up to
    /// 30 s until it listens.
    pub async fn run(&mut self) {
        assert!(self.child.is_none(), "the daemon runs already");
        let mut command = if running_as_root() {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "libvirtd",
            ]);
            c
        } else {
            Command::new("libvirtd")
        };
        let home = self.dir.join("home");
        let log = self.dir.join("libvirtd.log");
        let out = std::fs::File::create(&log).expect("make the daemon's log");
        let child = command
            .current_dir("/")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("share the daemon's log"))
            .stderr(out)
            .spawn()
            .expect("run libvirtd");
        let socket = self.socket();
        let child = self.child.insert(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::UnixStream::connect(&socket).await.is_err() {
            let exited = child.try_wait().expect("ask whether libvirtd runs");
            assert!(
                exited.is_none() && tokio::time::Instant::now() < deadline,
                "libvirtd does not listen ({exited:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills it at once, as a crash would (and waits for it to be gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Holds its test host — its state lasts until the [`HeldHost`] is dropped (or the
    /// daemon dies) — with a base volume for each of `images` in its pool `default-pool`.
    pub async fn hold(&self, images: &[&str]) -> HeldHost {
        let uri = self.uri();
        let images: Vec<String> = images.iter().map(|i| (*i).to_owned()).collect();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = Conn::open(&uri).map_err(virt("open the daemon's test host"))?;
            let images: Vec<&str> = images.iter().map(String::as_str).collect();
            add_base_volumes(&conn, &images).map(|()| conn)
        })
        .await
        .expect("the libvirt call ran")
        .unwrap_or_else(|e| panic!("hold the daemon's test host: {e}"));
        HeldHost {
            conn: Arc::new(conn),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The test's own connection to a [`Daemon`]'s test host ([`Daemon::hold`]): what is on
/// the host, whatever Flotilla's backend can reach of it.
pub struct HeldHost {
    conn: Arc<Conn>,
}

impl HeldHost {
    /// The names of the host's domains, active or not (the test driver's own `test`
    /// included), sorted.
    pub async fn domains(&self) -> Vec<String> {
        let conn = self.conn.clone();
        let mut names: Vec<String> = tokio::task::spawn_blocking(move || {
            conn.domains()
                .map(|doms| doms.iter().map(|d| d.name()).collect())
        })
        .await
        .expect("the libvirt call ran")
        .unwrap_or_else(|e| panic!("list the daemon's domains: {e}"));
        names.sort();
        names
    }

    /// The names of the volumes in the host's pool `default-pool` (base images and
    /// instances' disks), sorted.
    pub async fn volumes(&self) -> Vec<String> {
        let conn = self.conn.clone();
        let mut names: Vec<String> = tokio::task::spawn_blocking(move || {
            let Some(pool) = conn.pool("default-pool")? else {
                return Ok(None);
            };
            pool.volumes()
                .map(|vols| Some(vols.iter().map(|v| v.name()).collect()))
        })
        .await
        .expect("the libvirt call ran")
        .unwrap_or_else(|e| panic!("list the daemon's volumes: {e}"))
        .expect("the test host has a pool default-pool");
        names.sort();
        names
    }
}

/// A unix socket in front of another, as a network is between Flotilla and a host: it can
/// be cut (open connections are shut, new ones closed at once) and mended. Its threads end
/// when it is dropped.
pub struct Cable {
    path: PathBuf,
    cut: Arc<AtomicBool>,
    /// Dropped: the listener ends at its next connection.
    gone: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl Cable {
    /// Lays one from a new socket at `path` to the socket at `to`.
    pub fn lay(path: &Path, to: &Path) -> Cable {
        use std::os::unix::net::{UnixListener, UnixStream};
        let listener = UnixListener::bind(path).expect("bind the cable's socket");
        let cable = Cable {
            path: path.to_owned(),
            cut: Arc::default(),
            gone: Arc::default(),
            open: Arc::default(),
        };
        let (cut, gone, open, to) = (
            cable.cut.clone(),
            cable.gone.clone(),
            cable.open.clone(),
            to.to_owned(),
        );
        std::thread::spawn(move || {
            for near in listener.incoming().flatten() {
                if gone.load(Ordering::SeqCst) {
                    break;
                }
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(far) = UnixStream::connect(&to) else {
                    continue;
                };
                let (Ok(near_in), Ok(far_in)) = (near.try_clone(), far.try_clone()) else {
                    continue;
                };
                let mut open = open.lock().expect("cable lock");
                for stream in [&near, &far] {
                    if let Ok(kept) = stream.try_clone() {
                        open.push(kept);
                    }
                }
                for (mut from, mut into) in [(near_in, far_in), (far, near)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        cable
    }

    /// The URI of the test host behind it, reached through it.
    pub fn uri(&self) -> String {
        test_driver_uri(&self.path)
    }

    /// Cuts it: open connections are shut, new ones closed at once.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().expect("cable lock").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Mends it: new connections go through again.
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the listener, which sees it is gone.
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
    }
}

/// A control plane that records what guests ask through their metadata endpoints: each
/// lease asked for as (scale set, VM, seconds), in order; a lease above an hour is refused
/// as the control plane refuses it (422 naming `seconds`).
#[derive(Default)]
pub struct RecordingGuests {
    pub asked: Mutex<Vec<(String, String, u32)>>,
}

#[async_trait::async_trait]
impl crate::GuestHandler for RecordingGuests {
    async fn view(
        &self,
        scale_set: &str,
        id: &str,
    ) -> Result<crate::GuestView, crate::GuestRefusal> {
        Ok(crate::GuestView {
            id: id.into(),
            scale_set: scale_set.into(),
            busy_until: None,
        })
    }

    async fn set_busy(
        &self,
        scale_set: &str,
        id: &str,
        seconds: u32,
    ) -> Result<crate::GuestView, crate::GuestRefusal> {
        if seconds > 3600 {
            return Err(crate::GuestRefusal {
                status: 422,
                detail: "seconds: must be 0 to 3600".into(),
            });
        }
        self.asked
            .lock()
            .expect("asked lock")
            .push((scale_set.into(), id.into(), seconds));
        self.view(scale_set, id).await
    }
}
