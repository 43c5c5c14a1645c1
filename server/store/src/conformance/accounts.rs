//! Accounts: users with their password hashes, role assignments (one per user and scope,
//! global or on a set), API tokens found by their hash, revoked once and touched forward
//! only, portal sessions that expire, and what a scale set's deletion takes with it.

use chrono::{DateTime, Utc};
use flotilla_domain::access::{ApiToken, Role, RoleAssignment, User, UserSource};

use super::{assert_already_exists, assert_not_found, at, scale_set};
use crate::{Kind, Store};

/// An Argon2id PHC string as a caller would write it (the store never parses it).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// A local user created by `admin` at `at(0)`.
pub fn user(name: &str) -> User {
    User {
        name: name.into(),
        source: UserSource::Local,
        disabled: false,
        created_at: at(0),
        created_by: "admin".into(),
    }
}

/// `user`'s `role` on `scale_set` (`None`: every set), given by `admin` at `at(secs)`.
pub fn assignment(user: &str, role: Role, scale_set: Option<&str>, secs: i64) -> RoleAssignment {
    RoleAssignment {
        user: user.into(),
        role,
        scale_set: scale_set.map(Into::into),
        created_at: at(secs),
        created_by: "admin".into(),
    }
}

/// `user`'s token `name` (prefix `flt_<name>`), uncapped and unscoped, created at
/// `at(secs)`, never used.
pub fn token(user: &str, name: &str, secs: i64) -> ApiToken {
    ApiToken {
        id: 0,
        name: name.into(),
        user: user.into(),
        role: None,
        scale_set: None,
        prefix: format!("flt_{name}"),
        created_at: at(secs),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

async fn create_users(store: &dyn Store, names: &[&str]) {
    for name in names {
        store.create_user(&user(name), Some(HASH)).await.unwrap();
    }
}

fn scopes(assignments: &[RoleAssignment]) -> Vec<(&str, Role, Option<&str>)> {
    assignments
        .iter()
        .map(|a| (a.user.as_str(), a.role, a.scale_set.as_deref()))
        .collect()
}

fn token_names(tokens: &[ApiToken]) -> Vec<&str> {
    tokens.iter().map(|t| t.name.as_str()).collect()
}

async fn last_used(store: &dyn Store, hash: &str) -> Option<DateTime<Utc>> {
    store
        .token_by_hash(hash)
        .await
        .unwrap()
        .expect("the token exists")
        .last_used_at
}

/// Users come back as created, with their password hash (none for single sign-on); lists
/// are by name (bytewise) and count everyone.
pub async fn create_and_get_user_with_its_password_hash(store: &dyn Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert_eq!(store.list_users().await.unwrap(), vec![]);
    assert_eq!(store.get_user("alice").await.unwrap(), None);

    let alice = store.create_user(&user("alice"), Some(HASH)).await.unwrap();
    assert_eq!(alice, user("alice"));
    let mut sso = user("ops@example.com");
    sso.source = UserSource::Oidc;
    sso.disabled = true;
    sso.created_by = "oidc".into();
    let sso = store.create_user(&sso, None).await.unwrap();
    store.create_user(&user("Zed"), Some("x")).await.unwrap();

    assert_eq!(
        store.get_user("alice").await.unwrap(),
        Some((alice.clone(), Some(HASH.to_owned())))
    );
    assert_eq!(
        store.get_user("ops@example.com").await.unwrap(),
        Some((sso.clone(), None))
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Zed", "alice", "ops@example.com"], "bytewise");
    assert_eq!(store.list_users().await.unwrap()[1], alice);
    assert_eq!(store.count_users().await.unwrap(), 3);
}

/// A taken name is refused and the stored user (and its hash) are left as they were.
pub async fn create_taken_user_name_is_already_exists(store: &dyn Store) {
    let alice = store.create_user(&user("alice"), Some(HASH)).await.unwrap();
    let mut again = user("alice");
    again.source = UserSource::Oidc;
    let err = store.create_user(&again, None).await.unwrap_err();
    assert_already_exists(err, Kind::User, "alice");
    assert_eq!(
        store.get_user("alice").await.unwrap(),
        Some((alice, Some(HASH.to_owned())))
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
}

/// A password is replaced and a user disabled and enabled again (idempotently); either on
/// an absent user is `NotFound`.
pub async fn user_password_and_disabled_are_set(store: &dyn Store) {
    create_users(store, &["alice", "bob"]).await;
    store.set_user_password("alice", "new-hash").await.unwrap();
    store.set_user_disabled("alice", true).await.unwrap();
    store.set_user_disabled("alice", true).await.unwrap();
    let (alice, hash) = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("new-hash"));
    assert!(alice.disabled);
    let (bob, hash) = store.get_user("bob").await.unwrap().unwrap();
    assert_eq!((bob.disabled, hash.as_deref()), (false, Some(HASH)));
    store.set_user_disabled("alice", false).await.unwrap();
    assert!(!store.get_user("alice").await.unwrap().unwrap().0.disabled);

    let err = store.set_user_password("ghost", HASH).await.unwrap_err();
    assert_not_found(err, Kind::User, "ghost");
    let err = store.set_user_disabled("ghost", true).await.unwrap_err();
    assert_not_found(err, Kind::User, "ghost");
    assert_eq!(store.count_users().await.unwrap(), 2);
}

/// A second assignment of a user on the same scope replaces the first: its role, time and
/// author.
pub async fn role_assignment_upserts_on_user_and_scope(store: &dyn Store) {
    create_users(store, &["alice"]).await;
    let first = assignment("alice", Role::Reader, Some("web"), 1);
    assert_eq!(store.put_role_assignment(&first).await.unwrap(), first);
    let mut second = assignment("alice", Role::Contributor, Some("web"), 2);
    second.created_by = "carol".into();
    assert_eq!(store.put_role_assignment(&second).await.unwrap(), second);
    assert_eq!(
        store.list_role_assignments(Some("alice")).await.unwrap(),
        vec![second.clone()]
    );
    let global = assignment("alice", Role::Reader, None, 3);
    store.put_role_assignment(&global).await.unwrap();
    let global = assignment("alice", Role::Owner, None, 4);
    store.put_role_assignment(&global).await.unwrap();
    assert_eq!(
        store.list_role_assignments(None).await.unwrap(),
        vec![global, second]
    );
}

/// Global and per-set assignments are distinct scopes: listed by user, global first, then
/// by set; deleted one scope at a time.
pub async fn global_and_set_assignments_are_distinct(store: &dyn Store) {
    create_users(store, &["alice", "bob"]).await;
    for a in [
        assignment("bob", Role::Reader, None, 1),
        assignment("alice", Role::Operator, Some("web"), 2),
        assignment("alice", Role::Reader, None, 3),
        assignment("alice", Role::Contributor, Some("api"), 4),
        assignment("bob", Role::Owner, Some("web"), 5),
    ] {
        store.put_role_assignment(&a).await.unwrap();
    }
    let all = store.list_role_assignments(None).await.unwrap();
    assert_eq!(
        scopes(&all),
        [
            ("alice", Role::Reader, None),
            ("alice", Role::Contributor, Some("api")),
            ("alice", Role::Operator, Some("web")),
            ("bob", Role::Reader, None),
            ("bob", Role::Owner, Some("web")),
        ]
    );
    assert_eq!(all[0], assignment("alice", Role::Reader, None, 3));
    let bobs = store.list_role_assignments(Some("bob")).await.unwrap();
    assert_eq!(bobs, all[3..]);
    assert_eq!(
        store.list_role_assignments(Some("ghost")).await.unwrap(),
        []
    );

    assert!(store.delete_role_assignment("alice", None).await.unwrap());
    assert!(!store.delete_role_assignment("alice", None).await.unwrap());
    assert!(
        store
            .delete_role_assignment("alice", Some("web"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_role_assignment("alice", Some("db"))
            .await
            .unwrap()
    );
    assert!(!store.delete_role_assignment("ghost", None).await.unwrap());
    let left = store.list_role_assignments(Some("alice")).await.unwrap();
    assert_eq!(
        scopes(&left),
        [("alice", Role::Contributor, Some("api"))],
        "the global and web ones went, api stayed"
    );
    assert_eq!(store.list_role_assignments(None).await.unwrap().len(), 3);
}

/// An assignment or a token for a user that does not exist is `NotFound` (a user), and
/// nothing is written.
pub async fn assignment_or_token_of_missing_user_is_not_found(store: &dyn Store) {
    let err = store
        .put_role_assignment(&assignment("ghost", Role::Owner, None, 1))
        .await
        .unwrap_err();
    assert_not_found(err, Kind::User, "ghost");
    let err = store
        .insert_token(&token("ghost", "ci", 1), "h1")
        .await
        .unwrap_err();
    assert_not_found(err, Kind::User, "ghost");
    assert_eq!(store.list_role_assignments(None).await.unwrap(), []);
    assert_eq!(store.list_tokens(None).await.unwrap(), []);
    assert_eq!(store.token_by_hash("h1").await.unwrap(), None);
}

/// Tokens get increasing ids (the given one ignored), round-trip every field, are found by
/// their hash only, and list newest first; a taken hash is refused.
pub async fn tokens_insert_and_are_found_by_hash(store: &dyn Store) {
    create_users(store, &["alice", "bob"]).await;
    let mut ci = token("alice", "ci", 1);
    ci.id = 4242;
    ci.role = Some(Role::Operator);
    ci.scale_set = Some("web".into());
    ci.expires_at = Some(at(3600));
    let ci = store.insert_token(&ci, "hash-ci").await.unwrap();
    assert_ne!(ci.id, 4242);
    assert_eq!(
        ci,
        ApiToken {
            id: ci.id,
            role: Some(Role::Operator),
            scale_set: Some("web".into()),
            expires_at: Some(at(3600)),
            ..token("alice", "ci", 1)
        }
    );
    let laptop = store
        .insert_token(&token("alice", "laptop", 2), "hash-laptop")
        .await
        .unwrap();
    let deploy = store
        .insert_token(&token("bob", "deploy", 3), "hash-deploy")
        .await
        .unwrap();
    assert!(ci.id < laptop.id && laptop.id < deploy.id, "ids grow");

    assert_eq!(
        store.token_by_hash("hash-ci").await.unwrap(),
        Some(ci.clone())
    );
    assert_eq!(
        store.token_by_hash("hash-deploy").await.unwrap(),
        Some(deploy)
    );
    assert_eq!(
        store.token_by_hash("flt_ci").await.unwrap(),
        None,
        "not by prefix"
    );
    assert_eq!(store.token_by_hash("").await.unwrap(), None);
    let all = store.list_tokens(None).await.unwrap();
    assert_eq!(token_names(&all), ["deploy", "laptop", "ci"]);
    let alices = store.list_tokens(Some("alice")).await.unwrap();
    assert_eq!(alices, [laptop, ci]);
    assert_eq!(store.list_tokens(Some("ghost")).await.unwrap(), []);

    let err = store
        .insert_token(&token("bob", "copy", 4), "hash-ci")
        .await
        .unwrap_err();
    assert_already_exists(err, Kind::Token, "flt_copy");
    assert_eq!(store.list_tokens(None).await.unwrap().len(), 3);
}

/// Revoking stamps the token once: a second revocation keeps the first time. An unknown id
/// is `None`.
pub async fn revoking_a_token_is_idempotent(store: &dyn Store) {
    create_users(store, &["alice"]).await;
    let ci = store
        .insert_token(&token("alice", "ci", 1), "hash-ci")
        .await
        .unwrap();
    let other = store
        .insert_token(&token("alice", "other", 2), "hash-other")
        .await
        .unwrap();
    let revoked = store.revoke_token(ci.id, at(10)).await.unwrap().unwrap();
    assert_eq!(
        revoked,
        ApiToken {
            revoked_at: Some(at(10)),
            ..ci.clone()
        }
    );
    assert!(!revoked.usable(at(11)));
    let again = store.revoke_token(ci.id, at(20)).await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at(10)),
        "the first revocation stands"
    );
    assert_eq!(store.token_by_hash("hash-ci").await.unwrap(), Some(revoked));
    assert_eq!(
        store.token_by_hash("hash-other").await.unwrap(),
        Some(other)
    );
    assert_eq!(store.revoke_token(9_999, at(30)).await.unwrap(), None);
}

/// Uses move `last_used_at` forward only, whatever order they come in; unknown ids and an
/// empty batch are no error.
pub async fn touching_tokens_keeps_the_latest_use(store: &dyn Store) {
    create_users(store, &["alice"]).await;
    let a = store
        .insert_token(&token("alice", "a", 1), "hash-a")
        .await
        .unwrap();
    let b = store
        .insert_token(&token("alice", "b", 2), "hash-b")
        .await
        .unwrap();
    let c = store
        .insert_token(&token("alice", "c", 3), "hash-c")
        .await
        .unwrap();
    store.touch_tokens(&[]).await.unwrap();
    store
        .touch_tokens(&[(b.id, at(30)), (a.id, at(50)), (9_999, at(60))])
        .await
        .unwrap();
    assert_eq!(last_used(store, "hash-a").await, Some(at(50)));
    assert_eq!(last_used(store, "hash-b").await, Some(at(30)));
    assert_eq!(last_used(store, "hash-c").await, None);
    // An older flush arrives late; one batch names a token twice.
    store
        .touch_tokens(&[
            (a.id, at(40)),
            (b.id, at(70)),
            (b.id, at(35)),
            (c.id, at(5)),
        ])
        .await
        .unwrap();
    assert_eq!(last_used(store, "hash-a").await, Some(at(50)), "never back");
    assert_eq!(last_used(store, "hash-b").await, Some(at(70)));
    assert_eq!(last_used(store, "hash-c").await, Some(at(5)));
}

/// Sessions are upserted, answered until they expire (not at their expiry), and deleted
/// (an absent one too).
pub async fn sessions_save_load_and_expire(store: &dyn Store) {
    assert_eq!(store.load_session("s1", at(0)).await.unwrap(), None);
    store
        .save_session("s1", r#"{"user":"alice"}"#, at(100))
        .await
        .unwrap();
    store.save_session("s2", "{}", at(100)).await.unwrap();
    assert_eq!(
        store.load_session("s1", at(99)).await.unwrap().as_deref(),
        Some(r#"{"user":"alice"}"#)
    );
    assert_eq!(store.load_session("s1", at(100)).await.unwrap(), None);
    assert_eq!(store.load_session("S1", at(0)).await.unwrap(), None);

    store
        .save_session("s1", r#"{"user":"alice","csrf":"x"}"#, at(200))
        .await
        .unwrap();
    assert_eq!(
        store.load_session("s1", at(150)).await.unwrap().as_deref(),
        Some(r#"{"user":"alice","csrf":"x"}"#),
        "data and expiry replaced"
    );
    store.delete_session("s1").await.unwrap();
    store.delete_session("s1").await.unwrap();
    store.delete_session("ghost").await.unwrap();
    assert_eq!(store.load_session("s1", at(0)).await.unwrap(), None);
    assert_eq!(
        store.load_session("s2", at(0)).await.unwrap().as_deref(),
        Some("{}")
    );
}

/// Pruning deletes the sessions expired at `now` (as `load_session` sees them) and counts
/// them.
pub async fn prune_sessions_deletes_expired_ones(store: &dyn Store) {
    for (id, secs) in [("a", 10), ("b", 20), ("c", 30)] {
        store.save_session(id, "{}", at(secs)).await.unwrap();
    }
    assert_eq!(store.prune_sessions(at(5)).await.unwrap(), 0);
    assert_eq!(store.prune_sessions(at(20)).await.unwrap(), 2);
    assert_eq!(
        store.load_session("c", at(20)).await.unwrap().as_deref(),
        Some("{}")
    );
    assert_eq!(store.prune_sessions(at(20)).await.unwrap(), 0);
    assert_eq!(store.prune_sessions(at(30)).await.unwrap(), 1);
}

/// Deleting a scale set deletes the role assignments on it and the tokens scoped to it;
/// global ones and those of other sets stay, and a set created again under the name
/// starts with none.
pub async fn delete_scale_set_takes_its_assignments_and_tokens(store: &dyn Store) {
    create_users(store, &["alice"]).await;
    for name in ["web", "api"] {
        store
            .create_scale_set(&scale_set(name, 1), "test")
            .await
            .unwrap();
    }
    for a in [
        assignment("alice", Role::Reader, None, 1),
        assignment("alice", Role::Operator, Some("web"), 2),
        assignment("alice", Role::Contributor, Some("api"), 3),
    ] {
        store.put_role_assignment(&a).await.unwrap();
    }
    for (name, set) in [
        ("any", None),
        ("web-ci", Some("web")),
        ("api-ci", Some("api")),
    ] {
        let mut t = token("alice", name, 1);
        t.scale_set = set.map(Into::into);
        store
            .insert_token(&t, &format!("hash-{name}"))
            .await
            .unwrap();
    }

    store.delete_scale_set("web").await.unwrap();
    let left = store.list_role_assignments(None).await.unwrap();
    assert_eq!(
        scopes(&left),
        [
            ("alice", Role::Reader, None),
            ("alice", Role::Contributor, Some("api")),
        ]
    );
    let tokens = store.list_tokens(None).await.unwrap();
    assert_eq!(token_names(&tokens), ["api-ci", "any"]);
    assert_eq!(store.token_by_hash("hash-web-ci").await.unwrap(), None);

    store
        .create_scale_set(&scale_set("web", 1), "test")
        .await
        .unwrap();
    let on_web = store.list_role_assignments(Some("alice")).await.unwrap();
    assert!(on_web.iter().all(|a| a.scale_set.as_deref() != Some("web")));
    // A failed deletion (no such set) takes nothing.
    assert!(store.delete_scale_set("ghost").await.is_err());
    assert_eq!(store.list_role_assignments(None).await.unwrap().len(), 2);
    assert_eq!(store.list_tokens(None).await.unwrap().len(), 2);
}
