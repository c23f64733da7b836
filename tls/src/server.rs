//! The server's own certificate: loaded from PEM files, served to every handshake, and swapped for the
//! files' new contents on [`ServerCertificate::reload`] (the server calls it on SIGHUP), so a renewed
//! certificate takes effect without dropping a connection. A reload that fails keeps the old certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{PROTOCOL_VERSIONS, TlsError, crypto_provider, pem};

/// A certificate chain and its key from two PEM files, swappable while the server runs.
#[derive(Debug)]
pub struct ServerCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCertificate {
    /// Loads `cert_file` (the chain, leaf first) and `key_file`, checking that they belong together.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerCertificate>, TlsError> {
        let key = certified_key(cert_file, key_file)?;
        Ok(Arc::new(ServerCertificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(key),
        }))
    }

    /// Reads the files again; on success new handshakes use them, on failure the old pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = key;
        Ok(())
    }

    /// The leaf certificate now served (DER), e.g. to tell which one a reload installed.
    pub fn leaf(&self) -> Vec<u8> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// A server config that serves this certificate (HTTP/1.1 over TLS 1.2 or 1.3, no client certificates).
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = pem::certificates(cert_file)?;
    let key = pem::private_key(key_file)?;
    CertifiedKey::from_der(chain, key, &crypto_provider())
        .map(Arc::new)
        .map_err(|err| TlsError::KeyMismatch {
            cert: cert_file.to_owned(),
            key: key_file.to_owned(),
            reason: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        (cert, key, pair.cert.der().to_vec())
    }

    #[test]
    fn a_reload_swaps_the_certificate_and_a_failed_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, first) = write_pair(dir.path(), "a");
        let served = ServerCertificate::load(&cert, &key).unwrap();
        assert_eq!(served.leaf(), first);

        let (cert_b, key_b, second) = write_pair(dir.path(), "b");
        std::fs::copy(&cert_b, &cert).unwrap();
        std::fs::copy(&key_b, &key).unwrap();
        served.reload().unwrap();
        assert_eq!(served.leaf(), second);

        std::fs::write(&key, "garbage").unwrap();
        let err = served.reload().unwrap_err().to_string();
        assert!(
            err.contains("a.key") && err.contains("no private key"),
            "{err}"
        );
        assert_eq!(
            served.leaf(),
            second,
            "a failed reload keeps what was served"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _, _) = write_pair(dir.path(), "a");
        let (_, other_key, _) = write_pair(dir.path(), "b");
        let err = ServerCertificate::load(&cert, &other_key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not belong together"), "{err}");
    }
}
