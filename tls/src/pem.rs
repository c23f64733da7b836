//! Certificates and private keys from PEM files, with errors that say which file and what is wrong.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Parse {
            path: path.to_owned(),
            what: "certificates",
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "certificate",
            pem_label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            path: path.to_owned(),
            what: "private key",
            pem_label: "PRIVATE KEY",
        },
        other => TlsError::Parse {
            path: path.to_owned(),
            what: "a private key",
            reason: other.to_string(),
        },
    })
}
