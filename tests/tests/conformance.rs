//! RFC 6455 conformance of `/ws`, table-driven over raw frames, in the case groups of the Autobahn|Testsuite
//! (which needs Python 2, absent here): framing, pings and pongs, reserved bits, opcodes, fragmentation,
//! UTF-8 handling, close handling, limits, permessage-deflate (RFC 7692). Each case runs on its own
//! connection to an in-process server.

use std::time::Duration;

use kline_tests::raw_ws::*;
use kline_tests::{InProcessServer, KlineServer, metric};

const WAIT: Duration = Duration::from_secs(10);

/// What the server must do after a case's frames.
#[derive(Debug, Clone)]
enum Expect {
    /// Answer with a close frame carrying this code, then close TCP.
    Close(u16),
    /// Answer with a pong carrying this payload; the connection stays usable.
    Pong(Vec<u8>),
    /// Answer the (JSON) `ping` request the frames carry with a `pong` message; the connection stays usable.
    PongMessage,
}

struct Case {
    /// Extra handshake header lines (an extension offer), or "".
    offer: &'static str,
    group: &'static str,
    name: &'static str,
    send: Vec<RawFrame>,
    expect: Expect,
}

fn case(group: &'static str, name: &'static str, send: Vec<RawFrame>, expect: Expect) -> Case {
    Case {
        offer: "",
        group,
        name,
        send,
        expect,
    }
}

/// A case on a connection that negotiated permessage-deflate.
fn deflate_case(name: &'static str, send: Vec<RawFrame>, expect: Expect) -> Case {
    Case {
        offer: BROWSER_OFFER,
        ..case("permessage-deflate", name, send, expect)
    }
}

/// The cases of the permessage-deflate group (RFC 7692; Autobahn groups 12 and 13 send, this receives).
fn deflate_cases(max_message_bytes: usize) -> Vec<Case> {
    use Expect::*;
    let ping = RawFrame::deflated_text(PING_REQUEST.as_bytes());
    let long_ping = format!(r#"{{"msg_type":"ping","pad":"{}"}}"#, "ab".repeat(1000));
    let compressed = deflate(long_ping.as_bytes());
    let (first, second) = compressed.split_at(compressed.len() / 2);
    let fragment = |rsv, opcode, fin, payload: &[u8]| RawFrame {
        fin,
        rsv,
        opcode,
        masked: true,
        payload: payload.to_vec(),
    };
    let mut not_utf8 = br#"{"msg_type":"ping","x":""#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    not_utf8.extend_from_slice(br#""}"#);
    let bomb = format!(
        r#"{{"msg_type":"ping","pad":"{}"}}"#,
        "x".repeat(max_message_bytes * 4)
    );
    vec![
        deflate_case(
            "a compressed request is answered",
            vec![ping.clone()],
            PongMessage,
        ),
        deflate_case(
            "an uncompressed request on a compressed connection is answered",
            vec![RawFrame::text(PING_REQUEST)],
            PongMessage,
        ),
        deflate_case(
            "a compressed message in fragments (RSV1 on the first only)",
            vec![
                fragment(0b100, OP_TEXT, false, first),
                fragment(0, OP_CONTINUATION, true, second),
            ],
            PongMessage,
        ),
        deflate_case(
            "a ping between the fragments of a compressed message is answered",
            vec![
                fragment(0b100, OP_TEXT, false, first),
                RawFrame::new(OP_PING, *b"mid"),
                fragment(0, OP_CONTINUATION, true, second),
            ],
            Pong(b"mid".to_vec()),
        ),
        deflate_case(
            "an empty compressed message is read (and is not JSON)",
            vec![RawFrame::new(OP_TEXT, vec![0x00]).with_rsv(0b100), ping],
            PongMessage,
        ),
        deflate_case(
            "RSV1 on a control frame is a protocol error",
            vec![RawFrame::new(OP_PING, *b"x").with_rsv(0b100)],
            Close(1002),
        ),
        deflate_case(
            "RSV1 on a continuation is a protocol error",
            vec![
                fragment(0b100, OP_TEXT, false, first),
                fragment(0b100, OP_CONTINUATION, true, second),
            ],
            Close(1002),
        ),
        deflate_case(
            "a new message inside a fragmented compressed one is a protocol error",
            vec![
                fragment(0b100, OP_TEXT, false, first),
                RawFrame::text(PING_REQUEST),
            ],
            Close(1002),
        ),
        deflate_case(
            "RSV2 stays reserved with compression on",
            vec![RawFrame::text(PING_REQUEST).with_rsv(0b010)],
            Close(1002),
        ),
        deflate_case(
            "data that is not deflate is invalid payload",
            vec![RawFrame::new(OP_TEXT, vec![0xff, 0xff, 0xff]).with_rsv(0b100)],
            Close(1007),
        ),
        deflate_case(
            "a compressed text that inflates to invalid UTF-8",
            vec![RawFrame::deflated_text(&not_utf8)],
            Close(1007),
        ),
        deflate_case(
            "a small compressed message that inflates above max_message_bytes",
            vec![RawFrame::deflated_text(bomb.as_bytes())],
            Close(1009),
        ),
        case(
            "permessage-deflate",
            "RSV1 when no extension was negotiated stays a protocol error",
            vec![RawFrame::deflated_text(PING_REQUEST.as_bytes())],
            Close(1002),
        ),
    ]
}

const PING_REQUEST: &str = r#"{"msg_type":"ping"}"#;

/// `text` cut into `n` fragments (a text frame, continuations, the last final).
fn fragments(text: &[u8], n: usize) -> Vec<RawFrame> {
    let size = text.len().div_ceil(n);
    let chunks: Vec<&[u8]> = text.chunks(size).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| RawFrame {
            fin: i == last,
            rsv: 0,
            opcode: if i == 0 { OP_TEXT } else { OP_CONTINUATION },
            masked: true,
            payload: chunk.to_vec(),
        })
        .collect()
}

fn cases(max_message_bytes: usize) -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        // 1. Framing
        case(
            "framing",
            "a text request is answered",
            vec![RawFrame::text(PING_REQUEST)],
            PongMessage,
        ),
        case(
            "framing",
            "a 16-bit length is read",
            vec![RawFrame::text(&format!(
                r#"{{"msg_type":"ping","pad":"{}"}}"#,
                "x".repeat(300)
            ))],
            PongMessage,
        ),
        case(
            "framing",
            "an unmasked client frame is a protocol error",
            vec![RawFrame::text(PING_REQUEST).unmasked()],
            Close(1002),
        ),
        // 2. Pings and pongs
        case(
            "pings",
            "a ping is answered with its payload",
            vec![RawFrame::new(OP_PING, *b"hello")],
            Pong(b"hello".to_vec()),
        ),
        case(
            "pings",
            "an empty ping gets an empty pong",
            vec![RawFrame::new(OP_PING, vec![])],
            Pong(vec![]),
        ),
        case(
            "pings",
            "a 125-byte ping is answered whole",
            vec![RawFrame::new(OP_PING, vec![0xfe; 125])],
            Pong(vec![0xfe; 125]),
        ),
        case(
            "pings",
            "a 126-byte ping is a protocol error",
            vec![RawFrame::new(OP_PING, vec![0xfe; 126])],
            Close(1002),
        ),
        case(
            "pings",
            "an unsolicited pong is ignored",
            vec![
                RawFrame::new(OP_PONG, *b"unasked"),
                RawFrame::text(PING_REQUEST),
            ],
            PongMessage,
        ),
        case(
            "pings",
            "a fragmented ping is a protocol error",
            vec![RawFrame::new(OP_PING, *b"a").not_final()],
            Close(1002),
        ),
    ];
    // 3. Reserved bits: no extension is negotiated on these connections.
    for (name, rsv) in [
        ("RSV1 without an extension", 0b100),
        ("RSV2", 0b010),
        ("RSV3", 0b001),
        ("all RSV bits", 0b111),
    ] {
        cases.push(case(
            "reserved bits",
            name,
            vec![RawFrame::text(PING_REQUEST).with_rsv(rsv)],
            Close(1002),
        ));
    }
    cases.push(case(
        "reserved bits",
        "RSV on a ping",
        vec![RawFrame::new(OP_PING, *b"x").with_rsv(0b010)],
        Close(1002),
    ));
    // 4. Opcodes
    for (name, opcode) in [
        ("reserved data opcode 3", 3),
        ("reserved data opcode 7", 7),
        ("reserved control opcode 0xB", 0xB),
        ("reserved control opcode 0xF", 0xF),
    ] {
        cases.push(case(
            "opcodes",
            name,
            vec![RawFrame::new(opcode, *b"x")],
            Close(1002),
        ));
    }
    // 5. Fragmentation
    cases.extend([
        case(
            "fragmentation",
            "a request in three fragments",
            fragments(PING_REQUEST.as_bytes(), 3),
            PongMessage,
        ),
        case(
            "fragmentation",
            "a ping between fragments is answered first",
            {
                let mut frames = fragments(PING_REQUEST.as_bytes(), 2);
                frames.insert(1, RawFrame::new(OP_PING, *b"mid"));
                frames
            },
            Pong(b"mid".to_vec()),
        ),
        case(
            "fragmentation",
            "a continuation without a start is a protocol error",
            vec![RawFrame::new(OP_CONTINUATION, *b"x")],
            Close(1002),
        ),
        case(
            "fragmentation",
            "a new message inside a fragmented one is a protocol error",
            vec![
                RawFrame::text("{").not_final(),
                RawFrame::text(PING_REQUEST),
            ],
            Close(1002),
        ),
        case(
            "fragmentation",
            "a fragmented close is a protocol error",
            vec![RawFrame::close(1000, b"").not_final()],
            Close(1002),
        ),
    ]);
    // 6. UTF-8 handling
    let kosme = "κόσμε".as_bytes();
    let mut split_invalid = kosme.to_vec();
    split_invalid.extend_from_slice(&[0xed, 0xa0, 0x80]); // an encoded surrogate: not UTF-8
    cases.extend([
        case(
            "utf-8",
            "valid multi-byte text split inside a character",
            fragments(
                format!(r#"{{"msg_type":"ping","x":"{}"}}"#, "κόσμε").as_bytes(),
                5,
            ),
            PongMessage,
        ),
        case(
            "utf-8",
            "text that is not UTF-8",
            vec![RawFrame::new(OP_TEXT, vec![0x7b, 0xff, 0xfe, 0x7d])],
            Close(1007),
        ),
        case(
            "utf-8",
            "invalid UTF-8 split across fragments",
            fragments(&split_invalid, 3),
            Close(1007),
        ),
        case(
            "utf-8",
            "a truncated character at the end",
            vec![RawFrame::new(OP_TEXT, vec![0xce])],
            Close(1007),
        ),
    ]);
    // 7. Close handling: the client's close is echoed (its code, 1000 when none), then TCP closes.
    cases.extend([
        case(
            "close",
            "close 1000 is echoed",
            vec![RawFrame::close(1000, b"bye")],
            Close(1000),
        ),
        case(
            "close",
            "an empty close is answered with 1000",
            vec![RawFrame::new(OP_CLOSE, vec![])],
            Close(1000),
        ),
        case(
            "close",
            "close 1001 is echoed",
            vec![RawFrame::close(1001, b"")],
            Close(1001),
        ),
        case(
            "close",
            "application code 3000 is echoed",
            vec![RawFrame::close(3000, b"")],
            Close(3000),
        ),
        case(
            "close",
            "private code 4999 is echoed",
            vec![RawFrame::close(4999, b"")],
            Close(4999),
        ),
        case(
            "close",
            "close 1011 is echoed",
            vec![RawFrame::close(1011, b"")],
            Close(1011),
        ),
        case(
            "close",
            "application code 3999 is echoed",
            vec![RawFrame::close(3999, b"")],
            Close(3999),
        ),
        case(
            "close",
            "a 1-byte close payload is a protocol error",
            vec![RawFrame::new(OP_CLOSE, vec![0x03])],
            Close(1002),
        ),
        case(
            "close",
            "a close reason of 123 bytes is fine",
            vec![RawFrame::close(1000, &[b'r'; 123])],
            Close(1000),
        ),
        case(
            "close",
            "a close payload of 126 bytes is a protocol error",
            vec![RawFrame::close(1000, &[b'r'; 124])],
            Close(1002),
        ),
        // tungstenite reports a close reason that is not UTF-8 exactly like a text message that is not
        // (1007); Autobahn 7.5.1 accepts 1002 or 1007.
        case(
            "close",
            "a close reason that is not UTF-8",
            vec![RawFrame::close(1000, &[0xff, 0xfe])],
            Close(1007),
        ),
        case(
            "close",
            "a close reason cut inside a UTF-8 sequence",
            vec![RawFrame::close(1000, &[b'o', b'k', 0xe2, 0x82])],
            Close(1007),
        ),
        case(
            "close",
            "nothing after the close is answered",
            vec![RawFrame::close(1000, b""), RawFrame::text(PING_REQUEST)],
            Close(1000),
        ),
    ]);
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let name: &'static str = Box::leak(format!("invalid close code {code}").into_boxed_str());
        cases.push(case(
            "close",
            name,
            vec![RawFrame::close(code, b"")],
            Close(1002),
        ));
    }
    // 9. Limits
    let big = format!(
        r#"{{"msg_type":"ping","pad":"{}"}}"#,
        "x".repeat(max_message_bytes)
    );
    cases.extend([
        case(
            "limits",
            "a frame above max_message_bytes",
            vec![RawFrame::text(&big)],
            Close(1009),
        ),
        case(
            "limits",
            "a fragmented message above max_message_bytes",
            fragments(big.as_bytes(), 4),
            Close(1009),
        ),
    ]);
    cases
}

/// Runs one case on a fresh connection; panics (with the reason) if the server does not do what it must.
async fn run(addr: std::net::SocketAddr, offer: &str, send: Vec<RawFrame>, expect: Expect) {
    let mut client = RawClient::connect_with(addr, offer).await;
    assert_eq!(
        client
            .handshake
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        !offer.is_empty(),
        "compression negotiated exactly when offered: {}",
        client.handshake
    );
    let hello = client.read(WAIT).await;
    assert!(
        matches!(&hello, Read::Frame(f) if f.opcode == OP_TEXT
            && String::from_utf8_lossy(&f.message()).contains("connection_success")),
        "first frame: {hello:?}"
    );
    for frame in &send {
        client.send(frame).await;
    }
    match expect {
        Expect::Close(code) => {
            let close = client
                .close_frame(WAIT)
                .await
                .expect("a close frame before TCP ends");
            assert_eq!(close.close_code(), Some(code), "close frame {close:?}");
            assert!(close.fin && !close.masked && close.rsv == 0, "{close:?}");
            assert!(client.ends(WAIT).await, "TCP closes after the close frame");
            return;
        }
        Expect::Pong(payload) => match client.read_control(WAIT).await {
            Read::Frame(frame) => {
                assert_eq!((frame.opcode, frame.payload), (OP_PONG, payload));
            }
            Read::Eof => panic!("the server closed instead of answering the ping"),
        },
        Expect::PongMessage => loop {
            match client.read(WAIT).await {
                Read::Frame(frame) if frame.opcode == OP_TEXT => {
                    let text = String::from_utf8(frame.message()).expect("UTF-8");
                    if text.contains(r#""type":"error""#) {
                        continue;
                    }
                    assert!(text.contains(r#""type":"pong""#), "{text}");
                    break;
                }
                Read::Frame(frame) if matches!(frame.opcode, OP_PING | OP_PONG) => {}
                other => panic!("expected a pong message, got {other:?}"),
            }
        },
    }
    // Still usable, and a clean close at the end.
    client.send(&RawFrame::text(PING_REQUEST)).await;
    client.send(&RawFrame::close(1000, b"done")).await;
    let close = client.close_frame(WAIT).await.expect("the close is echoed");
    assert_eq!(close.close_code(), Some(1000));
    assert!(client.ends(WAIT).await, "TCP closes after the echo");
}

#[tokio::test]
async fn every_case_of_every_group_behaves_as_rfc_6455_requires() {
    let max = 4096;
    let server = InProcessServer::start(&[&format!("websocket.max_message_bytes={max}")]);
    let mut cases = cases(max);
    cases.extend(deflate_cases(max));
    let mut failures = Vec::new();
    for Case {
        offer,
        group,
        name,
        send,
        expect,
    } in cases
    {
        let outcome = tokio::spawn(run(server.addr(), offer, send, expect.clone())).await;
        if let Err(err) = outcome {
            let reason = err
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_default();
            failures.push(format!("[{group}] {name} (expected {expect:?}): {reason}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn protocol_violations_are_counted_by_close_code() {
    let server = InProcessServer::start(&["websocket.max_message_bytes=1024"]);
    let violations = [
        (RawFrame::text(PING_REQUEST).unmasked(), 1002),
        (RawFrame::new(OP_TEXT, vec![0xff]), 1007),
        (RawFrame::text(&"x".repeat(2048)), 1009),
        (RawFrame::close(999, b""), 1002),
        (RawFrame::close(2999, b"x"), 1002),
    ];
    for (frame, code) in violations {
        run(server.addr(), "", vec![frame], Expect::Close(code)).await;
    }
    assert_eq!(
        metric(&server, "kline_protocol_error_closes_total").await,
        3.0
    );
    assert_eq!(
        metric(&server, "kline_invalid_payload_closes_total").await,
        1.0
    );
    assert_eq!(
        metric(&server, "kline_message_too_big_closes_total").await,
        1.0
    );
}
