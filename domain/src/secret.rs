//! Secrets are written, never read back: what the API, the event stream, the activity log,
//! exports and the portal show instead of them, and how a redacted value sent back keeps
//! the stored one.
//!
//! - TLS private keys and webhook secrets read [`REDACTED`].
//! - Webhook URLs (often bearer secrets in their path or query) read in their *shown form*,
//!   scheme and host only: `https://hooks.example.com/(redacted)` ([`shown_url`]).
//! - A model's `user_data` is write-only, like Azure's `customData`: reads give `null`
//!   with its length and SHA-256 ([`UserDataDigest`]).
//! - Activity details are scrubbed by key ([`scrub`]) before they are stored, whatever
//!   wrote them: a last line of defence behind the typed redaction of each record.
//!
//! Webhook URLs are checked by one strict parser ([`WebhookUrl::parse`]) in the browser and
//! on the server alike: http or https, a host of letters, digits, dots and dashes (or an
//! IPv4 address, or an IPv6 one in brackets), an optional port, and a path and query of
//! visible ASCII — no user info, no fragment, no backslash, no control character, no space.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What reads show instead of a secret. Sent back unchanged, it keeps the stored secret.
pub const REDACTED: &str = "(redacted)";

/// Whether a secret sent equals the one expected, in a time that depends on their lengths
/// only, never on where they differ (tokens, CSRF values, OpenID Connect states).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A webhook URL, parsed strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub https: bool,
    /// A DNS name (lowercased), an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    /// The port given in the URL, if any.
    pub port: Option<u16>,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl WebhookUrl {
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        if url.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        if let Some(c) = url
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == '\\' || !c.is_ascii())
        {
            return Err(format!(
                "must not contain {c:?} (no spaces, control characters, backslashes or non-ASCII characters; percent-encode them)"
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "must be an http:// or https:// URL".to_string())?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err("must be an http:// or https:// URL".into()),
        };
        if rest.contains('#') {
            return Err("must not have a fragment (#…)".into());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err("must not carry a user name or password (user@host)".into());
        }
        let (host, port) = split_host_port(authority)?;
        let path = match path.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        Ok(WebhookUrl {
            https,
            host,
            port,
            path,
        })
    }

    /// The port to connect to: the one given, else the scheme's.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// Host and port as a URL writes them (`[::1]:8080`), the port only when given.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// Scheme and host only: what reads show.
    pub fn shown(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/{REDACTED}", self.authority())
    }
}

/// `host[:port]` of an authority: a bracketed IPv6 address, an IPv4 address or a DNS name.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| "has an unclosed [ in its host".to_string())?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| "has characters after its IPv6 address".to_string())?,
            ),
        };
        (v6.to_ascii_lowercase(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if !host.contains(':') {
        let labels_ok = host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !labels_ok || host.len() > 253 {
            return Err(format!("{host:?} is not a valid host name"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{p:?} is not a port (1–65535)")),
        },
    };
    Ok((host, port))
}

/// What reads show of a webhook URL: [`WebhookUrl::shown`], or [`REDACTED`] when it does
/// not parse (stored before the strict parser; never shown as written).
pub fn shown_url(url: &str) -> String {
    WebhookUrl::parse(url).map_or_else(|_| REDACTED.to_string(), |u| u.shown())
}

/// Whether `sent` is a shown form (or [`REDACTED`]) rather than a URL to store.
pub fn is_shown_url(sent: &str) -> bool {
    sent == REDACTED || sent.ends_with(&format!("/{REDACTED}"))
}

/// A model's user data as reads show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDataDigest {
    /// Bytes.
    pub length: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

impl UserDataDigest {
    pub fn of(user_data: &str) -> UserDataDigest {
        let hash = Sha256::digest(user_data.as_bytes());
        UserDataDigest {
            length: user_data.len() as u64,
            sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// Keys whose values are secrets wherever they appear in activity details.
const SECRET_KEYS: [&str; 6] = [
    "private_key_pem",
    "secret",
    "password",
    "token",
    "user_data",
    "authorization",
];

/// Replaces every secret in `details`, at any depth: the values of [`SECRET_KEYS`] become
/// [`REDACTED`] (`null` stays `null`), webhook URLs (a `url` key) their shown form.
pub fn scrub(details: &mut Value) {
    match details {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                if SECRET_KEYS.contains(&key.as_str()) {
                    if !value.is_null() {
                        *value = Value::String(REDACTED.into());
                    }
                } else if key == "url" {
                    if let Value::String(url) = value {
                        *url = shown_url(url);
                    }
                } else {
                    scrub(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_urls_parse_strictly() {
        let u = WebhookUrl::parse("https://Hooks.Example.com/a/b?token=s3cret").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example.com", None, "/a/b?token=s3cret")
        );
        assert_eq!(u.port_or_default(), 443);
        let u = WebhookUrl::parse("http://127.0.0.1:8080?x=1").unwrap();
        assert_eq!((u.port, u.path.as_str()), (Some(8080), "/?x=1"));
        let u = WebhookUrl::parse("http://[::1]:9000/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority()),
            ("::1", "[::1]:9000".into())
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://user:pw@host/",
            "https://host/a\r\nX-Injected: 1",
            "https://host/a b",
            "https://host\\@evil/",
            "https://host:0/",
            "https://host:99999/",
            "https://host:80x/",
            "https://ho_st/",
            "https://-host/",
            "https://host/#frag",
            "https://[::1/",
            "https://[nope]/",
            "https://hôst/",
            "//host/",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(WebhookUrl::parse(&format!("https://h/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn urls_show_scheme_and_host_only() {
        assert_eq!(
            shown_url("https://hooks.example.com/services/T000/B000/XXXX?key=k"),
            "https://hooks.example.com/(redacted)"
        );
        assert_eq!(
            shown_url("http://[::1]:9000/x"),
            "http://[::1]:9000/(redacted)"
        );
        assert_eq!(shown_url("not a url"), REDACTED);
        assert!(is_shown_url("http://[::1]:9000/(redacted)"));
        assert!(is_shown_url(REDACTED));
        assert!(!is_shown_url("https://hooks.example.com/x"));
    }

    #[test]
    fn user_data_digest_is_length_and_sha256() {
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            UserDataDigest::of("abc"),
            UserDataDigest {
                length: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            }
        );
    }

    #[test]
    fn scrub_finds_secrets_at_any_depth() {
        let mut details = json!({
            "patch": {"load_balancer": {"frontends": [{"tls": {"certificate_pem": "CERT", "private_key_pem": "KEY"}}]},
                      "autoscale": {"notifications": {"webhooks": [{"url": "https://h/x?t=1", "secret": "S"}]}}},
            "model": {"user_data": "#cloud-config\npassword: x", "image": "debian-12"},
            "Token": "T", "nothing": null, "secret": null
        });
        scrub(&mut details);
        let text = details.to_string();
        for secret in ["KEY", "\"S\"", "t=1", "password: x", "\"T\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("CERT"), "not secret: {text}");
        assert_eq!(
            details["patch"]["autoscale"]["notifications"]["webhooks"][0]["url"],
            "https://h/(redacted)"
        );
        assert_eq!(details["secret"], Value::Null);
        assert_eq!(details["model"]["image"], "debian-12");
    }
}
