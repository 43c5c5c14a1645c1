//! The conformance suite every [`Backend`] passes: one async function per clause of the
//! trait's contract, and [`backend_conformance!`](crate::backend_conformance) to expand them
//! into one `#[tokio::test]` each for an implementation.
//!
//! The suite works for backends whose operations complete later: it waits for a state by
//! polling `get` ([`settle`]) and lets time pass through a [`Time`] hook, which sleeps for a
//! real backend and advances the clock of a stepped simulator. Every observation is checked
//! against the address invariant (`address` is `Some` exactly while running).
//!
//! Each case works in scale sets named `conf-<case>` and deletes what it finds there first
//! and what it created last, so a real backend shared with other VMs can run it.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use flotilla_backend::conformance::Subject;
//! use flotilla_backend::mock::{Mock, MockConfig};
//!
//! mod conformance_mock {
//!     use super::*;
//!     flotilla_backend::backend_conformance!(async {
//!         let mock = Arc::new(Mock::open(MockConfig::instant()).await.expect("open"));
//!         Subject::new(mock)
//!     });
//! }
//! # fn main() {}
//! ```
//!
//! This is test support compiled into the library: failures panic with what was expected.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flotilla_domain::{Model, ObservedVm, PowerState};

use crate::mock::Mock;
use crate::{Backend, BackendError, Result, VmSpec};

/// How time passes for the backend under test while the suite waits.
#[async_trait]
pub trait Time: Send + Sync {
    /// Lets `by` pass: a real backend sleeps, a stepped simulator advances its clock.
    async fn pass(&self, by: Duration);
}

/// Wall-clock time: waiting is sleeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealTime;

#[async_trait]
impl Time for RealTime {
    async fn pass(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}

/// A mock passes time by advancing its virtual clock (what a [`Mode::Stepped`] mock needs).
///
/// [`Mode::Stepped`]: crate::mock::Mode::Stepped
#[async_trait]
impl Time for Mock {
    async fn pass(&self, by: Duration) {
        self.advance(by).await;
    }
}

/// A backend under test and how time passes for it.
#[derive(Clone)]
pub struct Subject {
    pub backend: Arc<dyn Backend>,
    pub time: Arc<dyn Time>,
    /// How long an accepted operation may take to reach its state.
    pub timeout: Duration,
    /// How much time passes between two polls.
    pub poll: Duration,
}

impl Subject {
    /// A backend on wall-clock time, with a 60 s timeout and 20 ms polls.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Subject {
            backend,
            time: Arc::new(RealTime),
            timeout: Duration::from_secs(60),
            poll: Duration::from_millis(20),
        }
    }

    pub fn with_time(mut self, time: Arc<dyn Time>) -> Self {
        self.time = time;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each building its own [`Subject`]
/// from `$subject`, an expression evaluating to a future of a `Subject` (an `async` block).
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! backend_conformance {
    ($subject:expr) => {
        $crate::backend_conformance!(@cases $subject;
            kind_zones_and_images_are_listed,
            create_returns_the_vm_and_it_runs,
            create_is_idempotent_by_id,
            create_in_an_unknown_zone_is_rejected,
            delete_is_idempotent,
            operations_on_an_absent_vm_are_not_found,
            stop_then_start,
            deallocate_then_start,
            restart_needs_a_running_vm_and_returns_to_running,
            reimage_runs_the_new_model_version_from_any_state,
            address_is_set_exactly_while_running,
            list_is_filtered_by_scale_set_and_ordered_by_id,
            get_agrees_with_list,
            the_last_operation_wins,
            console_of_a_vm,
            vms_carry_the_installation_id_and_adopt_is_idempotent,
        );
    };
    (@cases $subject:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject: $crate::conformance::Subject = $subject.await;
                $crate::conformance::$case(&subject).await;
            }
        )+
    };
}

// ----- helpers ---------------------------------------------------------------------------------

fn must<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {}", chain(&error)),
    }
}

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

/// The contract's address clause, checked on every observation.
pub fn check_address(vm: &ObservedVm) {
    assert_eq!(
        vm.address.is_some(),
        vm.power_state == PowerState::Running,
        "address must be set exactly while running: {vm:?}"
    );
}

/// Polls `get` until the VM reaches `state`, letting time pass between polls; panics after
/// the subject's timeout.
pub async fn settle(subject: &Subject, id: &str, state: PowerState) -> ObservedVm {
    settle_timed(subject, id, state).await.0
}

/// [`settle`], also answering how much time passed.
async fn settle_timed(subject: &Subject, id: &str, state: PowerState) -> (ObservedVm, Duration) {
    let mut waited = Duration::ZERO;
    loop {
        let vm = must(subject.backend.get(id).await, "get")
            .unwrap_or_else(|| panic!("VM {id} vanished while waiting for it to be {state}"));
        check_address(&vm);
        if vm.power_state == state {
            return (vm, waited);
        }
        if waited >= subject.timeout {
            panic!(
                "VM {id} is still {} after {:?}, expected {state}",
                vm.power_state, subject.timeout
            );
        }
        subject.time.pass(subject.poll).await;
        waited += subject.poll;
    }
}

/// A model using the backend's first image.
pub async fn model(subject: &Subject) -> Model {
    let images = must(subject.backend.images().await, "images");
    Model {
        image: images
            .first()
            .cloned()
            .expect("the backend offers at least one image"),
        vcpus: 1,
        memory_mib: 512,
        disk_gib: 10,
        data_disks: Vec::new(),
        user_data: None,
        user_data_length: None,
        user_data_sha256: None,
        tags: Default::default(),
        app_port: 80,
    }
}

/// The spec of instance `<set>_<ordinal>` in the backend's first available zone.
pub async fn spec(subject: &Subject, set: &str, ordinal: u64) -> VmSpec {
    let zones = must(subject.backend.zones().await, "zones");
    let zone = zones
        .iter()
        .find(|z| z.available)
        .expect("at least one zone is available");
    VmSpec {
        id: format!("{set}_{ordinal}"),
        scale_set: set.to_owned(),
        zone: zone.name.clone(),
        fault_domain: 0,
        model_version: 1,
        model: model(subject).await,
    }
}

/// Deletes every VM of `set` (left over by an earlier run on a shared backend).
pub async fn clean(subject: &Subject, set: &str) {
    for vm in must(subject.backend.list(Some(set)).await, "list") {
        must(subject.backend.delete(&vm.id, true).await, "delete");
    }
}

/// Creates `<set>_<ordinal>` and waits until it runs.
pub async fn running(subject: &Subject, set: &str, ordinal: u64) -> ObservedVm {
    let spec = spec(subject, set, ordinal).await;
    let vm = must(subject.backend.create(&spec).await, "create");
    check_address(&vm);
    settle(subject, &spec.id, PowerState::Running).await
}

fn assert_power(vm: &ObservedVm, allowed: &[PowerState], after: &str) {
    check_address(vm);
    assert!(
        allowed.contains(&vm.power_state),
        "after {after}, expected one of {allowed:?}, got {vm:?}"
    );
}

// ----- cases -----------------------------------------------------------------------------------

/// `kind`, `zones` and `images` describe the backend.
pub async fn kind_zones_and_images_are_listed(subject: &Subject) {
    assert!(!subject.backend.kind().is_empty());
    let zones = must(subject.backend.zones().await, "zones");
    assert!(!zones.is_empty(), "a backend has at least one zone");
    let mut names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), zones.len(), "zone names are unique: {zones:?}");
    for zone in &zones {
        assert!(!zone.name.is_empty(), "{zone:?}");
        assert!(zone.fault_domains >= 1, "{zone:?} offers a fault domain");
    }
    let images = must(subject.backend.images().await, "images");
    assert!(!images.is_empty(), "a backend offers at least one image");
    assert!(images.iter().all(|i| !i.is_empty()), "{images:?}");
}

/// `create` answers the VM as specified, accepted (`starting`) or done (`running`), and it
/// comes to run.
pub async fn create_returns_the_vm_and_it_runs(subject: &Subject) {
    let set = "conf-create";
    clean(subject, set).await;
    let spec = spec(subject, set, 0).await;
    let vm = must(subject.backend.create(&spec).await, "create");
    assert_eq!(vm.id, spec.id);
    assert_eq!(vm.scale_set, spec.scale_set);
    assert_eq!(vm.zone, spec.zone);
    assert_eq!(vm.fault_domain, spec.fault_domain);
    assert_eq!(vm.model_version, spec.model_version);
    assert_power(&vm, &[PowerState::Starting, PowerState::Running], "create");
    let vm = settle(subject, &spec.id, PowerState::Running).await;
    assert!(vm.address.is_some());
    clean(subject, set).await;
}

/// Every VM created carries the backend's installation id, in `create`, `get` and `list`;
/// `adopt` of its own VM changes nothing, of an absent one is `NotFound`.
pub async fn vms_carry_the_installation_id_and_adopt_is_idempotent(subject: &Subject) {
    let set = "conf-installation";
    clean(subject, set).await;
    let ours = Some(subject.backend.installation_id().to_owned());
    assert!(ours.as_deref().is_some_and(|id| !id.is_empty()));
    let spec = spec(subject, set, 0).await;
    let created = must(subject.backend.create(&spec).await, "create");
    assert_eq!(created.installation_id, ours);
    let vm = settle(subject, &spec.id, PowerState::Running).await;
    assert_eq!(vm.installation_id, ours);
    let listed = must(subject.backend.list(Some(set)).await, "list");
    assert_eq!(listed[0].installation_id, ours);
    let adopted = must(subject.backend.adopt(&spec.id).await, "adopt");
    assert_eq!(
        (adopted.installation_id, adopted.power_state),
        (ours, PowerState::Running)
    );
    match subject.backend.adopt("conf-installation_9").await {
        Err(BackendError::NotFound { id }) => assert_eq!(id, "conf-installation_9"),
        other => panic!("adopt of an absent VM: expected NotFound, got {other:?}"),
    }
    clean(subject, set).await;
}

/// A second `create` with the same id returns the existing VM as it is.
pub async fn create_is_idempotent_by_id(subject: &Subject) {
    let set = "conf-idempotent";
    clean(subject, set).await;
    let first = running(subject, set, 0).await;
    let mut again = spec(subject, set, 0).await;
    again.model_version = 7;
    let second = must(subject.backend.create(&again).await, "second create");
    assert_eq!(second.id, first.id);
    assert_eq!(
        second.model_version, 1,
        "the existing VM is returned as it is"
    );
    assert_eq!(second.zone, first.zone);
    let listed = must(subject.backend.list(Some(set)).await, "list");
    assert_eq!(listed.len(), 1, "one VM per id: {listed:?}");
    clean(subject, set).await;
}

/// `create` in a zone the backend does not have is `UnknownZone` and leaves nothing.
pub async fn create_in_an_unknown_zone_is_rejected(subject: &Subject) {
    let set = "conf-unknown-zone";
    clean(subject, set).await;
    let mut spec = spec(subject, set, 0).await;
    spec.zone = "no-such-zone".into();
    match subject.backend.create(&spec).await {
        Err(BackendError::UnknownZone { zone }) => assert_eq!(zone, "no-such-zone"),
        other => panic!("expected UnknownZone, got {other:?}"),
    }
    assert_eq!(must(subject.backend.get(&spec.id).await, "get"), None);
    assert!(must(subject.backend.list(Some(set)).await, "list").is_empty());
}

/// `delete` removes the VM; deleting an absent VM succeeds, forced or not.
pub async fn delete_is_idempotent(subject: &Subject) {
    let set = "conf-delete";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    must(subject.backend.delete(&vm.id, false).await, "delete");
    assert_eq!(must(subject.backend.get(&vm.id).await, "get"), None);
    let listed = must(subject.backend.list(None).await, "list");
    assert!(
        listed.iter().all(|v| v.id != vm.id),
        "deleted VM still listed"
    );
    must(subject.backend.delete(&vm.id, false).await, "delete again");
    must(
        subject.backend.delete(&vm.id, true).await,
        "forced delete again",
    );
    must(
        subject.backend.delete("conf-delete_never", false).await,
        "delete of a VM that never existed",
    );
}

/// Every operation but create and delete is `NotFound` on an absent VM; `get` is `None`.
pub async fn operations_on_an_absent_vm_are_not_found(subject: &Subject) {
    let id = "conf-absent_0";
    let b = &subject.backend;
    let model = model(subject).await;
    let outcomes = [
        ("start", b.start(id).await),
        ("stop", b.stop(id, false).await),
        ("forced stop", b.stop(id, true).await),
        ("deallocate", b.deallocate(id).await),
        ("restart", b.restart(id).await),
        ("reimage", b.reimage(id, &model, 2).await),
    ];
    for (operation, outcome) in outcomes {
        match outcome {
            Err(BackendError::NotFound { id: missing }) => assert_eq!(missing, id),
            other => panic!("{operation} on an absent VM: expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(must(b.get(id).await, "get"), None);
    match b.console(id).await {
        Err(BackendError::NotFound { .. } | BackendError::NotSupported { .. }) => {}
        other => panic!("console of an absent VM: expected NotFound, got {other:?}"),
    }
}

/// The console of a VM answers its output (possibly empty: a backend running no guest), or
/// says the backend keeps none.
pub async fn console_of_a_vm(subject: &Subject) {
    let set = "conf-console";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    match subject.backend.console(&vm.id).await {
        Ok(_) | Err(BackendError::NotSupported { .. }) => {}
        Err(e) => panic!("console of a running VM: {e}"),
    }
    clean(subject, set).await;
}

/// `stop` reaches `stopped` (idempotently), `start` brings the VM back to `running`.
pub async fn stop_then_start(subject: &Subject) {
    let set = "conf-stop";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    let stopping = must(b.stop(&vm.id, false).await, "stop");
    assert_power(
        &stopping,
        &[PowerState::Stopping, PowerState::Stopped],
        "stop",
    );
    let stopped = settle(subject, &vm.id, PowerState::Stopped).await;
    assert_eq!(stopped.address, None);
    let again = must(b.stop(&vm.id, false).await, "stop again");
    assert_eq!(again.power_state, PowerState::Stopped, "stop is idempotent");
    let starting = must(b.start(&vm.id).await, "start");
    assert_power(
        &starting,
        &[PowerState::Starting, PowerState::Running],
        "start",
    );
    let started = settle(subject, &vm.id, PowerState::Running).await;
    assert!(started.address.is_some());
    let again = must(b.start(&vm.id).await, "start again");
    assert_eq!(
        again.power_state,
        PowerState::Running,
        "start is idempotent"
    );
    clean(subject, set).await;
}

/// `deallocate` reaches `deallocated` (idempotently) and `start` brings the VM back.
pub async fn deallocate_then_start(subject: &Subject) {
    let set = "conf-deallocate";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    let accepted = must(b.deallocate(&vm.id).await, "deallocate");
    assert_power(
        &accepted,
        &[PowerState::Deallocating, PowerState::Deallocated],
        "deallocate",
    );
    settle(subject, &vm.id, PowerState::Deallocated).await;
    let again = must(b.deallocate(&vm.id).await, "deallocate again");
    assert_eq!(again.power_state, PowerState::Deallocated);
    must(b.start(&vm.id).await, "start");
    settle(subject, &vm.id, PowerState::Running).await;
    clean(subject, set).await;
}

/// `restart` takes a running VM back to `running`; on a stopped VM it is `InvalidState`.
pub async fn restart_needs_a_running_vm_and_returns_to_running(subject: &Subject) {
    let set = "conf-restart";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    let accepted = must(b.restart(&vm.id).await, "restart");
    assert_power(
        &accepted,
        &[PowerState::Starting, PowerState::Running],
        "restart",
    );
    settle(subject, &vm.id, PowerState::Running).await;
    must(b.stop(&vm.id, false).await, "stop");
    settle(subject, &vm.id, PowerState::Stopped).await;
    match b.restart(&vm.id).await {
        Err(BackendError::InvalidState { id, .. }) => assert_eq!(id, vm.id),
        other => panic!("restart of a stopped VM: expected InvalidState, got {other:?}"),
    }
    clean(subject, set).await;
}

/// `reimage` leaves the VM running on the new model version, from running and from stopped.
pub async fn reimage_runs_the_new_model_version_from_any_state(subject: &Subject) {
    let set = "conf-reimage";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    let model = model(subject).await;
    let accepted = must(b.reimage(&vm.id, &model, 2).await, "reimage");
    check_address(&accepted);
    let reimaged = settle(subject, &vm.id, PowerState::Running).await;
    assert_eq!(reimaged.model_version, 2);

    must(b.stop(&vm.id, true).await, "stop");
    settle(subject, &vm.id, PowerState::Stopped).await;
    must(b.reimage(&vm.id, &model, 3).await, "reimage a stopped VM");
    let reimaged = settle(subject, &vm.id, PowerState::Running).await;
    assert_eq!(reimaged.model_version, 3);

    must(b.deallocate(&vm.id).await, "deallocate");
    settle(subject, &vm.id, PowerState::Deallocated).await;
    must(
        b.reimage(&vm.id, &model, 4).await,
        "reimage a deallocated VM",
    );
    let reimaged = settle(subject, &vm.id, PowerState::Running).await;
    assert_eq!(reimaged.model_version, 4);
    clean(subject, set).await;
}

/// Through a whole life cycle, `get` and `list` show an address exactly while running.
pub async fn address_is_set_exactly_while_running(subject: &Subject) {
    let set = "conf-address";
    clean(subject, set).await;
    let b = &subject.backend;
    let spec = spec(subject, set, 0).await;
    check_address(&must(b.create(&spec).await, "create"));
    let check_list = || async {
        for vm in must(b.list(Some(set)).await, "list") {
            check_address(&vm);
        }
    };
    let steps: [(&str, PowerState); 4] = [
        ("stop", PowerState::Stopped),
        ("start", PowerState::Running),
        ("deallocate", PowerState::Deallocated),
        ("start", PowerState::Running),
    ];
    settle(subject, &spec.id, PowerState::Running).await;
    check_list().await;
    for (operation, target) in steps {
        let accepted = match operation {
            "stop" => b.stop(&spec.id, false).await,
            "deallocate" => b.deallocate(&spec.id).await,
            _ => b.start(&spec.id).await,
        };
        check_address(&must(accepted, operation));
        check_list().await;
        settle(subject, &spec.id, target).await;
        check_list().await;
    }
    clean(subject, set).await;
}

/// `list` of a scale set holds exactly its VMs, ordered by id; `list(None)` holds every VM,
/// ordered by id.
pub async fn list_is_filtered_by_scale_set_and_ordered_by_id(subject: &Subject) {
    let (a, b_set) = ("conf-list-a", "conf-list-b");
    clean(subject, a).await;
    clean(subject, b_set).await;
    let b = &subject.backend;
    for ordinal in [2, 10, 1] {
        must(b.create(&spec(subject, a, ordinal).await).await, "create");
    }
    must(b.create(&spec(subject, b_set, 1).await).await, "create");

    let in_a: Vec<String> = must(b.list(Some(a)).await, "list")
        .into_iter()
        .map(|vm| {
            check_address(&vm);
            assert_eq!(vm.scale_set, a);
            vm.id
        })
        .collect();
    assert_eq!(
        in_a,
        ["conf-list-a_1", "conf-list-a_10", "conf-list-a_2"],
        "ordered by id (as strings)"
    );
    let in_b: Vec<String> = must(b.list(Some(b_set)).await, "list")
        .into_iter()
        .map(|vm| vm.id)
        .collect();
    assert_eq!(in_b, ["conf-list-b_1"]);
    assert!(must(b.list(Some("conf-list-none")).await, "list").is_empty());

    let all: Vec<String> = must(b.list(None).await, "list")
        .into_iter()
        .map(|vm| vm.id)
        .collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "list(None) is ordered by id"
    );
    for id in in_a.iter().chain(&in_b) {
        assert!(all.contains(id), "list(None) holds {id}");
    }
    clean(subject, a).await;
    clean(subject, b_set).await;
}

/// Once settled, `get` answers what `list` does.
pub async fn get_agrees_with_list(subject: &Subject) {
    let set = "conf-get";
    clean(subject, set).await;
    for ordinal in 0..3 {
        running(subject, set, ordinal).await;
    }
    must(subject.backend.stop("conf-get_1", false).await, "stop");
    settle(subject, "conf-get_1", PowerState::Stopped).await;
    let listed = must(subject.backend.list(Some(set)).await, "list");
    assert_eq!(listed.len(), 3);
    for vm in listed {
        let got = must(subject.backend.get(&vm.id).await, "get");
        assert_eq!(got.as_ref(), Some(&vm));
    }
    clean(subject, set).await;
}

/// A VM settles where the last operation asked, even when it came before the previous
/// one finished.
pub async fn the_last_operation_wins(subject: &Subject) {
    let set = "conf-last";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    must(b.stop(&vm.id, false).await, "stop");
    must(b.start(&vm.id).await, "start right after stop");
    settle(subject, &vm.id, PowerState::Running).await;
    must(b.deallocate(&vm.id).await, "deallocate");
    must(b.start(&vm.id).await, "start right after deallocate");
    settle(subject, &vm.id, PowerState::Running).await;
    must(b.start(&vm.id).await, "start");
    must(b.stop(&vm.id, false).await, "stop right after start");
    let (_, took) = settle_timed(subject, &vm.id, PowerState::Stopped).await;
    // The start that was in flight must not move the VM afterwards: let pass well over
    // the time the stop took.
    subject.time.pass(took * 3 + subject.poll).await;
    let still = must(b.get(&vm.id).await, "get").expect("the VM exists");
    assert_eq!(still.power_state, PowerState::Stopped, "{still:?}");
    clean(subject, set).await;
}
