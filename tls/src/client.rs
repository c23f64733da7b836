//! The TLS configuration of kline's clients: which servers they trust.
//!
//! Trusted: the system's CA certificates (Debian's `ca-certificates`, read once per process through
//! `rustls-native-certs`) plus, per client, an optional extra CA file for a private node or a self-signed
//! test server. TLS 1.3 and 1.2 only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::{PROTOCOL_VERSIONS, TlsError, crypto_provider, pem};

/// What one client trusts beyond the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// A PEM file of extra CA certificates (none: the system's roots only).
    pub ca_file: Option<PathBuf>,
}

impl ClientTls {
    /// `ca_file` as configured: an empty path means none.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> ClientTls {
        let path: PathBuf = ca_file.into();
        ClientTls {
            ca_file: (!path.as_os_str().is_empty()).then_some(path),
        }
    }

    /// The client config, or what is wrong with the CA file.
    pub fn config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        client_config(self.ca_file.as_deref())
    }

    /// The trusted CA certificates as one PEM text (system roots, then the extra CA file): for a library
    /// that takes roots as PEM bytes and replaces the system's with them (the `redis` crate).
    pub fn roots_pem(&self) -> Result<Vec<u8>, TlsError> {
        let mut pem = Vec::new();
        for cert in system_roots().iter().chain(self.extra_roots()?.iter()) {
            pem.extend_from_slice(pem_block(cert).as_bytes());
        }
        Ok(pem)
    }

    fn extra_roots(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        match &self.ca_file {
            Some(path) => pem::certificates(path),
            None => Ok(Vec::new()),
        }
    }
}

/// A client config trusting the system's roots and the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        for cert in pem::certificates(path)? {
            roots.add(cert).map_err(|err| TlsError::BadAnchor {
                path: path.to_owned(),
                reason: err.to_string(),
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's CA certificates, read once. A machine without any (no `ca-certificates` package) gets a
/// warning here and trusts only the extra CA files.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for err in &found.errors {
            tracing::warn!(error = %err, "reading the system's CA certificates");
        }
        if found.certs.is_empty() {
            tracing::warn!(
                "no system CA certificates found (install Debian's `ca-certificates`): only the \
                 configured CA files are trusted"
            );
        }
        found.certs
    })
}

fn pem_block(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn pem_blocks_read_back_as_the_same_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert;
        let der = cert.der().clone();
        let pem = pem_block(&der);
        let back: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![der]);
    }

    #[test]
    fn the_extra_ca_follows_the_system_roots_in_roots_pem() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert;
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        let pem = ClientTls::with_ca_file(&path).roots_pem().unwrap();
        let all: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(all.len(), system_roots().len() + 1);
        assert_eq!(all.last().unwrap(), cert.der());
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("no certificate"),
            "{err}"
        );
        let missing = client_config(Some(&dir.path().join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot read") && missing.contains("missing.pem"),
            "{missing}"
        );
        assert!(ClientTls::with_ca_file("").ca_file.is_none());
    }
}
