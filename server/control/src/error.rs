//! The control plane's public errors: semantic variants the API maps to HTTP statuses and
//! the portal to messages, plus the failures of the layers below with their source.

use flotilla_backend::BackendError;
use flotilla_domain::ValidationErrors;
use flotilla_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// 409.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// 422, with a message per field.
    #[error(transparent)]
    Invalid(ValidationErrors),
    /// 409: the operation does not apply to the resource in its current state.
    #[error("{message}")]
    InvalidState { message: String },
    /// 409: a concurrent change won; retry with fresh data.
    #[error("{message}")]
    Conflict { message: String },
    /// 401: the caller did not say who it is, or its credentials do not hold.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// 403: the caller may not do this.
    #[error("{message}")]
    Forbidden { message: String },
    /// 429: too many attempts; try again after `retry_after_seconds`.
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_seconds: u64,
    },
    /// 503: only the replica holding the leader lease does this, and this one does not
    /// (any more); retry on the leader, or once a leader is elected.
    #[error("{message}")]
    NotLeader { message: String },
    /// 400: the backend cannot do this.
    #[error("{what} is not supported by this backend")]
    NotSupported { what: &'static str },
    /// 502: the hypervisor failed.
    #[error("backend operation {operation} failed")]
    Backend {
        operation: &'static str,
        #[source]
        source: BackendError,
    },
    /// 500: the database failed.
    #[error("store operation {operation} failed")]
    Store {
        operation: &'static str,
        #[source]
        source: StoreError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status of this error: the one mapping the REST API and the portal share
    /// (401, 403, 404, 409, 422, 429, 400 for what the backend cannot do; 503 for what only the
    /// leader does; 502 when the hypervisor failed, 500 when the database did).
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::AlreadyExists { .. } | Error::InvalidState { .. } | Error::Conflict { .. } => {
                409
            }
            Error::Invalid(_) => 422,
            Error::Unauthenticated { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::TooManyAttempts { .. } => 429,
            Error::NotSupported { .. } => 400,
            Error::NotLeader { .. } => 503,
            Error::Backend { .. } => 502,
            Error::Store { .. } => 500,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid(ValidationErrors::single(field, message))
    }

    /// Wraps a store error, turning the store's answers about data into semantic errors.
    pub(crate) fn store(operation: &'static str) -> impl FnOnce(StoreError) -> Error {
        move |source| match source {
            StoreError::NotFound { kind, key } => Error::NotFound {
                kind: kind.as_str(),
                name: key,
            },
            StoreError::AlreadyExists { kind, key } => Error::AlreadyExists {
                kind: kind.as_str(),
                name: key,
            },
            StoreError::Conflict { kind, key, .. } => Error::Conflict {
                message: format!("{} {key:?} was changed concurrently; retry", kind.as_str()),
            },
            StoreError::Fenced { .. } => Error::NotLeader {
                message: format!(
                    "{operation}: this replica does not hold the leader lease, and only the \
                     leader does this; retry on the leader (GET /api/v1/control/replicas)"
                ),
            },
            source => Error::Store { operation, source },
        }
    }

    pub(crate) fn backend(operation: &'static str) -> impl FnOnce(BackendError) -> Error {
        move |source| match source {
            BackendError::NotSupported { what, .. } => Error::NotSupported { what },
            BackendError::InvalidFault(errors) => Error::Invalid(errors),
            BackendError::NotFound { id } => Error::NotFound {
                kind: "instance",
                name: id,
            },
            BackendError::UnknownZone { zone } => {
                Error::invalid("zone", format!("unknown zone {zone:?}"))
            }
            BackendError::UnknownHost { host } => {
                Error::invalid("host", format!("unknown host {host:?}"))
            }
            source => Error::Backend { operation, source },
        }
    }
}

/// The whole chain of an error, for logs (`outer: inner: innermost`).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
