//! The one parser of query parameters: unknown parameters are refused by name, values are
//! parsed with a message naming the parameter, and every problem is reported at once (422).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use flotilla_domain::ValidationErrors;

use super::error::ApiError;

/// Rejects parameters other than `known`, and parses the times among them.
pub struct Params<'a> {
    query: &'a HashMap<String, String>,
    pub errors: ValidationErrors,
}

impl<'a> Params<'a> {
    pub fn new(query: &'a HashMap<String, String>, known: &[&str]) -> Self {
        let mut errors = ValidationErrors::default();
        for key in query.keys().filter(|k| !known.contains(&k.as_str())) {
            errors.push(
                key.as_str(),
                format!("unknown query parameter; known: {}", known.join(", ")),
            );
        }
        Params { query, errors }
    }

    pub fn time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let v = self.query.get(key)?;
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                self.errors.push(
                    key,
                    format!("must be an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}"),
                );
                None
            }
        }
    }

    pub fn number<T: std::str::FromStr>(&mut self, key: &str, what: &str) -> Option<T> {
        let v = self.query.get(key)?;
        match v.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                self.errors.push(key, format!("must be {what}, got {v:?}"));
                None
            }
        }
    }

    /// The value of `key` as given.
    pub fn text(&self, key: &str) -> Option<String> {
        self.query.get(key).cloned()
    }

    /// The value of `key` parsed by `parse`, whose error message is reported as is.
    pub fn parsed<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.query.get(key)?;
        match parse(v) {
            Ok(t) => Some(t),
            Err(message) => {
                self.errors.push(key, message);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        self.errors.into_result().map_err(ApiError::invalid)
    }
}
