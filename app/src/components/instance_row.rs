use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::instances::ActOnInstance;
use crate::components::confirm_action::ConfirmAction;
use crate::components::state_chip::StateChip;
use flotilla_domain::Instance;

/// One row of the instances table, with the person's actions on the instance: one form
/// whose submit buttons name the action (`start`, `stop`, `restart`, and — after a
/// confirmation step that works without JavaScript — `reimage` and `delete`). The row shows
/// the answer (the instance with the action recorded) at once; a refusal is shown in the
/// row.
#[component]
pub fn InstanceRow(
    /// The scale set.
    scale_set: String,
    /// The instance as last read; the row follows it while it lives (rows are keyed by id).
    instance: Signal<Instance>,
    /// The model version instances should run.
    latest_model_version: Signal<u32>,
) -> impl IntoView {
    let action = ServerAction::<ActOnInstance>::new();
    let id = instance.with_untracked(|i| i.id.clone());
    // The newer of the last read and the action's answer: the answer shows the pending
    // state at once, and the next read (newer generation) takes over.
    let shown = Memo::new(move |_| {
        let read = instance.get();
        match action.value().get() {
            Some(Ok(answer)) if answer.id == read.id && answer.generation > read.generation => {
                answer
            }
            _ => read,
        }
    });
    let provisioning = Memo::new(move |_| shown.with(|i| i.provisioning_state));
    let power = Memo::new(move |_| shown.with(|i| i.power_state));
    let health = Memo::new(move |_| shown.with(|i| i.health_state));
    let error = {
        let id = id.clone();
        move || {
            action
                .value()
                .get()
                .and_then(Result::err)
                .filter(|e| e.target.as_deref().is_none_or(|t| t == id))
                .map(|e| e.message)
        }
    };
    let latest =
        move || shown.with(|i| i.latest_model || i.model_version == latest_model_version.get());
    let deleting = move || provisioning.get() == flotilla_domain::ProvisioningState::Deleting;
    let error_id = format!("action-error-{id}");
    let label = format!("Actions on {id}");
    let (row_id, form_id, reimage_id, delete_id) = (id.clone(), id.clone(), id.clone(), id.clone());
    let described_by = error_id.clone();
    let form_label = label.clone();
    view! {
        <tr data-instance=row_id aria-busy=move || action.pending().get().then_some("true")>
            <th scope="row" class="mono">
                {id}
            </th>
            <td>{move || shown.with(|i| i.zone.clone())}</td>
            <td class="num">{move || shown.with(|i| i.fault_domain)}</td>
            <td>
                {move || shown.with(|i| i.model_version)}
                {move || {
                    if latest() {
                        view! { <span class="tag">"latest"</span> }.into_any()
                    } else {
                        view! { <span class="tag tag-warn">"outdated"</span> }.into_any()
                    }
                }}
            </td>
            <td data-cell="provisioning">
                {move || view! { <StateChip state=provisioning.get().as_str() /> }}
            </td>
            <td data-cell="power">{move || view! { <StateChip state=power.get().as_str() /> }}</td>
            <td data-cell="health">
                {move || view! { <StateChip state=health.get().as_str() /> }}
            </td>
            <td class="mono">
                {move || shown.with(|i| i.address.clone().unwrap_or_else(|| "—".to_string()))}
            </td>
            <td class="actions">
                <ActionForm action attr:class="instance-actions" attr:aria-label=form_label>
                    <input type="hidden" name="name" value=scale_set />
                    <input type="hidden" name="id" value=form_id />
                    <fieldset disabled=deleting aria-describedby=described_by>
                        <legend class="visually-hidden">{label}</legend>
                        <button type="submit" name="action" value="start">
                            "Start"
                        </button>
                        <button type="submit" name="action" value="stop">
                            "Stop"
                        </button>
                        <button type="submit" name="action" value="restart">
                            "Restart"
                        </button>
                        <ConfirmAction
                            id=reimage_id
                            action="reimage"
                            label="Reimage"
                            close_on=action.version()
                            consequence="Its disk is rebuilt from the image."
                        />
                        <ConfirmAction
                            id=delete_id
                            action="delete"
                            label="Delete"
                            close_on=action.version()
                            consequence="Its VM is destroyed and the capacity drops by one."
                        />
                    </fieldset>
                </ActionForm>
                <p id=error_id class="field-error" role="alert">
                    {error}
                </p>
            </td>
        </tr>
    }
}
