//! Reading what a person typed: numbers, lists of numbers, times of day and local dates,
//! from a form or a URL query. Every input that shows a number as text (the wizard, the
//! autoscale editor, the upgrade policy, the demand form, the filters) reads it here, so a
//! value that does not parse is refused the same way everywhere: a [`FieldError`] naming
//! the field's path and quoting what was typed (`must be a whole number, got "two"`).
//!
//! Forms read with a [`TypedInput`]: it collects one problem per unreadable value and
//! reads it as a placeholder (0, none, the epoch), so the rest of the input can still be
//! built and validated; [`TypedInput::finish`] then adds what validation refuses, leaving
//! out what it says about the values that did not parse (they are reported once, as
//! typed). A lone value (a query parameter) is read with [`parse`].

use chrono::NaiveDateTime;

use super::FieldError;
use crate::schedule::TimeOfDay;

/// A kind of value a person types as text, and how a problem with it is worded.
pub trait Typed: Sized {
    /// What the value must be, after "must be": `a whole number`.
    const WHAT: &'static str;

    /// The value of `typed` (already trimmed), if it is one.
    fn from_typed(typed: &str) -> Option<Self>;
}

macro_rules! whole {
    ($($t:ty),*) => {$(
        impl Typed for $t {
            const WHAT: &'static str = "a whole number";

            fn from_typed(typed: &str) -> Option<Self> {
                typed.parse().ok()
            }
        }
    )*};
}

whole!(u8, u16, u32, u64, usize, i32, i64);

impl Typed for f64 {
    const WHAT: &'static str = "a number";

    /// A finite number (`inf` and `NaN` are not what anyone means to type).
    fn from_typed(typed: &str) -> Option<Self> {
        typed.parse::<f64>().ok().filter(|n| n.is_finite())
    }
}

/// The problem with `typed` in `field`: `must be {what}, got "…"`.
pub fn problem(field: &str, what: &str, typed: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: format!("must be {what}, got {:?}", typed.trim()),
    }
}

/// The value typed in `field` (surrounding spaces ignored), or the problem with it.
pub fn parse<T: Typed>(field: &str, typed: &str) -> Result<T, FieldError> {
    T::from_typed(typed.trim()).ok_or_else(|| problem(field, T::WHAT, typed))
}

/// Like [`parse`], but empty (or only spaces) is `None`.
pub fn parse_optional<T: Typed>(field: &str, typed: &str) -> Result<Option<T>, FieldError> {
    if typed.trim().is_empty() {
        Ok(None)
    } else {
        parse(field, typed).map(Some)
    }
}

/// Reads the values of one input, collecting a problem for each that does not parse.
#[derive(Debug, Default)]
pub struct TypedInput {
    problems: Vec<FieldError>,
}

impl TypedInput {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem of this input that is not about parsing a value (an unknown
    /// choice, a malformed line).
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The value typed in `field`; what does not parse is recorded and reads as
    /// `T::default()` (0).
    pub fn value<T: Typed + Default>(&mut self, field: &str, typed: &str) -> T {
        self.value_as(field, typed, T::WHAT)
    }

    /// Like [`TypedInput::value`], with the problem worded `must be {what}` (`a number of
    /// requests per second`).
    pub fn value_as<T: Typed + Default>(&mut self, field: &str, typed: &str, what: &str) -> T {
        T::from_typed(typed.trim()).unwrap_or_else(|| {
            self.problems.push(problem(field, what, typed));
            T::default()
        })
    }

    /// The value typed in `field`, or `None` when it is empty.
    pub fn optional<T: Typed + Default>(&mut self, field: &str, typed: &str) -> Option<T> {
        (!typed.trim().is_empty()).then(|| self.value(field, typed))
    }

    /// Whole numbers separated by commas (`8, 13`); none for an empty input.
    pub fn list(&mut self, field: &str, typed: &str) -> Vec<u32> {
        let mut values = Vec::new();
        for part in typed.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u32>() {
                Ok(n) => values.push(n),
                Err(_) => {
                    self.problems
                        .push(problem(field, "whole numbers separated by commas", part));
                    return vec![];
                }
            }
        }
        values
    }

    /// A time of day (`18:00`), or `None` for an empty input. The hour and minute are
    /// not checked against their ranges here: validation says which one is out.
    pub fn time_of_day(&mut self, field: &str, typed: &str) -> Option<TimeOfDay> {
        let typed = typed.trim();
        if typed.is_empty() {
            return None;
        }
        let parsed = typed.split_once(':').and_then(|(h, m)| {
            Some(TimeOfDay {
                hour: h.trim().parse().ok()?,
                minute: m.trim().parse().ok()?,
            })
        });
        if parsed.is_none() {
            self.problems
                .push(problem(field, "a time such as 18:00", typed));
        }
        parsed
    }

    /// A local date and time as `<input type="datetime-local">` writes it
    /// (`2026-12-24T18:00`, seconds optional); what does not parse reads as the epoch.
    pub fn date_time(&mut self, field: &str, typed: &str) -> NaiveDateTime {
        local_date_time(typed).unwrap_or_else(|| {
            self.problems.push(problem(
                field,
                "a date and time such as 2026-12-24T18:00",
                typed,
            ));
            NaiveDateTime::default()
        })
    }

    /// Whether every value parsed so far.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems recorded: what did not parse, in the order it was read.
    pub fn into_problems(self) -> Vec<FieldError> {
        self.problems
    }

    /// The problems recorded, then those of `invalid` (what validation refuses of the value
    /// built) except about a field whose value did not parse: that one is reported once, as
    /// typed, not again as the placeholder it was read as.
    pub fn finish(self, invalid: impl IntoIterator<Item = FieldError>) -> Vec<FieldError> {
        let mut all = self.problems;
        let unparsed = all.len();
        for e in invalid {
            if !all[..unparsed].iter().any(|p| p.field == e.field) {
                all.push(e);
            }
        }
        all
    }
}

/// A local date and time (`2026-12-24T18:00`, seconds and their fraction optional).
pub fn local_date_time(typed: &str) -> Option<NaiveDateTime> {
    let typed = typed.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(typed, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn lone_values_parse_or_name_their_field() {
        assert_eq!(parse::<u32>("capacity", " 3 "), Ok(3));
        assert_eq!(parse::<f64>("threshold", "70.5"), Ok(70.5));
        assert_eq!(parse::<i64>("before", "-2"), Ok(-2));
        let e = parse::<u32>("model.vcpus", " two ").unwrap_err();
        assert_eq!(e.field, "model.vcpus");
        assert_eq!(e.message, "must be a whole number, got \"two\"");
        for bad in ["-1", "1.5", "", "4294967296"] {
            assert!(parse::<u32>("n", bad).is_err(), "{bad:?}");
        }
        for bad in ["inf", "NaN", "1,5", ""] {
            let e = parse::<f64>("rps", bad).unwrap_err();
            assert!(e.message.starts_with("must be a number, got"), "{bad:?}");
        }
        assert_eq!(parse_optional::<u32>("lead", "  "), Ok(None));
        assert_eq!(parse_optional::<u32>("lead", "30"), Ok(Some(30)));
        assert!(parse_optional::<u32>("lead", "soon").is_err());
    }

    #[test]
    fn an_input_collects_every_problem_and_reads_placeholders() {
        let mut input = TypedInput::new();
        assert_eq!(input.value::<u32>("a", "7"), 7);
        assert_eq!(input.value::<u32>("b", "seven"), 0);
        assert_eq!(
            input.value_as::<f64>("rps", "lots", "a number of requests per second"),
            0.0
        );
        assert_eq!(input.optional::<u32>("c", ""), None);
        assert_eq!(input.optional::<u32>("d", "x"), Some(0));
        assert!(!input.is_empty());
        let problems = input.into_problems();
        assert_eq!(fields(&problems), ["b", "rps", "d"]);
        assert_eq!(
            problems[1].message,
            "must be a number of requests per second, got \"lots\""
        );
    }

    #[test]
    fn lists_times_and_dates() {
        let mut input = TypedInput::new();
        assert_eq!(input.list("hours", "8, 13,"), [8, 13]);
        assert_eq!(input.list("hours", ""), Vec::<u32>::new());
        assert_eq!(input.list("minutes", "0, half"), Vec::<u32>::new());
        assert_eq!(
            input.time_of_day("end", "18:30"),
            Some(TimeOfDay {
                hour: 18,
                minute: 30
            })
        );
        assert_eq!(input.time_of_day("end", " "), None);
        assert_eq!(input.time_of_day("late", "6pm"), None);
        let christmas = input.date_time("start", "2026-12-24T18:00");
        assert_eq!(christmas.to_string(), "2026-12-24 18:00:00");
        assert_eq!(
            input.date_time("start2", "2026-12-24T18:00:30").to_string(),
            "2026-12-24 18:00:30"
        );
        assert_eq!(input.date_time("end", "tomorrow"), NaiveDateTime::default());
        let problems = input.into_problems();
        assert_eq!(fields(&problems), ["minutes", "late", "end"]);
        assert_eq!(
            problems[0].message,
            "must be whole numbers separated by commas, got \"half\""
        );
        assert_eq!(
            problems[1].message,
            "must be a time such as 18:00, got \"6pm\""
        );
    }

    #[test]
    fn what_did_not_parse_is_reported_once() {
        let mut input = TypedInput::new();
        input.value::<u32>("capacity", "lots");
        let invalid = vec![
            FieldError {
                field: "capacity".into(),
                message: "must be at least 1, got 0".into(),
            },
            FieldError {
                field: "name".into(),
                message: "must not be empty".into(),
            },
        ];
        let all = input.finish(invalid);
        assert_eq!(fields(&all), ["capacity", "name"]);
        assert_eq!(all[0].message, "must be a whole number, got \"lots\"");
    }
}
