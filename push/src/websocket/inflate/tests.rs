use super::*;
use crate::websocket::deflate;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: `first` is FIN/RSV/opcode, the payload masked with [`MASK`].
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len if len < 126 => frame.push(0x80 | len as u8),
        len if len <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// The frames of `bytes` as (first byte, unmasked payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let header = Header::parse(bytes).expect("a whole header");
        let start = header.header_len;
        let end = start + header.len as usize;
        let mask = header.mask.unwrap_or([0; 4]);
        let payload = bytes[start..end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        frames.push((header.first, payload));
        bytes = &bytes[end..];
    }
    frames
}

fn subscribe_json() -> String {
    let symbol = "So11111111111111111111111111111111111111112";
    format!(
        r#"{{"type":"subscribe","data":{{"symbol":"{symbol}","interval":"s1","subscription_id":"{symbol}-{symbol}"}}}}"#
    )
}

fn drain(inflater: &mut Inflater) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    while inflater.has_output() {
        let n = inflater.take(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn a_compressed_message_becomes_one_plain_frame_also_when_fed_byte_by_byte() {
    let json = subscribe_json();
    let compressed = deflate::compress(json.as_bytes(), 15, 6).expect("compresses");
    let wire = client_frame(0x80 | RSV1 | 0x1, &compressed);
    for chunk in [wire.len(), 1, 3] {
        let mut inflater = Inflater::new(16 * 1024);
        for piece in wire.chunks(chunk) {
            inflater.feed(piece).unwrap();
        }
        let out = drain(&mut inflater);
        assert_eq!(
            frames(&out),
            vec![(0x81, json.clone().into_bytes())],
            "chunks of {chunk}"
        );
        assert_eq!(
            out[1] & 0x80,
            0x80,
            "masked, as tungstenite requires of a client"
        );
    }
}

#[test]
fn uncompressed_frames_pass_through_byte_for_byte() {
    let mut wire = client_frame(0x81, b"{\"type\":\"ping\"}");
    wire.extend(client_frame(0x89, b"hi"));
    wire.extend(client_frame(0x82, &[0u8; 300]));
    wire.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    let mut inflater = Inflater::new(16 * 1024);
    for piece in wire.chunks(5) {
        inflater.feed(piece).unwrap();
    }
    assert_eq!(drain(&mut inflater), wire);
}

#[test]
fn a_ping_between_the_fragments_of_a_compressed_message_comes_first() {
    let json = subscribe_json().repeat(3);
    let compressed = deflate::compress(json.as_bytes(), 15, 6).unwrap();
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let mut wire = client_frame(RSV1 | 0x1, a);
    wire.extend(client_frame(0x89, b"p"));
    wire.extend(client_frame(0x80, b));
    let mut inflater = Inflater::new(16 * 1024);
    inflater.feed(&wire).unwrap();
    assert_eq!(
        frames(&drain(&mut inflater)),
        vec![(0x89, b"p".to_vec()), (0x81, json.into_bytes())]
    );
}

#[test]
fn reserved_bits_where_they_do_not_belong_are_left_for_tungstenite_to_refuse() {
    // RSV1 on a control frame, and on a message's continuation: passed on unchanged (tungstenite: 1002).
    let ping = client_frame(0x80 | RSV1 | 0x9, b"");
    let mut inflater = Inflater::new(1024);
    inflater.feed(&ping).unwrap();
    assert_eq!(drain(&mut inflater), ping);
    let compressed = deflate::compress(subscribe_json().as_bytes(), 15, 6).unwrap();
    let mut wire = client_frame(RSV1 | 0x1, &compressed[..4]);
    let continuation = client_frame(0x80 | RSV1, &compressed[4..]);
    wire.extend(&continuation);
    let mut inflater = Inflater::new(1024);
    inflater.feed(&wire).unwrap();
    assert_eq!(drain(&mut inflater), continuation);
}

#[test]
fn a_new_message_inside_a_fragmented_compressed_one_is_a_protocol_error() {
    let compressed = deflate::compress(subscribe_json().as_bytes(), 15, 6).unwrap();
    let mut wire = client_frame(RSV1 | 0x1, &compressed[..4]);
    wire.extend(client_frame(0x81, b"{}"));
    let err = Inflater::new(1024).feed(&wire).unwrap_err();
    assert_eq!(err, InflateError::Interleaved);
    assert_eq!(err.close_code(), CloseCode::ProtocolError);
}

#[test]
fn too_big_before_or_after_inflating_is_1009() {
    let big = "x".repeat(100_000);
    let bomb = deflate::compress(big.as_bytes(), 15, 6).unwrap();
    assert!(bomb.len() < 1024);
    let err = Inflater::new(16 * 1024)
        .feed(&client_frame(0x80 | RSV1 | 0x1, &bomb))
        .unwrap_err();
    assert_eq!(err, InflateError::TooBig(16 * 1024));
    assert_eq!(err.close_code(), CloseCode::MessageTooBig);
    let header_only = client_frame(0x80 | RSV1 | 0x1, &[0u8; 2000]);
    let err = Inflater::new(1024).feed(&header_only[..8]).unwrap_err();
    assert_eq!(err, InflateError::TooBig(1024));
}

#[test]
fn data_that_is_not_deflate_is_1007() {
    // Block type 3 is reserved (RFC 1951 §3.2.3).
    let err = Inflater::new(1024)
        .feed(&client_frame(0x80 | RSV1 | 0x1, &[0xff, 0xff, 0xff]))
        .unwrap_err();
    assert_eq!(err, InflateError::Corrupt);
    assert_eq!(err.close_code(), CloseCode::InvalidPayload);
}

#[test]
fn an_idle_inflater_holds_no_buffers() {
    let json = subscribe_json();
    let compressed = deflate::compress(json.as_bytes(), 15, 6).unwrap();
    let mut inflater = Inflater::new(16 * 1024);
    inflater
        .feed(&client_frame(0x80 | RSV1 | 0x1, &compressed))
        .unwrap();
    drain(&mut inflater);
    assert_eq!(inflater.input.capacity(), 0);
    assert_eq!(inflater.output.capacity(), 0);
    assert!(inflater.message.is_none());
    assert!(inflater.is_at_rest(), "the stream drops it now");
    let wire = client_frame(0x80 | RSV1 | 0x1, &compressed);
    inflater.feed(&wire[..3]).unwrap();
    assert!(!inflater.is_at_rest(), "a frame header in progress");
}

#[test]
fn a_client_inflates_the_servers_unmasked_frames() {
    use crate::websocket::deflate::Deflate;
    let json = r#"{"type":"history_data","data":[]}"#.repeat(20);
    let deflate = Deflate {
        window_bits: 15,
        min_bytes: 0,
        level: 1,
    };
    let mut wire = crate::websocket::frame::text_for(&json, Some(deflate)).to_vec();
    assert_eq!(wire[0], 0x80 | RSV1 | 0x1, "sent compressed");
    let ping = crate::websocket::frame::ping();
    wire.extend_from_slice(&ping);
    let mut inflater = Inflater::for_server_frames(1 << 20);
    inflater.feed(&wire).unwrap();
    let out = drain(&mut inflater);
    assert_eq!(out[1] & 0x80, 0, "server frames stay unmasked");
    assert_eq!(
        frames(&out),
        vec![(0x81, json.into_bytes()), (0x89, Vec::new())]
    );
    // A masked frame is not the server's: passed on for tungstenite to refuse.
    let masked = client_frame(0x80 | RSV1 | 0x1, b"abc");
    let mut inflater = Inflater::for_server_frames(1024);
    inflater.feed(&masked).unwrap();
    assert_eq!(drain(&mut inflater), masked);
}

#[test]
fn whole_uncompressed_frames_can_skip_the_inflater_and_anything_else_cannot() {
    let mut two = client_frame(0x81, b"{\"msg_type\":\"ping\"}");
    two.extend(client_frame(0x89, b"x"));
    assert!(whole_plain_frames(&two));
    assert!(
        !whole_plain_frames(&two[..two.len() - 1]),
        "a frame cut short"
    );
    assert!(!whole_plain_frames(&two[..1]), "a header cut short");
    let compressed = deflate::compress(subscribe_json().as_bytes(), 15, 6).unwrap();
    assert!(!whole_plain_frames(&client_frame(
        0x80 | RSV1 | 0x1,
        &compressed
    )));
}
