//! The mock's persistence: an append-only journal of JSON lines in `state_dir`, so VMs
//! outlive the control plane's process like real ones.
//!
//! Every change appends one line — a VM's whole record (a delete in progress included), a
//! VM's deletion or the lasting faults that are not per VM (zones and hosts down, …) —
//! with one `write` call, synchronously, before the operation returns (no fsync: the
//! journal survives a process crash, not a power cut). Opening replays the journal (last
//! record of a VM wins), then compacts it: a fresh snapshot is written to a temporary file
//! and renamed over the journal, so the file stays proportional to the number of VMs rather
//! than to their history.
//!
//! A torn last line (the process died mid-write) is ignored; a corrupt line elsewhere is an
//! error, because skipping it could resurrect a deleted VM or lose one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use flotilla_domain::{PowerState, WarmPoolState};
use serde::{Deserialize, Serialize};

use super::OpenError;

/// The journal's file name inside `state_dir`.
pub const JOURNAL_FILE: &str = "mock-journal.jsonl";

/// A VM as persisted: everything needed to bring it back after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct VmRecord {
    pub id: String,
    pub scale_set: String,
    pub zone: String,
    pub fault_domain: u32,
    pub model_version: u32,
    pub image: String,
    /// The model's vCPUs (the load model's capacity).
    #[serde(default = "two")]
    pub vcpus: u32,
    /// The model's memory, for the hosts' use (0 in records from before it was kept).
    #[serde(default)]
    pub memory_mib: u64,
    pub power_state: PowerState,
    /// The port the VM last served on; tried first when it serves again.
    #[serde(default)]
    pub port: Option<u16>,
    /// An `unhealthy` fault is on the instance.
    #[serde(default)]
    pub unhealthy: bool,
    /// The VM was running when its zone or its host went down and starts again once both
    /// are up.
    #[serde(default)]
    pub resume_on_zone_up: bool,
    /// The installation that created or adopted it (`None`: made before installations had
    /// ids). Only a mock opened for that installation changes it.
    #[serde(default)]
    pub installation_id: Option<String>,
    /// The generation of the control plane's lease it was created under.
    #[serde(default)]
    pub lease_generation: Option<i64>,
    /// A delete is in progress: the VM serves no more and goes once the delete's latency
    /// has passed. A mock reopened on a journal whose last word on the VM is this record
    /// (the process stopped meanwhile) finishes the delete, so the VM never comes back.
    #[serde(default)]
    pub deleting: bool,
    /// Parked for a warm pool: idle when `running` (no share of the demand), and its next
    /// start resumes rather than boots (see `State::start`).
    #[serde(default)]
    pub parked: Option<WarmPoolState>,
}

/// The lasting faults that are not per instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ZoneFaults {
    #[serde(default)]
    pub zones_down: Vec<String>,
    /// Hosts down, by name (`{zone}-fd{n}`).
    #[serde(default)]
    pub hosts_down: Vec<String>,
    #[serde(default)]
    pub create_failure_rate: f64,
    #[serde(default)]
    pub slow_boot_seconds: u32,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Entry {
    /// Creates or replaces a VM's record.
    Vm(VmRecord),
    Delete {
        id: String,
    },
    Faults(ZoneFaults),
}

/// What replaying a journal yields.
#[derive(Debug, Default)]
pub(super) struct Replayed {
    pub vms: BTreeMap<String, VmRecord>,
    pub faults: ZoneFaults,
}

/// The open journal, appended to on every change.
#[derive(Debug)]
pub(super) struct Journal {
    file: File,
    line: Vec<u8>,
}

impl Journal {
    /// Appends one entry as one line with one `write`.
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, entry).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.file.write_all(&self.line)
    }
}

/// Reads the journal in `dir` (an absent journal is an empty one).
pub(super) fn replay(dir: &Path) -> Result<Replayed, OpenError> {
    let path = dir.join(JOURNAL_FILE);
    let read_error = |source| OpenError::ReadJournal {
        path: path.clone(),
        source,
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(read_error(e)),
    };
    let mut replayed = Replayed::default();
    let mut lines = BufReader::new(file).lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = match serde_json::from_str::<Entry>(&line) {
            Ok(entry) => entry,
            Err(error) if lines.peek().is_none() => {
                tracing::warn!(path = %path.display(), line = index + 1, %error,
                    "ignoring the torn last line of the mock journal");
                break;
            }
            Err(source) => {
                return Err(OpenError::CorruptJournal {
                    path: path.clone(),
                    line: index + 1,
                    source,
                });
            }
        };
        match entry {
            Entry::Vm(record) => {
                replayed.vms.insert(record.id.clone(), record);
            }
            Entry::Delete { id } => {
                replayed.vms.remove(&id);
            }
            Entry::Faults(faults) => replayed.faults = faults,
        }
    }
    Ok(replayed)
}

/// Writes `snapshot` as the whole journal (temporary file, then rename) and opens it for
/// appending.
pub(super) fn compact<'a>(
    dir: &Path,
    snapshot: impl IntoIterator<Item = &'a Entry>,
) -> Result<Journal, OpenError> {
    let path = dir.join(JOURNAL_FILE);
    let temporary = dir.join(format!("{JOURNAL_FILE}.tmp"));
    let write_error = |path: &Path, source| OpenError::WriteJournal {
        path: path.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    {
        let file = File::create(&temporary).map_err(|e| write_error(&temporary, e))?;
        let mut out = BufWriter::new(file);
        for entry in snapshot {
            serde_json::to_writer(&mut out, entry)
                .map_err(|e| write_error(&temporary, io::Error::other(e)))?;
            out.write_all(b"\n")
                .map_err(|e| write_error(&temporary, e))?;
        }
        out.flush().map_err(|e| write_error(&temporary, e))?;
    }
    fs::rename(&temporary, &path).map_err(|e| write_error(&path, e))?;
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| write_error(&path, e))?;
    Ok(Journal {
        file,
        line: Vec::with_capacity(256),
    })
}

fn two() -> u32 {
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> VmRecord {
        VmRecord {
            id: id.into(),
            scale_set: "web".into(),
            zone: "1".into(),
            fault_domain: 0,
            model_version: 1,
            image: "debian-12".into(),
            vcpus: 2,
            memory_mib: 512,
            power_state: PowerState::Running,
            port: Some(4000),
            unhealthy: false,
            resume_on_zone_up: false,
            installation_id: Some("mock".into()),
            lease_generation: Some(3),
            deleting: false,
            parked: Some(WarmPoolState::Paused),
        }
    }

    #[test]
    fn replay_keeps_the_last_record_and_honours_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut stopped = record("web_1");
        stopped.power_state = PowerState::Stopped;
        let entries = [
            Entry::Vm(record("web_0")),
            Entry::Vm(record("web_1")),
            Entry::Vm(stopped.clone()),
            Entry::Delete { id: "web_0".into() },
            Entry::Faults(ZoneFaults {
                zones_down: vec!["2".into()],
                hosts_down: vec!["1-fd2".into()],
                create_failure_rate: 0.5,
                slow_boot_seconds: 3,
            }),
        ];
        let mut journal = compact(dir.path(), &[]).unwrap();
        for entry in &entries {
            journal.append(entry).unwrap();
        }
        let replayed = replay(dir.path()).unwrap();
        assert_eq!(replayed.vms.len(), 1);
        assert_eq!(replayed.vms["web_1"], stopped);
        assert_eq!(replayed.faults.zones_down, vec!["2".to_string()]);
        assert_eq!(replayed.faults.hosts_down, vec!["1-fd2".to_string()]);
        assert_eq!(replayed.faults.slow_boot_seconds, 3);
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_a_corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let good = serde_json::to_string(&Entry::Vm(record("web_0"))).unwrap();
        fs::write(&path, format!("{good}\n{{\"op\":\"vm\",\"id\":")).unwrap();
        assert_eq!(replay(dir.path()).unwrap().vms.len(), 1);

        fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        let error = replay(dir.path()).unwrap_err();
        assert!(
            matches!(error, OpenError::CorruptJournal { line: 1, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn an_absent_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let replayed = replay(dir.path()).unwrap();
        assert!(replayed.vms.is_empty());
        assert_eq!(replayed.faults, ZoneFaults::default());
    }
}
