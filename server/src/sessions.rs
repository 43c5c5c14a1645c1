//! The portal's sessions, kept in the database (SQLite or PostgreSQL, through the store) so
//! they survive a restart and are shared by replicas: a `tower-sessions` store whose rows
//! are keyed by a SHA-256 of the session id — the database never holds an id a browser could
//! present. Expired rows are removed by the sessions' own expiry on read and by
//! [`prune`] (hourly, from `run`).

use std::sync::Arc;

use async_trait::async_trait;
use flotilla_control::accounts::token_hash;
use flotilla_store::Store;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::{Duration as TimeDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::SESSION_COOKIE;

#[derive(Clone)]
pub struct DbSessions {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for DbSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessions")
    }
}

/// The session layer: cookie `flotilla_session`, `HttpOnly`, `SameSite=Lax` (Strict would
/// drop it on a link from mail and on a sign-in redirect), `Secure` when the portal is
/// reached over https; a session ends after `idle` without a request.
pub fn layer(
    store: Arc<dyn Store>,
    secure: bool,
    idle: std::time::Duration,
) -> SessionManagerLayer<DbSessions> {
    SessionManagerLayer::new(DbSessions { store })
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(TimeDuration::seconds(
            i64::try_from(idle.as_secs()).unwrap_or(i64::MAX),
        )))
}

fn key(id: &Id) -> String {
    token_hash(&id.to_string())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn to_chrono(at: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default()
}

#[async_trait]
impl SessionStore for DbSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A 128-bit random id colliding is all but impossible; a collision is still never
        // allowed to join two sessions.
        while self
            .store
            .load_session(&key(&record.id), chrono::Utc::now())
            .await
            .map_err(backend)?
            .is_some()
        {
            record.id = Id::default();
        }
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        // The data alone: the id stays out of the database.
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        self.store
            .save_session(&key(&record.id), &data, to_chrono(record.expiry_date))
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self
            .store
            .load_session(&key(id), chrono::Utc::now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        // The row holds no expiry of its own beyond the store's: a loaded session is alive,
        // and the manager sets its next expiry when it saves it.
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: OffsetDateTime::now_utc() + TimeDuration::minutes(1),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete_session(&key(id)).await.map_err(backend)
    }
}

/// Removes expired sessions every hour until `stop`.
pub async fn prune(store: Arc<dyn Store>, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {
                match store.prune_sessions(chrono::Utc::now()).await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sessions removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
                }
            }
        }
    }
}
