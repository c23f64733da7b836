//! Certificates made by the test: a private CA ([`TestCa`]) that issues server certificates for chosen
//! names (or already expired ones), written as PEM files for the binaries' `*_ca_file`, `--ca-file` and
//! `server.tls.*` settings, and a [`serve_tls`] accept loop that puts an axum router behind TLS (the fake
//! Solana node's, a test server's).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;

/// A CA of the test's own, with its certificate in `<dir>/ca.pem`.
pub struct TestCa {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    pub ca_file: PathBuf,
}

/// A server certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        kline_tls::install_crypto_provider();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kline test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).unwrap();
        TestCa {
            dir,
            issuer: Issuer::new(params, key),
            ca_file,
        }
    }

    /// A certificate for `names` (e.g. `localhost`), valid now, in `<dir>/<file_stem>.{crt,key}`.
    pub fn issue(&self, file_stem: &str, names: &[&str]) -> IssuedCert {
        self.issue_with(file_stem, names, |_| {})
    }

    /// A certificate for `names` that expired in 2020.
    pub fn issue_expired(&self, file_stem: &str, names: &[&str]) -> IssuedCert {
        self.issue_with(file_stem, names, |params| {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        })
    }

    fn issue_with(
        &self,
        file_stem: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> IssuedCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let issued = IssuedCert {
            cert_file: self.dir.path().join(format!("{file_stem}.crt")),
            key_file: self.dir.path().join(format!("{file_stem}.key")),
        };
        std::fs::write(&issued.cert_file, cert.pem()).unwrap();
        std::fs::write(&issued.key_file, key.serialize_pem()).unwrap();
        issued
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl IssuedCert {
    /// A rustls server config serving this certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        kline_tls::ServerCertificate::load(&self.cert_file, &self.key_file)
            .unwrap()
            .server_config()
    }
}

/// Serves `app` over TLS on `listener` (HTTP/1.1 with upgrades, so WebSocket routes work) until the
/// runtime ends.
pub fn serve_tls(listener: TcpListener, app: Router, tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            // As servers in front of real nodes (nginx, envoy) do: small messages are sent at once.
            let _ = socket.set_nodelay(true);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that refuses our certificate ends here: that is what some tests want.
                let Ok(stream) = acceptor.accept(socket).await else {
                    return;
                };
                let service = TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}
