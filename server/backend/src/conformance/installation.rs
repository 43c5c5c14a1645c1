//! The installation a backend acts for: its id on every VM the backend creates, and `adopt`.

use flotilla_domain::PowerState;

use super::{Subject, clean, must, settle, spec};
use crate::BackendError;

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
