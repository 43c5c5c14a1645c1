//! IANA time zones for schedules, as [`Zone`]: a [`chrono::TimeZone`] parsed from its name
//! (`"Europe/Paris"`, `"UTC"`).
//!
//! Natively a zone is chrono-tz's, from its compiled tables. In the browser (wasm32) it is the
//! browser's own: the offsets come from `Intl.DateTimeFormat`, which carries the same IANA
//! database, so the portal's wasm does not carry chrono-tz's tables (861 KB raw, 142 KB
//! gzip of the release wasm). The server stays the authority: a name the browser accepts
//! and chrono-tz does not is refused when saved, with its field named.

#[cfg(not(target_arch = "wasm32"))]
pub use chrono_tz::Tz as Zone;

#[cfg(target_arch = "wasm32")]
pub use intl::Zone;

#[cfg(target_arch = "wasm32")]
mod intl {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::fmt;
    use std::str::FromStr;

    use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
    use js_sys::{Array, Object, Reflect};
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Intl, js_name = DateTimeFormat)]
        type DateTimeFormat;

        /// Throws a `RangeError` for a time zone the browser does not know.
        #[wasm_bindgen(catch, constructor, js_namespace = Intl, js_class = "DateTimeFormat")]
        fn new(locale: &str, options: &Object) -> Result<DateTimeFormat, JsValue>;

        /// Throws for an instant outside the range of JavaScript dates.
        #[wasm_bindgen(catch, method)]
        fn format(this: &DateTimeFormat, millis: f64) -> Result<String, JsValue>;

        #[wasm_bindgen(catch, method, js_name = formatToParts)]
        fn format_to_parts(this: &DateTimeFormat, millis: f64) -> Result<Array, JsValue>;

        type ResolvedOptions;

        #[wasm_bindgen(method, js_name = resolvedOptions)]
        fn resolved_options(this: &DateTimeFormat) -> ResolvedOptions;

        #[wasm_bindgen(method, getter, js_name = timeZone)]
        fn time_zone(this: &ResolvedOptions) -> String;
    }

    /// An IANA time zone the browser knows, by its name as written.
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Zone {
        name: &'static str,
    }

    /// A zone's offset at one instant (seconds since the epoch, for its abbreviation).
    #[derive(Clone, Copy, Debug)]
    pub struct ZoneOffset {
        zone: Zone,
        fixed: FixedOffset,
        at: i64,
    }

    /// Formatters made so far, by zone: one reads a local date-time, one a zone's short name.
    struct Formats {
        local: DateTimeFormat,
        short_name: DateTimeFormat,
    }

    thread_local! {
        /// Every zone parsed so far, by name (their names live as long as the page).
        static ZONES: RefCell<HashMap<String, Zone>> = RefCell::new(HashMap::new());
        static FORMATS: RefCell<HashMap<&'static str, Formats>> = RefCell::new(HashMap::new());
    }

    fn options(zone: &str, fields: &[(&str, &str)]) -> Object {
        let options = Object::new();
        for (key, value) in [("timeZone", zone)].iter().chain(fields) {
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&options, &JsValue::from_str(key), &JsValue::from_str(value));
        }
        options
    }

    fn formats(zone: &str) -> Result<Formats, JsValue> {
        let local = DateTimeFormat::new(
            "en-US",
            &options(
                zone,
                &[
                    ("hourCycle", "h23"),
                    ("year", "numeric"),
                    ("month", "numeric"),
                    ("day", "numeric"),
                    ("hour", "numeric"),
                    ("minute", "numeric"),
                    ("second", "numeric"),
                ],
            ),
        )?;
        let short_name =
            DateTimeFormat::new("en-US", &options(zone, &[("timeZoneName", "short")]))?;
        Ok(Formats { local, short_name })
    }

    impl FromStr for Zone {
        type Err = String;

        /// A name the browser accepts, in the case the database writes it (the browser
        /// would take `europe/paris`; chrono-tz and so the server would not).
        fn from_str(name: &str) -> Result<Self, String> {
            if let Some(zone) = ZONES.with(|z| z.borrow().get(name).copied()) {
                return Ok(zone);
            }
            let refused = || format!("unknown time zone {name:?}");
            let made = formats(name).map_err(|_| refused())?;
            let resolved = made.local.resolved_options().time_zone();
            if resolved != name && resolved.eq_ignore_ascii_case(name) {
                return Err(refused());
            }
            let zone = Zone {
                name: Box::leak(name.to_owned().into_boxed_str()),
            };
            FORMATS.with(|f| f.borrow_mut().insert(zone.name, made));
            ZONES.with(|z| z.borrow_mut().insert(name.to_owned(), zone));
            Ok(zone)
        }
    }

    impl Zone {
        /// The zone's name, as parsed.
        pub fn name(self) -> &'static str {
            self.name
        }

        /// The local date-time the zone's clocks show at `secs` (since the epoch), from the
        /// formatter's `M/D/YYYY, HH:MM:SS`; `None` outside JavaScript's date range.
        fn local_at(self, secs: i64) -> Option<NaiveDateTime> {
            let text = FORMATS.with(|f| {
                f.borrow()
                    .get(self.name)
                    .and_then(|f| f.local.format(secs as f64 * 1000.0).ok())
            })?;
            let mut numbers = text
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse::<u32>().ok());
            let mut next = || numbers.next().flatten();
            let (month, day, year) = (next()?, next()?, next()?);
            let (hour, minute, second) = (next()?, next()?, next()?);
            NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
                .and_hms_opt(hour, minute, second)
        }

        /// The offset at `secs` since the epoch, east of UTC in seconds (0 where unknown).
        fn offset_at(self, secs: i64) -> i32 {
            self.local_at(secs)
                .and_then(|local| i32::try_from(local.and_utc().timestamp() - secs).ok())
                .filter(|offset| offset.abs() < 86_400)
                .unwrap_or(0)
        }

        fn offset(self, at: i64) -> ZoneOffset {
            let seconds = self.offset_at(at);
            ZoneOffset {
                zone: self,
                fixed: FixedOffset::east_opt(seconds).unwrap_or(Utc.fix()),
                at,
            }
        }
    }

    impl fmt::Debug for Zone {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }

    impl fmt::Display for Zone {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }

    impl Offset for ZoneOffset {
        fn fix(&self) -> FixedOffset {
            self.fixed
        }
    }

    /// The zone's short name at that instant as the browser writes it in English (`EST`,
    /// `GMT+1`, `UTC`), or the offset (`+01:00`).
    impl fmt::Display for ZoneOffset {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let name = FORMATS.with(|formats| {
                let formats = formats.borrow();
                let parts = formats
                    .get(self.zone.name)?
                    .short_name
                    .format_to_parts(self.at as f64 * 1000.0)
                    .ok()?;
                parts.iter().find_map(|part| {
                    let kind = Reflect::get(&part, &JsValue::from_str("type")).ok()?;
                    (kind.as_string()? == "timeZoneName")
                        .then(|| {
                            Reflect::get(&part, &JsValue::from_str("value"))
                                .ok()?
                                .as_string()
                        })
                        .flatten()
                })
            });
            match name {
                Some(name) => f.write_str(&name),
                None => write!(f, "{}", self.fixed),
            }
        }
    }

    impl TimeZone for Zone {
        type Offset = ZoneOffset;

        fn from_offset(offset: &ZoneOffset) -> Self {
            offset.zone
        }

        fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
            self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        }

        /// The offsets a day before and a day after stand for the two sides of any change of
        /// the clocks near `local` (zones change them at most once in two days): each one
        /// that maps `local` back onto itself is a reading of it. None: `local` falls in a
        /// gap; two: it is ambiguous, the larger offset being the earlier instant.
        fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
            let seconds = local.and_utc().timestamp();
            let mut found: Vec<ZoneOffset> = Vec::with_capacity(2);
            for guess in [seconds - 86_400, seconds + 86_400].map(|at| self.offset_at(at)) {
                let at = seconds - i64::from(guess);
                let offset = self.offset(at);
                if offset.fixed.local_minus_utc() == guess
                    && found.iter().all(|f| f.fixed.local_minus_utc() != guess)
                {
                    found.push(offset);
                }
            }
            found.sort_by_key(|f| std::cmp::Reverse(f.fixed.local_minus_utc()));
            match found[..] {
                [] => MappedLocalTime::None,
                [one] => MappedLocalTime::Single(one),
                [earlier, later, ..] => MappedLocalTime::Ambiguous(earlier, later),
            }
        }

        fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
            self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
        }

        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
            self.offset(utc.and_utc().timestamp())
        }
    }
}
