//! TLS termination: PEM parsing into a rustls server config (ring provider).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::LbError;

const CERT: &str = "certificate_pem";
const KEY: &str = "private_key_pem";

/// Checks that the PEM certificate chain and private key parse and belong together, so the
/// control plane can reject bad input before anything is applied.
pub fn validate_tls(certificate_pem: &str, private_key_pem: &str) -> Result<(), LbError> {
    server_config(certificate_pem, private_key_pem).map(|_| ())
}

/// Builds the acceptor config: ALPN `h2` then `http/1.1`.
pub(crate) fn server_config(
    certificate_pem: &str,
    private_key_pem: &str,
) -> Result<Arc<ServerConfig>, LbError> {
    let tls = |field, message: String| LbError::Tls { field, message };
    let chain = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(CERT, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(tls(CERT, "no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
        .map_err(|e| tls(KEY, format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(CERT, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                tls(KEY, "does not match the certificate's public key".into())
            }
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => {
                tls(CERT, e.to_string())
            }
            rustls::Error::General(_) => tls(KEY, e.to_string()),
            other => tls(CERT, other.to_string()),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    fn field(r: Result<(), LbError>) -> &'static str {
        match r {
            Err(LbError::Tls { field, .. }) => field,
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_matching_pair() {
        let (cert, key) = pair();
        validate_tls(&cert, &key).unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        assert_eq!(field(validate_tls("garbage", &key)), CERT);
        assert_eq!(field(validate_tls(&cert, "garbage")), KEY);
        assert_eq!(field(validate_tls(&cert, &other_key)), KEY);
        assert_eq!(field(validate_tls(&key, &key)), CERT);
    }
}
