//! The few libvirt C calls the backend makes, and safe handles around them: [`Conn`] (a
//! connection), [`Dom`] (a domain), [`Pool`] (a storage pool) and [`Vol`] (a volume). Bound by hand rather than through the `virt` crate,
//! which pins an exact `libc` that the rest of the workspace has moved past.
//!
//! Every call blocks: callers run them on blocking threads. A libvirt connection is
//! thread-safe, so one [`Conn`] serves every thread. Errors carry libvirt's error code and
//! message, read from the thread's last error right after the failing call.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulong, c_ulonglong, c_ushort, c_void};
use std::ptr::{self, NonNull};
use std::sync::Once;

#[repr(C)]
struct VirConnect {
    _private: [u8; 0],
}

#[repr(C)]
struct VirDomain {
    _private: [u8; 0],
}

/// The head of libvirt's `virError` (only the fields read here; it is never allocated here).
#[repr(C)]
struct VirError {
    code: c_int,
    domain: c_int,
    message: *const c_char,
}

/// libvirt's `virDomainInfo`.
#[repr(C)]
#[derive(Default)]
struct VirDomainInfo {
    state: u8,
    max_mem: c_ulong,
    memory: c_ulong,
    nr_virt_cpu: c_ushort,
    cpu_time: c_ulonglong,
}

#[repr(C)]
struct VirStoragePool {
    _private: [u8; 0],
}

#[repr(C)]
struct VirStorageVol {
    _private: [u8; 0],
}

/// libvirt's `virNodeInfo`.
#[repr(C)]
struct VirNodeInfo {
    model: [c_char; 32],
    memory: c_ulong,
    cpus: c_uint,
    mhz: c_uint,
    nodes: c_uint,
    sockets: c_uint,
    cores: c_uint,
    threads: c_uint,
}

/// libvirt's `virDomainBlockStatsStruct`.
#[repr(C)]
#[derive(Default)]
struct VirBlockStats {
    rd_req: i64,
    rd_bytes: i64,
    wr_req: i64,
    wr_bytes: i64,
    errs: i64,
}

/// libvirt's `virDomainMemoryStatStruct`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct VirMemoryStat {
    tag: c_int,
    val: c_ulonglong,
}

/// `VIR_DOMAIN_MEMORY_STAT_RSS` and how many statistics libvirt may answer at most.
const MEMORY_STAT_RSS: c_int = 7;
const MEMORY_STATS: usize = 16;

/// libvirt's `virStorageVolInfo`.
#[repr(C)]
#[derive(Default)]
struct VirVolInfo {
    kind: c_int,
    capacity: c_ulonglong,
    allocation: c_ulonglong,
}

type ErrorFunc = extern "C" fn(*mut c_void, *mut VirError);
/// `virConnectDomainEventCallback` (what `VIR_DOMAIN_EVENT_ID_LIFECYCLE` calls).
type LifecycleCallback =
    extern "C" fn(*mut VirConnect, *mut VirDomain, c_int, c_int, *mut c_void) -> c_int;
type FreeCallback = extern "C" fn(*mut c_void);

#[link(name = "virt")]
unsafe extern "C" {
    fn virConnectOpen(name: *const c_char) -> *mut VirConnect;
    fn virConnectClose(conn: *mut VirConnect) -> c_int;
    fn virConnectIsAlive(conn: *mut VirConnect) -> c_int;
    fn virConnectSetKeepAlive(conn: *mut VirConnect, interval: c_int, count: c_uint) -> c_int;
    fn virConnectListAllDomains(
        conn: *mut VirConnect,
        domains: *mut *mut *mut VirDomain,
        flags: c_uint,
    ) -> c_int;
    fn virDomainDefineXML(conn: *mut VirConnect, xml: *const c_char) -> *mut VirDomain;
    fn virDomainLookupByName(conn: *mut VirConnect, name: *const c_char) -> *mut VirDomain;
    fn virDomainCreate(dom: *mut VirDomain) -> c_int;
    fn virDomainDestroy(dom: *mut VirDomain) -> c_int;
    fn virDomainShutdown(dom: *mut VirDomain) -> c_int;
    fn virDomainReboot(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainReset(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainSuspend(dom: *mut VirDomain) -> c_int;
    fn virDomainResume(dom: *mut VirDomain) -> c_int;
    fn virDomainManagedSave(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainHasManagedSaveImage(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainManagedSaveRemove(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainUndefineFlags(dom: *mut VirDomain, flags: c_uint) -> c_int;
    fn virDomainFree(dom: *mut VirDomain) -> c_int;
    fn virDomainGetName(dom: *mut VirDomain) -> *const c_char;
    fn virDomainGetUUIDString(dom: *mut VirDomain, buf: *mut c_char) -> c_int;
    fn virDomainGetInfo(dom: *mut VirDomain, info: *mut VirDomainInfo) -> c_int;
    fn virDomainGetXMLDesc(dom: *mut VirDomain, flags: c_uint) -> *mut c_char;
    fn virDomainGetMetadata(
        dom: *mut VirDomain,
        kind: c_int,
        uri: *const c_char,
        flags: c_uint,
    ) -> *mut c_char;
    fn virDomainSetMetadata(
        dom: *mut VirDomain,
        kind: c_int,
        metadata: *const c_char,
        key: *const c_char,
        uri: *const c_char,
        flags: c_uint,
    ) -> c_int;
    fn virDomainBlockStats(
        dom: *mut VirDomain,
        disk: *const c_char,
        stats: *mut VirBlockStats,
        size: usize,
    ) -> c_int;
    fn virConnectGetCapabilities(conn: *mut VirConnect) -> *mut c_char;
    fn virConnectGetVersion(conn: *mut VirConnect, version: *mut c_ulong) -> c_int;
    fn virDomainMemoryStats(
        dom: *mut VirDomain,
        stats: *mut VirMemoryStat,
        nr_stats: c_uint,
        flags: c_uint,
    ) -> c_int;
    fn virNodeGetInfo(conn: *mut VirConnect, info: *mut VirNodeInfo) -> c_int;
    fn virStoragePoolLookupByName(
        conn: *mut VirConnect,
        name: *const c_char,
    ) -> *mut VirStoragePool;
    fn virStoragePoolRefresh(pool: *mut VirStoragePool, flags: c_uint) -> c_int;
    fn virStoragePoolListAllVolumes(
        pool: *mut VirStoragePool,
        vols: *mut *mut *mut VirStorageVol,
        flags: c_uint,
    ) -> c_int;
    fn virStoragePoolFree(pool: *mut VirStoragePool) -> c_int;
    fn virStorageVolLookupByName(
        pool: *mut VirStoragePool,
        name: *const c_char,
    ) -> *mut VirStorageVol;
    fn virStorageVolCreateXML(
        pool: *mut VirStoragePool,
        xml: *const c_char,
        flags: c_uint,
    ) -> *mut VirStorageVol;
    fn virStorageVolGetName(vol: *mut VirStorageVol) -> *const c_char;
    fn virStorageVolGetPath(vol: *mut VirStorageVol) -> *mut c_char;
    fn virStorageVolGetInfo(vol: *mut VirStorageVol, info: *mut VirVolInfo) -> c_int;
    fn virStorageVolDelete(vol: *mut VirStorageVol, flags: c_uint) -> c_int;
    fn virStorageVolFree(vol: *mut VirStorageVol) -> c_int;
    fn virEventRegisterDefaultImpl() -> c_int;
    fn virEventRunDefaultImpl() -> c_int;
    fn virConnectDomainEventRegisterAny(
        conn: *mut VirConnect,
        dom: *mut VirDomain,
        event_id: c_int,
        callback: LifecycleCallback,
        opaque: *mut c_void,
        free: Option<FreeCallback>,
    ) -> c_int;
    fn virConnectDomainEventDeregisterAny(conn: *mut VirConnect, callback_id: c_int) -> c_int;
    fn virGetLastError() -> *mut VirError;
    fn virSetErrorFunc(user_data: *mut c_void, handler: Option<ErrorFunc>);
    fn free(ptr: *mut c_void);
}

/// `VIR_ERR_NO_DOMAIN` and `VIR_ERR_NO_DOMAIN_METADATA`: what a lookup of an absent domain,
/// or of metadata a domain does not carry, fails with.
pub const ERR_NO_DOMAIN: i32 = 42;
pub const ERR_NO_DOMAIN_METADATA: i32 = 80;
/// `VIR_ERR_OPERATION_INVALID`: the domain is not in a state the call needs.
pub const ERR_OPERATION_INVALID: i32 = 55;
/// `VIR_ERR_NO_CONNECT`, `VIR_ERR_INVALID_CONN` and `VIR_ERR_RPC`: what a call fails with
/// when its connection is gone or broken (rather than the call refused).
pub const CONNECTION_ERRORS: [i32; 3] = [5, 6, 39];
/// `VIR_ERR_NO_STORAGE_POOL` and `VIR_ERR_NO_STORAGE_VOL`: what a lookup of an absent
/// pool or volume fails with.
pub const ERR_NO_STORAGE_POOL: i32 = 49;
pub const ERR_NO_STORAGE_VOL: i32 = 50;

const METADATA_ELEMENT: c_int = 2;
/// `VIR_DOMAIN_AFFECT_LIVE` and `VIR_DOMAIN_AFFECT_CONFIG`.
const AFFECT_LIVE: c_uint = 1;
const AFFECT_CONFIG: c_uint = 2;
/// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`.
const EVENT_ID_LIFECYCLE: c_int = 0;
/// `VIR_DOMAIN_XML_INACTIVE`: the persistent definition, not the running one.
const XML_INACTIVE: c_uint = 2;
/// `VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | SNAPSHOTS_METADATA`: undefine what the domain
/// carries — a saved (managed save) state is removed with it, which libvirt otherwise
/// refuses (Flotilla's domains have no NVRAM; the test driver refuses that flag).
const UNDEFINE_ALL: c_uint = 1 | 2;
/// `VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE`: only the domains with a managed save image.
const LIST_MANAGED_SAVE: c_uint = 1 << 8;
/// `VIR_UUID_STRING_BUFLEN`.
const UUID_STRING_LEN: usize = 37;

/// A failed libvirt call: libvirt's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for VirtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (libvirt error {})", self.message, self.code)
    }
}

impl std::error::Error for VirtError {}

pub type VirtResult<T> = Result<T, VirtError>;

extern "C" fn ignore_error(_: *mut c_void, _: *mut VirError) {}

/// Once per process, before the first connection: stops libvirt from printing every error
/// to stderr (the backend reports them itself), and runs libvirt's event loop on a thread
/// of its own (lifecycle events arrive through it).
fn setup() {
    static SETUP: Once = Once::new();
    SETUP.call_once(|| {
        // SAFETY: installs a handler that does nothing (libvirt keeps the function pointer),
        // then libvirt's default event loop, which the thread runs for the process's life.
        unsafe {
            virSetErrorFunc(ptr::null_mut(), Some(ignore_error));
            if virEventRegisterDefaultImpl() < 0 {
                return;
            }
        }
        let _ = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| {
                loop {
                    // SAFETY: the default event loop was registered above.
                    if unsafe { virEventRunDefaultImpl() } < 0 {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            });
    });
}

/// The error of the last libvirt call on this thread.
fn last_error() -> VirtError {
    // SAFETY: libvirt answers a thread-local error it owns, or null; it is read, not kept.
    unsafe {
        let error = virGetLastError();
        if error.is_null() {
            return VirtError {
                code: -1,
                message: "libvirt failed without saying why".into(),
            };
        }
        let message = borrowed((*error).message);
        VirtError {
            code: (*error).code,
            message,
        }
    }
}

/// A copy of a string libvirt owns (empty for null).
///
/// # Safety
/// `ptr` is null or a NUL-terminated string valid for the call.
unsafe fn borrowed(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: as the caller promises.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A string libvirt handed over (the caller frees it), copied and freed; `None` for null
/// (the call failed: its error is the thread's last).
///
/// # Safety
/// `ptr` is null or a NUL-terminated string allocated by libvirt and owned by the caller.
unsafe fn taken(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: as the caller promises; freed once, after the copy.
    unsafe {
        let text = borrowed(ptr);
        free(ptr.cast());
        Some(text)
    }
}

fn text(value: &str) -> VirtResult<CString> {
    CString::new(value).map_err(|_| VirtError {
        code: -1,
        message: format!("{value:?} contains a NUL byte"),
    })
}

fn check(status: c_int) -> VirtResult<()> {
    if status < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// A connection to one libvirt host (URI).
pub struct Conn {
    raw: NonNull<VirConnect>,
    /// The ids of its event callbacks, deregistered before it closes.
    callbacks: std::sync::Mutex<Vec<c_int>>,
}

// SAFETY: libvirt connections may be used from any thread, concurrently.
unsafe impl Send for Conn {}
// SAFETY: as above.
unsafe impl Sync for Conn {}

impl Conn {
    pub fn open(uri: &str) -> VirtResult<Conn> {
        setup();
        let uri = text(uri)?;
        // SAFETY: `uri` is a valid C string for the duration of the call.
        let conn = unsafe { virConnectOpen(uri.as_ptr()) };
        NonNull::new(conn)
            .map(|raw| Conn {
                raw,
                callbacks: std::sync::Mutex::new(Vec::new()),
            })
            .ok_or_else(last_error)
    }

    /// Whether the connection still works: `false` once libvirt saw it break (a remote
    /// daemon gone, its socket closed, keepalive unanswered). Asks nothing of the host.
    pub fn is_alive(&self) -> bool {
        // SAFETY: the connection is open.
        unsafe { virConnectIsAlive(self.raw.as_ptr()) == 1 }
    }

    /// Has libvirt probe a remote host every `interval_seconds` and close the connection
    /// after `count` probes unanswered, so that calls to a host gone silent (a network
    /// partition keeps a TCP connection open) fail instead of hanging. Local drivers (the
    /// test driver) have no keepalive: they refuse, which changes nothing.
    pub fn keep_alive(&self, interval_seconds: i32, count: u32) -> VirtResult<()> {
        // SAFETY: the connection is open.
        check(unsafe { virConnectSetKeepAlive(self.raw.as_ptr(), interval_seconds, count) })
    }

    /// Defines (or redefines) a persistent domain from its XML.
    pub fn define(&self, xml: &str) -> VirtResult<Dom> {
        let xml = text(xml)?;
        // SAFETY: the connection is open and `xml` valid for the call.
        let dom = unsafe { virDomainDefineXML(self.raw.as_ptr(), xml.as_ptr()) };
        NonNull::new(dom).map(Dom).ok_or_else(last_error)
    }

    /// The domain called `name`, or `None`.
    pub fn lookup(&self, name: &str) -> VirtResult<Option<Dom>> {
        let name = text(name)?;
        // SAFETY: the connection is open and `name` valid for the call.
        let dom = unsafe { virDomainLookupByName(self.raw.as_ptr(), name.as_ptr()) };
        match NonNull::new(dom) {
            Some(dom) => Ok(Some(Dom(dom))),
            None => match last_error() {
                e if e.code == ERR_NO_DOMAIN => Ok(None),
                e => Err(e),
            },
        }
    }

    /// The host's size: CPUs and memory.
    // `c_ulong` is 64 bits here but 32 on other targets: the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    pub fn node(&self) -> VirtResult<NodeInfo> {
        // SAFETY: a zeroed `virNodeInfo` (integers and a char array) for libvirt to fill.
        let mut info: VirNodeInfo = unsafe { std::mem::zeroed() };
        // SAFETY: the connection is open and `info` properly laid out.
        check(unsafe { virNodeGetInfo(self.raw.as_ptr(), &mut info) })?;
        Ok(NodeInfo {
            cpus: info.cpus,
            memory_kib: u64::from(info.memory),
        })
    }

    /// Calls `sink` with the name of every domain of this host that starts, stops, crashes,
    /// is suspended or resumed (paused, unpaused), saved or restored, is defined or
    /// undefined — every lifecycle event, whoever caused it — from libvirt's event thread.
    pub fn on_lifecycle(&self, sink: impl Fn(String) + Send + Sync + 'static) -> VirtResult<()> {
        let opaque = Box::into_raw(Box::new(Box::new(sink) as Sink));
        // SAFETY: the connection is open; libvirt keeps `opaque` until it calls `drop_sink`
        // (on deregistration), and never if the registration fails, so it is freed here then.
        let id = unsafe {
            virConnectDomainEventRegisterAny(
                self.raw.as_ptr(),
                ptr::null_mut(),
                EVENT_ID_LIFECYCLE,
                lifecycle,
                opaque.cast(),
                Some(drop_sink),
            )
        };
        if id < 0 {
            let error = last_error();
            // SAFETY: libvirt did not take `opaque`.
            drop(unsafe { Box::from_raw(opaque) });
            return Err(error);
        }
        self.callbacks.lock().expect("callbacks lock").push(id);
        Ok(())
    }

    /// The host's capabilities XML (which guests and domain types it runs).
    pub fn capabilities(&self) -> VirtResult<String> {
        // SAFETY: libvirt answers a string the caller frees, or null on error.
        unsafe { taken(virConnectGetCapabilities(self.raw.as_ptr())) }.ok_or_else(last_error)
    }

    /// The hypervisor's version, as `major * 1_000_000 + minor * 1_000 + release` (QEMU's,
    /// on a QEMU host).
    // `c_ulong` is 64 bits here but 32 on other targets: the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    pub fn version(&self) -> VirtResult<u64> {
        let mut version: c_ulong = 0;
        // SAFETY: the connection is open and `version` a valid place for libvirt to fill.
        check(unsafe { virConnectGetVersion(self.raw.as_ptr(), &mut version) })?;
        Ok(u64::from(version))
    }

    /// The storage pool called `name`, or `None`.
    pub fn pool(&self, name: &str) -> VirtResult<Option<Pool>> {
        let name = text(name)?;
        // SAFETY: the connection is open and `name` valid for the call.
        let pool = unsafe { virStoragePoolLookupByName(self.raw.as_ptr(), name.as_ptr()) };
        match NonNull::new(pool) {
            Some(pool) => Ok(Some(Pool(pool))),
            None => match last_error() {
                e if e.code == ERR_NO_STORAGE_POOL => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Every domain of the host, active or not.
    pub fn domains(&self) -> VirtResult<Vec<Dom>> {
        self.list_domains(0)
    }

    /// The names of the host's domains that have a managed save image (saved, shut off):
    /// one call for the whole host, however many domains it holds.
    pub fn saved_domains(&self) -> VirtResult<std::collections::HashSet<String>> {
        Ok(self
            .list_domains(LIST_MANAGED_SAVE)?
            .iter()
            .map(Dom::name)
            .collect())
    }

    /// The host's domains that pass `flags` (`VIR_CONNECT_LIST_DOMAINS_*`; 0: all).
    fn list_domains(&self, flags: c_uint) -> VirtResult<Vec<Dom>> {
        let mut list: *mut *mut VirDomain = ptr::null_mut();
        // SAFETY: libvirt fills `list` with `n` domain references (and a null) that this
        // function takes over, then frees the array itself.
        unsafe {
            let n = virConnectListAllDomains(self.raw.as_ptr(), &mut list, flags);
            if n < 0 {
                return Err(last_error());
            }
            let doms = (0..n as usize)
                .filter_map(|i| NonNull::new(*list.add(i)).map(Dom))
                .collect();
            free(list.cast());
            Ok(doms)
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let callbacks = std::mem::take(&mut *self.callbacks.lock().expect("callbacks lock"));
        // SAFETY: the callbacks were registered on this connection, which was opened by
        // `open` and is closed once; libvirt frees each callback's sink through `drop_sink`.
        unsafe {
            for id in callbacks {
                virConnectDomainEventDeregisterAny(self.raw.as_ptr(), id);
            }
            virConnectClose(self.raw.as_ptr());
        }
    }
}

/// What receives the names of domains whose lifecycle changed.
type Sink = Box<dyn Fn(String) + Send + Sync>;

extern "C" fn lifecycle(
    _: *mut VirConnect,
    dom: *mut VirDomain,
    _event: c_int,
    _detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: `opaque` is the `Sink` registered with this callback, alive until
    // `drop_sink`; the domain's name is owned by libvirt and copied at once.
    unsafe {
        let sink = &*(opaque as *const Sink);
        sink(borrowed(virDomainGetName(dom)));
    }
    0
}

extern "C" fn drop_sink(opaque: *mut c_void) {
    // SAFETY: libvirt calls this once, when the callback is gone, with the `Sink` that
    // `on_lifecycle` leaked.
    drop(unsafe { Box::from_raw(opaque as *mut Sink) });
}

/// What `virNodeGetInfo` tells of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub cpus: u32,
    pub memory_kib: u64,
}

/// What `virDomainGetInfo` tells of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomInfo {
    /// libvirt's `virDomainState`.
    pub state: u8,
    pub memory_kib: u64,
    pub max_memory_kib: u64,
    pub vcpus: u16,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
}

/// `VIR_DOMAIN_*` states.
pub mod state {
    pub const RUNNING: u8 = 1;
    pub const BLOCKED: u8 = 2;
    pub const PAUSED: u8 = 3;
    pub const SHUTDOWN: u8 = 4;
    pub const SHUTOFF: u8 = 5;
    pub const CRASHED: u8 = 6;
    pub const PMSUSPENDED: u8 = 7;
}

/// A reference to one domain.
pub struct Dom(NonNull<VirDomain>);

// SAFETY: domain references are thread-safe like their connection.
unsafe impl Send for Dom {}
// SAFETY: as above.
unsafe impl Sync for Dom {}

impl Dom {
    fn raw(&self) -> *mut VirDomain {
        self.0.as_ptr()
    }

    pub fn name(&self) -> String {
        // SAFETY: libvirt answers a string owned by the domain reference, copied at once.
        unsafe { borrowed(virDomainGetName(self.raw())) }
    }

    /// Its UUID, which a redefinition must repeat.
    pub fn uuid(&self) -> VirtResult<String> {
        let mut buf = [0 as c_char; UUID_STRING_LEN];
        // SAFETY: `buf` has the VIR_UUID_STRING_BUFLEN bytes libvirt writes (NUL included).
        check(unsafe { virDomainGetUUIDString(self.raw(), buf.as_mut_ptr()) })?;
        // SAFETY: libvirt wrote a NUL-terminated string into `buf`.
        Ok(unsafe { borrowed(buf.as_ptr()) })
    }

    // `c_ulong` is 64 bits here but 32 on other targets: the conversions are not useless there.
    #[allow(clippy::useless_conversion)]
    pub fn info(&self) -> VirtResult<DomInfo> {
        let mut info = VirDomainInfo::default();
        // SAFETY: `info` is a properly laid out `virDomainInfo` for libvirt to fill.
        check(unsafe { virDomainGetInfo(self.raw(), &mut info) })?;
        Ok(DomInfo {
            state: info.state,
            memory_kib: u64::from(info.memory),
            max_memory_kib: u64::from(info.max_mem),
            vcpus: info.nr_virt_cpu,
            cpu_time_ns: info.cpu_time,
        })
    }

    /// The domain's persistent definition.
    pub fn xml(&self) -> VirtResult<String> {
        // SAFETY: libvirt answers a string the caller frees, or null on error.
        unsafe { taken(virDomainGetXMLDesc(self.raw(), XML_INACTIVE)) }.ok_or_else(last_error)
    }

    /// The domain's metadata element in namespace `uri`, or `None` when it has none.
    pub fn metadata(&self, uri: &str) -> VirtResult<Option<String>> {
        let uri = text(uri)?;
        // SAFETY: libvirt answers a string the caller frees, or null on error.
        match unsafe {
            taken(virDomainGetMetadata(
                self.raw(),
                METADATA_ELEMENT,
                uri.as_ptr(),
                0,
            ))
        } {
            Some(xml) => Ok(Some(xml)),
            None => match last_error() {
                e if e.code == ERR_NO_DOMAIN_METADATA => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Replaces the domain's metadata element in namespace `uri` (prefix `key`) with `xml`,
    /// in its persistent definition and, when `live`, in the running domain too.
    pub fn set_metadata(&self, xml: &str, key: &str, uri: &str, live: bool) -> VirtResult<()> {
        let (xml, key, uri) = (text(xml)?, text(key)?, text(uri)?);
        let flags = if live {
            AFFECT_LIVE | AFFECT_CONFIG
        } else {
            AFFECT_CONFIG
        };
        // SAFETY: a valid domain reference and NUL-terminated strings that outlive the call.
        check(unsafe {
            virDomainSetMetadata(
                self.raw(),
                METADATA_ELEMENT,
                xml.as_ptr(),
                key.as_ptr(),
                uri.as_ptr(),
                flags,
            )
        })
    }

    pub fn start(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainCreate(self.raw()) })
    }

    /// Powers the domain off at once.
    pub fn destroy(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainDestroy(self.raw()) })
    }

    /// Asks the guest to shut down (ACPI): it may take a while, or never happen.
    pub fn shutdown(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainShutdown(self.raw()) })
    }

    pub fn reboot(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainReboot(self.raw(), 0) })
    }

    /// Bytes read from and written to disk `target` (say `vda`) since the domain started.
    pub fn block_stats(&self, target: &str) -> VirtResult<(u64, u64)> {
        let target = text(target)?;
        let mut stats = VirBlockStats::default();
        // SAFETY: `stats` is a `virDomainBlockStatsStruct` of the size passed.
        check(unsafe {
            virDomainBlockStats(
                self.raw(),
                target.as_ptr(),
                &mut stats,
                std::mem::size_of::<VirBlockStats>(),
            )
        })?;
        Ok((stats.rd_bytes.max(0) as u64, stats.wr_bytes.max(0) as u64))
    }

    /// The memory the domain's process holds on the host (resident set), in KiB; `None`
    /// when the driver does not say.
    pub fn resident_kib(&self) -> VirtResult<Option<u64>> {
        let mut stats = [VirMemoryStat::default(); MEMORY_STATS];
        // SAFETY: `stats` has room for the `MEMORY_STATS` entries libvirt may fill.
        let n = unsafe {
            virDomainMemoryStats(self.raw(), stats.as_mut_ptr(), MEMORY_STATS as c_uint, 0)
        };
        check(n)?;
        Ok(stats[..n as usize]
            .iter()
            .find(|s| s.tag == MEMORY_STAT_RSS)
            .map(|s| s.val))
    }

    /// Resets the domain at once, as the reset button would (no guest cooperation).
    pub fn reset(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainReset(self.raw(), 0) })
    }

    /// Pauses the domain: its vCPUs stop, its memory stays allocated on the host.
    pub fn suspend(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainSuspend(self.raw()) })
    }

    /// Unpauses a paused domain.
    pub fn resume(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainResume(self.raw()) })
    }

    /// Writes the running domain's memory to the host's managed save image and stops it
    /// (its memory is freed); its next [`Dom::start`] restores it from the image. Blocks
    /// while the memory is written.
    pub fn managed_save(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainManagedSave(self.raw(), 0) })
    }

    /// Whether the domain has a managed save image (it is saved: its start restores it).
    pub fn has_managed_save(&self) -> VirtResult<bool> {
        // SAFETY: a valid domain reference.
        let status = unsafe { virDomainHasManagedSaveImage(self.raw(), 0) };
        check(status)?;
        Ok(status > 0)
    }

    /// Discards the domain's managed save image: its next start boots. (Some drivers fail
    /// when there is none: ask [`Dom::has_managed_save`] first.)
    pub fn remove_managed_save(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainManagedSaveRemove(self.raw(), 0) })
    }

    /// Undefines the domain, with its managed save image and snapshot metadata.
    pub fn undefine(&self) -> VirtResult<()> {
        // SAFETY: a valid domain reference.
        check(unsafe { virDomainUndefineFlags(self.raw(), UNDEFINE_ALL) })
    }
}

impl Drop for Dom {
    fn drop(&mut self) {
        // SAFETY: each `Dom` owns one reference, released once.
        unsafe { virDomainFree(self.raw()) };
    }
}

/// A storage pool of a host.
pub struct Pool(NonNull<VirStoragePool>);

// SAFETY: pool references are thread-safe like their connection.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl Pool {
    fn raw(&self) -> *mut VirStoragePool {
        self.0.as_ptr()
    }

    /// Rescans the pool (files added behind libvirt's back appear).
    pub fn refresh(&self) -> VirtResult<()> {
        // SAFETY: a valid pool reference.
        check(unsafe { virStoragePoolRefresh(self.raw(), 0) })
    }

    /// Every volume of the pool.
    pub fn volumes(&self) -> VirtResult<Vec<Vol>> {
        let mut list: *mut *mut VirStorageVol = ptr::null_mut();
        // SAFETY: libvirt fills `list` with `n` volume references that this function takes
        // over, then frees the array itself.
        unsafe {
            let n = virStoragePoolListAllVolumes(self.raw(), &mut list, 0);
            if n < 0 {
                return Err(last_error());
            }
            let vols = (0..n as usize)
                .filter_map(|i| NonNull::new(*list.add(i)).map(Vol))
                .collect();
            free(list.cast());
            Ok(vols)
        }
    }

    /// The volume called `name`, or `None`.
    pub fn volume(&self, name: &str) -> VirtResult<Option<Vol>> {
        let name = text(name)?;
        // SAFETY: a valid pool reference and `name` valid for the call.
        let vol = unsafe { virStorageVolLookupByName(self.raw(), name.as_ptr()) };
        match NonNull::new(vol) {
            Some(vol) => Ok(Some(Vol(vol))),
            None => match last_error() {
                e if e.code == ERR_NO_STORAGE_VOL => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Creates a volume from its XML.
    pub fn create_volume(&self, xml: &str) -> VirtResult<Vol> {
        let xml = text(xml)?;
        // SAFETY: a valid pool reference and `xml` valid for the call.
        let vol = unsafe { virStorageVolCreateXML(self.raw(), xml.as_ptr(), 0) };
        NonNull::new(vol).map(Vol).ok_or_else(last_error)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: each `Pool` owns one reference, released once.
        unsafe { virStoragePoolFree(self.raw()) };
    }
}

/// A volume of a storage pool.
pub struct Vol(NonNull<VirStorageVol>);

// SAFETY: volume references are thread-safe like their connection.
unsafe impl Send for Vol {}
// SAFETY: as above.
unsafe impl Sync for Vol {}

impl Vol {
    fn raw(&self) -> *mut VirStorageVol {
        self.0.as_ptr()
    }

    pub fn name(&self) -> String {
        // SAFETY: libvirt answers a string owned by the volume reference, copied at once.
        unsafe { borrowed(virStorageVolGetName(self.raw())) }
    }

    /// Its path on the host.
    pub fn path(&self) -> VirtResult<String> {
        // SAFETY: libvirt answers a string the caller frees, or null on error.
        unsafe { taken(virStorageVolGetPath(self.raw())) }.ok_or_else(last_error)
    }

    /// Its virtual size in bytes.
    pub fn capacity(&self) -> VirtResult<u64> {
        let mut info = VirVolInfo::default();
        // SAFETY: `info` is a properly laid out `virStorageVolInfo` for libvirt to fill.
        check(unsafe { virStorageVolGetInfo(self.raw(), &mut info) })?;
        Ok(info.capacity)
    }

    pub fn delete(&self) -> VirtResult<()> {
        // SAFETY: a valid volume reference.
        check(unsafe { virStorageVolDelete(self.raw(), 0) })
    }
}

impl Drop for Vol {
    fn drop(&mut self) {
        // SAFETY: each `Vol` owns one reference, released once.
        unsafe { virStorageVolFree(self.raw()) };
    }
}
