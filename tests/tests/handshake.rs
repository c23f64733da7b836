//! The opening handshake of `/ws` (RFC 6455 §4.2) over raw HTTP: what is refused, with which status, and
//! the HTTP head limits; Socket.IO's Origin check beside `/ws`'s. Servers run in process.

use std::net::SocketAddr;
use std::time::Duration;

use kline_tests::raw_ws::upgrade_request;
use kline_tests::{InProcessServer, KlineServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and returns the response head (status line and headers) and as much body as came.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    // A response to HEAD has no body, whatever its Content-Length says.
    let head_only = request.starts_with("HEAD ");
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
            // A 101 keeps the connection open; so does a keep-alive error response: stop at the body.
            let text = String::from_utf8_lossy(&response);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if head_only || response.len() >= head_end + 4 + length {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s");
    String::from_utf8_lossy(&response).into_owned()
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// A valid upgrade request with `replace` applied to its text.
fn request_with(addr: SocketAddr, extra: &str, replace: (&str, &str)) -> String {
    upgrade_request(addr, extra).replacen(replace.0, replace.1, 1)
}

#[tokio::test]
async fn invalid_upgrades_are_refused_with_the_status_the_rfc_asks_and_a_reason() {
    let server = InProcessServer::start(&[]);
    let addr = server.addr();
    let key_line = "Sec-WebSocket-Key: BwcHBwcHBwcHBwcHBwcHBw==\r\n";
    assert!(
        upgrade_request(addr, "").contains(key_line),
        "the helper's key"
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("HEAD", request_with(addr, "", ("GET ", "HEAD ")), 405, ""),
        ("POST", request_with(addr, "", ("GET ", "POST ")), 405, ""),
        (
            "a key that is not base64",
            request_with(addr, "", (key_line, "Sec-WebSocket-Key: not a key\r\n")),
            400,
            "Sec-WebSocket-Key",
        ),
        (
            "a key of 15 bytes",
            request_with(
                addr,
                "",
                (key_line, "Sec-WebSocket-Key: BwcHBwcHBwcHBwcHBwcH\r\n"),
            ),
            400,
            "16 bytes",
        ),
        (
            "no version",
            request_with(addr, "", ("Sec-WebSocket-Version: 13\r\n", "")),
            400,
            "Sec-WebSocket-Version",
        ),
        (
            "version 8",
            request_with(
                addr,
                "",
                ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            ),
            426,
            "must be 13",
        ),
        ("valid", upgrade_request(addr, ""), 101, ""),
        (
            "any origin when permissive",
            upgrade_request(addr, "Origin: https://elsewhere.example\r\n"),
            101,
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, request, expected, says) in cases {
        let response = exchange(addr, &request).await;
        if status(&response) != expected || !response.contains(says) {
            failures.push(format!(
                "{name}: expected {expected} saying {says:?}, got:\n{response}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let head = exchange(addr, &request_with(addr, "", ("GET ", "HEAD "))).await;
    assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");
    let old = exchange(addr, &request_with(addr, "", ("Version: 13", "Version: 8"))).await;
    assert!(old.contains("sec-websocket-version: 13"), "{old}");
}

#[tokio::test]
async fn with_an_origin_list_other_browser_origins_get_403_and_non_browsers_pass() {
    let server = InProcessServer::start(&[
        r#"server.cors_allowed_origins=["https://spin.pet", "http://localhost:3000"]"#,
    ]);
    let addr = server.addr();
    // The same list for `/ws` and Socket.IO's WebSocket transport and its polling (browsers apply no
    // CORS to an upgrade).
    let socketio_upgrade = |extra: &str| {
        upgrade_request(addr, extra).replacen(
            "GET /ws ",
            "GET /socket.io/?EIO=4&transport=websocket ",
            1,
        )
    };
    let socketio_polling = |extra: &str| {
        format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n")
    };
    for (origin, upgraded, polled) in [
        ("Origin: https://spin.pet\r\n", 101, 200),
        ("Origin: http://localhost:3000\r\n", 101, 200),
        ("Origin: https://evil.example\r\n", 403, 403),
        ("Origin: null\r\n", 403, 403),
        ("", 101, 200),
    ] {
        for (what, request, expected) in [
            ("/ws", upgrade_request(addr, origin), upgraded),
            ("Socket.IO websocket", socketio_upgrade(origin), upgraded),
            ("Socket.IO polling", socketio_polling(origin), polled),
        ] {
            let response = exchange(addr, &request).await;
            assert_eq!(status(&response), expected, "{what} {origin:?}: {response}");
            if expected == 403 {
                assert!(response.contains("is not allowed"), "{response}");
            }
        }
    }
}

#[tokio::test]
async fn request_heads_over_the_limits_get_431() {
    let server = InProcessServer::start(&["server.max_header_bytes=8192", "server.max_headers=16"]);
    let addr = server.addr();
    let many: String = (0..20).map(|i| format!("X-Filler-{i}: x\r\n")).collect();
    let response = exchange(addr, &upgrade_request(addr, &many)).await;
    assert_eq!(status(&response), 431, "20 headers: {response}");
    let huge = format!("X-Big: {}\r\n", "y".repeat(9000));
    let response = exchange(addr, &upgrade_request(addr, &huge)).await;
    assert_eq!(status(&response), 431, "a 9 KB header: {response}");
    let response = exchange(addr, &upgrade_request(addr, "X-Fine: 1\r\n")).await;
    assert_eq!(status(&response), 101, "{response}");
}
