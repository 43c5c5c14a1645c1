//! The conformance suite every [`Backend`] passes: one async function per clause of the
//! trait's contract, and [`backend_conformance!`](crate::backend_conformance) to expand them
//! into one `#[tokio::test]` each for an implementation.
//!
//! The cases live in the module of their subject: [`lifecycle`] (create and delete),
//! [`power`] (operations on an existing VM), [`inventory`] (what a backend lists and shows)
//! and [`installation`] (the installation id and `adopt`). This module holds the [`Subject`]
//! under test, the macro and the helpers the cases share.
//!
//! The suite works for backends whose operations complete later: it waits for a state by
//! polling `get` ([`settle`]) and lets time pass through a [`Time`] hook, which sleeps for a
//! real backend and advances the clock of a stepped simulator. A `delete` may answer only
//! once the VM is gone (libvirt's, a mock's with latency): the suite lets time pass while
//! it waits ([`delete`]). Every observation is checked against the address invariant
//! (`address` is `Some` exactly while running).
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
//! Test support behind the cargo feature `conformance`, so not in the production library
//! (this crate's tests enable it through a dev-dependency on the crate itself): failures
//! panic with what was expected.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flotilla_domain::{Model, ObservedVm, PowerState};

use crate::mock::Mock;
use crate::{Backend, Result, VmSpec};

pub mod installation;
pub mod inventory;
pub mod lifecycle;
pub mod power;

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
/// The cases are listed by subject module; each test is named after its case alone. The
/// calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! backend_conformance {
    ($subject:expr) => {
        $crate::backend_conformance!(@cases $subject;
            lifecycle: [
                create_returns_the_vm_and_it_runs,
                the_lease_generation_is_recorded_in_the_vm,
                create_is_idempotent_by_id,
                create_in_an_unknown_zone_is_rejected,
                delete_is_idempotent,
                operations_on_an_absent_vm_are_not_found,
            ],
            power: [
                stop_then_start,
                deallocate_then_start,
                park_in_each_state_then_start,
                restart_needs_a_running_vm_and_returns_to_running,
                reimage_runs_the_new_model_version_from_any_state,
                address_is_set_exactly_while_running,
                the_last_operation_wins,
            ],
            inventory: [
                kind_zones_and_images_are_listed,
                hosts_are_the_fault_domains_and_count_their_vms,
                list_is_filtered_by_scale_set_and_ordered_by_id,
                get_agrees_with_list,
                console_of_a_vm,
            ],
            installation: [
                vms_carry_the_installation_id_and_adopt_is_idempotent,
            ],
        );
    };
    (@cases $subject:expr; $($module:ident: [$($case:ident),+ $(,)?]),+ $(,)?) => {
        $($(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject: $crate::conformance::Subject = $subject.await;
                $crate::conformance::$module::$case(&subject).await;
            }
        )+)+
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
    model_on(
        images
            .first()
            .expect("the backend offers at least one image"),
    )
}

/// A small model (1 vCPU, 512 MiB, 10 GiB, app port 80) on `image`.
pub fn model_on(image: &str) -> Model {
    Model {
        image: image.into(),
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
        lease_generation: None,
        closed_fault_domains: Vec::new(),
    }
}

/// Deletes every VM of `set` (left over by an earlier run on a shared backend).
pub async fn clean(subject: &Subject, set: &str) {
    for vm in must(subject.backend.list(Some(set)).await, "list") {
        must(delete(subject, &vm.id, true).await, "delete");
    }
}

/// Calls `delete`, letting the backend's time pass while it waits (a stepped simulator's
/// delete answers only once its clock has moved past it) until `get` no longer finds the
/// VM; then only the call's own work is left (a simulated VM's port closing), which gets
/// the subject's timeout in real time. Panics when either wait runs out.
pub async fn delete(subject: &Subject, id: &str, force: bool) -> Result<()> {
    let call = subject.backend.delete(id, force);
    tokio::pin!(call);
    let mut waited = Duration::ZERO;
    while must(subject.backend.get(id).await, "get").is_some() {
        if waited >= subject.timeout {
            panic!(
                "VM {id} is still there {:?} into its delete",
                subject.timeout
            );
        }
        tokio::select! {
            biased;
            result = &mut call => return result,
            () = subject.time.pass(subject.poll) => {}
        }
        waited += subject.poll;
    }
    tokio::time::timeout(subject.timeout, call)
        .await
        .unwrap_or_else(|_| panic!("VM {id} is gone but its delete has not answered"))
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
