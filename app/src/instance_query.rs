//! The instances table's view as it lives in the URL query
//! (`/scale-sets/web/instances?q=10.0&state=running&zone=2&sort=health&dir=desc&page=2`):
//! filters (text in the id or address, one state of any kind, a zone, latest or outdated
//! model), the column to sort by, and the page (`page`, from 1, of `limit` rows). The
//! selection may ride along (`selected=web_1,web_7`: ticked on other pages, without
//! JavaScript). Plain Rust, so the server and the browser agree.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use flotilla_domain::Instance;
use flotilla_domain::url::percent_encode;
use flotilla_domain::validation::parse_optional;

use crate::table_sort::{self, Column, Sort};

/// The columns the instances table sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceColumn {
    /// By ordinal: creation order.
    #[default]
    Id,
    Zone,
    FaultDomain,
    ModelVersion,
    Provisioning,
    Power,
    Health,
    Protection,
    /// By creation time, youngest first when ascending.
    Age,
    Address,
}

impl Column for InstanceColumn {
    const ALL: &'static [Self] = &[
        Self::Id,
        Self::Zone,
        Self::FaultDomain,
        Self::ModelVersion,
        Self::Provisioning,
        Self::Power,
        Self::Health,
        Self::Protection,
        Self::Age,
        Self::Address,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Zone => "zone",
            Self::FaultDomain => "fd",
            Self::ModelVersion => "model",
            Self::Provisioning => "provisioning",
            Self::Power => "power",
            Self::Health => "health",
            Self::Protection => "protection",
            Self::Age => "age",
            Self::Address => "address",
        }
    }
}

/// Which model the instances shown run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModelFilter {
    #[default]
    Any,
    Latest,
    Outdated,
}

impl ModelFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "",
            Self::Latest => "latest",
            Self::Outdated => "outdated",
        }
    }
}

/// Rows per page when the address names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The most rows one page shows.
pub const MAX_LIMIT: usize = 500;

/// The table's filters, order and page; values that cannot be read are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceQuery {
    /// Only instances whose id or address contains this (case-insensitive).
    pub text: String,
    /// Only instances with this provisioning, power or health state.
    pub state: String,
    /// Only instances in this zone.
    pub zone: String,
    pub model: ModelFilter,
    pub sort: Sort<InstanceColumn>,
    /// The page shown, from 1 (past the last one: the last one).
    pub page: usize,
    /// Rows per page, 1 to [`MAX_LIMIT`].
    pub limit: usize,
}

impl Default for InstanceQuery {
    fn default() -> Self {
        Self {
            text: String::new(),
            state: String::new(),
            zone: String::new(),
            model: ModelFilter::Any,
            sort: Sort::default(),
            page: 1,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl InstanceQuery {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |key: &str| get(key).map(|v| v.trim().to_string()).unwrap_or_default();
        // An unreadable number is ignored, as any value here is.
        let number = |key: &str| parse_optional::<usize>(key, &read(key)).ok().flatten();
        Self {
            text: read("q"),
            state: read("state").to_lowercase(),
            zone: read("zone"),
            model: match read("model").as_str() {
                "latest" => ModelFilter::Latest,
                "outdated" => ModelFilter::Outdated,
                _ => ModelFilter::Any,
            },
            sort: Sort::from_params(&get),
            page: number("page").filter(|&p| p >= 1).unwrap_or(1),
            limit: number("limit")
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .unwrap_or(DEFAULT_LIMIT),
        }
    }

    /// The query as `(key, value)` pairs, defaults left out: what the browser sends the
    /// server for a page of rows, read back by [`Self::from_params`].
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("q", self.text.as_str()),
            ("state", self.state.as_str()),
            ("zone", self.zone.as_str()),
            ("model", self.model.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        for pair in self.sort.pairs() {
            if let Some((key, value)) = pair.split_once('=') {
                params.push((key.to_string(), value.to_string()));
            }
        }
        if self.page > 1 {
            params.push(("page".into(), self.page.to_string()));
        }
        if self.limit != DEFAULT_LIMIT {
            params.push(("limit".into(), self.limit.to_string()));
        }
        params
    }

    /// Reads the pairs [`Self::params`] wrote (or any others: unknown keys are ignored).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self::from_params(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    /// Whether any filter is set.
    pub fn filtered(&self) -> bool {
        !self.text.is_empty()
            || !self.state.is_empty()
            || !self.zone.is_empty()
            || self.model != ModelFilter::Any
    }

    fn keeps(&self, instance: &Instance, latest_version: u32) -> bool {
        let text = self.text.to_lowercase();
        let matches_text = text.is_empty()
            || instance.id.to_lowercase().contains(&text)
            || instance
                .address
                .as_deref()
                .is_some_and(|a| a.to_lowercase().contains(&text));
        let matches_state = self.state.is_empty()
            || [
                instance.provisioning_state.as_str(),
                instance.power_state.as_str(),
                instance.health_state.as_str(),
            ]
            .contains(&self.state.as_str());
        let latest = is_latest(instance, latest_version);
        matches_text
            && matches_state
            && (self.zone.is_empty() || instance.zone == self.zone)
            && match self.model {
                ModelFilter::Any => true,
                ModelFilter::Latest => latest,
                ModelFilter::Outdated => !latest,
            }
    }

    /// The instances that pass the filters, in order (ties broken by ordinal).
    pub fn apply<'a>(&self, instances: &'a [Instance], latest_version: u32) -> Vec<&'a Instance> {
        let mut rows: Vec<&Instance> = instances
            .iter()
            .filter(|i| self.keeps(i, latest_version))
            .collect();
        rows.sort_by(|a, b| {
            use InstanceColumn::*;
            let order = match self.sort.key {
                Id => a.ordinal.cmp(&b.ordinal),
                Zone => a.zone.cmp(&b.zone),
                FaultDomain => a.fault_domain.cmp(&b.fault_domain),
                ModelVersion => a.model_version.cmp(&b.model_version),
                Provisioning => a
                    .provisioning_state
                    .as_str()
                    .cmp(b.provisioning_state.as_str()),
                Power => a.power_state.as_str().cmp(b.power_state.as_str()),
                Health => a.health_state.as_str().cmp(b.health_state.as_str()),
                Protection => protection_rank(a).cmp(&protection_rank(b)),
                // Younger first: a later creation time is a smaller age.
                Age => b.created_at.cmp(&a.created_at),
                Address => a.address.cmp(&b.address),
            };
            self.sort
                .directed(order)
                .then_with(|| a.ordinal.cmp(&b.ordinal))
        });
        rows
    }

    /// One page of `rows` (the filtered, ordered instances): the rows of page
    /// [`Self::page`] (the last page if it is past the end), and that page's number.
    pub fn page_of<T>(&self, rows: Vec<T>) -> (Vec<T>, usize) {
        let page = self.page.clamp(1, pages(rows.len(), self.limit));
        let rows = rows
            .into_iter()
            .skip((page - 1) * self.limit)
            .take(self.limit)
            .collect();
        (rows, page)
    }

    /// The link of a column header: sorts by `key`, or reverses; keeps the filters and
    /// goes back to the first page.
    pub fn sort_href(&self, path: &str, key: InstanceColumn) -> String {
        Self {
            sort: self.sort.toggled(key),
            page: 1,
            ..self.clone()
        }
        .href(path)
    }

    /// The link to page `page` of this view, with the selection `selected` if any.
    pub fn page_href(&self, path: &str, page: usize, selected: &BTreeSet<String>) -> String {
        let mut href = Self {
            page,
            ..self.clone()
        }
        .href(path);
        if !selected.is_empty() {
            href.push(if href.contains('?') { '&' } else { '?' });
            href.push_str("selected=");
            let ids: Vec<&str> = selected.iter().map(String::as_str).collect();
            href.push_str(&percent_encode(&ids.join(",")));
        }
        href
    }

    /// This view's address under `path` (the instances tab of a scale set).
    pub fn href(&self, path: &str) -> String {
        let pairs: Vec<String> = self
            .params()
            .iter()
            .map(|(key, value)| format!("{key}={}", percent_encode(value)))
            .collect();
        table_sort::href(path, &pairs)
    }
}

/// How many pages `rows` rows make at `limit` a page: at least one, empty as it may be.
pub fn pages(rows: usize, limit: usize) -> usize {
    rows.div_ceil(limit.max(1)).max(1)
}

/// Where a pager stands: `Page 2 of 20 · 1000 instances`, or with filters
/// `Page 1 of 1 · 3 of 1000 instances match`.
pub fn position(page: usize, matched: usize, total: usize, limit: usize) -> String {
    let of = if matched == total {
        crate::format::plural(total as u32, "instance", "instances")
    } else {
        format!("{matched} of {total} instances match")
    };
    format!("Page {page} of {} · {of}", pages(matched, limit))
}

/// The selection carried by the address (`selected=web_1,web_7`), at most
/// [`flotilla_domain::scale_set::MAX_CAPACITY`] ids.
pub fn selection(get: impl Fn(&str) -> Option<String>) -> BTreeSet<String> {
    get("selected")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .take(flotilla_domain::scale_set::MAX_CAPACITY as usize)
        .map(str::to_string)
        .collect()
}

/// Whether `instance` runs the scale set's latest model.
pub fn is_latest(instance: &Instance, latest_version: u32) -> bool {
    instance.latest_model || instance.model_version == latest_version
}

/// 0 unprotected, 1 from scale-in, 2 from scale-set actions, 3 both.
fn protection_rank(instance: &Instance) -> u8 {
    u8::from(instance.protect_from_scale_in) + 2 * u8::from(instance.protect_from_scale_set_actions)
}

/// An instance's protection in words: `—`, `scale-in`, `scale-set actions`, or both.
pub fn protection(instance: &Instance) -> &'static str {
    match protection_rank(instance) {
        0 => "—",
        1 => "scale-in",
        2 => "scale-set actions",
        _ => "scale-in, scale-set actions",
    }
}

/// An instance's lifecycle tag and its tooltip, if it has one: the hook it waits on (with
/// when the timeout applies), or that it is busy (until when).
pub fn lifecycle(
    instance: &Instance,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(String, String)> {
    let l = &instance.lifecycle;
    if let Some(state) = l.lifecycle_state {
        let hook = l.lifecycle_hook.clone().unwrap_or_default();
        let text = if hook.is_empty() {
            state.to_string()
        } else {
            format!("{state}: {hook}")
        };
        let title = match l.lifecycle_deadline {
            Some(at) => format!(
                "waiting on lifecycle hook {hook:?}; its timeout applies at {}",
                crate::format::timestamp(&at)
            ),
            None if l.waiting() => format!("lifecycle hook {hook:?}: waits once the VM runs"),
            None => "its lifecycle hooks are done: the removal goes on".to_string(),
        };
        return Some((text, title));
    }
    instance
        .busy_until
        .filter(|until| *until > now)
        .map(|until| {
            (
                "busy".to_string(),
                format!(
                    "asked not to be removed by scale-in until {}",
                    crate::format::timestamp(&until)
                ),
            )
        })
}

/// Whether an instance is done with what was last asked of it: no operation in progress
/// and its power where it was asked to be. A failed operation is done too.
pub fn is_settled(instance: &Instance) -> bool {
    use flotilla_domain::ProvisioningState::*;
    instance.pending.is_none()
        && matches!(instance.provisioning_state, Succeeded | Failed)
        && instance.power_state.as_str() == instance.desired_power.as_str()
}

/// How many of the instances `ids` are settled in `instances`; one that is gone (deleted)
/// is settled: nothing more will happen to it.
pub fn settled_count(ids: &[String], instances: &[Instance]) -> usize {
    ids.iter()
        .filter(|id| {
            instances
                .iter()
                .find(|i| &i.id == *id)
                .is_none_or(is_settled)
        })
        .count()
}

/// How long ago `created` was, at `now`, coarsely: `40 s`, `12 min`, `5 h`, `3 d`.
pub fn age(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - created).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::instance::fixtures;
    use flotilla_domain::{HealthState, PowerState};

    fn instance(ordinal: u64, zone: &str, power: PowerState, health: HealthState) -> Instance {
        let mut i = fixtures::instance("web", ordinal, zone, (ordinal % 2) as u32)
            .powered(flotilla_domain::DesiredPower::Running, power);
        i.health_state = health;
        i.model_version = 1 + (ordinal % 2) as u32;
        i.latest_model = false;
        i.protect_from_scale_in = ordinal == 2;
        i
    }

    fn fleet() -> Vec<Instance> {
        vec![
            instance(0, "1", PowerState::Running, HealthState::Healthy),
            instance(1, "2", PowerState::Stopped, HealthState::Unknown),
            instance(2, "1", PowerState::Running, HealthState::Unhealthy),
            instance(3, "3", PowerState::Starting, HealthState::Initializing),
        ]
    }

    fn query(pairs: &[(&str, &str)]) -> InstanceQuery {
        InstanceQuery::from_params(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn ids(q: &InstanceQuery) -> Vec<u64> {
        q.apply(&fleet(), 2).iter().map(|i| i.ordinal).collect()
    }

    #[test]
    fn filters_by_text_state_zone_and_model() {
        assert_eq!(ids(&query(&[])), [0, 1, 2, 3]);
        assert_eq!(ids(&query(&[("q", "WEB_1")])), [1]);
        assert_eq!(ids(&query(&[("q", ":20003")])), [3]);
        assert_eq!(ids(&query(&[("state", "Running")])), [0, 2]);
        assert_eq!(ids(&query(&[("state", "unhealthy")])), [2]);
        assert_eq!(ids(&query(&[("state", "succeeded")])), [0, 1, 2, 3]);
        assert_eq!(ids(&query(&[("zone", "1")])), [0, 2]);
        assert_eq!(ids(&query(&[("model", "outdated")])), [0, 2]);
        assert_eq!(ids(&query(&[("model", "latest"), ("zone", "2")])), [1]);
        assert!(ids(&query(&[("state", "deallocated")])).is_empty());
        assert!(query(&[("zone", "1")]).filtered());
        assert!(!query(&[("sort", "zone")]).filtered());
    }

    #[test]
    fn sorts_by_each_column_with_ties_by_ordinal() {
        let table: &[(&str, &str, [u64; 4])] = &[
            ("id", "desc", [3, 2, 1, 0]),
            ("zone", "asc", [0, 2, 1, 3]),
            ("fd", "asc", [0, 2, 1, 3]),
            ("power", "asc", [0, 2, 3, 1]),
            ("health", "asc", [0, 3, 2, 1]),
            ("protection", "desc", [2, 0, 1, 3]),
            ("age", "asc", [3, 2, 1, 0]),
            ("address", "desc", [3, 2, 1, 0]),
            ("bogus", "asc", [0, 1, 2, 3]),
        ];
        for (sort, dir, expected) in table {
            assert_eq!(
                ids(&query(&[("sort", sort), ("dir", dir)])),
                expected,
                "{sort} {dir}"
            );
        }
    }

    #[test]
    fn links_keep_the_filters() {
        let q = query(&[("q", "a b"), ("state", "running"), ("sort", "zone")]);
        let path = "/scale-sets/web/instances";
        assert_eq!(
            q.href(path),
            "/scale-sets/web/instances?q=a%20b&state=running&sort=zone"
        );
        assert_eq!(
            q.sort_href(path, InstanceColumn::Zone),
            "/scale-sets/web/instances?q=a%20b&state=running&sort=zone&dir=desc"
        );
        assert_eq!(
            q.sort_href(path, InstanceColumn::Id),
            "/scale-sets/web/instances?q=a%20b&state=running"
        );
    }

    #[test]
    fn pages_of_rows_clamped_to_the_last() {
        let q = query(&[("page", "2"), ("limit", "3")]);
        assert_eq!((q.page, q.limit), (2, 3));
        assert_eq!(q.page_of((1..=7).collect()), (vec![4, 5, 6], 2));
        let past = query(&[("page", "9"), ("limit", "3")]);
        assert_eq!(past.page_of((1..=7).collect()), (vec![7], 3));
        assert_eq!(past.page_of(Vec::<u8>::new()), (vec![], 1));
        assert_eq!(pages(0, 50), 1);
        assert_eq!(pages(50, 50), 1);
        assert_eq!(pages(51, 50), 2);
        // Unreadable or out of range: the defaults.
        for (page, limit) in [("0", "0"), ("-1", "501"), ("x", "1e3"), ("", "")] {
            let q = query(&[("page", page), ("limit", limit)]);
            assert_eq!((q.page, q.limit), (1, DEFAULT_LIMIT), "{page:?} {limit:?}");
        }
    }

    #[test]
    fn params_round_trip_and_links_carry_the_page_and_selection() {
        let q = query(&[
            ("q", "a b"),
            ("zone", "2"),
            ("sort", "zone"),
            ("dir", "desc"),
            ("page", "3"),
            ("limit", "25"),
        ]);
        assert_eq!(InstanceQuery::from_pairs(&q.params()), q);
        assert!(InstanceQuery::default().params().is_empty());
        let path = "/scale-sets/web/instances";
        assert_eq!(
            q.href(path),
            "/scale-sets/web/instances?q=a%20b&zone=2&sort=zone&dir=desc&page=3&limit=25"
        );
        // Sorting goes back to the first page.
        assert_eq!(
            q.sort_href(path, InstanceColumn::Age),
            "/scale-sets/web/instances?q=a%20b&zone=2&sort=age&limit=25"
        );
        let selected: BTreeSet<String> = ["web_7", "web_1"].map(String::from).into();
        assert_eq!(
            InstanceQuery::default().page_href(path, 2, &selected),
            "/scale-sets/web/instances?page=2&selected=web_1%2Cweb_7"
        );
        assert_eq!(
            InstanceQuery::default().page_href(path, 1, &BTreeSet::new()),
            path
        );
        let read = selection(|k| (k == "selected").then(|| " web_1,,web_7,web_1 ".to_string()));
        assert_eq!(read, selected);
        let many = vec!["x"; 20_000].join(",");
        assert_eq!(selection(|_| Some(many.clone())).len(), 1);
    }

    #[test]
    fn progress_counts_settled_and_gone_instances() {
        use flotilla_domain::{DesiredPower, PendingAction, ProvisioningState};
        let mut fleet = fleet();
        // 0 running as asked; 1 stopped but asked to run; 2 restarting; 3 starting.
        fleet[1].desired_power = DesiredPower::Running;
        fleet[2].pending = Some(PendingAction::Restart);
        fleet[2].provisioning_state = ProvisioningState::Updating;
        assert!(is_settled(&fleet[0]));
        assert!(!is_settled(&fleet[1]));
        assert!(!is_settled(&fleet[2]));
        assert!(!is_settled(&fleet[3]));
        let ids: Vec<String> = ["web_0", "web_2", "web_9"].map(String::from).to_vec();
        assert_eq!(settled_count(&ids, &fleet), 2);
    }

    #[test]
    fn ages_and_protection_in_words() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(age(t(0), t(59)), "59 s");
        assert_eq!(age(t(0), t(60 * 12 + 5)), "12 min");
        assert_eq!(age(t(0), t(3_600 * 5)), "5 h");
        assert_eq!(age(t(0), t(86_400 * 3 + 1)), "3 d");
        assert_eq!(age(t(10), t(0)), "0 s");
        let fleet = fleet();
        assert_eq!(protection(&fleet[0]), "—");
        assert_eq!(protection(&fleet[2]), "scale-in");
    }
}
