//! Sorting a table by a column named in the URL query (`?sort=created&dir=desc`), shared
//! by the portal's sortable tables: reading the column and direction, ordering rows, the
//! header links that sort or reverse, and `aria-sort`.

use std::cmp::Ordering;

/// A sortable column of one table.
pub trait Column: Copy + Eq + Default + 'static {
    /// Every column, in the table's order.
    const ALL: &'static [Self];

    /// The column's name in the URL.
    fn as_str(self) -> &'static str;
}

/// The column a table is sorted by, and the direction; unknown values fall back to the
/// default column, ascending, so every address shows a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sort<K> {
    pub key: K,
    pub descending: bool,
}

impl<K: Column> Sort<K> {
    /// Reads `sort` and `dir` from the query.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            key: get("sort")
                .and_then(|s| K::ALL.iter().copied().find(|k| k.as_str() == s))
                .unwrap_or_default(),
            descending: get("dir").as_deref() == Some("desc"),
        }
    }

    /// `ordering` (ascending by the column) in this direction.
    pub fn directed(&self, ordering: Ordering) -> Ordering {
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// What a click on `key`'s header asks for: sort by it, or reverse the order if the
    /// table is already sorted by it ascending.
    pub fn toggled(&self, key: K) -> Self {
        Self {
            key,
            descending: self.key == key && !self.descending,
        }
    }

    /// `aria-sort` of `key`'s header.
    pub fn aria(&self, key: K) -> &'static str {
        match (self.key == key, self.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    }

    /// `dir` as the filter forms carry it.
    pub fn dir(&self) -> &'static str {
        if self.descending { "desc" } else { "asc" }
    }

    /// The query pairs (`sort=…`, `dir=desc`), none for the default order.
    pub fn pairs(&self) -> Vec<String> {
        let mut pairs = Vec::new();
        if self.key != K::default() || self.descending {
            pairs.push(format!("sort={}", self.key.as_str()));
        }
        if self.descending {
            pairs.push("dir=desc".into());
        }
        pairs
    }
}

/// `path`, with the query `pairs` if there are any.
pub fn href(path: &str, pairs: &[String]) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    enum Col {
        #[default]
        A,
        B,
    }

    impl Column for Col {
        const ALL: &'static [Self] = &[Col::A, Col::B];
        fn as_str(self) -> &'static str {
            match self {
                Col::A => "a",
                Col::B => "b",
            }
        }
    }

    fn sort(pairs: &[(&str, &str)]) -> Sort<Col> {
        Sort::from_params(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_the_column_and_direction_and_falls_back() {
        assert_eq!(
            sort(&[("sort", "b"), ("dir", "desc")]),
            Sort {
                key: Col::B,
                descending: true
            }
        );
        assert_eq!(sort(&[("sort", "zzz"), ("dir", "up")]), Sort::default());
    }

    #[test]
    fn headers_toggle_and_say_the_order() {
        let asc_b = sort(&[("sort", "b")]);
        assert_eq!(asc_b.toggled(Col::B).pairs(), ["sort=b", "dir=desc"]);
        assert_eq!(asc_b.toggled(Col::A).pairs(), Vec::<String>::new());
        assert_eq!(asc_b.aria(Col::B), "ascending");
        assert_eq!(asc_b.toggled(Col::B).aria(Col::B), "descending");
        assert_eq!(asc_b.aria(Col::A), "none");
        assert_eq!(asc_b.directed(Ordering::Less), Ordering::Less);
        assert_eq!(
            asc_b.toggled(Col::B).directed(Ordering::Less),
            Ordering::Greater
        );
        assert_eq!(href("/x", &[]), "/x");
        assert_eq!(href("/x", &["a=1".into(), "b=2".into()]), "/x?a=1&b=2");
    }
}
