//! A profile's rules, as a table: a row a rule, a select or an input a column.

use leptos::prelude::*;

use super::{Editor, as_id, enum_choices, metric_choices};
use crate::autoscale_draft::{
    ACTIONS, AGGREGATIONS, DIRECTIONS, OPERATORS, RuleDraft, STATISTICS, SettingDraft, from_wire,
    wire,
};
use crate::components::field::{FieldMessage, NumberField, SelectField};

/// A rule's string field, read and written by indexes.
fn rule_text(
    i: usize,
    r: usize,
    field: fn(&mut RuleDraft) -> &mut String,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut rule = d.profiles.get(i)?.rules.get(r)?.clone();
            Some(field(&mut rule).clone())
        },
        move |d: &mut SettingDraft, v: String| {
            if let Some(rule) = d.profiles.get_mut(i).and_then(|p| p.rules.get_mut(r)) {
                *field(rule) = v;
            }
        },
    )
}

/// A rule's enum field, read and written by its wire name.
fn rule_enum<T: serde::Serialize + serde::de::DeserializeOwned + Copy + Send + Sync + 'static>(
    i: usize,
    r: usize,
    field: fn(&mut RuleDraft) -> &mut T,
) -> (
    impl Fn(&SettingDraft) -> Option<String> + Clone + Send + Sync + 'static,
    impl Fn(&mut SettingDraft, String) + Clone + Send + Sync + 'static,
) {
    (
        move |d: &SettingDraft| {
            let mut rule = d.profiles.get(i)?.rules.get(r)?.clone();
            Some(wire(*field(&mut rule)))
        },
        move |d: &mut SettingDraft, v: String| {
            if let (Some(rule), Some(value)) = (
                d.profiles.get_mut(i).and_then(|p| p.rules.get_mut(r)),
                from_wire::<T>(&v),
            ) {
                *field(rule) = value;
            }
        },
    )
}

/// A profile's rules as a table.
#[component]
pub(super) fn RulesEditor(editor: Editor, index: usize) -> impl IntoView {
    let i = index;
    let count = Memo::new(move |_| {
        editor
            .draft
            .with(|d| d.profiles.get(i).map_or(0, |p| p.rules.len()))
    });
    view! {
        <h4>"Rules"</h4>
        <FieldMessage path=format!("profiles[{i}].rules") problems=editor.problems exact=true />
        <Show
            when=move || { count.get() > 0 }
            fallback=|| {
                view! {
                    <p class="muted">
                        "No rules. Add one, apply a template, or use target tracking."
                    </p>
                }
            }
        >
            <div
                class="table-wrap"
                role="region"
                aria-label=format!("Rules of profile {}", i + 1)
                tabindex="0"
            >
                <table class="data rules-table" aria-label=format!("Rules of profile {}", i + 1)>
                    <thead>
                        <tr>
                            <th scope="col">"Metric"</th>
                            <th scope="col">"Statistic"</th>
                            <th scope="col">"Grain (s)"</th>
                            <th scope="col">"Window (s)"</th>
                            <th scope="col">"Aggregation"</th>
                            <th scope="col">"Operator"</th>
                            <th scope="col">"Threshold"</th>
                            <th scope="col">"Direction"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Value"</th>
                            <th scope="col">"Cooldown (s)"</th>
                            <th scope="col">
                                <span class="visually-hidden">"Remove"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || 0..count.get()
                            key=|r| *r
                            children=move |r| view! { <RuleRow editor index=i rule=r /> }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
        <button type="button" on:click=move |_| editor.draft.update(|d| d.add_rule(i))>
            "Add rule"
        </button>
    }
    .into_any()
}

#[component]
fn RuleRow(editor: Editor, index: usize, rule: usize) -> impl IntoView {
    let (i, r) = (index, rule);
    let path = format!("profiles[{i}].rules[{r}]");
    let n = r + 1;
    let (metric_get, metric_set) = rule_text(i, r, |x| &mut x.metric);
    let (stat_get, stat_set) = rule_enum(i, r, |x| &mut x.statistic);
    let (grain_get, grain_set) = rule_text(i, r, |x| &mut x.grain);
    let (window_get, window_set) = rule_text(i, r, |x| &mut x.window);
    let (agg_get, agg_set) = rule_enum(i, r, |x| &mut x.aggregation);
    let (op_get, op_set) = rule_enum(i, r, |x| &mut x.operator);
    let (threshold_get, threshold_set) = rule_text(i, r, |x| &mut x.threshold);
    let (dir_get, dir_set) = rule_enum(i, r, |x| &mut x.direction);
    let (action_get, action_set) = rule_enum(i, r, |x| &mut x.action);
    let (value_get, value_set) = rule_text(i, r, |x| &mut x.value);
    let (cool_get, cool_set) = rule_text(i, r, |x| &mut x.cooldown);
    view! {
        <tr data-rule=r>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.metric"))
                    label=format!("Rule {n} metric")
                    path=format!("{path}.metric")
                    choices=metric_choices()
                    quiet=true
                    value=editor.text(metric_get)
                    on_change=editor.set(metric_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.statistic"))
                    label=format!("Rule {n} statistic")
                    path=format!("{path}.statistic")
                    choices=enum_choices(&STATISTICS)
                    quiet=true
                    value=editor.text(stat_get)
                    on_change=editor.set(stat_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <NumberField
                    id=as_id(&format!("{path}.time_grain_seconds"))
                    label=format!("Rule {n} grain (s)")
                    path=format!("{path}.time_grain_seconds")
                    size=5
                    quiet=true
                    value=editor.text(grain_get)
                    on_input=editor.set(grain_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <NumberField
                    id=as_id(&format!("{path}.time_window_seconds"))
                    label=format!("Rule {n} window (s)")
                    path=format!("{path}.time_window_seconds")
                    size=5
                    quiet=true
                    value=editor.text(window_get)
                    on_input=editor.set(window_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.time_aggregation"))
                    label=format!("Rule {n} aggregation")
                    path=format!("{path}.time_aggregation")
                    choices=enum_choices(&AGGREGATIONS)
                    quiet=true
                    value=editor.text(agg_get)
                    on_change=editor.set(agg_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.operator"))
                    label=format!("Rule {n} operator")
                    path=format!("{path}.operator")
                    choices=OPERATORS
                        .iter()
                        .map(|o| (wire(*o), crate::metrics_view::operator_symbol(*o).to_string()))
                        .collect()
                    quiet=true
                    value=editor.text(op_get)
                    on_change=editor.set(op_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <NumberField
                    id=as_id(&format!("{path}.threshold"))
                    label=format!("Rule {n} threshold")
                    path=format!("{path}.threshold")
                    size=6
                    quiet=true
                    decimal=true
                    value=editor.text(threshold_get)
                    on_input=editor.set(threshold_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.direction"))
                    label=format!("Rule {n} direction")
                    path=format!("{path}.direction")
                    choices=enum_choices(&DIRECTIONS)
                    quiet=true
                    value=editor.text(dir_get)
                    on_change=editor.set(dir_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <SelectField
                    id=as_id(&format!("{path}.type"))
                    label=format!("Rule {n} action")
                    path=format!("{path}.type")
                    choices=enum_choices(&ACTIONS)
                    quiet=true
                    value=editor.text(action_get)
                    on_change=editor.set(action_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <NumberField
                    id=as_id(&format!("{path}.value"))
                    label=format!("Rule {n} value")
                    path=format!("{path}.value")
                    size=4
                    quiet=true
                    value=editor.text(value_get)
                    on_input=editor.set(value_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <NumberField
                    id=as_id(&format!("{path}.cooldown_seconds"))
                    label=format!("Rule {n} cooldown (s)")
                    path=format!("{path}.cooldown_seconds")
                    size=6
                    quiet=true
                    value=editor.text(cool_get)
                    on_input=editor.set(cool_set)
                    problems=editor.problems
                />
            </td>
            <td>
                <button
                    type="button"
                    aria-label=format!("Remove rule {n}")
                    on:click=move |_| {
                        editor
                            .draft
                            .update(|d| {
                                if let Some(p) = d.profiles.get_mut(i) && r < p.rules.len() {
                                    p.rules.remove(r);
                                }
                            })
                    }
                >
                    "×"
                </button>
            </td>
        </tr>
        <tr class="rule-message">
            <td colspan="12">
                <FieldMessage path=path.clone() problems=editor.problems exact=true />
            </td>
        </tr>
    }
    .into_any()
}
