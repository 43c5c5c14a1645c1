//! Errors returned by [`LoadBalancer::upsert_frontend`](crate::LoadBalancer::upsert_frontend).

/// Errors applying a frontend. Nothing is changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// The listen address could not be bound (in use, permission, not local).
    #[error("cannot listen on port {port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key is unusable; `field` is `certificate_pem` or `private_key_pem`.
    #[error("invalid {field}: {message}")]
    Tls {
        field: &'static str,
        message: String,
    },
}
