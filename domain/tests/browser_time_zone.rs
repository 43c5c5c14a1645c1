//! The browser's time zones (`time_zone::Zone` in wasm, read from `Intl.DateTimeFormat`)
//! against chrono-tz's tables, which the server uses: the same offsets at every instant
//! sampled, and the same reading of every local time, gaps and repeated hours included.
//! `make unit` runs it in Node (`wasm-bindgen-test-runner`), whose `Intl` carries the IANA
//! database as browsers do. Natively this file is empty.
#![cfg(target_arch = "wasm32")]

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use flotilla_domain::schedule::{Recurrence, Weekday, When, parse_time_zone, resolve};
use flotilla_domain::time_zone::Zone;
use wasm_bindgen_test::wasm_bindgen_test;

/// Zones with the kinds of rules there are: none, whole-hour and half-hour changes in both
/// hemispheres, a fractional offset, and the far side of the date line.
const ZONES: [&str; 9] = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Asia/Tokyo",
];

/// Zones whose clocks did not change in 2026.
const STEADY: [&str; 4] = ["UTC", "Asia/Kolkata", "Asia/Tokyo", "America/Sao_Paulo"];

fn both(name: &str) -> (Zone, chrono_tz::Tz) {
    (parse_time_zone(name).unwrap(), name.parse().unwrap())
}

fn at(y: i32, m: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

#[wasm_bindgen_test]
fn names_are_the_databases_written_as_it_writes_them() {
    for name in ZONES {
        assert_eq!(parse_time_zone(name).unwrap().name(), name);
    }
    for refused in ["Mars/Olympus", "europe/paris", "", "Europe/Paris "] {
        assert_eq!(
            parse_time_zone(refused).map(Zone::name),
            Err(format!(
                "unknown time zone {refused:?}: use an IANA name such as \"Europe/Paris\" or \"UTC\""
            )),
            "{refused:?}"
        );
    }
}

#[wasm_bindgen_test]
fn offsets_are_chrono_tz_ones_from_2005_to_2035() {
    for name in ZONES {
        let (zone, tz) = both(name);
        let mut instant = at(2005, 1, 1);
        while instant < at(2035, 1, 1) {
            assert_eq!(
                zone.offset_from_utc_datetime(&instant).fix(),
                tz.offset_from_utc_datetime(&instant).fix(),
                "{name} at {instant} UTC"
            );
            // Every five days and 11 hours: every hour of the day comes up.
            instant += TimeDelta::hours(131);
        }
    }
}

#[wasm_bindgen_test]
fn local_times_read_as_chrono_tz_reads_them_gaps_and_repeats_included() {
    let utc = |t: DateTime<Zone>| t.with_timezone(&Utc);
    let utc_tz = |t: DateTime<chrono_tz::Tz>| t.with_timezone(&Utc);
    for name in ZONES {
        let (zone, tz) = both(name);
        let (mut gaps, mut repeats) = (0, 0);
        let mut local = at(2026, 1, 1);
        while local < at(2027, 1, 1) {
            let ours = zone.from_local_datetime(&local).map(utc);
            let theirs = tz.from_local_datetime(&local).map(utc_tz);
            assert_eq!(ours, theirs, "{name} at {local} local");
            match theirs {
                LocalResult::None => gaps += 1,
                LocalResult::Ambiguous(..) => repeats += 1,
                LocalResult::Single(_) => {}
            }
            local += TimeDelta::minutes(15);
        }
        // The zones whose clocks changed had both kinds: the comparison met them.
        let changes = !STEADY.contains(&name);
        assert_eq!(
            (gaps > 0, repeats > 0),
            (changes, changes),
            "{name}: {gaps} gaps, {repeats} repeats"
        );
    }
}

#[wasm_bindgen_test]
fn a_schedule_resolves_in_the_browser_as_on_the_server() {
    // 2026-03-30 is the Monday after Paris moved to summer time (UTC+2).
    let mornings = Recurrence {
        time_zone: "Europe/Paris".into(),
        days: Weekday::WORKDAYS.to_vec(),
        hours: vec![8],
        minutes: vec![0],
        end: None,
    };
    let schedules = [When::Default, When::Recurrence(&mornings)];
    let now = Utc.with_ymd_and_hms(2026, 3, 30, 9, 0, 0).unwrap();
    let resolved = resolve(&schedules, now).unwrap();
    assert_eq!(resolved.index, 1);
    assert_eq!(
        resolved.since,
        Some(Utc.with_ymd_and_hms(2026, 3, 30, 6, 0, 0).unwrap())
    );
    assert_eq!(resolved.until, None);
    // The browser writes Paris's summer offset in its own words.
    assert!(
        resolved.reason.ends_with("started 2026-03-30 08:00 GMT+2"),
        "{}",
        resolved.reason
    );
    // New York's have names in English.
    let (zone, _) = both("America/New_York");
    let winter = zone.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    assert_eq!(winter.format("%Z").to_string(), "EST");
}
