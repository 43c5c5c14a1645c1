//! The mock hypervisor as a service: one simulator that several control-plane replicas
//! share over HTTP, as they would share real hypervisor hosts. [`server`] serves [`Mock`]s
//! (`flotilla mock-hypervisor`); [`RemoteMock`] is the [`Backend`] that talks to it
//! (`flotilla serve --mock-url`).
//!
//! # Protocol
//! JSON over HTTP/1.1; every request carries `Authorization: Bearer <token>` (anything else
//! is answered 401 and changes nothing) and, but for `GET /v1/healthz`, the installation
//! it acts for in [`INSTALLATION_HEADER`].
//! - `POST /v1/backend` takes one [`Request`] (`{"op":"create","spec":{…}}`) and answers
//!   the operation's result as JSON — the same types the [`Backend`], [`FaultInjection`]
//!   and [`Simulation`] methods return (`null` for none). One endpoint and one enum keep
//!   the server's dispatch and the client's calls from drifting apart: a new operation is a
//!   new variant, and both sides stop compiling until they handle it.
//! - A failure answers an [`ErrorBody`]: the [`BackendError`]'s kind and fields
//!   ([`WireError`]), from which the client rebuilds the very variant (the control plane
//!   acts differently on `NotFound`, `Foreign`, `ZoneUnavailable`, `InvalidState`,
//!   `CreateFailed`…), and its message. The status code follows the kind, for people with
//!   curl; clients read the body.
//! - `GET /v1/changes` answers the ids of VMs whose state changes, as they change
//!   ([`Mock::changes`]): one JSON string per line, kept open, with an empty line every
//!   [`HEARTBEAT`] so a client notices a dead connection.
//! - `GET /v1/healthz` answers `ok` (with the token): for starters waiting on the server.
//!
//! # Installations
//! The server keeps one [`Mock`] per installation id, opened when the installation first
//! calls (and at start for every installation whose state is on disk, so their VMs serve
//! again at once, as real VMs outlive a control plane), each with its own journal in
//! `<state dir>/<installation>` and the same zones, latency and seed. The replicas of one
//! installation — one database — share one simulator; another installation sees a
//! hypervisor of its own. (One simulator acting for each request's installation would
//! also list the other installations' VMs, as the `Backend` contract allows; it would take
//! an installation parameter through every operation of the simulator's state machine for
//! a case — installations sharing a test hypervisor — nobody needs.)

mod client;
pub mod server;

use std::collections::BTreeSet;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use flotilla_domain::demand::Demand;
use flotilla_domain::{Fault, Model, ValidationErrors, WarmPoolState};
use serde::{Deserialize, Serialize};

pub use self::client::{CALL_TIMEOUT, MockUrl, RemoteMock};
#[cfg(doc)]
use crate::{Backend, FaultInjection, Simulation, mock::Mock};
use crate::{BackendError, VmSpec};

/// The header naming the installation a request acts for.
pub const INSTALLATION_HEADER: &str = "x-flotilla-installation";

/// How often an idle change stream carries an empty line.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Whether `id` may name an installation: 1 to 64 ASCII letters, digits, `-` and `_` (it
/// names a directory on the server; the ids Flotilla makes are 32 hex digits).
pub fn valid_installation(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One call of `POST /v1/backend`: an operation of [`Backend`], [`FaultInjection`] or
/// [`Simulation`] with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Adopt {
        id: String,
    },
    Zones,
    Images,
    Create {
        spec: VmSpec,
    },
    Delete {
        id: String,
        force: bool,
    },
    Start {
        id: String,
    },
    Stop {
        id: String,
        force: bool,
    },
    Deallocate {
        id: String,
    },
    Restart {
        id: String,
    },
    Reimage {
        id: String,
        model: Model,
        model_version: u32,
    },
    Park {
        id: String,
        state: WarmPoolState,
    },
    List {
        scale_set: Option<String>,
    },
    Get {
        id: String,
    },
    Metrics {
        scale_set: Option<String>,
    },
    Hosts,
    Console {
        id: String,
    },
    InjectFault {
        fault: Fault,
    },
    ActiveFaults,
    ClearFaults,
    SetDemand {
        scale_set: String,
        demand: Option<Demand>,
    },
    DemandRps {
        scale_set: String,
    },
}

impl Request {
    /// What the call does, as [`BackendError::Io`] names an operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            Request::Adopt { .. } => "adopt",
            Request::Zones => "list zones",
            Request::Images => "list images",
            Request::Create { .. } => "create",
            Request::Delete { .. } => "delete",
            Request::Start { .. } => "start",
            Request::Stop { .. } => "stop",
            Request::Deallocate { .. } => "deallocate",
            Request::Park { .. } => "park",
            Request::Restart { .. } => "restart",
            Request::Reimage { .. } => "reimage",
            Request::List { .. } => "list",
            Request::Get { .. } => "get",
            Request::Metrics { .. } => "read metrics",
            Request::Hosts => "list hosts",
            Request::Console { .. } => "read the console",
            Request::InjectFault { .. } => "inject a fault",
            Request::ActiveFaults => "list faults",
            Request::ClearFaults => "clear faults",
            Request::SetDemand { .. } => "set the demand",
            Request::DemandRps { .. } => "read the demand",
        }
    }
}

/// What a failed call answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error as its `Display` (and sources) read, for people.
    pub message: String,
    pub error: WireError,
}

/// A [`BackendError`] on the wire: its kind and every field. `&'static str` fields travel
/// as strings and come back interned (each distinct value leaked once); an I/O error as its
/// kind and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireError {
    NotFound {
        id: String,
    },
    ZoneUnavailable {
        zone: String,
    },
    UnknownZone {
        zone: String,
    },
    HostUnavailable {
        host: String,
    },
    UnknownHost {
        host: String,
    },
    InvalidState {
        id: String,
        operation: String,
        state: String,
    },
    CreateFailed {
        id: String,
        reason: String,
    },
    Foreign {
        id: String,
        installation: Option<String>,
    },
    NotSupported {
        backend: String,
        what: String,
    },
    InvalidFault {
        errors: ValidationErrors,
    },
    Libvirt {
        operation: String,
        message: String,
    },
    Io {
        operation: String,
        /// `std::io::ErrorKind` as its `Debug` form (`TimedOut`); unknown kinds come back
        /// as `Other`.
        io_kind: String,
        message: String,
    },
}

impl From<&BackendError> for WireError {
    fn from(error: &BackendError) -> Self {
        match error {
            BackendError::NotFound { id } => WireError::NotFound { id: id.clone() },
            BackendError::ZoneUnavailable { zone } => {
                WireError::ZoneUnavailable { zone: zone.clone() }
            }
            BackendError::UnknownZone { zone } => WireError::UnknownZone { zone: zone.clone() },
            BackendError::HostUnavailable { host } => {
                WireError::HostUnavailable { host: host.clone() }
            }
            BackendError::UnknownHost { host } => WireError::UnknownHost { host: host.clone() },
            BackendError::InvalidState {
                id,
                operation,
                state,
            } => WireError::InvalidState {
                id: id.clone(),
                operation: (*operation).to_owned(),
                state: state.clone(),
            },
            BackendError::CreateFailed { id, reason } => WireError::CreateFailed {
                id: id.clone(),
                reason: reason.clone(),
            },
            BackendError::Foreign { id, installation } => WireError::Foreign {
                id: id.clone(),
                installation: installation.clone(),
            },
            BackendError::NotSupported { backend, what } => WireError::NotSupported {
                backend: (*backend).to_owned(),
                what: (*what).to_owned(),
            },
            BackendError::InvalidFault(errors) => WireError::InvalidFault {
                errors: errors.clone(),
            },
            BackendError::Libvirt { operation, message } => WireError::Libvirt {
                operation: (*operation).to_owned(),
                message: message.clone(),
            },
            BackendError::Io { operation, source } => WireError::Io {
                operation: (*operation).to_owned(),
                io_kind: format!("{:?}", source.kind()),
                message: chain(source),
            },
        }
    }
}

impl From<WireError> for BackendError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::NotFound { id } => BackendError::NotFound { id },
            WireError::ZoneUnavailable { zone } => BackendError::ZoneUnavailable { zone },
            WireError::UnknownZone { zone } => BackendError::UnknownZone { zone },
            WireError::HostUnavailable { host } => BackendError::HostUnavailable { host },
            WireError::UnknownHost { host } => BackendError::UnknownHost { host },
            WireError::InvalidState {
                id,
                operation,
                state,
            } => BackendError::InvalidState {
                id,
                operation: intern(operation),
                state,
            },
            WireError::CreateFailed { id, reason } => BackendError::CreateFailed { id, reason },
            WireError::Foreign { id, installation } => BackendError::Foreign { id, installation },
            WireError::NotSupported { backend, what } => BackendError::NotSupported {
                backend: intern(backend),
                what: intern(what),
            },
            WireError::InvalidFault { errors } => BackendError::InvalidFault(errors),
            WireError::Libvirt { operation, message } => BackendError::Libvirt {
                operation: intern(operation),
                message,
            },
            WireError::Io {
                operation,
                io_kind,
                message,
            } => BackendError::Io {
                operation: intern(operation),
                source: io::Error::new(io_kind_named(&io_kind), message),
            },
        }
    }
}

/// The I/O error kinds that travel by name; any other arrives as `Other`.
const IO_KINDS: [io::ErrorKind; 24] = {
    use io::ErrorKind::*;
    [
        NotFound,
        PermissionDenied,
        ConnectionRefused,
        ConnectionReset,
        HostUnreachable,
        NetworkUnreachable,
        ConnectionAborted,
        NotConnected,
        AddrInUse,
        AddrNotAvailable,
        NetworkDown,
        BrokenPipe,
        AlreadyExists,
        WouldBlock,
        InvalidInput,
        InvalidData,
        TimedOut,
        WriteZero,
        StorageFull,
        Interrupted,
        Unsupported,
        UnexpectedEof,
        OutOfMemory,
        Other,
    ]
};

fn io_kind_named(name: &str) -> io::ErrorKind {
    IO_KINDS
        .into_iter()
        .find(|kind| format!("{kind:?}") == name)
        .unwrap_or(io::ErrorKind::Other)
}

/// The most distinct strings [`intern`] leaks.
const MAX_INTERNED: usize = 1024;

/// `s` as a `&'static str`, for the fields of [`BackendError`] that hold the literals of
/// the code that raised them (operation names, backend names, what is unsupported). A
/// server sends only its own literals, a small fixed set, so each distinct value is leaked
/// once and reused; past [`MAX_INTERNED`] (a server sending made-up values) new values read
/// `(unrecognised)` instead of growing memory without bound.
fn intern(s: String) -> &'static str {
    static SEEN: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = seen.get(s.as_str()) {
        return known;
    }
    if seen.len() >= MAX_INTERNED {
        return "(unrecognised)";
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// An error and its sources, `outer: inner`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ErrorBody {
    pub fn of(error: &BackendError) -> Self {
        ErrorBody {
            message: chain(error),
            error: error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use flotilla_domain::FieldError;

    use super::*;

    /// Every variant, with every field set, comes back as the same variant with the same
    /// fields (an I/O error: its kind and message) through JSON.
    #[test]
    fn every_backend_error_round_trips() {
        let errors = vec![
            BackendError::NotFound { id: "web_1".into() },
            BackendError::ZoneUnavailable { zone: "2".into() },
            BackendError::UnknownZone { zone: "9".into() },
            BackendError::HostUnavailable {
                host: "2-fd1".into(),
            },
            BackendError::UnknownHost {
                host: "9-fd0".into(),
            },
            BackendError::InvalidState {
                id: "web_1".into(),
                operation: "restart",
                state: "stopped".into(),
            },
            BackendError::CreateFailed {
                id: "web_1".into(),
                reason: "simulated failure".into(),
            },
            BackendError::Foreign {
                id: "web_1".into(),
                installation: Some("other".into()),
            },
            BackendError::Foreign {
                id: "web_1".into(),
                installation: None,
            },
            BackendError::NotSupported {
                backend: "mock",
                what: "console output",
            },
            BackendError::InvalidFault(ValidationErrors(vec![FieldError {
                field: "rate".into(),
                message: "must be between 0 and 1".into(),
            }])),
            BackendError::Libvirt {
                operation: "define the domain",
                message: "no space".into(),
            },
            BackendError::Io {
                operation: "append to the mock journal",
                source: io::Error::new(io::ErrorKind::StorageFull, "disk full"),
            },
        ];
        for error in errors {
            let body = ErrorBody::of(&error);
            let json = serde_json::to_string(&body).expect("serialize");
            let back: ErrorBody = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, body);
            assert_eq!(back.message, chain(&error));
            let rebuilt = BackendError::from(back.error);
            assert_eq!(format!("{rebuilt:?}"), format!("{error:?}"), "{json}");
        }
    }

    #[test]
    fn unknown_io_kinds_arrive_as_other_and_interning_reuses() {
        assert_eq!(io_kind_named("TimedOut"), io::ErrorKind::TimedOut);
        assert_eq!(io_kind_named("Bogus"), io::ErrorKind::Other);
        let a = intern("start".to_owned());
        let b = intern("start".to_owned());
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn installation_ids_are_safe_directory_names() {
        assert!(valid_installation("0123456789abcdef0123456789abcdef"));
        assert!(valid_installation("mock"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_installation(bad), "{bad:?}");
        }
    }
}
