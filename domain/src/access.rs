//! Who may do what: roles (Azure's names, ordered Reader < Operator < Contributor < Owner),
//! role assignments (global or on one scale set), users and API tokens as stored and
//! shown, the evaluation of a principal's role on a resource, and the API token format
//! (`flt_` + 30 random base-62 characters + a 6-character CRC-32 checksum, as GitHub's:
//! a token is recognisable in a leak and a typo is caught without a database read).
//!
//! Nothing here hashes or stores: passwords and tokens reach this module only to check
//! their shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// A role. Each includes the rights of those below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Reads everything but secrets (which no read ever shows).
    Reader,
    /// Instance actions, capacity, protection, load-balancer switches, resuming repairs,
    /// pausing and resuming rollouts (not approving their gates), demand.
    Operator,
    /// Creates, changes and deletes scale sets; autoscale, models, rollouts (start, approve,
    /// cancel, roll back).
    Contributor,
    /// Users, role assignments, everyone's tokens, the backend's faults, host maintenance.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reader, Role::Operator, Role::Contributor, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "Reader",
            Role::Operator => "Operator",
            Role::Contributor => "Contributor",
            Role::Owner => "Owner",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    /// A role by name, in any case (`reader`, `Owner`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("{s:?} is not a role: one of Reader, Operator, Contributor, Owner")
            })
    }
}

/// What a REST route or a portal server function needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, signed in or not.
    Anonymous,
    /// Any signed-in principal (lists then show only what it may see).
    SignedIn,
    /// The role fleet-wide.
    Fleet(Role),
    /// The role on the scale set the request names (fleet-wide counts too).
    Set(Role),
}

impl Access {
    /// How the OpenAPI document and refusals say it.
    pub fn describe(self) -> String {
        match self {
            Access::Anonymous => "anyone (no credentials)".into(),
            Access::SignedIn => "any signed-in principal".into(),
            Access::Fleet(role) => format!("{role} fleet-wide"),
            Access::Set(role) => format!("{role} on the scale set (or fleet-wide)"),
        }
    }

    /// Whether `grants` (`None`: anonymous) pass on `scale_set`.
    pub fn allows(self, grants: Option<&Grants>, scale_set: Option<&str>) -> bool {
        match (self, grants) {
            (Access::Anonymous, _) => true,
            (_, None) => false,
            (Access::SignedIn, Some(_)) => true,
            (Access::Fleet(role), Some(g)) => g.allows(role, None),
            (Access::Set(role), Some(g)) => g.allows(role, scale_set),
        }
    }
}

/// How a user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// A password kept (hashed) by Flotilla.
    Local,
    /// Single sign-on: the identity provider vouches, Flotilla keeps no password.
    Oidc,
}

impl UserSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UserSource::Local => "local",
            UserSource::Oidc => "oidc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(UserSource::Local),
            "oidc" => Some(UserSource::Oidc),
            _ => None,
        }
    }
}

/// A user as shown (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub source: UserSource,
    /// A disabled user can neither sign in nor use its tokens.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A role given to a user, on every scale set (`scale_set: null`) or on one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleAssignment {
    pub user: String,
    pub role: Role,
    pub scale_set: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// An API token as shown: its secret is shown once, at creation, and stored only hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// Whose rights the token carries (never more than theirs).
    pub user: String,
    /// The most the token may do; `null`: as much as its user.
    pub role: Option<Role>,
    /// The one scale set the token may touch; `null`: any its user may.
    pub scale_set: Option<String>,
    /// The first characters of the token (`flt_AbCd`), to recognise it in a list.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token may still be used at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// What a principal may do where, as evaluated per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Grants {
    /// The user's assignments.
    pub assignments: Vec<(Role, Option<String>)>,
    /// A token's bounds: its role cap and its one scale set.
    pub cap: Option<Role>,
    pub only_set: Option<String>,
}

impl Grants {
    /// The role held on `scale_set` (`None`: fleet-wide, where only global assignments
    /// count), or `None` when there is none.
    pub fn role_on(&self, scale_set: Option<&str>) -> Option<Role> {
        if let Some(only) = &self.only_set
            && scale_set != Some(only.as_str())
        {
            return None;
        }
        let held = self
            .assignments
            .iter()
            .filter(|(_, on)| on.is_none() || (scale_set.is_some() && on.as_deref() == scale_set))
            .map(|(role, _)| *role)
            .max()?;
        Some(match self.cap {
            Some(cap) => held.min(cap),
            None => held,
        })
    }

    /// Whether the principal holds at least `role` on `scale_set`.
    pub fn allows(&self, role: Role, scale_set: Option<&str>) -> bool {
        self.role_on(scale_set).is_some_and(|held| held >= role)
    }

    /// The highest role held anywhere (on some scale set or fleet-wide): what a portal
    /// page that is not about one scale set may offer.
    pub fn highest(&self) -> Option<Role> {
        let held = self
            .assignments
            .iter()
            .filter(|(_, on)| {
                self.only_set.is_none() || on.is_none() || on.as_deref() == self.only_set.as_deref()
            })
            .map(|(role, _)| *role)
            .max()?;
        Some(match self.cap {
            Some(cap) => held.min(cap),
            None => held,
        })
    }

    /// Whether the principal may see `scale_set` at all (Reader on it).
    pub fn sees(&self, scale_set: &str) -> bool {
        self.allows(Role::Reader, Some(scale_set))
    }
}

/// The prefix every API token starts with.
pub const TOKEN_PREFIX: &str = "flt_";
const TOKEN_RANDOM: usize = 30;
const TOKEN_CHECKSUM: usize = 6;
/// Length of a whole token.
pub const TOKEN_LENGTH: usize = TOKEN_PREFIX.len() + TOKEN_RANDOM + TOKEN_CHECKSUM;
/// How much of a token a list shows.
pub const TOKEN_SHOWN: usize = TOKEN_PREFIX.len() + 4;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token made of `random` (at least 30 bytes of a cryptographic generator): 30 base-62
/// characters and their checksum.
pub fn format_token(random: &[u8]) -> String {
    assert!(
        random.len() >= TOKEN_RANDOM,
        "a token needs 30 random bytes"
    );
    // Each byte picks a character modulo 62: a slight bias (256 is not a multiple of 62)
    // that still leaves more than 170 bits to guess.
    let body: String = random
        .iter()
        .take(TOKEN_RANDOM)
        .map(|b| BASE62[(*b as usize) % 62] as char)
        .collect();
    let mut token = String::with_capacity(TOKEN_LENGTH);
    token.push_str(TOKEN_PREFIX);
    token.push_str(&body);
    token.push_str(&checksum(&body));
    token
}

/// Whether `token` has a token's shape and its checksum holds.
pub fn check_token(token: &str) -> Result<(), &'static str> {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return Err("an API token starts with flt_");
    };
    if rest.len() != TOKEN_RANDOM + TOKEN_CHECKSUM
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err("not an API token: wrong length or characters");
    }
    let (body, sum) = rest.split_at(TOKEN_RANDOM);
    if checksum(body) != sum {
        return Err("not an API token: its checksum does not match (mistyped?)");
    }
    Ok(())
}

fn checksum(body: &str) -> String {
    let mut n = crc32(body.as_bytes());
    let mut out = [b'0'; TOKEN_CHECKSUM];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// CRC-32 (IEEE 802.3, as zlib's).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Shortest password accepted, and longest (hashing a megabyte on every login attempt is
/// a denial of service).
pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 1024;

/// A user name: 1–64 characters, lowercase letters, digits and `. _ @ -`, starting with a
/// letter or digit (so an e-mail address from single sign-on fits).
pub fn validate_user_name(name: &str, field: &str) -> Result<(), ValidationErrors> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationErrors::single(
            field,
            "1–64 characters: lowercase letters, digits and . _ @ -, starting with a letter or digit",
        ))
    }
}

/// A password: 10–1,024 bytes.
pub fn validate_password(password: &str, field: &str) -> Result<(), ValidationErrors> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(ValidationErrors::single(
            field,
            format!("at least {PASSWORD_MIN} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX {
        return Err(ValidationErrors::single(
            field,
            format!("at most {PASSWORD_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A token's name: 1–64 characters, no control characters.
pub fn validate_token_name(name: &str, field: &str) -> Result<(), ValidationErrors> {
    let count = name.chars().count();
    if count == 0 || count > 64 || name.chars().any(char::is_control) || name.trim() != name {
        return Err(ValidationErrors::single(
            field,
            "1–64 characters, no control characters or surrounding spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(assignments: &[(Role, Option<&str>)]) -> Grants {
        Grants {
            assignments: assignments
                .iter()
                .map(|(r, s)| (*r, s.map(str::to_string)))
                .collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn roles_are_ordered_and_parse_in_any_case() {
        assert!(Role::Reader < Role::Operator && Role::Contributor < Role::Owner);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("admin".parse::<Role>().unwrap_err().contains("Reader"));
    }

    #[test]
    fn a_set_role_counts_on_its_set_only_and_the_highest_wins() {
        let g = grants(&[(Role::Reader, None), (Role::Contributor, Some("web"))]);
        assert_eq!(g.role_on(None), Some(Role::Reader));
        assert_eq!(g.role_on(Some("web")), Some(Role::Contributor));
        assert_eq!(g.role_on(Some("api")), Some(Role::Reader));
        assert_eq!(g.highest(), Some(Role::Contributor));
        let g = grants(&[(Role::Operator, Some("web"))]);
        assert_eq!(g.role_on(None), None);
        assert!(g.sees("web") && !g.sees("api"));
    }

    #[test]
    fn a_token_never_exceeds_its_user_nor_leaves_its_set() {
        let mut g = grants(&[(Role::Operator, None)]);
        g.cap = Some(Role::Owner);
        assert_eq!(g.role_on(Some("web")), Some(Role::Operator));
        g.cap = Some(Role::Reader);
        assert_eq!(g.role_on(Some("web")), Some(Role::Reader));
        g.only_set = Some("web".into());
        assert_eq!(g.role_on(Some("web")), Some(Role::Reader));
        assert_eq!(g.role_on(Some("api")), None);
        assert_eq!(g.role_on(None), None, "fleet-wide is outside one set");
        assert!(grants(&[]).role_on(None).is_none());
    }

    #[test]
    fn tokens_carry_a_checksum_that_catches_a_typo() {
        let token = format_token(&[7u8; 32]);
        assert_eq!(token.len(), TOKEN_LENGTH);
        assert!(token.starts_with("flt_"));
        assert_eq!(check_token(&token), Ok(()));
        let mut typo = token.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(check_token(std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(check_token("flt_short").is_err());
        assert!(check_token("ghp_0123456789").is_err());
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn names_and_passwords_are_checked_by_field() {
        assert!(validate_user_name("alice", "name").is_ok());
        assert!(validate_user_name("ops@example.com", "name").is_ok());
        assert_eq!(
            validate_user_name("Alice", "name").unwrap_err().0[0].field,
            "name"
        );
        assert!(validate_user_name("", "name").is_err());
        assert!(validate_password("short", "password").is_err());
        assert!(validate_password(&"x".repeat(2000), "password").is_err());
        assert!(validate_password("correct horse", "password").is_ok());
        assert!(validate_token_name("ci", "name").is_ok());
        assert!(validate_token_name(" ci", "name").is_err());
        assert!(validate_token_name("a\nb", "name").is_err());
    }
}
