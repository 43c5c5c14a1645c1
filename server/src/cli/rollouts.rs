//! `flotilla model …` (versions, compare, change) and `flotilla rollout …` (preview, start,
//! list, show, pause, resume, cancel, rollback).

use clap::Subcommand;
use flotilla_domain::rollout::{RolloutPlan, RolloutView};
use reqwest::Method;
use serde_json::{Value, json};

use super::autoscale::set_path;
use super::{CliError, Client, read_json, table};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// The current model and its version.
    Show { scale_set: String },
    /// Store the model in FILE (`-` for stdin) as the next version; Automatic and Rolling
    /// policies start rolling it out.
    Set {
        scale_set: String,
        #[arg(long)]
        file: String,
    },
    /// Every version, who made it and when.
    Versions { scale_set: String },
    /// The fields that differ between two versions.
    Diff {
        scale_set: String,
        from: u32,
        to: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Rollouts, newest first.
    List {
        scale_set: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One rollout: its batches, instances and gates.
    Show {
        scale_set: String,
        id: i64,
    },
    /// What a rollout would do (of the model in FILE, or of the current one), per instance.
    Preview {
        scale_set: String,
        /// A model as JSON to preview as the next version.
        #[arg(long)]
        file: Option<String>,
        /// Only these instances, comma-separated.
        #[arg(long, value_delimiter = ',')]
        instances: Vec<String>,
    },
    /// Upgrade out-of-date instances to the current model: all, in the rolling policy's
    /// batches, or the chosen ones at once.
    Start {
        scale_set: String,
        #[arg(long, value_delimiter = ',')]
        instances: Vec<String>,
    },
    Pause {
        scale_set: String,
        id: i64,
    },
    /// Resume a paused rollout (also approves a canary or a checkpoint).
    Resume {
        scale_set: String,
        id: i64,
    },
    Cancel {
        scale_set: String,
        id: i64,
    },
    /// Roll back to the version the rollout started from (or `--version`).
    Rollback {
        scale_set: String,
        id: i64,
        #[arg(long)]
        version: Option<u32>,
    },
}

fn chosen(instances: &[String]) -> Value {
    if instances.is_empty() {
        Value::Null
    } else {
        json!(instances)
    }
}

pub(super) async fn model(client: &Client, cmd: &ModelCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        ModelCommand::Show { scale_set } => client.get(&set_path(scale_set, "/model")).await?,
        ModelCommand::Set { scale_set, file } => {
            let body = read_json(file)?;
            client
                .call(Method::PUT, &set_path(scale_set, "/model"), Some(body))
                .await?
        }
        ModelCommand::Versions { scale_set } => {
            client.get(&set_path(scale_set, "/model/versions")).await?
        }
        ModelCommand::Diff {
            scale_set,
            from,
            to,
        } => {
            client
                .get(&set_path(
                    scale_set,
                    &format!("/model/versions/compare?from={from}&to={to}"),
                ))
                .await?
        }
    })
}

pub(super) async fn rollout(client: &Client, cmd: &RolloutCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        RolloutCommand::List { scale_set, limit } => {
            client
                .get(&set_path(scale_set, &format!("/rollouts?limit={limit}")))
                .await?
        }
        RolloutCommand::Show { scale_set, id } => {
            client
                .get(&set_path(scale_set, &format!("/rollouts/{id}")))
                .await?
        }
        RolloutCommand::Preview {
            scale_set,
            file,
            instances,
        } => {
            let model = file.as_deref().map(read_json).transpose()?;
            let body = json!({"model": model, "instances": chosen(instances)});
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, "/rollouts/preview"),
                    Some(body),
                )
                .await?
        }
        RolloutCommand::Start {
            scale_set,
            instances,
        } => {
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, "/rollouts"),
                    Some(json!({"instances": chosen(instances)})),
                )
                .await?
        }
        RolloutCommand::Pause { scale_set, id }
        | RolloutCommand::Resume { scale_set, id }
        | RolloutCommand::Cancel { scale_set, id } => {
            let action = match cmd {
                RolloutCommand::Pause { .. } => "pause",
                RolloutCommand::Resume { .. } => "resume",
                _ => "cancel",
            };
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, &format!("/rollouts/{id}/{action}")),
                    None,
                )
                .await?
        }
        RolloutCommand::Rollback {
            scale_set,
            id,
            version,
        } => {
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, &format!("/rollouts/{id}/rollback")),
                    Some(json!({"version": version})),
                )
                .await?
        }
    })
}

pub(super) fn render_model(cmd: &ModelCommand, value: &Value) -> String {
    match cmd {
        ModelCommand::Show { .. } => format!(
            "version {}\n{}\n",
            value["version"],
            serde_json::to_string_pretty(&value["model"]).unwrap_or_default()
        ),
        ModelCommand::Set { scale_set, .. } => format!(
            "{scale_set} is on model version {}\n",
            value["model_version"]
        ),
        ModelCommand::Versions { .. } => {
            let rows: Vec<Vec<String>> = value["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|v| {
                            let m = &v["model"];
                            vec![
                                format!("v{}", v["version"]),
                                v["created_at"]
                                    .as_str()
                                    .unwrap_or("")
                                    .chars()
                                    .take(19)
                                    .collect(),
                                v["created_by"].as_str().unwrap_or("").to_string(),
                                format!(
                                    "{} · {} vCPU · {} MiB",
                                    m["image"].as_str().unwrap_or(""),
                                    m["vcpus"],
                                    m["memory_mib"]
                                ),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            table(&["VERSION", "CREATED", "BY", "MODEL"], &rows)
        }
        ModelCommand::Diff { from, to, .. } => {
            let rows: Vec<Vec<String>> = value["changes"]
                .as_array()
                .map(|changes| {
                    changes
                        .iter()
                        .map(|c| {
                            vec![
                                c["field"].as_str().unwrap_or("").to_string(),
                                c["from"].to_string(),
                                c["to"].to_string(),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            if rows.is_empty() {
                format!("versions {from} and {to} are the same\n")
            } else {
                table(&["FIELD", &format!("V{from}"), &format!("V{to}")], &rows)
            }
        }
    }
}

fn rollout_summary(r: &RolloutView) -> String {
    let o = &r.rollout;
    let p = r.progress;
    format!(
        "rollout {} ({:?}) of {}: {} v{} → v{}, batch {}/{}, {} % done ({} succeeded, {} failed, {} in progress, {} pending, {} skipped){}{}\n",
        o.id,
        o.kind,
        o.scale_set,
        o.state.as_str(),
        o.from_version,
        o.target_version,
        o.current_batch.min(o.plan.batches.len() as u32),
        o.plan.batches.len(),
        r.percent_done,
        p.successful,
        p.failed,
        p.in_progress,
        p.pending,
        p.skipped,
        o.hold
            .as_ref()
            .map(|h| format!(
                "\nwaiting: {}",
                serde_json::to_string(h).unwrap_or_default()
            ))
            .unwrap_or_default(),
        o.message
            .as_deref()
            .map(|m| format!("\n{m}"))
            .unwrap_or_default(),
    )
}

fn plan_text(plan: &RolloutPlan) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for b in &plan.batches {
        for i in &b.instances {
            rows.push(vec![
                i.id.clone(),
                b.number.to_string(),
                i.zone.clone(),
                format!("v{} → v{}", i.from_version, plan.target_version),
                format!("{:?}", i.action).to_lowercase(),
                b.pause_after
                    .as_ref()
                    .map(|p| format!("then pause: {}", p.reason))
                    .unwrap_or_default(),
            ]);
        }
    }
    for i in &plan.relabel {
        rows.push(vec![
            i.id.clone(),
            "-".into(),
            i.zone.clone(),
            format!("v{} → v{}", i.from_version, plan.target_version),
            "relabel".into(),
            "tags only: no restart".into(),
        ]);
    }
    for s in &plan.skipped {
        rows.push(vec![
            s.id.clone(),
            "-".into(),
            s.zone.clone(),
            format!("v{}", s.model_version),
            "skip".into(),
            s.reason.clone(),
        ]);
    }
    let mut out = table(
        &["INSTANCE", "BATCH", "ZONE", "VERSION", "ACTION", "NOTE"],
        &rows,
    );
    out.push_str(&format!(
        "{} batch(es) of at most {}, about {} s (boot {} s each){}\n",
        plan.batches.len(),
        plan.batch_size,
        plan.expected_seconds,
        plan.boot_seconds,
        if plan.approvals > 0 {
            format!(", plus {} approval(s)", plan.approvals)
        } else {
            String::new()
        }
    ));
    out
}

pub(super) fn render_rollout(cmd: &RolloutCommand, value: &Value) -> String {
    let view = || serde_json::from_value::<RolloutView>(value.clone()).ok();
    match cmd {
        RolloutCommand::List { .. } => {
            let items: Vec<RolloutView> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|r| {
                    let o = &r.rollout;
                    vec![
                        o.id.to_string(),
                        format!("{:?}", o.kind).to_lowercase(),
                        o.state.as_str().to_string(),
                        format!("v{} → v{}", o.from_version, o.target_version),
                        format!("{} %", r.percent_done),
                        o.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        o.message.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &[
                    "ID", "KIND", "STATE", "VERSIONS", "DONE", "STARTED", "OUTCOME",
                ],
                &rows,
            )
        }
        RolloutCommand::Preview { .. } => serde_json::from_value::<RolloutPlan>(value.clone())
            .map(|p| plan_text(&p))
            .unwrap_or_default(),
        RolloutCommand::Show { .. } => view()
            .map(|r| {
                let mut out = rollout_summary(&r);
                let rows: Vec<Vec<String>> = r
                    .rollout
                    .instances
                    .values()
                    .map(|p| {
                        vec![
                            p.id.clone(),
                            p.batch.to_string(),
                            format!("{:?}", p.action).to_lowercase(),
                            serde_json::to_value(p.step)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            p.replacement.clone().unwrap_or_default(),
                            p.detail.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &[
                        "INSTANCE",
                        "BATCH",
                        "ACTION",
                        "STEP",
                        "REPLACEMENT",
                        "DETAIL",
                    ],
                    &rows,
                ));
                for g in &r.rollout.gates {
                    out.push_str(&format!(
                        "gate {} batch {}: {} — {}\n",
                        g.gate,
                        g.batch,
                        if g.passed { "passed" } else { "failed" },
                        g.detail
                    ));
                }
                out
            })
            .unwrap_or_default(),
        _ => view().map(|r| rollout_summary(&r)).unwrap_or_default(),
    }
}
