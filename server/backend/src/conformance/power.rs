//! Operations on an existing VM — stop, deallocate, start, restart, reimage, park — the address
//! that follows its power state, and the last operation winning over one still in flight.

use flotilla_domain::{PowerState, WarmPoolState};

use super::{
    Subject, assert_power, check_address, clean, model, must, running, settle, settle_timed, spec,
};
use crate::BackendError;

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

/// `park` puts a running VM in each warm pool state (idempotently), and `start` brings it
/// back to `running`, serving again; parking a VM that is not running is `InvalidState`.
pub async fn park_in_each_state_then_start(subject: &Subject) {
    let set = "conf-park";
    clean(subject, set).await;
    let vm = running(subject, set, 0).await;
    let b = &subject.backend;
    for state in WarmPoolState::ALL {
        let accepted = must(b.park(&vm.id, *state).await, "park");
        check_address(&accepted);
        let parked = settle(subject, &vm.id, state.power_state()).await;
        assert_eq!(
            parked.address.is_some(),
            *state == WarmPoolState::Running,
            "{state}"
        );
        let again = must(b.park(&vm.id, *state).await, "park again");
        assert_eq!(
            again.power_state,
            state.power_state(),
            "park {state} is idempotent"
        );
        if *state != WarmPoolState::Running {
            let other = if *state == WarmPoolState::Paused {
                WarmPoolState::Saved
            } else {
                WarmPoolState::Paused
            };
            match b.park(&vm.id, other).await {
                Err(BackendError::InvalidState { .. }) => {}
                other_result => panic!("park {other} while {state}: {other_result:?}"),
            }
        }
        must(b.start(&vm.id).await, "start");
        let back = settle(subject, &vm.id, PowerState::Running).await;
        assert!(back.address.is_some(), "serves again after {state}");
    }
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
