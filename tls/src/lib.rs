//! TLS for every connection kline makes or accepts, in one place so every client and the server's own
//! listener behave alike.
//!
//! # Layout
//! - [`client`]: the `rustls::ClientConfig` a client uses (the Solana source's WebSocket and JSON-RPC
//!   clients, the edge's snapshot fetch, Redis, the terminal client): the system's CA certificates plus an
//!   optional extra CA file, TLS 1.2 and 1.3 only.
//! - [`server`]: the server's own certificate and key, loaded from PEM files and swappable while running
//!   (SIGHUP reloads them).
//! - [`pem`]: reading certificates and keys from PEM files, with errors that name the file and what is
//!   wrong with it.
//! - [`failure`]: what a failed handshake means in words (certificate name, expired, unknown CA, not TLS),
//!   and a log that reports each distinct cause once instead of on every retry.
//! - [`redact`]: URLs as they may be logged: API keys in the query, the path or the user info replaced by
//!   `***`.
//!
//! # Why rustls with *aws-lc-rs*
//! rustls is the TLS library of the Rust ecosystem's HTTP, WebSocket and Redis clients (reqwest,
//! tokio-tungstenite, redis), so one configuration type serves them all, and it needs no system TLS
//! library. Of its two crypto providers, *aws-lc-rs* is the one rustls recommends: it offers the
//! post-quantum hybrid key exchange X25519MLKEM768 first (what current providers and browsers negotiate),
//! while rustls 0.23.48 deprecated *ring*'s provider for lacking it. It builds cleanly here with the C
//! compiler alone (no CMake, no NASM): about 2.5 CPU-minutes once, then cached in the target directory.
//! [`install_crypto_provider`] makes it the process's provider, so a library that asks rustls for the
//! default (the `redis` crate does) gets the same one; the binaries call it first thing. (ring is in the
//! build too, as reqwest's fallback for plain-HTTP clients built without a config: no TLS connection of
//! kline's uses it.)

pub mod client;
pub mod failure;
pub mod pem;
pub mod redact;
pub mod server;

use std::path::PathBuf;

pub use client::{ClientTls, client_config};
pub use failure::{FailureLog, HandshakeFailure};
pub use redact::Redacted;
pub use server::ServerCertificate;

/// What went wrong reading certificates, keys or CA files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM file of {what}: {reason}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path} holds no {what} (expected a PEM block such as `-----BEGIN {pem_label}-----`)")]
    Empty {
        path: PathBuf,
        what: &'static str,
        pem_label: &'static str,
    },
    #[error("{path}: a certificate is not usable as a trust anchor: {reason}")]
    BadAnchor { path: PathBuf, reason: String },
    #[error("the certificate {cert} and the key {key} do not belong together: {reason}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The protocol versions kline speaks: TLS 1.3 and 1.2, nothing older (rustls has nothing older).
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider every config here is built with.
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Makes *aws-lc-rs* the process-wide default provider (for libraries that build their own configs from the
/// default). Idempotent; call it once at start.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
