//! TLS wherever kline is a client or a server, through real TLS with certificates made by the test:
//! the server's own listener (`server.tls`: `https://`, `wss://`, the terminal client with `--ca-file`, a
//! certificate reloaded on SIGHUP); the Solana source against a node with a certificate it must refuse
//! (unknown CA, wrong name, expired: each cause logged once, in words); API keys in URLs and headers that
//! reach the node and never the log; `check-config` refusing what the build cannot speak; and
//! `config/production.toml` connecting to a TLS node standing in for the provider. The Solana source's
//! ingest over TLS, event for event, is `solana.rs`'s `the_same_over_tls_with_a_private_ca`; Redis and the
//! edge's snapshot over TLS are in `multi_node_tls.rs`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kline_tests::fake_solana::{ApiKey, FakeSolana};
use kline_tests::tls::{IssuedCert, TestCa};
use kline_tests::{ServerProcess, server_binary, tui_binary, wait_until};
use serde_json::Value;

const PROGRAM: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";

fn set(key: &str, value: impl std::fmt::Display) -> [String; 2] {
    ["--set".to_owned(), format!("{key}={value}")]
}

fn path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn server_tls_args(cert: &IssuedCert) -> Vec<String> {
    [
        set("server.tls.enabled", true),
        // 3 descriptors a TLS client: the default 10,000 connections do not fit 20,000 files.
        set("websocket.max_connections", 1000),
        set("server.tls.cert_file", path(&cert.cert_file)),
        set("server.tls.key_file", path(&cert.key_file)),
    ]
    .concat()
}

fn https_client(ca: &TestCa) -> reqwest::Client {
    let tls = kline_tls::client_config(Some(&ca.ca_file)).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn run_tui(args: &[&str]) -> Output {
    let log = tempfile::NamedTempFile::new().unwrap();
    Command::new(tui_binary())
        .args(args)
        .arg("--log")
        .arg(log.path())
        .output()
        .expect("kline-tui runs")
}

/// The DER of the leaf certificate a TLS server at `127.0.0.1:port` presents for `localhost`.
async fn presented_certificate(port: u16, ca: &TestCa) -> Vec<u8> {
    let tls = kline_tls::client_config(Some(&ca.ca_file)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls);
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, socket).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(cert: &IssuedCert) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(&cert.cert_file)
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_server_with_its_own_tls_serves_https_wss_and_the_terminal_client_and_reloads_on_sighup()
{
    let ca = TestCa::new();
    let cert = ca.issue("server", &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let args = server_tls_args(&cert);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    let port = server.addr.port();
    let https = https_client(&ca);
    let base = format!("https://localhost:{port}");

    // REST over https (the simulator feeds it).
    wait_until(
        "the simulator's symbols are listed over https",
        Duration::from_secs(30),
        || async {
            let Ok(response) = https.get(format!("{base}/api/v1/symbols")).send().await else {
                return false;
            };
            let symbols: Value = response.json().await.unwrap_or_default();
            symbols.as_array().is_some_and(|list| !list.is_empty())
        },
    )
    .await;
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_err()
    );

    // The terminal client's headless modes over wss://, trusting the test CA.
    let url = format!("wss://localhost:{port}/ws");
    let ca_file = ca.ca_file.display().to_string();
    let watched = run_tui(&[
        "--url",
        &url,
        "--ca-file",
        &ca_file,
        "--interval",
        "s1",
        "watch",
        "--json",
        "--count",
        "5",
    ]);
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["type"], "connection_success", "{lines:?}");
    let snapshot = run_tui(&[
        "--url",
        &url,
        "--ca-file",
        &ca_file,
        "--interval",
        "s1",
        "--utc",
        "snapshot",
        "--width",
        "60",
        "--height",
        "12",
    ]);
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    let chart = String::from_utf8_lossy(&snapshot.stdout);
    assert!(
        chart.contains(" s1 ") && chart.lines().count() >= 10,
        "{chart}"
    );

    // Without the CA the client refuses the server, and says what to do.
    let refused = run_tui(&["--url", &url, "watch", "--json", "--count", "1"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--ca-file"), "{stderr}");

    // SIGHUP: a renewed certificate is served to new connections; a broken pair keeps the old one.
    assert_eq!(presented_certificate(port, &ca).await, der_of(&cert));
    let renewed = ca.issue("renewed", &["localhost"]);
    std::fs::copy(&renewed.cert_file, &cert.cert_file).unwrap();
    std::fs::copy(&renewed.key_file, &cert.key_file).unwrap();
    let hangup = || {
        Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap()
    };
    assert!(hangup().success());
    wait_until(
        "the renewed certificate is served",
        Duration::from_secs(20),
        || async { presented_certificate(port, &ca).await == der_of(&renewed) },
    )
    .await;
    std::fs::write(&cert.key_file, "not a key").unwrap();
    assert!(hangup().success());
    wait_until(
        "the failed reload is logged",
        Duration::from_secs(20),
        || async { server.log_text().contains("certificate not reloaded") },
    )
    .await;
    assert_eq!(presented_certificate(port, &ca).await, der_of(&renewed));
    let health = https.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(server.log_text().contains("TLS certificate reloaded"));
}

fn solana_args(fake: &FakeSolana, extra: &[[String; 2]]) -> Vec<String> {
    let mut args = [
        set("source.simulator.enabled", false),
        set("source.solana.enabled", true),
        set("source.solana.ws_url", format!("{:?}", fake.ws_url())),
        set("source.solana.rpc_url", format!("{:?}", fake.rpc_url())),
        set("source.solana.reconnect_min_ms", 50),
        set("source.solana.reconnect_max_ms", 100),
    ]
    .concat();
    args.extend(extra.concat());
    args
}

async fn solana_health(server: &ServerProcess) -> Value {
    let health: Value = reqwest::get(format!("http://{}/health", server.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["sources"]["solana"].clone()
}

/// Starts a server with `args` and waits until its Solana source is live.
async fn start_until_live(args: &[String]) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_until(
        "the Solana source is live",
        Duration::from_secs(30),
        || async { solana_health(&server).await["state"] == "live" },
    )
    .await;
    (dir, server)
}

/// Starts a server against `fake`, waits for `retries` reconnects, and returns its log.
async fn log_after_retries(fake: &FakeSolana, extra: &[[String; 2]], retries: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let args = solana_args(fake, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&dir.path().join("db"), &args);
    wait_until("the source retried", Duration::from_secs(30), || async {
        solana_health(&server).await["reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= retries
    })
    .await;
    assert_ne!(solana_health(&server).await["state"], "live");
    server.log_text()
}

#[tokio::test]
async fn each_certificate_problem_of_a_node_is_logged_once_in_words() {
    let ca = TestCa::new();
    let trusted = set("source.solana.ca_file", path(&ca.ca_file));
    let cases = [
        // (the node's certificate, extra settings, what the log must say)
        (ca.issue("unknown", &["localhost"]), None, "does not trust"),
        (
            ca.issue("other", &["node.example"]),
            Some(&trusted),
            "not issued for the host",
        ),
        (
            ca.issue_expired("expired", &["localhost"]),
            Some(&trusted),
            "has expired",
        ),
    ];
    for (cert, extra, says) in cases {
        let fake = FakeSolana::start_tls(Vec::new(), &cert).await;
        let extra: Vec<[String; 2]> = extra.into_iter().cloned().collect();
        let log = log_after_retries(&fake, &extra, 5).await;
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("TLS handshake failed"))
            .collect();
        assert_eq!(
            failures.len(),
            1,
            "{says}: once, not on every retry:\n{log}"
        );
        assert!(
            failures[0].contains(says) && failures[0].contains("WARN"),
            "{says}:\n{log}"
        );
        if extra.is_empty() {
            assert!(failures[0].contains("source.solana.ca_file"), "{log}");
        }
    }
}

#[tokio::test]
async fn api_keys_in_urls_and_headers_reach_the_node_and_never_the_log() {
    const QUERY_KEY: &str = "qk-5f0e9d8c7b6a5f4e3d2c1b0a";
    const PATH_KEY: &str = "a1b2c3d4e5f60718293a4b5c";
    const HEADER_KEY: &str = "hk-0123456789abcdef";
    let ca = TestCa::new();
    let fake = FakeSolana::start_tls(Vec::new(), &ca.issue("node", &["localhost"])).await;
    fake.require_api_key(ApiKey::Header {
        name: "x-token".into(),
        value: HEADER_KEY.into(),
    });
    let with_keys = |url: String| {
        format!(
            "{}{PATH_KEY}/?api-key={QUERY_KEY}",
            url.trim_end_matches('/').to_owned() + "/"
        )
    };
    let ca_file = set("source.solana.ca_file", path(&ca.ca_file));
    let urls = [
        set(
            "source.solana.ws_url",
            format!("{:?}", with_keys(fake.ws_url())),
        ),
        set(
            "source.solana.rpc_url",
            format!("{:?}", with_keys(fake.rpc_url())),
        ),
    ];

    // The right header: the source goes live (the node refuses requests without it).
    let mut args = solana_args(&fake, &[ca_file.clone(), urls[0].clone(), urls[1].clone()]);
    args.extend(set(
        "source.solana.headers.x_token",
        format!("{HEADER_KEY:?}"),
    ));
    let (_dir, server) = start_until_live(&args).await;
    let log = server.log_text();
    assert!(
        log.contains("api-key=***") && log.contains("/***/"),
        "URLs logged redacted:\n{log}"
    );
    drop(server);

    // A wrong header: refused, retried, and still no secret in the log or /health.
    fake.require_api_key(ApiKey::Query {
        name: "api-key".into(),
        value: "another-key".into(),
    });
    let mut wrong = vec![ca_file, urls[0].clone(), urls[1].clone()];
    wrong.push(set(
        "source.solana.headers.x_token",
        format!("{HEADER_KEY:?}"),
    ));
    let log = log_after_retries(&fake, &wrong, 3).await;
    assert!(log.contains("401"), "the refusal is logged:\n{log}");
    for secret in [QUERY_KEY, PATH_KEY, HEADER_KEY] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

fn check_config(args: &[&str]) -> Output {
    Command::new(server_binary())
        .args(args)
        .arg("check-config")
        .output()
        .expect("kline-server runs")
}

#[test]
fn check_config_refuses_a_scheme_the_build_cannot_speak_and_a_ca_file_that_does_not_parse() {
    let refused = check_config(&[
        "--set",
        "source.solana.ws_url=\"https://rpc.example/KEY0123456789abcdef\"",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("source.solana.ws_url") && stderr.contains("wss://"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let setting = format!("stream.redis_ca_file={}", path(&ca));
    let refused = check_config(&["--set", &setting]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("stream.redis_ca_file") && stderr.contains("ca.pem"),
        "{stderr}"
    );

    let accepted = check_config(&[
        "--set",
        "source.solana.ws_url=\"wss://rpc.example/ws\"",
        "--set",
        "source.solana.rpc_url=\"https://rpc.example/\"",
        "--set",
        "stream.redis_url=\"rediss://redis.example:6380/\"",
    ]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}

#[tokio::test]
async fn production_toml_starts_and_connects_to_a_tls_node_standing_in_for_the_provider() {
    let ca = TestCa::new();
    let fake = FakeSolana::start_tls(Vec::new(), &ca.issue("node", &["localhost"])).await;
    // Read at run time: a test binary reused from another checkout must not look in that checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let production = Path::new(&manifest_dir).join("../config/production.toml");
    let args = [
        ["--config".to_owned(), production.display().to_string()],
        set("source.solana.ws_url", format!("{:?}", fake.ws_url())),
        set("source.solana.rpc_url", format!("{:?}", fake.rpc_url())),
        set("source.solana.ca_file", path(&ca.ca_file)),
    ]
    .concat();
    let (_dir, server) = start_until_live(&args).await;
    assert!(server.log_text().contains(PROGRAM));
}
