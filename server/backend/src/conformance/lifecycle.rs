//! A VM's life: `create` (idempotent by id, only in a zone the backend has), `delete`
//! (idempotent), the lease generation recorded in the VM, and `NotFound` from every other
//! operation on a VM that does not exist.

use flotilla_domain::PowerState;

use super::{Subject, assert_power, clean, delete, model, must, running, settle, spec};
use crate::BackendError;

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

/// The lease generation a VM was created under is in its metadata: `get` and `list`
/// answer it, and a reimage keeps it (the VM is still the one that term made).
pub async fn the_lease_generation_is_recorded_in_the_vm(subject: &Subject) {
    let set = "conf-generation";
    clean(subject, set).await;
    let mut with = spec(subject, set, 0).await;
    with.lease_generation = Some(7);
    let without = spec(subject, set, 1).await;
    assert_eq!(
        must(subject.backend.create(&with).await, "create").lease_generation,
        Some(7)
    );
    must(subject.backend.create(&without).await, "create");
    let vm = settle(subject, &with.id, PowerState::Running).await;
    assert_eq!(vm.lease_generation, Some(7));
    settle(subject, &without.id, PowerState::Running).await;
    let listed = must(subject.backend.list(Some(set)).await, "list");
    let generations: Vec<Option<i64>> = listed.iter().map(|v| v.lease_generation).collect();
    assert_eq!(generations, [Some(7), None]);
    let vm = must(
        subject
            .backend
            .reimage(&with.id, &model(subject).await, 2)
            .await,
        "reimage",
    );
    assert_eq!(vm.lease_generation, Some(7));
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

/// `delete` removes the VM (once it answers, which may take time); deleting an absent VM
/// succeeds, forced or not.
pub async fn delete_is_idempotent(subject: &Subject) {
    let set = "conf-delete";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    must(delete(subject, &vm.id, false).await, "delete");
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
