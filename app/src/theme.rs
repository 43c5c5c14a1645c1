//! The portal's colour theme: follow the system's setting, or force light or dark.
//!
//! The choice lives in the `flotilla_theme` cookie, so the server renders
//! `<html data-theme="…">` right away (no flash of the other theme) and a plain form post
//! can change it. No cookie, or one that cannot be read, means [`Theme::System`], which
//! renders no attribute and leaves the choice to `prefers-color-scheme`. Plain Rust, so the
//! same rules hold on the server and in the browser.

use serde::{Deserialize, Serialize};

/// The cookie that holds the choice.
pub const COOKIE: &str = "flotilla_theme";

/// How long the browser keeps the choice: a year, in seconds.
pub const COOKIE_MAX_AGE: u32 = 365 * 24 * 60 * 60;

/// A person's choice of colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Follow the operating system's light or dark setting.
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    /// Every theme, in the order the toggle cycles through them.
    pub const ALL: [Theme; 3] = [Self::System, Self::Light, Self::Dark];

    /// The name in the cookie and in forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }

    /// The theme a name stands for; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name.trim())
    }

    /// The theme the toggle switches to: System → Light → Dark → System.
    pub fn next(self) -> Self {
        match self {
            Self::System => Self::Light,
            Self::Light => Self::Dark,
            Self::Dark => Self::System,
        }
    }

    /// The value of `<html data-theme>`: none when following the system.
    pub fn data_theme(self) -> Option<&'static str> {
        match self {
            Self::System => None,
            Self::Light => Some("light"),
            Self::Dark => Some("dark"),
        }
    }

    /// The content of `<meta name="color-scheme">`: the schemes the page can be shown in.
    pub fn color_scheme(self) -> &'static str {
        match self {
            Self::System => "light dark",
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }

    /// How the toggle names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Light => "Light",
            Self::Dark => "Dark",
        }
    }

    /// The toggle button's accessible name: the theme now and what pressing does. It starts
    /// with the visible text (the current theme's label).
    pub fn toggle_label(self) -> String {
        let now = match self {
            Self::System => "System theme (follows your device)".to_string(),
            other => format!("{} theme", other.label()),
        };
        let then = match self.next() {
            Self::System => "follow your device's setting".to_string(),
            other => format!("switch to the {} theme", other.as_str()),
        };
        format!("{now}: press to {then}")
    }

    /// The choice in a request's `Cookie` header (`a=1; flotilla_theme=dark`).
    pub fn from_cookie_header(header: &str) -> Option<Self> {
        header
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name.trim() == COOKIE)
            .and_then(|(_, value)| Self::parse(value.trim().trim_matches('"')))
    }

    /// The `Set-Cookie` value that stores this choice for a year, for every page. The
    /// system's setting needs no cookie: choosing it removes the cookie.
    pub fn set_cookie(self) -> String {
        let max_age = match self {
            Self::System => 0,
            _ => COOKIE_MAX_AGE,
        };
        let value = match self {
            Self::System => "",
            other => other.as_str(),
        };
        format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; SameSite=Lax; HttpOnly")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toggle_cycles_through_every_theme() {
        assert_eq!(Theme::System.next(), Theme::Light);
        assert_eq!(Theme::Light.next(), Theme::Dark);
        assert_eq!(Theme::Dark.next(), Theme::System);
        for theme in Theme::ALL {
            assert_eq!(Theme::parse(theme.as_str()), Some(theme));
        }
        assert_eq!(Theme::parse("sepia"), None);
    }

    #[test]
    fn only_a_forced_theme_sets_the_attribute() {
        let table = [
            (Theme::System, None, "light dark"),
            (Theme::Light, Some("light"), "light"),
            (Theme::Dark, Some("dark"), "dark"),
        ];
        for (theme, attribute, scheme) in table {
            assert_eq!(theme.data_theme(), attribute, "{theme:?}");
            assert_eq!(theme.color_scheme(), scheme, "{theme:?}");
        }
    }

    #[test]
    fn reads_the_choice_among_other_cookies() {
        let table = [
            ("flotilla_theme=dark", Some(Theme::Dark)),
            ("a=1; flotilla_theme=light; b=2", Some(Theme::Light)),
            ("a=1;flotilla_theme=\"dark\"", Some(Theme::Dark)),
            ("flotilla_theme=", None),
            ("flotilla_theme=purple", None),
            ("other_flotilla_theme=dark", None),
            ("", None),
        ];
        for (header, expected) in table {
            assert_eq!(Theme::from_cookie_header(header), expected, "{header:?}");
        }
    }

    #[test]
    fn the_cookie_lasts_a_year_and_system_removes_it() {
        assert_eq!(
            Theme::Dark.set_cookie(),
            "flotilla_theme=dark; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"
        );
        assert_eq!(
            Theme::System.set_cookie(),
            "flotilla_theme=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly"
        );
        // What the server sets, it reads back.
        for theme in [Theme::Light, Theme::Dark] {
            let pair = theme.set_cookie();
            let pair = pair.split(';').next().unwrap();
            assert_eq!(Theme::from_cookie_header(pair), Some(theme));
        }
    }

    #[test]
    fn the_button_says_the_theme_now_and_what_pressing_does() {
        assert_eq!(
            Theme::System.toggle_label(),
            "System theme (follows your device): press to switch to the light theme"
        );
        assert_eq!(
            Theme::Light.toggle_label(),
            "Light theme: press to switch to the dark theme"
        );
        assert_eq!(
            Theme::Dark.toggle_label(),
            "Dark theme: press to follow your device's setting"
        );
    }
}
