//! Autoscale profile schedules: when each profile of an autoscale setting applies.
//!
//! Like Azure Monitor autoscale, a setting has three kinds of profiles:
//!
//! - the **default** profile, which applies when no schedule does;
//! - **recurring** profiles ([`Recurrence`], Azure's `recurrence.schedule`), which start at
//!   every combination of days × hours × minutes of the week in an IANA time zone;
//! - **fixed-date** profiles ([`FixedDate`]), which apply from a local start (inclusive) to a
//!   local end (exclusive) in a time zone.
//!
//! Which profile applies at an instant ([`resolve`]) follows Azure's order:
//!
//! 1. the first fixed-date profile whose interval contains the instant;
//! 2. otherwise a recurring profile. A recurring profile runs from each of its starts until
//!    its own `end` (if it has one) or until *another* recurring profile starts, whichever
//!    comes first. Hence only the recurring profile that started last can be running: it
//!    applies unless its own end has passed, in which case the default profile applies
//!    again (an older recurring profile does not come back). When several profiles started
//!    at that same instant, the first of them (lowest index) whose end has not passed
//!    applies;
//! 3. otherwise the first default profile.
//!
//! Local times are turned into instants the same way everywhere in this module:
//!
//! - a local time that does not exist (it falls in a spring-forward gap, such as 02:30 in
//!   New York on the second Sunday of March) maps to the first instant after the gap
//!   (03:00 local);
//! - an ambiguous local time (it occurs twice when clocks fall back, such as 02:30 in Paris
//!   on the last Sunday of October) maps to the earlier of its two instants: a recurring
//!   profile starting then starts once, not twice.
//!
//! This mapping never goes backwards (a later local time never maps to an earlier
//! instant), which the searches below rely on.
//!
//! Everything here is pure: the current instant is passed in, nothing reads the clock, so
//! the same code runs on the server and, compiled to wasm, in the browser's schedule grid
//! ([`week_grid`]).

use std::fmt;

use crate::time_zone::Zone;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono::{LocalResult, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// How many days [`Recurrence::last_start`] and [`Recurrence::next_start`] search, and how
/// far ahead [`resolve`] announces the end of the default profile.
const HORIZON_DAYS: u64 = 8;

/// Day of the week, serialized `"monday"`..`"sunday"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Every day, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    /// Monday to Friday.
    pub const WORKDAYS: [Weekday; 5] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];

    /// 0 for Monday … 6 for Sunday (chrono's `num_days_from_monday`).
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        })
    }
}

/// A time of day (24 h clock) in the schedule's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeOfDay {
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A weekly recurrence (Azure's `recurrence.schedule`): the profile starts at every
/// combination of `days` × `hours` × `minutes` in `time_zone` (an IANA name such as
/// `"Europe/Paris"`).
///
/// Without `end` it runs until another recurring profile starts (Azure's semantics); with
/// `end` it stops at that time of day — the first occurrence of `end` after the start, so a
/// start at 22:00 with an end at 06:00 runs overnight — and the default profile applies
/// again. See the [module documentation](self) for daylight-saving time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recurrence {
    pub time_zone: String,
    pub days: Vec<Weekday>,
    /// Hours of the starts, 0–23.
    pub hours: Vec<u32>,
    /// Minutes of the starts, 0–59.
    pub minutes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<TimeOfDay>,
}

/// A fixed date range: local date-times (serialized like `"2026-12-24T18:00:00"`) in
/// `time_zone`, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixedDate {
    pub time_zone: String,
    /// Local date and time in `time_zone`, without an offset.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-12-24T18:00:00",
        pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$"))]
    pub start: NaiveDateTime,
    /// Local date and time in `time_zone`, without an offset (exclusive).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "2026-12-25T00:00:00",
        pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$"))]
    pub end: NaiveDateTime,
}

/// A profile's schedule, borrowed from the profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When<'a> {
    Default,
    Recurrence(&'a Recurrence),
    FixedDate(&'a FixedDate),
}

/// Which profile applies and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolved {
    /// Index of the profile in the schedules given to [`resolve`].
    pub index: usize,
    /// Why it applies, for people (`recurs monday–friday at 08:00 (Europe/Paris); started
    /// 2026-11-27 08:00 CET`).
    pub reason: String,
    /// When it started applying: the start of the fixed date or of the recurrence; `None`
    /// for the default profile.
    pub since: Option<DateTime<Utc>>,
    /// When another profile takes over, when known (for the default profile: only when a
    /// schedule starts within the next 8 days).
    pub until: Option<DateTime<Utc>>,
}

/// Parses an IANA time zone name (`"Europe/Paris"`, `"UTC"`), with a message for people.
pub fn parse_time_zone(name: &str) -> Result<Zone, String> {
    name.parse::<Zone>().map_err(|_| {
        format!("unknown time zone {name:?}: use an IANA name such as \"Europe/Paris\" or \"UTC\"")
    })
}

/// The instant a local date-time of `tz` designates: the earlier instant when it is
/// ambiguous, the first instant after the gap when it does not exist. `None` only for
/// date-times at the edge of chrono's range.
fn to_utc(tz: Zone, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => after_gap(tz, local),
    }
}

/// The first instant whose local time in `tz` is at or after `local`, for a `local` that
/// falls in a gap: that is the instant the clocks jumped. Found by bisection over the
/// seconds around `local` (every UTC offset is within ±26 h).
fn after_gap(tz: Zone, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let at = |seconds: i64| DateTime::from_timestamp(seconds, 0);
    let reached = |seconds: i64| {
        at(seconds).is_some_and(|t| tz.from_utc_datetime(&t.naive_utc()).naive_local() >= local)
    };
    let around = local.and_utc().timestamp();
    let margin = 26 * 3600;
    let (mut before, mut after) = (around.checked_sub(margin)?, around.checked_add(margin)?);
    if reached(before) || !reached(after) {
        return None;
    }
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if reached(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    at(after)
}

/// A span of time: start inclusive, end exclusive.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// A valid recurrence, ready for searching: its zone, days and sorted start times.
struct Compiled {
    tz: Zone,
    days: [bool; 7],
    /// Start times of a day, ascending, without duplicates; never empty.
    times: Vec<NaiveTime>,
    end: Option<NaiveTime>,
}

impl Compiled {
    fn runs_on(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }

    fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.tz).date_naive()
    }

    /// The local dates from `days_before` days before `date` to `days_after` days after it.
    fn dates(
        date: NaiveDate,
        days_before: u64,
        days_after: u64,
    ) -> impl Iterator<Item = NaiveDate> {
        let first = date.checked_sub_days(Days::new(days_before));
        (0..=days_before + days_after)
            .map_while(move |n| first.and_then(|d| d.checked_add_days(Days::new(n))))
    }

    /// The instant the local clock shows `time` on `date`.
    fn instant(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        to_utc(self.tz, date.and_time(time))
    }

    // Local times map to instants in order, so within a date the starts at or before an
    // instant are a prefix of `times` (found by bisection), and walking the dates back
    // (or forward) the first date with a match holds the answer.

    fn last_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let dates: Vec<NaiveDate> = Self::dates(self.local_date(now), HORIZON_DAYS, 1).collect();
        dates
            .into_iter()
            .rev()
            .filter(|d| self.runs_on(*d))
            .find_map(|d| {
                let passed = self
                    .times
                    .partition_point(|t| self.instant(d, *t).is_some_and(|s| s <= now));
                self.instant(d, *self.times.get(passed.checked_sub(1)?)?)
            })
    }

    fn next_start(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Self::dates(self.local_date(after), 1, HORIZON_DAYS)
            .filter(|d| self.runs_on(*d))
            .find_map(|d| {
                let passed = self
                    .times
                    .partition_point(|t| self.instant(d, *t).is_none_or(|s| s <= after));
                self.instant(d, *self.times.get(passed)?)
            })
    }

    fn end_after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let end = self.end?;
        Self::dates(self.local_date(start), 1, 2)
            .filter_map(|d| self.instant(d, end))
            .find(|t| *t > start)
    }
}

impl Recurrence {
    /// Every problem with the recurrence; fields are relative to it (`time_zone`, `days`,
    /// `hours`, `minutes`, `end.hour`, `end.minute`).
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if let Err(message) = parse_time_zone(&self.time_zone) {
            errors.push("time_zone", message);
        }
        if self.days.is_empty() {
            errors.push(
                "days",
                "give at least one day of the week on which the profile starts",
            );
        } else if let Some(day) = first_duplicate(&self.days) {
            errors.push("days", format!("{day} is listed more than once"));
        }
        check_units(&mut errors, "hours", &self.hours, 23, "hour");
        check_units(&mut errors, "minutes", &self.minutes, 59, "minute");
        if let Some(end) = self.end {
            errors.range("end.hour", end.hour, 0, 23);
            errors.range("end.minute", end.minute, 0, 59);
        }
        errors
    }

    /// The recurrence ready for searching; `None` when it can never start (unknown zone, no
    /// day, no valid time of day, an invalid end): such a recurrence never applies. Hours
    /// and minutes out of range are skipped ([`Recurrence::validate`] rejects them).
    fn compile(&self) -> Option<Compiled> {
        let tz = parse_time_zone(&self.time_zone).ok()?;
        let mut days = [false; 7];
        for day in &self.days {
            days[day.index()] = true;
        }
        let mut times: Vec<NaiveTime> = self
            .hours
            .iter()
            .flat_map(|h| {
                self.minutes
                    .iter()
                    .filter_map(move |m| NaiveTime::from_hms_opt(*h, *m, 0))
            })
            .collect();
        times.sort_unstable();
        times.dedup();
        let end = match self.end {
            Some(e) => Some(NaiveTime::from_hms_opt(e.hour, e.minute, 0)?),
            None => None,
        };
        (days.contains(&true) && !times.is_empty()).then_some(Compiled {
            tz,
            days,
            times,
            end,
        })
    }

    /// The most recent start at or before `now`, searching back 8 days of local dates;
    /// `None` when the recurrence is invalid.
    pub fn last_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.compile()?.last_start(now)
    }

    /// The first start strictly after `after`, searching 8 days ahead; `None` when the
    /// recurrence is invalid.
    pub fn next_start(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.compile()?.next_start(after)
    }

    /// With an `end`, the first time the local clock shows it strictly after `start`;
    /// `None` without an `end` (or when the recurrence is invalid).
    pub fn end_after(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.compile()?.end_after(start)
    }

    /// A short description for people: `monday–friday at 08:00, ends 18:00 (Europe/Paris)`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} at {}", describe_days(&self.days), self.describe_times());
        if let Some(end) = self.end {
            text.push_str(&format!(", ends {end}"));
        }
        text.push_str(&format!(" ({})", self.time_zone));
        text
    }

    fn describe_times(&self) -> String {
        let mut times: Vec<TimeOfDay> = self
            .hours
            .iter()
            .flat_map(|&hour| {
                self.minutes
                    .iter()
                    .map(move |&minute| TimeOfDay { hour, minute })
            })
            .collect();
        times.sort_unstable_by_key(|t| (t.hour, t.minute));
        times.dedup();
        match times.as_slice() {
            [] => "no time".into(),
            [first, .., last] if times.len() > 6 => {
                format!("{} times a day from {first} to {last}", times.len())
            }
            _ => join(times.iter().map(ToString::to_string)),
        }
    }
}

/// `monday–friday`, `monday, wednesday`, `every day`: runs of three days or more are
/// written as ranges.
fn describe_days(days: &[Weekday]) -> String {
    let mut days = days.to_vec();
    days.sort_unstable();
    days.dedup();
    if days.len() == 7 {
        return "every day".into();
    }
    if days.is_empty() {
        return "no day".into();
    }
    let mut runs: Vec<(Weekday, Weekday)> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some((_, last)) if last.index() + 1 == day.index() => *last = day,
            _ => runs.push((day, day)),
        }
    }
    join(
        runs.into_iter()
            .map(|(first, last)| match last.index() - first.index() {
                0 => first.to_string(),
                1 => format!("{first}, {last}"),
                _ => format!("{first}–{last}"),
            }),
    )
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(", ")
}

/// Some value listed twice, if any.
fn first_duplicate<T: Ord + Copy>(items: &[T]) -> Option<T> {
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// Checks a list of hours or minutes: not empty, each within `0..=max`, no duplicates.
fn check_units(errors: &mut ValidationErrors, field: &str, values: &[u32], max: u32, unit: &str) {
    if values.is_empty() {
        errors.push(
            field,
            format!("give at least one {unit} (0–{max}) at which the profile starts"),
        );
    } else if let Some(bad) = values.iter().find(|v| **v > max) {
        errors.push(
            field,
            format!("{bad} is not a valid {unit}: {unit}s go from 0 to {max}"),
        );
    } else if let Some(twice) = first_duplicate(values) {
        errors.push(field, format!("{unit} {twice} is listed more than once"));
    }
}

impl FixedDate {
    /// Every problem with the fixed date; fields are relative to it (`time_zone`, `end`).
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if let Err(message) = parse_time_zone(&self.time_zone) {
            errors.push("time_zone", message);
        }
        if self.end <= self.start {
            errors.push(
                "end",
                format!(
                    "must be after the start ({}), got {}",
                    self.start.format("%Y-%m-%d %H:%M"),
                    self.end.format("%Y-%m-%d %H:%M")
                ),
            );
        }
        errors
    }

    /// The start (inclusive) and end (exclusive) as instants; `None` when the time zone is
    /// invalid. A local time that does not exist (in a spring-forward gap) maps to the first
    /// instant after the gap; an ambiguous one (when clocks fall back) to the earlier of its
    /// two instants.
    pub fn interval(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let tz = parse_time_zone(&self.time_zone).ok()?;
        Some((to_utc(tz, self.start)?, to_utc(tz, self.end)?))
    }

    /// `2026-12-24 18:00 – 2026-12-26 00:00 (Europe/Paris)`.
    fn describe(&self) -> String {
        format!(
            "{} – {} ({})",
            self.start.format("%Y-%m-%d %H:%M"),
            self.end.format("%Y-%m-%d %H:%M"),
            self.time_zone
        )
    }
}

/// The schedules prepared once (time zones parsed, intervals computed) so that many
/// instants can be resolved cheaply.
enum Plan<'a> {
    Default,
    Recurrence(&'a Recurrence, Option<Compiled>),
    FixedDate(&'a FixedDate, Option<Span>),
}

fn plan<'a>(schedules: &[When<'a>]) -> Vec<Plan<'a>> {
    schedules
        .iter()
        .map(|when| match *when {
            When::Default => Plan::Default,
            When::Recurrence(r) => Plan::Recurrence(r, r.compile()),
            When::FixedDate(f) => Plan::FixedDate(f, f.interval()),
        })
        .collect()
}

/// The profile picked at an instant, without the explanation.
enum Pick<'a> {
    Fixed {
        index: usize,
        fixed: &'a FixedDate,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Recurring {
        index: usize,
        recurrence: &'a Recurrence,
        tz: Zone,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    },
    Default {
        index: usize,
    },
}

/// Azure's order, as in the module documentation.
fn pick<'a>(plans: &[Plan<'a>], now: DateTime<Utc>) -> Option<Pick<'a>> {
    let fixed = plans.iter().enumerate().find_map(|(index, p)| match p {
        Plan::FixedDate(fixed, Some((start, end))) if *start <= now && now < *end => {
            Some(Pick::Fixed {
                index,
                fixed,
                start: *start,
                end: *end,
            })
        }
        _ => None,
    });
    if fixed.is_some() {
        return fixed;
    }
    let started: Vec<(usize, &'a Recurrence, &Compiled, DateTime<Utc>)> = plans
        .iter()
        .enumerate()
        .filter_map(|(index, p)| match p {
            Plan::Recurrence(r, Some(c)) => c.last_start(now).map(|start| (index, *r, c, start)),
            _ => None,
        })
        .collect();
    if let Some(latest) = started.iter().map(|(_, _, _, start)| *start).max() {
        let running = started
            .iter()
            .filter(|(_, _, _, start)| *start == latest)
            .find_map(|(index, recurrence, c, start)| {
                let end = c.end_after(*start);
                let ended = c.end.is_some() && end.is_none_or(|end| end <= now);
                (!ended).then_some(Pick::Recurring {
                    index: *index,
                    recurrence,
                    tz: c.tz,
                    start: *start,
                    end,
                })
            });
        if running.is_some() {
            return running;
        }
    }
    plans
        .iter()
        .position(|p| matches!(p, Plan::Default))
        .map(|index| Pick::Default { index })
}

/// The next instant strictly after `now` at which a schedule other than `except` starts.
fn next_change(
    plans: &[Plan<'_>],
    now: DateTime<Utc>,
    except: Option<usize>,
) -> Option<DateTime<Utc>> {
    plans
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != except)
        .filter_map(|(_, p)| match p {
            Plan::Recurrence(_, Some(c)) => c.next_start(now),
            Plan::FixedDate(_, Some((start, _))) => (*start > now).then_some(*start),
            _ => None,
        })
        .min()
}

/// Which profile applies at `now`, and why (see the [module documentation](self) for the
/// rules). `None` when nothing applies: no schedule matches and there is no default.
///
/// `until` is the end of the fixed date; for a recurring profile the earliest of its own end,
/// the next start of another recurring profile and the next start of a fixed date; for the
/// default profile the next start of any schedule, when within 8 days.
pub fn resolve(schedules: &[When<'_>], now: DateTime<Utc>) -> Option<Resolved> {
    let plans = plan(schedules);
    Some(match pick(&plans, now)? {
        Pick::Fixed {
            index,
            fixed,
            start,
            end,
        } => Resolved {
            index,
            reason: format!("fixed date {} contains now", fixed.describe()),
            since: Some(start),
            until: Some(end),
        },
        Pick::Recurring {
            index,
            recurrence,
            tz,
            start,
            end,
        } => {
            let reason = format!(
                "recurs {}; started {}",
                recurrence.describe(),
                start.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
            );
            let until = [end, next_change(&plans, now, Some(index))]
                .into_iter()
                .flatten()
                .min();
            Resolved {
                index,
                reason,
                since: Some(start),
                until,
            }
        }
        Pick::Default { index } => {
            let horizon = now.checked_add_days(Days::new(HORIZON_DAYS));
            Resolved {
                index,
                reason: "no schedule applies now: the default profile".into(),
                since: None,
                until: next_change(&plans, now, None)
                    .filter(|t| horizon.is_none_or(|horizon| *t <= horizon)),
            }
        }
    })
}

/// Pairs `(a, b)`, `a < b`, of fixed-date profiles (indexes into `schedules`) whose
/// intervals overlap. Intervals that only touch (one ends when the other starts) do not.
pub fn overlapping_fixed_dates(schedules: &[When<'_>]) -> Vec<(usize, usize)> {
    let intervals: Vec<(usize, DateTime<Utc>, DateTime<Utc>)> = schedules
        .iter()
        .enumerate()
        .filter_map(|(index, when)| match when {
            When::FixedDate(f) => f
                .interval()
                .filter(|(start, end)| start < end)
                .map(|(start, end)| (index, start, end)),
            _ => None,
        })
        .collect();
    let mut pairs = Vec::new();
    for (i, (a, a_start, a_end)) in intervals.iter().enumerate() {
        for (b, b_start, b_end) in &intervals[i + 1..] {
            if a_start < b_end && b_start < a_end {
                pairs.push((*a, *b));
            }
        }
    }
    pairs
}

/// Pairs `(a, b)`, `a < b`, of recurring profiles with an `end` whose windows (from a start
/// to its end) overlap, for the editor's warnings. The windows are compared over the week
/// of Monday 2026-01-05 in each profile's zone, plus a day on either side so that windows
/// crossing the week's boundary, or falling in another week in UTC because the zones
/// differ, are compared too. Windows that only touch do not overlap.
pub fn overlapping_recurrences(schedules: &[When<'_>]) -> Vec<(usize, usize)> {
    let windows: Vec<(usize, Vec<Span>)> = schedules
        .iter()
        .enumerate()
        .filter_map(|(index, when)| match when {
            When::Recurrence(r) if r.end.is_some() => {
                Some((index, reference_windows(&r.compile()?)))
            }
            _ => None,
        })
        .collect();
    let mut pairs = Vec::new();
    for (i, (a, a_windows)) in windows.iter().enumerate() {
        for (b, b_windows) in &windows[i + 1..] {
            if windows_overlap(a_windows, b_windows) {
                pairs.push((*a, *b));
            }
        }
    }
    pairs
}

/// The windows of a recurrence with an end over the reference week (Monday 2026-01-05)
/// and a day on either side, sorted by start.
fn reference_windows(c: &Compiled) -> Vec<Span> {
    let Some(monday) = NaiveDate::from_ymd_opt(2026, 1, 5) else {
        return Vec::new();
    };
    Compiled::dates(monday, 1, 8)
        .filter(|d| c.runs_on(*d))
        .flat_map(|d| c.times.iter().map(move |t| d.and_time(*t)))
        .filter_map(|local| {
            let start = to_utc(c.tz, local)?;
            Some((start, c.end_after(start)?))
        })
        .collect()
}

/// Whether a window of `a` and a window of `b` overlap: a sweep over both by start,
/// remembering the latest end seen of each.
fn windows_overlap(a: &[Span], b: &[Span]) -> bool {
    let mut all: Vec<(DateTime<Utc>, DateTime<Utc>, bool)> = a
        .iter()
        .map(|(s, e)| (*s, *e, true))
        .chain(b.iter().map(|(s, e)| (*s, *e, false)))
        .collect();
    all.sort_unstable_by_key(|(start, _, _)| *start);
    let (mut a_end, mut b_end): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for (start, end, from_a) in all {
        let (own, other) = if from_a {
            (&mut a_end, b_end)
        } else {
            (&mut b_end, a_end)
        };
        if other.is_some_and(|other| other > start) {
            return true;
        }
        *own = (*own).max(Some(end));
    }
    false
}

/// For the portal's weekly grid: the index of the profile [`resolve`] picks at the start of
/// each slot of the 7 days from `week_start` (`7 × 24 × 60 / slot_minutes` entries; none
/// when `slot_minutes` is 0). The schedules are prepared once for all slots.
pub fn week_grid(
    schedules: &[When<'_>],
    week_start: DateTime<Utc>,
    slot_minutes: u32,
) -> Vec<Option<usize>> {
    if slot_minutes == 0 {
        return Vec::new();
    }
    let plans = plan(schedules);
    let slots = 7 * 24 * 60 / slot_minutes;
    (0..slots)
        .map(|slot| {
            let offset = TimeDelta::minutes(i64::from(slot) * i64::from(slot_minutes));
            let at = week_start.checked_add_signed(offset)?;
            pick(&plans, at).map(|p| match p {
                Pick::Fixed { index, .. }
                | Pick::Recurring { index, .. }
                | Pick::Default { index } => index,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    const WEEKDAYS: [Weekday; 5] = Weekday::WORKDAYS;
    const ALL_DAYS: [Weekday; 7] = Weekday::ALL;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    fn rec(
        tz: &str,
        days: &[Weekday],
        hour: u32,
        minute: u32,
        end: Option<(u32, u32)>,
    ) -> Recurrence {
        Recurrence {
            time_zone: tz.into(),
            days: days.to_vec(),
            hours: vec![hour],
            minutes: vec![minute],
            end: end.map(|(hour, minute)| TimeOfDay { hour, minute }),
        }
    }

    fn fixed(tz: &str, start: NaiveDateTime, end: NaiveDateTime) -> FixedDate {
        FixedDate {
            time_zone: tz.into(),
            start,
            end,
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.0.iter().map(|e| e.field.as_str()).collect()
    }

    fn message<'e>(errors: &'e ValidationErrors, field: &str) -> &'e str {
        &errors.0.iter().find(|e| e.field == field).unwrap().message
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            parse_time_zone("Europe/Paris"),
            Ok(chrono_tz::Europe::Paris)
        );
        assert_eq!(parse_time_zone("UTC"), Ok(chrono_tz::UTC));
        assert_eq!(
            parse_time_zone("Mars/Olympus"),
            Err(r#"unknown time zone "Mars/Olympus": use an IANA name such as "Europe/Paris" or "UTC""#.into())
        );
    }

    #[test]
    fn recurrence_validation_names_each_field() {
        let good = rec("Europe/Paris", &WEEKDAYS, 8, 0, Some((18, 0)));
        assert!(good.validate().is_empty(), "{:?}", good.validate());

        let mut bad = good.clone();
        bad.time_zone = "Mars/Olympus".into();
        bad.days.clear();
        bad.hours = vec![8, 24];
        bad.minutes = vec![60];
        bad.end = Some(TimeOfDay {
            hour: 24,
            minute: 60,
        });
        let errors = bad.validate();
        assert_eq!(
            fields(&errors),
            [
                "time_zone",
                "days",
                "hours",
                "minutes",
                "end.hour",
                "end.minute"
            ]
        );
        assert!(message(&errors, "time_zone").contains("unknown time zone \"Mars/Olympus\""));
        assert_eq!(
            message(&errors, "days"),
            "give at least one day of the week on which the profile starts"
        );
        assert_eq!(
            message(&errors, "hours"),
            "24 is not a valid hour: hours go from 0 to 23"
        );
        assert_eq!(
            message(&errors, "minutes"),
            "60 is not a valid minute: minutes go from 0 to 59"
        );
        assert_eq!(
            message(&errors, "end.hour"),
            "must be between 0 and 23, got 24"
        );
        assert_eq!(
            message(&errors, "end.minute"),
            "must be between 0 and 59, got 60"
        );

        let mut twice = good.clone();
        twice.days = vec![Monday, Friday, Monday];
        twice.hours.clear();
        twice.minutes = vec![0, 30, 0];
        let errors = twice.validate();
        assert_eq!(fields(&errors), ["days", "hours", "minutes"]);
        assert_eq!(message(&errors, "days"), "monday is listed more than once");
        assert_eq!(
            message(&errors, "hours"),
            "give at least one hour (0–23) at which the profile starts"
        );
        assert_eq!(
            message(&errors, "minutes"),
            "minute 0 is listed more than once"
        );
    }

    #[test]
    fn fixed_date_validation_names_each_field() {
        let good = fixed(
            "Europe/Paris",
            local(2026, 12, 24, 18, 0),
            local(2026, 12, 26, 0, 0),
        );
        assert!(good.validate().is_empty());
        let bad = fixed(
            "Mars/Olympus",
            local(2026, 12, 24, 18, 0),
            local(2026, 12, 24, 17, 0),
        );
        let errors = bad.validate();
        assert_eq!(fields(&errors), ["time_zone", "end"]);
        assert_eq!(
            message(&errors, "end"),
            "must be after the start (2026-12-24 18:00), got 2026-12-24 17:00"
        );
        assert_eq!(bad.interval(), None);
        let empty = fixed("UTC", local(2026, 1, 1, 0, 0), local(2026, 1, 1, 0, 0));
        assert_eq!(fields(&empty.validate()), ["end"]);
    }

    #[test]
    fn serde_shapes() {
        let r = rec("Europe/Paris", &[Monday, Sunday], 8, 0, None);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"time_zone":"Europe/Paris","days":["monday","sunday"],"hours":[8],"minutes":[0]})
        );
        let back: Recurrence = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let with_end: Recurrence = serde_json::from_str(
            r#"{"time_zone":"UTC","days":["friday"],"hours":[22],"minutes":[0],"end":{"hour":6,"minute":0}}"#,
        )
        .unwrap();
        assert_eq!(with_end.end, Some(TimeOfDay { hour: 6, minute: 0 }));
        let f = fixed(
            "Europe/Paris",
            local(2026, 12, 24, 18, 0),
            local(2026, 12, 26, 0, 0),
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"time_zone":"Europe/Paris","start":"2026-12-24T18:00:00","end":"2026-12-26T00:00:00"})
        );
        assert_eq!(serde_json::from_value::<FixedDate>(json).unwrap(), f);
    }

    #[test]
    fn descriptions() {
        assert_eq!(Wednesday.to_string(), "wednesday");
        assert_eq!(
            rec("Europe/Paris", &WEEKDAYS, 8, 0, Some((18, 0))).describe(),
            "monday–friday at 08:00, ends 18:00 (Europe/Paris)"
        );
        assert_eq!(
            rec("UTC", &[Sunday, Saturday, Monday, Wednesday], 22, 5, None).describe(),
            "monday, wednesday, saturday, sunday at 22:05 (UTC)"
        );
        let mut many = rec("UTC", &ALL_DAYS, 0, 0, None);
        assert_eq!(many.describe(), "every day at 00:00 (UTC)");
        many.hours = vec![20, 8];
        many.minutes = vec![30, 0];
        assert_eq!(
            many.describe(),
            "every day at 08:00, 08:30, 20:00, 20:30 (UTC)"
        );
        many.hours = (0..24).collect();
        assert_eq!(
            many.describe(),
            "every day at 48 times a day from 00:00 to 23:30 (UTC)"
        );
    }

    #[test]
    fn default_only() {
        let now = utc(2026, 11, 25, 10, 0);
        assert_eq!(
            resolve(&[When::Default], now),
            Some(Resolved {
                index: 0,
                reason: "no schedule applies now: the default profile".into(),
                since: None,
                until: None,
            })
        );
        assert_eq!(resolve(&[], now), None);
    }

    #[test]
    fn business_hours_with_an_end() {
        // Paris is UTC+1 in November; 2026-11-25 is a Wednesday.
        let day = rec("Europe/Paris", &WEEKDAYS, 8, 0, Some((18, 0)));
        let schedules = [When::Default, When::Recurrence(&day)];

        let at_ten = resolve(&schedules, utc(2026, 11, 25, 9, 0)).unwrap();
        assert_eq!(
            at_ten,
            Resolved {
                index: 1,
                reason: "recurs monday–friday at 08:00, ends 18:00 (Europe/Paris); started 2026-11-25 08:00 CET".into(),
                since: Some(utc(2026, 11, 25, 7, 0)),
                until: Some(utc(2026, 11, 25, 17, 0)),
            }
        );
        let evening = resolve(&schedules, utc(2026, 11, 25, 18, 0)).unwrap();
        assert_eq!(evening.index, 0);
        assert_eq!(evening.until, Some(utc(2026, 11, 26, 7, 0)));
        // The end is exclusive, the start inclusive.
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 17, 0)).unwrap().index,
            0
        );
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 7, 0)).unwrap().index,
            1
        );

        let saturday = resolve(&schedules, utc(2026, 11, 28, 9, 0)).unwrap();
        assert_eq!(saturday.index, 0);
        assert_eq!(saturday.until, Some(utc(2026, 11, 30, 7, 0)));

        // Without a default, nothing applies outside the schedule.
        assert_eq!(resolve(&schedules[1..], utc(2026, 11, 28, 9, 0)), None);
    }

    #[test]
    fn the_latest_started_recurrence_wins() {
        let day = rec("Europe/Paris", &WEEKDAYS, 8, 0, None);
        let night = rec("Europe/Paris", &WEEKDAYS, 18, 0, None);
        let schedules = [
            When::Default,
            When::Recurrence(&day),
            When::Recurrence(&night),
        ];
        let at = |now| resolve(&schedules, now).unwrap();

        // Wednesday 10:00 local: the day profile, until the night one starts.
        let r = at(utc(2026, 11, 25, 9, 0));
        assert_eq!(
            (r.index, r.since, r.until),
            (
                1,
                Some(utc(2026, 11, 25, 7, 0)),
                Some(utc(2026, 11, 25, 17, 0))
            )
        );
        // Wednesday 20:00 and, across midnight, Thursday 02:00: the night profile.
        assert_eq!(at(utc(2026, 11, 25, 19, 0)).index, 2);
        let r = at(utc(2026, 11, 26, 1, 0));
        assert_eq!(
            (r.index, r.since, r.until),
            (
                2,
                Some(utc(2026, 11, 25, 17, 0)),
                Some(utc(2026, 11, 26, 7, 0))
            )
        );
        // Across the weekend the night profile that started on Friday runs until Monday.
        let r = at(utc(2026, 11, 28, 11, 0));
        assert_eq!(
            (r.index, r.since, r.until),
            (
                2,
                Some(utc(2026, 11, 27, 17, 0)),
                Some(utc(2026, 11, 30, 7, 0))
            )
        );
        assert_eq!(at(utc(2026, 11, 30, 6, 59)).index, 2);
        assert_eq!(at(utc(2026, 11, 30, 7, 0)).index, 1);
        assert_eq!(
            at(utc(2026, 11, 30, 8, 0)).reason,
            "recurs monday–friday at 08:00 (Europe/Paris); started 2026-11-30 08:00 CET"
        );
    }

    #[test]
    fn an_ended_recurrence_does_not_bring_back_an_older_one() {
        let all_day = rec("UTC", &WEEKDAYS, 8, 0, None);
        let lunch = rec("UTC", &WEEKDAYS, 12, 0, Some((14, 0)));
        let schedules = [
            When::Default,
            When::Recurrence(&all_day),
            When::Recurrence(&lunch),
        ];
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 13, 0)).unwrap().index,
            2
        );
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 15, 0)).unwrap().index,
            0
        );
        // Two profiles starting together: the first applies until its end, then the other.
        let short = rec("UTC", &WEEKDAYS, 8, 0, Some((9, 0)));
        let schedules = [
            When::Default,
            When::Recurrence(&short),
            When::Recurrence(&all_day),
        ];
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 8, 30)).unwrap().index,
            1
        );
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 9, 30)).unwrap().index,
            2
        );
    }

    #[test]
    fn overnight_end() {
        let night = rec("UTC", &[Friday], 22, 0, Some((6, 0)));
        let schedules = [When::Default, When::Recurrence(&night)];
        let at = |now| resolve(&schedules, now).unwrap();
        assert_eq!(at(utc(2026, 11, 27, 21, 59)).index, 0);
        let r = at(utc(2026, 11, 27, 23, 0));
        assert_eq!((r.index, r.until), (1, Some(utc(2026, 11, 28, 6, 0))));
        let r = at(utc(2026, 11, 28, 3, 0));
        assert_eq!((r.index, r.since), (1, Some(utc(2026, 11, 27, 22, 0))));
        assert_eq!(at(utc(2026, 11, 28, 7, 0)).index, 0);
        assert_eq!(
            night.end_after(utc(2026, 11, 27, 22, 0)),
            Some(utc(2026, 11, 28, 6, 0))
        );
        assert_eq!(
            rec("UTC", &[Friday], 22, 0, None).end_after(utc(2026, 11, 27, 22, 0)),
            None
        );
    }

    #[test]
    fn a_fixed_date_wins_over_a_recurrence() {
        let day = rec("Europe/Paris", &WEEKDAYS, 8, 0, None);
        let holiday = fixed(
            "Europe/Paris",
            local(2026, 11, 25, 0, 0),
            local(2026, 11, 26, 0, 0),
        );
        let schedules = [
            When::Default,
            When::Recurrence(&day),
            When::FixedDate(&holiday),
        ];
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 25, 9, 0)),
            Some(Resolved {
                index: 2,
                reason:
                    "fixed date 2026-11-25 00:00 – 2026-11-26 00:00 (Europe/Paris) contains now"
                        .into(),
                since: Some(utc(2026, 11, 24, 23, 0)),
                until: Some(utc(2026, 11, 25, 23, 0)),
            })
        );
        // The day before, the recurring profile knows the fixed date will take over.
        let tuesday = resolve(&schedules, utc(2026, 11, 24, 9, 0)).unwrap();
        assert_eq!(
            (tuesday.index, tuesday.until),
            (1, Some(utc(2026, 11, 24, 23, 0)))
        );
        // After it, the recurrence applies again.
        assert_eq!(
            resolve(&schedules, utc(2026, 11, 26, 9, 0)).unwrap().index,
            1
        );
    }

    #[test]
    fn spring_forward_starts_after_the_gap() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let r = rec("America/New_York", &ALL_DAYS, 2, 30, None);
        assert_eq!(
            r.next_start(utc(2026, 3, 7, 0, 0)),
            Some(utc(2026, 3, 7, 7, 30))
        );
        assert_eq!(
            r.next_start(utc(2026, 3, 7, 7, 30)),
            Some(utc(2026, 3, 8, 7, 0))
        );
        assert_eq!(
            r.last_start(utc(2026, 3, 8, 8, 0)),
            Some(utc(2026, 3, 8, 7, 0))
        );
        assert_eq!(
            r.last_start(utc(2026, 3, 8, 6, 59)),
            Some(utc(2026, 3, 7, 7, 30))
        );
        assert_eq!(
            r.next_start(utc(2026, 3, 8, 7, 0)),
            Some(utc(2026, 3, 9, 6, 30))
        );
        let gap = fixed(
            "America/New_York",
            local(2026, 3, 8, 2, 30),
            local(2026, 3, 8, 4, 0),
        );
        assert_eq!(
            gap.interval(),
            Some((utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)))
        );
    }

    #[test]
    fn fall_back_starts_once_at_the_earlier_instant() {
        // Paris, 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC), so 02:30 local
        // happens at 00:30 UTC and again at 01:30 UTC.
        let r = rec("Europe/Paris", &ALL_DAYS, 2, 30, None);
        assert_eq!(
            r.next_start(utc(2026, 10, 25, 0, 0)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(
            r.next_start(utc(2026, 10, 25, 0, 30)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        assert_eq!(
            r.last_start(utc(2026, 10, 25, 1, 45)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        let ambiguous = fixed(
            "Europe/Paris",
            local(2026, 10, 25, 2, 30),
            local(2026, 10, 25, 3, 0),
        );
        assert_eq!(
            ambiguous.interval(),
            Some((utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 0)))
        );
    }

    #[test]
    fn summer_and_winter_time() {
        let r = rec("Europe/Paris", &ALL_DAYS, 8, 0, None);
        assert_eq!(
            r.last_start(utc(2026, 1, 15, 12, 0)),
            Some(utc(2026, 1, 15, 7, 0))
        );
        assert_eq!(
            r.last_start(utc(2026, 7, 15, 12, 0)),
            Some(utc(2026, 7, 15, 6, 0))
        );
        let christmas = fixed(
            "Europe/Paris",
            local(2026, 12, 24, 18, 0),
            local(2026, 12, 26, 0, 0),
        );
        assert_eq!(
            christmas.interval(),
            Some((utc(2026, 12, 24, 17, 0), utc(2026, 12, 25, 23, 0)))
        );
        let tokyo = fixed(
            "Asia/Tokyo",
            local(2026, 7, 1, 9, 0),
            local(2026, 7, 1, 17, 0),
        );
        assert_eq!(
            tokyo.interval(),
            Some((utc(2026, 7, 1, 0, 0), utc(2026, 7, 1, 8, 0)))
        );
    }

    #[test]
    fn the_same_local_time_in_different_zones() {
        let tokyo = rec("Asia/Tokyo", &ALL_DAYS, 9, 0, None);
        let london = rec("Europe/London", &ALL_DAYS, 9, 0, None);
        let schedules = [
            When::Default,
            When::Recurrence(&tokyo),
            When::Recurrence(&london),
        ];
        // January: Tokyo 09:00 is 00:00 UTC, London 09:00 is 09:00 UTC.
        let r = resolve(&schedules, utc(2026, 1, 7, 5, 0)).unwrap();
        assert_eq!(
            (r.index, r.since, r.until),
            (1, Some(utc(2026, 1, 7, 0, 0)), Some(utc(2026, 1, 7, 9, 0)))
        );
        assert!(
            r.reason.ends_with("started 2026-01-07 09:00 JST"),
            "{}",
            r.reason
        );
        let r = resolve(&schedules, utc(2026, 1, 7, 10, 0)).unwrap();
        assert_eq!(
            (r.index, r.since, r.until),
            (2, Some(utc(2026, 1, 7, 9, 0)), Some(utc(2026, 1, 8, 0, 0)))
        );
        assert!(
            r.reason.ends_with("started 2026-01-07 09:00 GMT"),
            "{}",
            r.reason
        );
        // July: London is on BST, 09:00 is 08:00 UTC.
        let r = resolve(&schedules, utc(2026, 7, 7, 8, 30)).unwrap();
        assert_eq!((r.index, r.since), (2, Some(utc(2026, 7, 7, 8, 0))));
        assert!(r.reason.ends_with("BST"), "{}", r.reason);
        assert_eq!(
            resolve(&schedules, utc(2026, 7, 7, 7, 59)).unwrap().index,
            1
        );
    }

    #[test]
    fn invalid_schedules_never_apply() {
        let bad_zone = rec("Mars/Olympus", &ALL_DAYS, 8, 0, None);
        let bad_hour = rec("UTC", &ALL_DAYS, 24, 0, None);
        let no_day = rec("UTC", &[], 8, 0, None);
        let schedules = [
            When::Recurrence(&bad_zone),
            When::Recurrence(&bad_hour),
            When::Recurrence(&no_day),
            When::Default,
        ];
        let now = utc(2026, 11, 25, 10, 0);
        assert_eq!(bad_zone.last_start(now), None);
        assert_eq!(bad_hour.next_start(now), None);
        let r = resolve(&schedules, now).unwrap();
        assert_eq!((r.index, r.until), (3, None));
    }

    #[test]
    fn overlapping_fixed_dates_are_found() {
        let a = fixed("UTC", local(2026, 12, 24, 0, 0), local(2026, 12, 26, 0, 0));
        let b = fixed("UTC", local(2026, 12, 25, 0, 0), local(2026, 12, 27, 0, 0));
        let c = fixed("UTC", local(2026, 12, 26, 0, 0), local(2026, 12, 28, 0, 0));
        let day = rec("UTC", &ALL_DAYS, 8, 0, None);
        let schedules = [
            When::FixedDate(&a),
            When::Default,
            When::FixedDate(&b),
            When::Recurrence(&day),
            When::FixedDate(&c),
        ];
        assert_eq!(overlapping_fixed_dates(&schedules), [(0, 2), (2, 4)]);
        // Paris 18:00–20:00 is 17:00–19:00 UTC: it touches 19:00–20:00 UTC, overlaps 18:30.
        let paris = fixed(
            "Europe/Paris",
            local(2026, 12, 24, 18, 0),
            local(2026, 12, 24, 20, 0),
        );
        let after = fixed(
            "UTC",
            local(2026, 12, 24, 19, 0),
            local(2026, 12, 24, 20, 0),
        );
        let during = fixed(
            "UTC",
            local(2026, 12, 24, 18, 30),
            local(2026, 12, 24, 20, 0),
        );
        assert!(
            overlapping_fixed_dates(&[When::FixedDate(&paris), When::FixedDate(&after)]).is_empty()
        );
        assert_eq!(
            overlapping_fixed_dates(&[When::FixedDate(&paris), When::FixedDate(&during)]),
            [(0, 1)]
        );
    }

    #[test]
    fn overlapping_recurrences_are_found() {
        let office = rec("Europe/Paris", &WEEKDAYS, 8, 0, Some((18, 0)));
        let late = rec("Europe/Paris", &WEEKDAYS, 17, 0, Some((20, 0)));
        let evening = rec("Europe/Paris", &WEEKDAYS, 18, 0, Some((22, 0)));
        let open_ended = rec("Europe/Paris", &WEEKDAYS, 9, 0, None);
        let schedules = [
            When::Recurrence(&office),
            When::Default,
            When::Recurrence(&late),
            When::Recurrence(&evening),
            When::Recurrence(&open_ended),
        ];
        assert_eq!(overlapping_recurrences(&schedules), [(0, 2), (2, 3)]);

        // Tokyo 09:00–10:00 is 00:00–01:00 UTC; London in January is UTC.
        let tokyo = rec("Asia/Tokyo", &WEEKDAYS, 9, 0, Some((10, 0)));
        let touching = rec("Europe/London", &WEEKDAYS, 1, 0, Some((2, 0)));
        let crossing = rec("Europe/London", &WEEKDAYS, 0, 30, Some((1, 30)));
        assert!(
            overlapping_recurrences(&[When::Recurrence(&tokyo), When::Recurrence(&touching)])
                .is_empty()
        );
        assert_eq!(
            overlapping_recurrences(&[When::Recurrence(&tokyo), When::Recurrence(&crossing)]),
            [(0, 1)]
        );
        // Different days do not overlap; Sunday night runs into Monday morning.
        let weekend = rec("UTC", &[Saturday], 8, 0, Some((18, 0)));
        let sunday_night = rec("UTC", &[Sunday], 22, 0, Some((6, 0)));
        let monday_early = rec("UTC", &[Monday], 5, 0, Some((7, 0)));
        assert_eq!(
            overlapping_recurrences(&[
                When::Recurrence(&weekend),
                When::Recurrence(&sunday_night),
                When::Recurrence(&monday_early),
                When::Recurrence(&office),
            ]),
            [(1, 2)]
        );
    }

    #[test]
    fn every_minute_of_the_day() {
        let mut r = rec("America/New_York", &ALL_DAYS, 0, 0, None);
        r.hours = (0..24).collect();
        r.minutes = (0..60).collect();
        let now = utc(2026, 11, 25, 10, 17) + TimeDelta::seconds(30);
        assert_eq!(r.last_start(now), Some(utc(2026, 11, 25, 10, 17)));
        assert_eq!(r.next_start(now), Some(utc(2026, 11, 25, 10, 18)));
        // Every start in the spring-forward gap happens at 07:00 UTC, then 03:01 EDT.
        let jump = utc(2026, 3, 8, 7, 0);
        assert_eq!(r.last_start(jump + TimeDelta::seconds(30)), Some(jump));
        assert_eq!(r.next_start(jump), Some(utc(2026, 3, 8, 7, 1)));
        assert_eq!(r.next_start(jump - TimeDelta::seconds(1)), Some(jump));
    }

    #[test]
    fn week_grid_marks_each_slot() {
        let day = rec("UTC", &WEEKDAYS, 8, 0, Some((18, 0)));
        let schedules = [When::Default, When::Recurrence(&day)];
        let monday = utc(2026, 1, 5, 0, 0);
        let grid = week_grid(&schedules, monday, 60);
        assert_eq!(grid.len(), 168);
        assert_eq!(grid.iter().filter(|i| **i == Some(1)).count(), 5 * 10);
        assert_eq!(
            (grid[7], grid[8], grid[17], grid[18]),
            (Some(0), Some(1), Some(1), Some(0))
        );
        assert_eq!(grid[5 * 24 + 10], Some(0));
        for (slot, index) in grid.iter().enumerate() {
            let at = monday + TimeDelta::hours(slot as i64);
            assert_eq!(
                *index,
                resolve(&schedules, at).map(|r| r.index),
                "slot {slot}"
            );
        }
        assert_eq!(week_grid(&schedules, monday, 30).len(), 336);
        assert!(week_grid(&schedules, monday, 0).is_empty());
        assert!(week_grid(&schedules[1..], monday, 60).contains(&None));
    }
}
