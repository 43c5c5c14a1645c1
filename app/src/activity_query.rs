//! The activity log's filters as they live in the page's URL query
//! (`/activity?scale_set=web&actor=alice&result=failed&before=123`): read from the query, checked and
//! turned into an [`ActivityFilter`], and written back into links (paging). An
//! [`ActivityScope`] says which log a page shows: the fleet's, or one scale set's on that
//! set's page. Plain Rust, so the same rules hold on the server and in the browser.

use chrono::{DateTime, Utc};
use flotilla_domain::url::percent_encode;
use flotilla_domain::validation::parse_optional;
use flotilla_domain::validation::typed::local_date_time;
use flotilla_domain::{ActivityFilter, ActivityResult, FieldError};

/// How many entries a page shows unless the query says otherwise (`limit`).
pub const PAGE_SIZE: u32 = 50;

/// The fleet's activity log.
pub const ACTIVITY_PATH: &str = "/activity";

/// The filters as typed (every value a string, as in the URL); empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub scale_set: String,
    /// Who acted, as the log records it (`alice`, a token as `alice/ci`, `system:…`).
    pub actor: String,
    pub operation: String,
    pub result: String,
    /// `datetime-local` values (`2026-11-27T11:13`), read as UTC.
    pub since: String,
    pub until: String,
    /// Only entries older than this id (the previous page's last).
    pub before: String,
    pub limit: String,
}

impl ActivityQuery {
    /// Reads the filters from query parameters (`get` returns a parameter's value).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| get(key).map(|v| v.trim().to_string()).unwrap_or_default();
        Self {
            scale_set: get("scale_set"),
            actor: get("actor"),
            operation: get("operation"),
            result: get("result"),
            since: get("since"),
            until: get("until"),
            before: get("before"),
            limit: get("limit"),
        }
    }

    /// The filter to ask the log for, or a message per field that could not be read.
    pub fn to_filter(&self) -> Result<ActivityFilter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let result = match self.result.as_str() {
            "" | "any" => None,
            other => match other.parse::<ActivityResult>() {
                Ok(r) => Some(r),
                Err(message) => {
                    error("result", message);
                    None
                }
            },
        };
        let since = parse_time(&self.since).unwrap_or_else(|m| {
            error("since", m);
            None
        });
        let until = parse_time(&self.until).unwrap_or_else(|m| {
            error("until", m);
            None
        });
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            error("until", "must not be before “since”".into());
        }
        let before_id = match parse_optional::<i64>("before", &self.before) {
            Ok(None) => None,
            Ok(Some(id)) if id > 0 => Some(id),
            _ => {
                error("before", format!("{:?} is not an entry id", self.before));
                None
            }
        };
        let limit = match parse_optional::<u32>("limit", &self.limit) {
            Ok(None) => PAGE_SIZE,
            Ok(Some(n)) if (1..=1000).contains(&n) => n,
            _ => {
                error(
                    "limit",
                    format!("{:?} is not a number from 1 to 1000", self.limit),
                );
                PAGE_SIZE
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ActivityFilter {
            scale_set: opt(&self.scale_set),
            actor: opt(&self.actor),
            operation: opt(&self.operation),
            result,
            since,
            until,
            before_id,
            limit,
        })
    }

    /// The same filters on another page: older than `before`, or the newest (`None`).
    pub fn with_before(&self, before: Option<i64>) -> Self {
        Self {
            before: before.map(|id| id.to_string()).unwrap_or_default(),
            ..self.clone()
        }
    }

    /// The fleet's log with these filters (empty ones left out).
    pub fn href(&self) -> String {
        self.href_at(ACTIVITY_PATH)
    }

    /// The page at `path` with these filters (empty ones left out).
    pub fn href_at(&self, path: &str) -> String {
        let pairs = [
            ("scale_set", &self.scale_set),
            ("actor", &self.actor),
            ("operation", &self.operation),
            ("result", &self.result),
            ("since", &self.since),
            ("until", &self.until),
            ("before", &self.before),
            ("limit", &self.limit),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        if query.is_empty() {
            path.into()
        } else {
            format!("{path}?{}", query.join("&"))
        }
    }

    /// Whether this is the newest page (no `before` cursor): the one that grows live.
    pub fn is_newest(&self) -> bool {
        self.before.is_empty()
    }
}

/// Which log a page shows, and where: the fleet's (at `/activity`, filterable by scale
/// set), or one scale set's (on a page of that set, fixed to it whatever the query says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityScope {
    /// The page's path: the filter form and the paging links stay on it.
    pub path: String,
    /// The scale set the log is fixed to, if any.
    pub scale_set: Option<String>,
}

impl ActivityScope {
    /// Reads the filters from the page's query parameters. A log fixed to a scale set
    /// leaves the query's `scale_set` out, so its links never carry it.
    pub fn query(&self, get: impl Fn(&str) -> Option<String>) -> ActivityQuery {
        let fixed = self.scale_set.is_some();
        ActivityQuery::from_params(|k| {
            if fixed && k == "scale_set" {
                None
            } else {
                get(k)
            }
        })
    }

    /// The filter to ask the log for: the query's, narrowed to the fixed scale set.
    pub fn filter(&self, query: &ActivityQuery) -> Result<ActivityFilter, Vec<FieldError>> {
        let mut filter = query.to_filter()?;
        if let Some(name) = &self.scale_set {
            filter.scale_set = Some(name.clone());
        }
        Ok(filter)
    }

    /// This page with `query`'s filters.
    pub fn href(&self, query: &ActivityQuery) -> String {
        query.href_at(&self.path)
    }
}

/// `at` as a `datetime-local` value to the second (`2026-01-31T13:45:09`, UTC), the form
/// the filters' time fields show and [`ActivityQuery::to_filter`] reads back.
pub fn time_value(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A `datetime-local` value (minutes or seconds), read as UTC; RFC 3339 is accepted too.
fn parse_time(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    local_date_time(s)
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| format!("{s:?} is not a time like 2026-01-31T13:45 (UTC)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ActivityQuery {
        ActivityQuery::from_params(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn an_empty_query_is_the_newest_page_of_everything() {
        let filter = query(&[]).to_filter().unwrap();
        assert_eq!(
            filter,
            ActivityFilter {
                limit: PAGE_SIZE,
                ..ActivityFilter::default()
            }
        );
        assert_eq!(query(&[]).href(), "/activity");
    }

    #[test]
    fn filters_are_read_from_the_query() {
        let q = query(&[
            ("scale_set", "web"),
            ("actor", "alice/ci"),
            ("operation", "scale_set.create"),
            ("result", "failed"),
            ("since", "2026-01-31T13:45"),
            ("until", "2026-02-01T00:00:30"),
            ("before", "123"),
            ("limit", "2"),
        ]);
        let f = q.to_filter().unwrap();
        assert_eq!(f.scale_set.as_deref(), Some("web"));
        assert_eq!(f.actor.as_deref(), Some("alice/ci"));
        assert_eq!(f.operation.as_deref(), Some("scale_set.create"));
        assert_eq!(f.result, Some(ActivityResult::Failed));
        assert_eq!(f.since.unwrap().to_rfc3339(), "2026-01-31T13:45:00+00:00");
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-02-01T00:00:30+00:00");
        assert_eq!(f.before_id, Some(123));
        assert_eq!(f.limit, 2);
        assert_eq!(
            query(&[("result", "any")]).to_filter().unwrap().result,
            None
        );
    }

    #[test]
    fn bad_values_get_a_message_per_field() {
        let errors = query(&[
            ("result", "maybe"),
            ("since", "yesterday"),
            ("before", "x"),
            ("limit", "0"),
        ])
        .to_filter()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["result", "since", "before", "limit"]);
        let errors = query(&[("since", "2026-02-01T00:00"), ("until", "2026-01-01T00:00")])
            .to_filter()
            .unwrap_err();
        assert_eq!(errors[0].field, "until");
    }

    #[test]
    fn links_keep_the_filters_and_change_the_page() {
        let q = query(&[
            ("scale_set", "web a&b"),
            ("result", "failed"),
            ("before", "9"),
        ]);
        assert_eq!(
            q.href(),
            "/activity?scale_set=web%20a%26b&result=failed&before=9"
        );
        let by = query(&[("actor", "alice/ci"), ("operation", "token.create")]);
        assert_eq!(
            by.href(),
            "/activity?actor=alice%2Fci&operation=token.create"
        );
        assert_eq!(
            q.with_before(None).href(),
            "/activity?scale_set=web%20a%26b&result=failed"
        );
        assert_eq!(
            q.with_before(Some(4)).href(),
            "/activity?scale_set=web%20a%26b&result=failed&before=4"
        );
        assert!(q.with_before(None).is_newest());
        assert!(!q.is_newest());
    }

    #[test]
    fn times_round_trip_through_the_query() {
        let at = DateTime::parse_from_rfc3339("2026-01-31T13:45:09Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time_value(&at), "2026-01-31T13:45:09");
        let q = query(&[("since", &time_value(&at))]);
        assert_eq!(q.to_filter().unwrap().since, Some(at));
    }

    #[test]
    fn the_fleets_log_filters_by_the_querys_scale_set() {
        let scope = ActivityScope {
            path: ACTIVITY_PATH.into(),
            scale_set: None,
        };
        let params = |k: &str| match k {
            "scale_set" => Some("api".to_string()),
            "before" => Some("7".to_string()),
            _ => None,
        };
        let q = scope.query(params);
        assert_eq!(scope.filter(&q).unwrap().scale_set.as_deref(), Some("api"));
        assert_eq!(scope.href(&q), "/activity?scale_set=api&before=7");
    }

    #[test]
    fn a_scale_sets_log_is_fixed_to_it_and_stays_on_its_page() {
        let scope = ActivityScope {
            path: "/scale-sets/web/activity".into(),
            scale_set: Some("web".into()),
        };
        let q = scope.query(|k| match k {
            "scale_set" => Some("api".to_string()),
            "result" => Some("failed".to_string()),
            _ => None,
        });
        assert_eq!(q.scale_set, "");
        let filter = scope.filter(&q).unwrap();
        assert_eq!(filter.scale_set.as_deref(), Some("web"));
        assert_eq!(filter.result, Some(ActivityResult::Failed));
        assert_eq!(
            scope.href(&q.with_before(Some(12))),
            "/scale-sets/web/activity?result=failed&before=12"
        );
        assert_eq!(
            scope.href(&ActivityQuery::default()),
            "/scale-sets/web/activity"
        );
        assert!(scope.filter(&query(&[("limit", "0")])).is_err());
    }
}
