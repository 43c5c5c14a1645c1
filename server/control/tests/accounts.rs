//! Accounts on the fleet's clock: tokens expire when their time comes, whatever the cache
//! holds; the first start's Owner; a token's rights follow its user's.

use std::sync::Arc;

use flotilla_control::accounts::{Accounts, NewToken, NewUser};
use flotilla_control::{Error, EventBus, ManualClock};
use flotilla_domain::access::Role;

async fn accounts() -> (Arc<Accounts>, Arc<ManualClock>) {
    let store = flotilla_store::connect("sqlite::memory:").await.unwrap();
    let clock = Arc::new(ManualClock::new("2026-12-01T12:00:00Z".parse().unwrap()));
    let accounts = Accounts::new(store, clock.clone(), EventBus::new(16));
    (accounts, clock)
}

#[tokio::test]
async fn a_token_is_refused_once_it_expires_even_while_cached() {
    let (accounts, clock) = accounts().await;
    let generated = accounts.bootstrap(None).await.unwrap().expect("a password");
    assert!(generated.len() >= 20);
    assert_eq!(accounts.bootstrap(None).await.unwrap(), None, "once only");
    let admin = accounts
        .sign_in("admin", &generated, "127.0.0.1")
        .await
        .unwrap();
    let created = accounts
        .create_token(
            &admin,
            NewToken {
                name: "short".into(),
                expires_in_days: Some(1),
                ..NewToken::default()
            },
        )
        .await
        .unwrap();
    let principal = accounts.authenticate_token(&created.token).await.unwrap();
    assert_eq!(principal.actor, "admin/short");
    assert!(principal.allows(Role::Owner, None));
    clock.advance(chrono::Duration::hours(25));
    let refused = accounts.authenticate_token(&created.token).await;
    assert!(
        matches!(refused, Err(Error::Unauthenticated { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_token_follows_its_user_down_but_never_up() {
    let (accounts, _clock) = accounts().await;
    accounts
        .create_user(
            NewUser {
                name: "dana".into(),
                password: "dana-password".into(),
                role: Some(Role::Contributor),
            },
            "test",
        )
        .await
        .unwrap();
    let dana = accounts
        .sign_in("dana", "dana-password", "127.0.0.1")
        .await
        .unwrap();
    let created = accounts
        .create_token(
            &dana,
            NewToken {
                name: "ci".into(),
                ..NewToken::default()
            },
        )
        .await
        .unwrap();
    // Demoted: the token (cached a moment ago) holds no more than the user now does.
    accounts
        .assign_role("dana", Role::Reader, None, "test")
        .await
        .unwrap();
    let principal = accounts.authenticate_token(&created.token).await.unwrap();
    assert!(principal.allows(Role::Reader, None));
    assert!(!principal.allows(Role::Operator, None));
    // Wrong passwords are refused and name the field-less reason only.
    let wrong = accounts
        .sign_in("dana", "not-her-password", "127.0.0.1")
        .await;
    assert!(matches!(wrong, Err(Error::Unauthenticated { .. })));
    // Bad input names its fields and creates nothing.
    let bad = accounts
        .create_user(
            NewUser {
                name: "Bad Name".into(),
                password: "short".into(),
                role: None,
            },
            "test",
        )
        .await;
    let Err(Error::Invalid(errors)) = bad else {
        panic!("{bad:?}")
    };
    let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "password"]);
    assert_eq!(accounts.list_users().await.unwrap().len(), 1);
}
