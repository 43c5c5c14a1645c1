//! What a backend shows: its kind, zones and images; its hosts; `list` and `get` of its
//! VMs; a VM's console.

use flotilla_domain::PowerState;

use super::{Subject, check_address, clean, must, running, settle, spec};
use crate::BackendError;

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

/// `hosts` (when the backend has any) are the fault domains of its zones, each once and
/// named uniquely, and count the VMs on them: a new VM is counted on the host of its zone
/// and fault domain.
pub async fn hosts_are_the_fault_domains_and_count_their_vms(subject: &Subject) {
    let set = "conf-hosts";
    clean(subject, set).await;
    let b = &subject.backend;
    let before = must(b.hosts().await, "hosts");
    if before.is_empty() {
        return; // a backend without hosts
    }
    let zones = must(b.zones().await, "zones");
    let mut expected: Vec<(String, u32)> = zones
        .iter()
        .flat_map(|z| (0..z.fault_domains).map(|fd| (z.name.clone(), fd)))
        .collect();
    let mut offered: Vec<(String, u32)> = before
        .iter()
        .map(|h| (h.zone.clone(), h.fault_domain))
        .collect();
    expected.sort();
    offered.sort();
    assert_eq!(offered, expected, "one host per fault domain: {before:?}");
    let mut names: Vec<&str> = before.iter().map(|h| h.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        before.len(),
        "host names are unique: {before:?}"
    );
    assert!(names.iter().all(|n| !n.is_empty()), "{before:?}");
    for host in &before {
        assert!(host.running <= host.vms, "{host:?}");
        assert_eq!(host.available, host.error.is_none(), "{host:?}");
    }

    let vm = running(subject, set, 0).await;
    let on = |hosts: &[flotilla_domain::HostStatus]| {
        hosts
            .iter()
            .find(|h| h.zone == vm.zone && h.fault_domain == vm.fault_domain)
            .map(|h| (h.vms, h.running))
            .unwrap_or_else(|| panic!("no host for {vm:?}: {hosts:?}"))
    };
    let after = must(b.hosts().await, "hosts");
    let (vms_before, running_before) = on(&before);
    assert_eq!(
        on(&after),
        (vms_before + 1, running_before + 1),
        "{vm:?} is counted on its host: {after:?}"
    );
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
