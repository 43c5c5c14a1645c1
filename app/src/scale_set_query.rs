//! The scale set list's view as it lives in the URL query
//! (`/scale-sets?q=web&sort=created&dir=desc`): a text filter on the name and the column
//! to sort by, read from the query, applied to the rows, and written into the column
//! headers' links. Plain Rust, so the same rules hold on the server and in the browser.

use chrono::{DateTime, Utc};
use flotilla_domain::url::percent_encode;

use crate::table_sort::{self, Column, Sort};

/// The columns the list sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Name,
    /// Running, then desired.
    Instances,
    Zones,
    ModelVersion,
    Created,
}

impl Column for SortKey {
    const ALL: &'static [Self] = &[
        Self::Name,
        Self::Instances,
        Self::Zones,
        Self::ModelVersion,
        Self::Created,
    ];

    fn as_str(self) -> &'static str {
        SortKey::as_str(self)
    }
}

impl SortKey {
    /// The column's name in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Instances => "instances",
            Self::Zones => "zones",
            Self::ModelVersion => "model",
            Self::Created => "created",
        }
    }
}

/// What a row is sorted and filtered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKeys {
    pub name: String,
    pub running: u32,
    pub desired: u32,
    pub zones: String,
    pub model_version: u32,
    pub created_at: DateTime<Utc>,
}

/// The list's filter and order; unknown values fall back to the defaults (by name,
/// ascending), so every address shows a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only names containing this (case-insensitive).
    pub filter: String,
    pub sort: SortKey,
    pub descending: bool,
}

impl ListQuery {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let Sort { key, descending } = Sort::from_params(&get);
        Self {
            filter: get("q").map(|q| q.trim().to_string()).unwrap_or_default(),
            sort: key,
            descending,
        }
    }

    fn order(&self) -> Sort<SortKey> {
        Sort {
            key: self.sort,
            descending: self.descending,
        }
    }

    /// The rows that pass the filter, in order (ties broken by name).
    pub fn apply<T>(&self, rows: Vec<T>, keys: impl Fn(&T) -> SortKeys) -> Vec<T> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<(SortKeys, T)> = rows
            .into_iter()
            .map(|row| (keys(&row), row))
            .filter(|(k, _)| k.name.to_lowercase().contains(&needle))
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            let order = match self.sort {
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::Instances => (a.running, a.desired).cmp(&(b.running, b.desired)),
                SortKey::Zones => a.zones.cmp(&b.zones),
                SortKey::ModelVersion => a.model_version.cmp(&b.model_version),
                SortKey::Created => a.created_at.cmp(&b.created_at),
            };
            self.order()
                .directed(order)
                .then_with(|| a.name.cmp(&b.name))
        });
        rows.into_iter().map(|(_, row)| row).collect()
    }

    /// The link of a column header: sorts by `key`, or reverses the order if the list is
    /// already sorted by it; keeps the filter.
    pub fn sort_href(&self, key: SortKey) -> String {
        self.href_with(self.order().toggled(key))
    }

    /// `aria-sort` of a column header.
    pub fn aria_sort(&self, key: SortKey) -> &'static str {
        self.order().aria(key)
    }

    pub fn href(&self) -> String {
        self.href_with(self.order())
    }

    fn href_with(&self, order: Sort<SortKey>) -> String {
        let mut pairs = Vec::new();
        if !self.filter.is_empty() {
            pairs.push(format!("q={}", percent_encode(&self.filter)));
        }
        pairs.extend(order.pairs());
        table_sort::href("/scale-sets", &pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, running: u32, zones: &str, version: u32, created: i64) -> SortKeys {
        SortKeys {
            name: name.into(),
            running,
            desired: running,
            zones: zones.into(),
            model_version: version,
            created_at: DateTime::from_timestamp(created, 0).unwrap(),
        }
    }

    fn rows() -> Vec<SortKeys> {
        vec![
            row("web", 3, "1, 2", 2, 300),
            row("api", 5, "1", 1, 100),
            row("batch", 1, "3", 3, 200),
        ]
    }

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery::from_params(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn names(q: &ListQuery) -> Vec<String> {
        q.apply(rows(), Clone::clone)
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn sorts_by_each_column_both_ways() {
        let table = [
            ("name", "asc", ["api", "batch", "web"]),
            ("name", "desc", ["web", "batch", "api"]),
            ("instances", "asc", ["batch", "web", "api"]),
            ("zones", "asc", ["api", "web", "batch"]),
            ("model", "desc", ["batch", "web", "api"]),
            ("created", "asc", ["api", "batch", "web"]),
            ("nonsense", "sideways", ["api", "batch", "web"]),
        ];
        for (sort, dir, expected) in table {
            assert_eq!(
                names(&query(&[("sort", sort), ("dir", dir)])),
                expected,
                "{sort} {dir}"
            );
        }
    }

    #[test]
    fn filters_names_ignoring_case() {
        assert_eq!(names(&query(&[("q", " A ")])), ["api", "batch"]);
        assert!(names(&query(&[("q", "zzz")])).is_empty());
    }

    #[test]
    fn header_links_toggle_the_order_and_keep_the_filter() {
        let q = query(&[("q", "we b")]);
        assert_eq!(q.href(), "/scale-sets?q=we%20b");
        assert_eq!(
            q.sort_href(SortKey::Name),
            "/scale-sets?q=we%20b&sort=name&dir=desc"
        );
        assert_eq!(
            q.sort_href(SortKey::Created),
            "/scale-sets?q=we%20b&sort=created"
        );
        let desc = query(&[("sort", "created"), ("dir", "desc")]);
        assert_eq!(desc.sort_href(SortKey::Created), "/scale-sets?sort=created");
        assert_eq!(desc.aria_sort(SortKey::Created), "descending");
        assert_eq!(desc.aria_sort(SortKey::Name), "none");
    }
}
