//! Who is looking at the portal and what they may do: [`Me`] (what the `whoami` server
//! function answers — the actor, whether authentication is on, the grants) and [`Permit`],
//! the answer to "may they call this server function on this scale set?".
//!
//! A permit is decided with the portal's permission table ([`crate::api::access`]) and the
//! domain's [`Access`] rules: the very check the server makes before the function runs, so
//! a control the portal enables is one the server accepts, and a control it disables says
//! what role it needs. The server still checks every call; this only keeps the portal from
//! offering what would be refused.
//!
//! The app's root provides a [`Viewer`] as context: computed on the server from the
//! request's caller and carried to the browser in the hydration data, so both render the
//! same controls without a round trip.

use flotilla_domain::access::{Access, Grants, Role};
use serde::{Deserialize, Serialize};

use crate::api::access;

/// The caller as the portal shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The name the activity log records for them; `None`: not signed in.
    pub actor: Option<String>,
    /// The user, when authentication is on.
    pub user: Option<String>,
    /// Whether authentication is on (`--auth local`); off, everyone is an Owner.
    pub auth: bool,
    /// What they may do where.
    pub grants: Grants,
    /// Single sign-on is configured: the login page offers it.
    #[serde(default)]
    pub single_sign_on: bool,
}

impl Me {
    pub fn signed_in(&self) -> bool {
        self.actor.is_some()
    }

    /// The highest role held anywhere, as the header shows it.
    pub fn highest_role(&self) -> Option<Role> {
        self.signed_in().then(|| self.grants.highest()).flatten()
    }

    fn grants(&self) -> Option<&Grants> {
        self.signed_in().then_some(&self.grants)
    }

    /// Whether they may call server function `endpoint` on `scale_set` (`None`: a function
    /// that names no scale set): its entry in the permission table decides.
    pub fn may(&self, endpoint: &str, scale_set: Option<&str>) -> Permit {
        let Some(entry) = access::of(endpoint) else {
            return Permit::Denied(format!("{endpoint} is not a server function"));
        };
        if entry.access.allows(self.grants(), scale_set) {
            return Permit::Allowed;
        }
        Permit::Denied(self.needs(entry.access, scale_set))
    }

    /// Whether they hold `role` on `scale_set`: for what a server function checks beyond
    /// its entry (approving a rollout's gate needs a Contributor).
    pub fn holds(&self, role: Role, scale_set: Option<&str>) -> Permit {
        let access = match scale_set {
            Some(_) => Access::Set(role),
            None => Access::Fleet(role),
        };
        if access.allows(self.grants(), scale_set) {
            Permit::Allowed
        } else {
            Permit::Denied(self.needs(access, scale_set))
        }
    }

    /// What a refusal says: the role it needs, and where.
    fn needs(&self, access: Access, scale_set: Option<&str>) -> String {
        if !self.signed_in() {
            return "sign in first".into();
        }
        match access {
            Access::Set(role) if scale_set.is_some() => {
                format!("needs the {role} role on this scale set")
            }
            Access::Set(role) => format!("needs the {role} role"),
            Access::Fleet(role) => format!("needs the {role} role fleet-wide"),
            Access::SignedIn | Access::Anonymous => "not allowed".into(),
        }
    }
}

/// Whether an action is allowed; when not, why (what a disabled control says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    Allowed,
    Denied(String),
}

impl Permit {
    pub fn allowed(&self) -> bool {
        matches!(self, Permit::Allowed)
    }

    pub fn denied(&self) -> bool {
        !self.allowed()
    }

    /// Why not, as a control's title; `None` when allowed.
    pub fn reason(&self) -> Option<String> {
        match self {
            Permit::Allowed => None,
            Permit::Denied(why) => Some(why.clone()),
        }
    }

    /// Both must allow (the first refusal is the reason).
    pub fn and(self, other: Permit) -> Permit {
        match self {
            Permit::Allowed => other,
            denied => denied,
        }
    }
}

/// What the app's root provides as context: who is looking, and their session's CSRF token
/// (which every plain form carries and every JavaScript call sends as `x-csrf-token`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub me: Me,
    pub csrf: Option<String>,
}

/// The viewer the root provided (an anonymous one outside the app, as in tests).
pub fn use_viewer() -> Viewer {
    leptos::prelude::use_context::<Viewer>().unwrap_or_default()
}

/// Who is looking.
pub fn use_me() -> Me {
    use_viewer().me
}

/// Whether the viewer may call `endpoint` on `scale_set` (see [`Me::may`]).
pub fn may(endpoint: &str, scale_set: Option<&str>) -> Permit {
    use_me().may(endpoint, scale_set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::access::Role::{Contributor, Operator, Owner, Reader};

    fn me(assignments: &[(Role, Option<&str>)]) -> Me {
        Me {
            actor: Some("alice".into()),
            user: Some("alice".into()),
            auth: true,
            grants: Grants {
                assignments: assignments
                    .iter()
                    .map(|(r, s)| (*r, s.map(str::to_string)))
                    .collect(),
                ..Grants::default()
            },
            single_sign_on: false,
        }
    }

    #[test]
    fn a_reader_may_read_but_change_nothing() {
        let reader = me(&[(Reader, None)]);
        assert!(reader.may("scale-set", Some("web")).allowed());
        for endpoint in [
            "set-capacity",
            "instances-action",
            "instance-load-balancer",
            "resume-repairs",
            "set-demand",
            "control-rollout",
        ] {
            assert_eq!(
                reader.may(endpoint, Some("web")),
                Permit::Denied("needs the Operator role on this scale set".into()),
                "{endpoint}"
            );
        }
        for endpoint in [
            "delete-scale-set",
            "save-autoscale",
            "autoscale-json",
            "set-model",
            "upgrade-policy",
            "rollback-rollout",
        ] {
            assert!(reader.may(endpoint, Some("web")).denied(), "{endpoint}");
        }
        assert_eq!(
            reader.may("create-scale-set", None).reason().as_deref(),
            Some("needs the Contributor role fleet-wide")
        );
        assert_eq!(reader.highest_role(), Some(Reader));
    }

    #[test]
    fn a_role_on_one_set_counts_there_only() {
        let operator = me(&[(Reader, None), (Operator, Some("web"))]);
        assert!(operator.may("set-capacity", Some("web")).allowed());
        assert!(operator.may("set-capacity", Some("api")).denied());
        assert!(operator.may("delete-scale-set", Some("web")).denied());
        assert!(operator.holds(Operator, Some("web")).allowed());
        assert!(operator.holds(Contributor, Some("web")).denied());
        assert_eq!(operator.highest_role(), Some(Operator));
    }

    #[test]
    fn an_owner_may_do_everything_and_anonymous_nothing() {
        let owner = me(&[(Owner, None)]);
        for entry in access::TABLE {
            assert!(owner.may(entry.endpoint, Some("web")).allowed());
        }
        let anonymous = Me::default();
        assert_eq!(
            anonymous.may("scale-sets", None).reason().as_deref(),
            Some("sign in first")
        );
        assert!(anonymous.may("theme", None).allowed());
        assert_eq!(anonymous.highest_role(), None);
        assert!(owner.may("no-such-function", None).denied());
    }

    #[test]
    fn permits_combine_with_the_first_refusal() {
        let no = Permit::Denied("a".into());
        assert_eq!(Permit::Allowed.and(no.clone()), no);
        assert_eq!(no.clone().and(Permit::Denied("b".into())), no);
        assert!(Permit::Allowed.and(Permit::Allowed).allowed());
    }
}
