//! What a failed TLS handshake means, in words an operator can act on, and a log that reports each
//! distinct cause once.
//!
//! A client that retries (the Solana source reconnects every few hundred milliseconds at first) would
//! otherwise log the same certificate error hundreds of times; [`FailureLog`] logs a cause the first time
//! it is seen for a host, and counts the repeats at debug level.

use std::collections::HashSet;
use std::error::Error;

use rustls::{CertificateError, Error as RustlsError};

/// A handshake failure found in an error's chain of sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// A stable name of the cause (`unknown-ca`, `wrong-name`, `expired`, …): what "distinct" means.
    pub kind: &'static str,
    /// The cause in words, with what to change.
    pub message: String,
}

impl HandshakeFailure {
    /// The TLS cause of `err`, if a rustls error is in its chain of sources. `ca_key`: the config key or
    /// flag that adds a CA, named in the advice for an unknown CA.
    pub fn find(err: &(dyn Error + 'static), ca_key: &str) -> Option<HandshakeFailure> {
        let mut next = Some(err);
        while let Some(current) = next {
            if let Some(tls) = current.downcast_ref::<RustlsError>() {
                return Some(Self::from_rustls(tls, ca_key));
            }
            next = match wrapped_in_io(current) {
                Some(inner) => Some(inner),
                None => current.source(),
            };
        }
        None
    }

    fn from_rustls(err: &RustlsError, ca_key: &str) -> HandshakeFailure {
        let (kind, advice) = match err {
            RustlsError::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => (
                    "unknown-ca",
                    format!(
                        "the server's certificate is signed by a CA this client does not trust: add \
                         that CA's certificate with `{ca_key}`"
                    ),
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
                    "wrong-name",
                    "the certificate is not issued for the host in the URL: use the host name the \
                     certificate names"
                        .to_owned(),
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                    "expired",
                    "the server's certificate has expired (or this machine's clock is wrong)".to_owned(),
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                    "not-yet-valid",
                    "the server's certificate is not valid yet (or this machine's clock is wrong)"
                        .to_owned(),
                ),
                _ => ("bad-certificate", "the server's certificate was refused".to_owned()),
            },
            RustlsError::InvalidMessage(_) | RustlsError::InappropriateMessage { .. } => (
                "not-tls",
                "the server did not answer in TLS: is the URL's scheme right (ws:// or http:// for a \
                 plain port)?"
                    .to_owned(),
            ),
            RustlsError::AlertReceived(_) => (
                "alert",
                "the server refused the handshake".to_owned(),
            ),
            _ => ("tls", "TLS failed".to_owned()),
        };
        HandshakeFailure {
            kind,
            message: format!("{advice} ({err})"),
        }
    }
}

/// rustls errors travel inside `io::Error`s through tokio-rustls, hyper and tungstenite; an `io::Error`'s
/// `source()` skips the error it wraps (it returns that error's source), so the walk steps into it here.
fn wrapped_in_io<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    Some(inner)
}

/// Remembers which (host, cause) pairs were reported, so each is logged at warn once.
#[derive(Debug, Default)]
pub struct FailureLog {
    seen: HashSet<(String, &'static str)>,
}

/// Distinct causes remembered at most (the set is cleared beyond, so it cannot grow for ever).
const MAX_REMEMBERED: usize = 64;

impl FailureLog {
    /// Logs `failure` towards the endpoint `url` (by its host and port only: no credentials) at warn the
    /// first time, at debug after; returns whether it was new.
    pub fn report(&mut self, client: &str, url: &str, failure: &HandshakeFailure) -> bool {
        let host = host_and_port(url);
        let host = host.as_str();
        if self.seen.len() >= MAX_REMEMBERED {
            self.seen.clear();
        }
        let new = self.seen.insert((host.to_owned(), failure.kind));
        if new {
            tracing::warn!(
                client,
                host,
                cause = failure.kind,
                "TLS handshake failed: {}",
                failure.message
            );
        } else {
            tracing::debug!(
                client,
                host,
                cause = failure.kind,
                "TLS handshake failed again: {}",
                failure.message
            );
        }
        new
    }

    /// Forgets what was reported (after a success, so a cause that comes back is reported again).
    pub fn clear(&mut self) {
        self.seen.clear();
    }
}

/// `host:port` of a URL (`host` alone where the scheme has no known port and none is given).
fn host_and_port(url: &str) -> String {
    let Ok(url) = url::Url::parse(url) else {
        return String::new();
    };
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_inside_io_errors_is_found_and_named() {
        let tls = RustlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(io);
        let failure = HandshakeFailure::find(&outer, "source.solana.ca_file").unwrap();
        assert_eq!(failure.kind, "unknown-ca");
        assert!(
            failure.message.contains("source.solana.ca_file"),
            "{}",
            failure.message
        );
        assert!(HandshakeFailure::find(&std::io::Error::other("refused"), "k").is_none());
    }

    #[test]
    fn each_cause_is_reported_once_per_host() {
        let mut log = FailureLog::default();
        let failure = HandshakeFailure::from_rustls(
            &RustlsError::InvalidCertificate(CertificateError::Expired),
            "k",
        );
        assert!(log.report("solana", "wss://a/ws?api-key=1", &failure));
        assert!(
            !log.report("solana", "https://a:443/", &failure),
            "the same host and port"
        );
        assert!(log.report("solana", "wss://b/ws", &failure));
        log.clear();
        assert!(log.report("solana", "wss://a/ws", &failure));
        assert_eq!(host_and_port("rediss://u:p@redis:6380/0"), "redis:6380");
    }
}
