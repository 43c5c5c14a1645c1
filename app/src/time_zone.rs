//! The browser's time zone (an IANA name such as `Europe/Paris`), which new schedules start
//! with and the schedule grid is drawn in. On the server there is none to ask: callers fall
//! back to [`FALLBACK`].

/// The time zone used where the browser's is unknown.
pub const FALLBACK: &str = "UTC";

/// The browser's time zone, from `Intl.DateTimeFormat().resolvedOptions().timeZone`.
#[cfg(feature = "hydrate")]
pub fn browser() -> Option<String> {
    intl::browser_time_zone()
        .as_string()
        .filter(|name| !name.is_empty())
}

/// The browser's time zone: none on the server.
#[cfg(not(feature = "hydrate"))]
pub fn browser() -> Option<String> {
    None
}

/// The browser's time zone, or [`FALLBACK`].
pub fn browser_or_utc() -> String {
    browser().unwrap_or_else(|| FALLBACK.to_string())
}

#[cfg(feature = "hydrate")]
mod intl {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Intl, js_name = DateTimeFormat)]
        type DateTimeFormat;

        #[wasm_bindgen(constructor, js_namespace = Intl, js_class = "DateTimeFormat")]
        fn new() -> DateTimeFormat;

        /// A plain object with the formatter's settings.
        type ResolvedOptions;

        #[wasm_bindgen(method, js_name = resolvedOptions)]
        fn resolved_options(this: &DateTimeFormat) -> ResolvedOptions;

        #[wasm_bindgen(method, getter, js_name = timeZone)]
        fn time_zone(this: &ResolvedOptions) -> JsValue;
    }

    /// `timeZone` of the default formatter's resolved options (a string, or undefined).
    pub(super) fn browser_time_zone() -> JsValue {
        DateTimeFormat::new().resolved_options().time_zone()
    }
}
