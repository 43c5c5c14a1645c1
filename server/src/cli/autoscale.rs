//! `flotilla autoscale …`, `flotilla metrics …` and `flotilla demand …`.

use clap::{Args, Subcommand};
use flotilla_domain::autoscale::Decision;
use flotilla_domain::autoscale::backtest::Answer;
use flotilla_domain::autoscale::forecast;
use flotilla_domain::metrics::MetricsAnswer;
use flotilla_domain::url::percent_encode;
use reqwest::Method;
use serde_json::{Value, json};

use super::{CliError, Client, read_json, table};

#[derive(Debug, Subcommand)]
pub enum AutoscaleCommand {
    /// The autoscale setting (JSON).
    Show {
        scale_set: String,
    },
    /// Replace the setting with the JSON in FILE (`-` for stdin); prints the warnings.
    Set {
        scale_set: String,
        #[arg(long)]
        file: String,
        /// Validate and warn without saving.
        #[arg(long)]
        dry_run: bool,
    },
    /// Turn autoscale on or off, keeping the setting.
    Enable {
        scale_set: String,
    },
    Disable {
        scale_set: String,
    },
    /// Remove the setting: the capacity is set by hand again.
    Delete {
        scale_set: String,
    },
    /// Evaluate now and print the decision.
    Evaluate {
        scale_set: String,
    },
    /// What settings would have done (nothing is changed): replay the set's history (`--since`)
    /// or a demand pattern (`--demand FILE --duration …`) through the saved setting or those
    /// in `--setting FILE` (repeatable), and print each one's scores side by side. `--file`
    /// sends a whole request (the API's JSON) instead.
    Backtest {
        scale_set: String,
        /// The request as JSON (`-` for stdin); the other options are then not used.
        #[arg(long, conflicts_with_all = ["since", "demand", "setting"])]
        file: Option<String>,
        /// Replay the set's own metrics of the last DURATION, e.g. `30m`, `6h`, `7d`.
        #[arg(long, conflicts_with = "demand", value_parser = crate::config::parse_duration)]
        since: Option<std::time::Duration>,
        /// Replay a demand pattern (JSON as for `flotilla demand set --file`).
        #[arg(long)]
        demand: Option<String>,
        /// How long to replay the demand.
        #[arg(long, default_value = "1h", value_parser = crate::config::parse_duration)]
        duration: std::time::Duration,
        /// An autoscale setting (JSON) to compare; repeat for several.
        #[arg(long)]
        setting: Vec<String>,
        /// The CPU percent the SLO allows.
        #[arg(long)]
        slo_limit: Option<f64>,
        /// Requests per second that take one instance 100 CPU points above idle.
        #[arg(long)]
        instance_capacity_rps: Option<f64>,
        /// Boot time in seconds (default: measured on the set's instances).
        #[arg(long)]
        boot_seconds: Option<f64>,
    },
    /// The load forecast of each predictive profile: model, accuracy (MAPE), lead, the
    /// history it stands on, and the next season's peak.
    Forecast {
        scale_set: String,
    },
    /// A candidate setting evaluated beside the live one, never acting.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// Recent decisions, newest first: why it did or didn't scale.
    Decisions {
        scale_set: String,
        /// Only scale actions.
        #[arg(long)]
        changed: bool,
        /// The shadow setting's decisions.
        #[arg(long)]
        shadow: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ShadowCommand {
    /// The shadow setting (JSON).
    Show { scale_set: String },
    /// Evaluate the setting in FILE (`-` for stdin) beside the live one; prints the
    /// warnings.
    Set {
        scale_set: String,
        #[arg(long)]
        file: String,
        /// Validate and warn without saving.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make the shadow setting the live one.
    Promote { scale_set: String },
    /// Remove the shadow setting.
    Delete { scale_set: String },
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    pub scale_set: String,
    /// Comma-separated metric names.
    #[arg(long, default_value = "cpu_percent,requests_per_second,capacity")]
    pub metric: String,
    /// How far back, e.g. `15m`, `1h`, `7d`.
    #[arg(long, default_value = "15m", value_parser = crate::config::parse_duration)]
    pub since: std::time::Duration,
    /// Seconds per point.
    #[arg(long)]
    pub step: Option<u32>,
    /// One instance's samples.
    #[arg(long)]
    pub instance: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DemandCommand {
    /// The demand and its value now.
    Show { scale_set: String },
    /// Set the demand: `--constant RPS`, or a pattern as JSON in FILE, e.g.
    /// `{"pattern":"step","rps":50,"step_rps":400,"after_seconds":60}`.
    Set {
        scale_set: String,
        #[arg(long, conflicts_with = "file")]
        constant: Option<f64>,
        #[arg(long)]
        file: Option<String>,
    },
    /// Remove the demand.
    Clear { scale_set: String },
}

pub(super) fn set_path(scale_set: &str, rest: &str) -> String {
    format!("/scale-sets/{}{rest}", percent_encode(scale_set))
}

pub(super) async fn autoscale(client: &Client, cmd: &AutoscaleCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        AutoscaleCommand::Show { scale_set } => {
            client.get(&set_path(scale_set, "/autoscale")).await?
        }
        AutoscaleCommand::Set {
            scale_set,
            file,
            dry_run,
        } => {
            let body = read_json(file)?;
            let path = set_path(scale_set, &format!("/autoscale?dry_run={dry_run}"));
            client.call(Method::PUT, &path, Some(body)).await?
        }
        AutoscaleCommand::Enable { scale_set } | AutoscaleCommand::Disable { scale_set } => {
            let mut setting = client.get(&set_path(scale_set, "/autoscale")).await?;
            if setting.is_null() {
                return Err(CliError::Input(format!(
                    "{scale_set} has no autoscale setting: give one with `flotilla autoscale set {scale_set} --file …`"
                )));
            }
            setting["enabled"] = json!(matches!(cmd, AutoscaleCommand::Enable { .. }));
            client
                .call(
                    Method::PUT,
                    &set_path(scale_set, "/autoscale"),
                    Some(setting),
                )
                .await?
        }
        AutoscaleCommand::Delete { scale_set } => {
            client
                .call(Method::DELETE, &set_path(scale_set, "/autoscale"), None)
                .await?
        }
        AutoscaleCommand::Evaluate { scale_set } => {
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, "/autoscale/evaluate"),
                    None,
                )
                .await?
        }
        AutoscaleCommand::Backtest { scale_set, .. } => {
            let body = backtest_request(cmd)?;
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, "/autoscale/backtest"),
                    Some(body),
                )
                .await?
        }
        AutoscaleCommand::Shadow(cmd) => shadow(client, cmd).await?,
        AutoscaleCommand::Forecast { scale_set } => {
            client
                .get(&set_path(scale_set, "/autoscale/forecast"))
                .await?
        }
        AutoscaleCommand::Decisions {
            scale_set,
            changed,
            shadow,
            limit,
        } => {
            client
                .get(&set_path(
                    scale_set,
                    &format!(
                        "/autoscale/decisions?limit={limit}&changed={changed}&shadow={shadow}"
                    ),
                ))
                .await?
        }
    })
}

async fn shadow(client: &Client, cmd: &ShadowCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        ShadowCommand::Show { scale_set } => {
            client
                .get(&set_path(scale_set, "/autoscale/shadow"))
                .await?
        }
        ShadowCommand::Set {
            scale_set,
            file,
            dry_run,
        } => {
            let body = read_json(file)?;
            let path = set_path(scale_set, &format!("/autoscale/shadow?dry_run={dry_run}"));
            client.call(Method::PUT, &path, Some(body)).await?
        }
        ShadowCommand::Promote { scale_set } => {
            client
                .call(
                    Method::POST,
                    &set_path(scale_set, "/autoscale/shadow/promote"),
                    None,
                )
                .await?
        }
        ShadowCommand::Delete { scale_set } => {
            client
                .call(
                    Method::DELETE,
                    &set_path(scale_set, "/autoscale/shadow"),
                    None,
                )
                .await?
        }
    })
}

/// The backtest request the options describe.
fn backtest_request(cmd: &AutoscaleCommand) -> Result<Value, CliError> {
    let AutoscaleCommand::Backtest {
        file,
        since,
        demand,
        duration,
        setting,
        slo_limit,
        instance_capacity_rps,
        boot_seconds,
        ..
    } = cmd
    else {
        unreachable!("only for backtest")
    };
    if let Some(file) = file {
        return read_json(file);
    }
    let mut body = json!({});
    match (since, demand) {
        (Some(since), _) => {
            let to = chrono::Utc::now();
            let since = chrono::Duration::from_std(*since)
                .map_err(|_| CliError::Input("--since is too long".into()))?;
            body["history"] = json!({"from": to - since, "to": to});
        }
        (None, Some(demand)) => {
            body["demand"] = read_json(demand)?;
            body["duration_seconds"] = json!(duration.as_secs());
        }
        (None, None) => {
            return Err(CliError::Input(
                "give --since DURATION (the set's history), --demand FILE or --file REQUEST".into(),
            ));
        }
    }
    if !setting.is_empty() {
        body["settings"] = Value::Array(
            setting
                .iter()
                .map(|f| read_json(f))
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(limit) = slo_limit {
        body["slo"] = json!({"metric": "cpu_percent", "limit": limit});
    }
    if let Some(c) = instance_capacity_rps {
        body["instance_capacity_rps"] = json!(c);
    }
    if let Some(b) = boot_seconds {
        body["boot_seconds"] = json!(b);
    }
    Ok(body)
}

/// Each setting's scores side by side, then its scale actions.
fn backtest_text(value: &Value) -> String {
    let Ok(answer) = serde_json::from_value::<Answer>(value.clone()) else {
        return String::new();
    };
    let c = &answer.calibration;
    let mut out = format!(
        "{} → {}, {} evaluations per setting; instances serve {:.1} req/s per 100 CPU points ({:?}), boot in {:.0}–{:.0} s ({:?})\n",
        answer.from.format("%Y-%m-%d %H:%M:%S"),
        answer.to.format("%Y-%m-%d %H:%M:%S"),
        answer.evaluations,
        c.instance_capacity_rps,
        c.capacity_source,
        c.boot_seconds.first().copied().unwrap_or(0.0),
        c.boot_seconds.last().copied().unwrap_or(0.0),
        c.boot_source,
    );
    let rows: Vec<Vec<String>> = answer
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = &r.scores;
            vec![
                format!("#{}", i + 1),
                format!("{:.1}", s.under_provisioning_accuracy),
                format!("{:.1}", s.over_provisioning_accuracy),
                format!("{:.1}", s.under_provisioning_timeshare),
                format!("{:.1}", s.over_provisioning_timeshare),
                format!("{:.1}", s.jitter),
                format!("{:.1}", s.instability),
                format!("{:.0}", s.slo_violation_seconds),
                format!("{:.2}", s.instance_hours),
                s.scale_actions.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "SETTING",
            "UNDER %",
            "OVER %",
            "UNDER TIME %",
            "OVER TIME %",
            "JITTER/H",
            "INSTABILITY %",
            "SLO VIOLATION S",
            "INSTANCE-HOURS",
            "ACTIONS",
        ],
        &rows,
    ));
    for (i, r) in answer.results.iter().enumerate() {
        out.push_str(&format!("\nsetting #{}:\n", i + 1));
        let rows: Vec<Vec<String>> = r.decisions.iter().map(decision_row).collect();
        out.push_str(&table(&DECISION_HEADERS, &rows));
    }
    out
}

pub(super) async fn metrics(client: &Client, args: &MetricsArgs) -> Result<Value, CliError> {
    let to = chrono::Utc::now();
    let since = chrono::Duration::from_std(args.since)
        .map_err(|_| CliError::Input("--since is too long".into()))?;
    let mut path = format!(
        "/metrics?metric={}&from={}&to={}",
        percent_encode(&args.metric),
        percent_encode(&(to - since).to_rfc3339()),
        percent_encode(&to.to_rfc3339())
    );
    if let Some(step) = args.step {
        path.push_str(&format!("&step={step}"));
    }
    if let Some(i) = &args.instance {
        path.push_str(&format!("&instance={}", percent_encode(i)));
    }
    client.get(&set_path(&args.scale_set, &path)).await
}

pub(super) async fn demand(client: &Client, cmd: &DemandCommand) -> Result<Value, CliError> {
    Ok(match cmd {
        DemandCommand::Show { scale_set } => client.get(&set_path(scale_set, "/demand")).await?,
        DemandCommand::Set {
            scale_set,
            constant,
            file,
        } => {
            let body = match (constant, file) {
                (Some(rps), _) => json!({"pattern": "constant", "rps": rps}),
                (None, Some(file)) => read_json(file)?,
                (None, None) => {
                    return Err(CliError::Input(
                        "give --constant RPS or --file PATTERN.json".into(),
                    ));
                }
            };
            client
                .call(Method::PUT, &set_path(scale_set, "/demand"), Some(body))
                .await?
        }
        DemandCommand::Clear { scale_set } => {
            client
                .call(Method::DELETE, &set_path(scale_set, "/demand"), None)
                .await?
        }
    })
}

/// One row per predictive profile.
fn forecast_text(scale_set: &str, value: &Value) -> String {
    let items: Vec<forecast::Item> =
        serde_json::from_value(value["items"].clone()).unwrap_or_default();
    if items.is_empty() {
        return format!("{scale_set} has no predictive profile\n");
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            let f = &i.forecast;
            let mape = |m: forecast::Model| {
                f.mape
                    .iter()
                    .find(|e| e.model == m)
                    .map_or("-".into(), |e| format!("{:.1} %", e.mape))
            };
            let peak = f.next_peak();
            vec![
                format!("{}{}", i.profile, if i.shadow { " (shadow)" } else { "" }),
                format!("{} at {}", f.metric, i.target),
                f.model.as_str().into(),
                mape(f.model),
                format!("{} s", f.lead_seconds),
                if f.ready {
                    format!("{:.0} s", f.history_seconds)
                } else {
                    format!(
                        "{:.0} s of {} s needed",
                        f.history_seconds, f.season_seconds
                    )
                },
                peak.map_or("-".into(), |(at, v)| {
                    format!(
                        "{v:.1} at {} → {} instances",
                        at.format("%Y-%m-%d %H:%M"),
                        (v / i.target).ceil()
                    )
                }),
            ]
        })
        .collect();
    table(
        &[
            "PROFILE",
            "LOAD",
            "MODEL",
            "MAPE",
            "LEAD",
            "HISTORY",
            "NEXT PEAK",
        ],
        &rows,
    )
}

fn decision_row(d: &Decision) -> Vec<String> {
    vec![
        d.id.to_string(),
        d.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        d.profile.clone().unwrap_or_default(),
        d.operation.as_str().to_string(),
        format!("{} → {}", d.current, d.new_capacity),
        d.reason.clone(),
    ]
}

const DECISION_HEADERS: [&str; 6] = ["ID", "AT", "PROFILE", "RESULT", "CAPACITY", "WHY"];

/// A saved (or checked) setting's answer: saved or not, and its warnings.
fn saved_text(value: &Value) -> String {
    let mut out = String::from(if value["saved"] == json!(true) {
        "saved\n"
    } else {
        "valid (not saved: dry run)\n"
    });
    if let Some(warnings) = value["warnings"].as_array() {
        for w in warnings {
            out.push_str(&format!(
                "warning: {}: {}\n",
                w["field"].as_str().unwrap_or(""),
                w["message"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

pub(super) fn render_autoscale(cmd: &AutoscaleCommand, value: &Value) -> String {
    match cmd {
        AutoscaleCommand::Show { scale_set } if value.is_null() => {
            format!("{scale_set} has no autoscale setting: its capacity is set by hand\n")
        }
        AutoscaleCommand::Show { .. } => {
            format!(
                "{}\n",
                serde_json::to_string_pretty(value).unwrap_or_default()
            )
        }
        AutoscaleCommand::Set { .. }
        | AutoscaleCommand::Enable { .. }
        | AutoscaleCommand::Disable { .. }
        | AutoscaleCommand::Delete { .. }
        | AutoscaleCommand::Shadow(
            ShadowCommand::Set { .. }
            | ShadowCommand::Delete { .. }
            | ShadowCommand::Promote { .. },
        ) => saved_text(value),
        AutoscaleCommand::Shadow(ShadowCommand::Show { scale_set }) if value.is_null() => {
            format!("{scale_set} has no shadow autoscale setting\n")
        }
        AutoscaleCommand::Shadow(ShadowCommand::Show { .. }) => {
            format!(
                "{}\n",
                serde_json::to_string_pretty(value).unwrap_or_default()
            )
        }
        AutoscaleCommand::Evaluate { scale_set } => {
            match serde_json::from_value::<Option<Decision>>(value.clone()) {
                Ok(Some(d)) => table(&DECISION_HEADERS, &[decision_row(&d)]),
                _ => format!("autoscale is off for {scale_set}\n"),
            }
        }
        AutoscaleCommand::Backtest { .. } => backtest_text(value),
        AutoscaleCommand::Forecast { scale_set } => forecast_text(scale_set, value),
        AutoscaleCommand::Decisions { .. } => {
            let decisions: Vec<Decision> =
                serde_json::from_value(value["items"].clone()).unwrap_or_default();
            let rows: Vec<Vec<String>> = decisions.iter().map(decision_row).collect();
            table(&DECISION_HEADERS, &rows)
        }
    }
}

pub(super) fn render_metrics(value: &Value) -> String {
    let Ok(answer) = serde_json::from_value::<MetricsAnswer>(value.clone()) else {
        return String::new();
    };
    let mut out = String::new();
    for series in &answer.series {
        out.push_str(&format!("{} ({})\n", series.metric, series.unit));
        let rows: Vec<Vec<String>> = series
            .points
            .iter()
            .map(|p| {
                vec![
                    p.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    format!("{:.2}", p.average),
                    format!("{:.2}", p.minimum),
                    format!("{:.2}", p.maximum),
                    p.count.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&["AT", "AVERAGE", "MIN", "MAX", "SAMPLES"], &rows));
    }
    out
}

pub(super) fn render_demand(cmd: &DemandCommand, value: &Value) -> String {
    match cmd {
        DemandCommand::Show { scale_set } => match value["current_rps"].as_f64() {
            Some(rps) => format!(
                "{scale_set}: {} — {rps:.1} requests/s now\n",
                value["demand"]
            ),
            None => format!("{scale_set} has no synthetic demand\n"),
        },
        DemandCommand::Set { scale_set, .. } => format!("demand of {scale_set} set\n"),
        DemandCommand::Clear { scale_set } => format!("demand of {scale_set} removed\n"),
    }
}
