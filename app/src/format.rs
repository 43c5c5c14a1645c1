//! Formatting for display. Everything here is deterministic — no "3 minutes ago" — so the
//! server and the browser render the same text and hydration matches.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `2025-01-31 14:05:09 UTC`. Written out rather than with a `strftime` pattern, whose parser
/// and formatter would be in every page's wasm for this one use.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The machine-readable form for `<time datetime=…>`.
pub fn datetime_attr(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `350 ms`, `1.2 s`, `2 min 5 s`, `1 h 3 min`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// `512 MiB`, `2 GiB`, `1.5 GiB`.
pub fn memory_mib(mib: u32) -> String {
    if mib < 1024 {
        format!("{mib} MiB")
    } else if mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{:.1} GiB", f64::from(mib) / 1024.0)
    }
}

/// `1, 2, 3`, or `—` for none (a set without zones is regional).
pub fn zones(zones: &[String]) -> String {
    if zones.is_empty() {
        "—".to_string()
    } else {
        zones.join(", ")
    }
}

/// `1 instance`, `3 instances`.
pub fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A setting in seconds, readably: `0 s`, `45 s`, `10 min`, `1 min 30 s`, `1 h 30 min`.
pub fn seconds(s: u32) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3_600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3_600 => format!("{} min {} s", s / 60, s % 60),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ => format!("{} h {} min", s / 3_600, (s % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_and_fixed_width() {
        let at = DateTime::parse_from_rfc3339("2025-01-31T14:05:09.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(&at), "2025-01-31 14:05:09 UTC");
        assert_eq!(timestamp(&DateTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime_attr(&at), "2025-01-31T14:05:09Z");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        let cases = [
            (-5, "0 ms"),
            (0, "0 ms"),
            (350, "350 ms"),
            (1_200, "1.2 s"),
            (125_000, "2 min 5 s"),
            (3_780_000, "1 h 3 min"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration_ms(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn memory_in_mib_or_gib() {
        assert_eq!(memory_mib(512), "512 MiB");
        assert_eq!(memory_mib(2048), "2 GiB");
        assert_eq!(memory_mib(1536), "1.5 GiB");
    }

    #[test]
    fn settings_in_seconds_read_well() {
        let table = [
            (0, "0 s"),
            (45, "45 s"),
            (600, "10 min"),
            (90, "1 min 30 s"),
            (3_600, "1 h"),
            (5_400, "1 h 30 min"),
        ];
        for (s, want) in table {
            assert_eq!(seconds(s), want, "{s}");
        }
    }

    #[test]
    fn zones_and_plurals() {
        assert_eq!(zones(&[]), "—");
        assert_eq!(zones(&["1".into(), "2".into()]), "1, 2");
        assert_eq!(plural(1, "instance", "instances"), "1 instance");
        assert_eq!(plural(0, "instance", "instances"), "0 instances");
    }
}
