//! URL pieces shared by the portal and the CLI.

/// Percent-encodes `s` for a URL path segment or query value: everything but the
/// unreserved characters (`A–Z a–z 0–9 - _ . ~`) becomes `%XX`.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(percent_encode("web_1.a-b~"), "web_1.a-b~");
        assert_eq!(percent_encode("a/b c&d=é"), "a%2Fb%20c%26d%3D%C3%A9");
    }
}
