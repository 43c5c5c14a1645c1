//! Settings compared side by side: the score table (a column per setting, the better value
//! of each row marked) and the simulated fleet the settings ran on.

use leptos::prelude::*;

use crate::format;
use crate::lab_view::{Comparison, calibration_facts, score_rows};

#[component]
pub(super) fn Scores(
    comparison: Comparison,
    /// A short name for the page's tests (`data-scores`).
    name: &'static str,
) -> impl IntoView {
    let rows = score_rows(&comparison.runs);
    let labels: Vec<String> = comparison.runs.iter().map(|r| r.label.clone()).collect();
    let caption = format!(
        "Scores from {} to {} ({} evaluations each): lower is better, jitter nearer 0",
        format::timestamp(&comparison.from),
        format::timestamp(&comparison.to),
        comparison.evaluations,
    );
    let head = labels
        .iter()
        .map(|label| {
            view! {
                <th scope="col" class="num" data-run=label.clone()>
                    {label.clone()}
                </th>
            }
        })
        .collect_view();
    let body = rows
        .into_iter()
        .map(|row| {
            let best = row.best;
            let cells = row
                .values
                .into_iter()
                .zip(labels.iter().cloned())
                .enumerate()
                .map(|(i, ((value, written), run))| {
                    let better = best == Some(i);
                    view! {
                        <td
                            class="num"
                            data-run=run
                            data-value=value.to_string()
                            data-best=better.then_some("true")
                        >
                            {written}
                            {better
                                .then(|| {
                                    view! {
                                        " "
                                        <span class="best" aria-hidden="true">
                                            "✓"
                                        </span>
                                        <span class="visually-hidden">"(better)"</span>
                                    }
                                })}
                        </td>
                    }
                })
                .collect_view();
            view! {
                <tr data-score=row.key>
                    <th scope="row">{row.label} <span class="score-help">{row.help}</span></th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap" role="region" aria-label="Scores" tabindex="0">
            <table class="data scores" data-scores=name>
                <caption>{caption}</caption>
                <thead>
                    <tr>
                        <th scope="col">"Score"</th>
                        {head}
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        </div>
        <p class="hint">"On a simulated fleet calibrated on this scale set:"</p>
        <dl class="facts" data-calibration=name>
            {calibration_facts(&comparison.calibration)
                .into_iter()
                .map(|(fact, text)| {
                    view! {
                        <div>
                            <dt>{fact}</dt>
                            <dd>{text}</dd>
                        </div>
                    }
                })
                .collect_view()}
        </dl>
    }
}
