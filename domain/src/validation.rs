//! Field-level validation errors shared by every input of Flotilla: the error of one field
//! under its path ([`FieldError`]), which input a path is about ([`concerns`]), and reading
//! typed text into values ([`typed`]).

use serde::{Deserialize, Serialize};

pub mod typed;

pub use typed::{TypedInput, parse, parse_optional};

/// One problem with one input field. `field` is a dotted path into the request
/// (`model.vcpus`, `zones[1]`, `health_probe.timeout_seconds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in one input; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("invalid input: {}", summary(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Checks `lo <= value <= hi`, recording a message naming the bounds otherwise.
    pub fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        value: T,
        lo: T,
        hi: T,
    ) {
        if value < lo || value > hi {
            self.push(field, format!("must be between {lo} and {hi}, got {value}"));
        }
    }

    /// `Ok(())` when nothing was recorded, the collected errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Prefixes every field with `prefix.` (for nested structures).
    pub fn nest(&mut self, prefix: &str, inner: ValidationErrors) {
        for e in inner.0 {
            self.push(format!("{prefix}.{}", e.field), e.message);
        }
    }
}

/// Whether a problem about `error_field` is about the input for `field`: the same path, or
/// a path inside it (`zones` covers `zones[1]`, `profiles[0].recurrence.end` covers
/// `profiles[0].recurrence.end.hour`), but not a path that merely starts with the same
/// letters (`zones` does not cover `zones2`).
pub fn concerns(error_field: &str, field: &str) -> bool {
    error_field
        .strip_prefix(field)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Names that collide with portal routes under `/scale-sets/`.
pub const RESERVED_NAMES: &[&str] = &["new"];

/// Scale-set names: `^[a-z][a-z0-9-]{0,62}$`, except the reserved ones.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("must not be empty".into()),
        Some(c) if !c.is_ascii_lowercase() => {
            return Err("must start with a lowercase letter a-z".into());
        }
        _ => {}
    }
    if name.len() > 63 {
        return Err(format!("must be at most 63 characters, got {}", name.len()));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!("{name:?} is reserved (it is a portal route)"));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "may contain only lowercase letters, digits and '-', found {bad:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "web", "web-1", "a0-b1", &"a".repeat(63)] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "1web",
            "-web",
            "Web",
            "web_1",
            "web.1",
            "wéb",
            "web 1",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_concern_themselves_and_what_lies_inside() {
        for (error, field) in [
            ("name", "name"),
            ("zones[2]", "zones"),
            (
                "profiles[0].recurrence.end.hour",
                "profiles[0].recurrence.end",
            ),
            ("profiles[0].rules[1]", "profiles[0].rules"),
            ("profiles[0].rules[1].threshold", "profiles[0]"),
            (
                "upgrade_policy.rolling.checkpoints[0].percent",
                "upgrade_policy",
            ),
        ] {
            assert!(concerns(error, field), "{error} is about {field}");
        }
        for (error, field) in [
            ("zones2", "zones"),
            ("name_x", "name"),
            ("profiles[10].name", "profiles[1]"),
            ("profiles[0].recurrence", "profiles[0].recurrence.end"),
            ("model", "model.vcpus"),
            ("capacity", "autoscale.profiles[0].capacity"),
        ] {
            assert!(!concerns(error, field), "{error} is not about {field}");
        }
    }

    #[test]
    fn range_and_nesting() {
        let mut inner = ValidationErrors::default();
        inner.range("vcpus", 0, 1, 64);
        inner.range("memory_mib", 512, 128, 1024);
        let mut outer = ValidationErrors::default();
        outer.nest("model", inner);
        assert_eq!(outer.0.len(), 1);
        assert_eq!(outer.0[0].field, "model.vcpus");
        assert!(outer.0[0].message.contains("between 1 and 64"));
        assert!(outer.into_result().is_err());
        assert!(ValidationErrors::default().into_result().is_ok());
    }
}
