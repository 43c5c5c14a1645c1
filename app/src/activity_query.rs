//! The activity log's filters as they live in the page's URL query
//! (`/activity?scale_set=web&result=failed&before=123`): read from the query, checked and
//! turned into an [`ActivityFilter`], and written back into links (paging). Plain Rust, so
//! the same rules hold on the server and in the browser.

use chrono::{DateTime, NaiveDateTime, Utc};
use flotilla_domain::url::percent_encode;
use flotilla_domain::{ActivityFilter, ActivityResult, FieldError};

/// How many entries a page shows unless the query says otherwise (`limit`).
pub const PAGE_SIZE: u32 = 50;

/// The filters as typed (every value a string, as in the URL); empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub scale_set: String,
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
        let before_id = match self.before.as_str() {
            "" => None,
            s => match s.parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    error("before", format!("{s:?} is not an entry id"));
                    None
                }
            },
        };
        let limit = match self.limit.as_str() {
            "" => PAGE_SIZE,
            s => match s.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    error("limit", format!("{s:?} is not a number from 1 to 1000"));
                    PAGE_SIZE
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ActivityFilter {
            scale_set: opt(&self.scale_set),
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

    /// The page's address with these filters (empty ones left out).
    pub fn href(&self) -> String {
        let pairs = [
            ("scale_set", &self.scale_set),
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
            "/activity".into()
        } else {
            format!("/activity?{}", query.join("&"))
        }
    }
}

/// The log of one scale set.
pub fn scale_set_href(name: &str) -> String {
    ActivityQuery {
        scale_set: name.into(),
        ..ActivityQuery::default()
    }
    .href()
}

/// A `datetime-local` value (minutes or seconds), read as UTC; RFC 3339 is accepted too.
fn parse_time(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
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
            ("operation", "scale_set.create"),
            ("result", "failed"),
            ("since", "2026-01-31T13:45"),
            ("until", "2026-02-01T00:00:30"),
            ("before", "123"),
            ("limit", "2"),
        ]);
        let f = q.to_filter().unwrap();
        assert_eq!(f.scale_set.as_deref(), Some("web"));
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
        assert_eq!(
            q.with_before(None).href(),
            "/activity?scale_set=web%20a%26b&result=failed"
        );
        assert_eq!(
            q.with_before(Some(4)).href(),
            "/activity?scale_set=web%20a%26b&result=failed&before=4"
        );
        assert_eq!(scale_set_href("web"), "/activity?scale_set=web");
    }
}
