//! Server-to-client WebSocket frames (RFC 6455 §5.2), encoded once into shared bytes.
//!
//! A candle update is encoded into one frame by the hub and the same bytes are written to every
//! subscriber's socket, so a delivery is a single `write` of a shared buffer. Server frames are never
//! masked and never fragmented. On a connection that negotiated permessage-deflate ([`super::deflate`]), a
//! text message may be compressed (RSV1 set); the compressed `kline_data` frame is shared the same way.

use bytes::{BufMut, Bytes, BytesMut};
use kline_protocol::{KlineData, ServerMessage};

use super::deflate::{self, Deflate};
use kline_pipeline::feed::CandleUpdate;

const FIN: u8 = 0x80;
/// Set on the first frame of a compressed message (RFC 7692 §6).
const RSV1: u8 = 0x40;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;

/// A final text frame carrying `payload` (UTF-8 JSON).
pub fn text(payload: &str) -> Bytes {
    encode(OPCODE_TEXT, payload.as_bytes())
}

/// A text frame for a connection that agreed to `deflate` (or `None`): compressed when the message is at
/// least `min_bytes` long and compressing it with the connection's window makes it smaller.
pub fn text_for(payload: &str, deflate: Option<Deflate>) -> Bytes {
    match deflate {
        Some(deflate) => {
            compressed_text(payload.as_bytes(), deflate).unwrap_or_else(|| text(payload))
        }
        None => text(payload),
    }
}

fn compressed_text(payload: &[u8], deflate: Deflate) -> Option<Bytes> {
    if payload.len() < deflate.min_bytes as usize {
        return None;
    }
    let compressed = deflate::compress(payload, deflate.window_bits, deflate.level)?;
    Some(encode(RSV1 | OPCODE_TEXT, &compressed))
}

/// The `kline_data` frame of a candle update, encoded by the first caller and shared by every subscriber
/// on every hub shard.
pub fn update(update: &CandleUpdate) -> &Bytes {
    update.encoded.get_or_init(|| {
        let payload = KlineData::new(
            update.symbol.clone(),
            update.interval,
            update.candle,
            update.produced_at_ms,
        );
        text(&ServerMessage::now(payload).to_json())
    })
}

/// The `kline_data` frame of a candle update for connections that negotiated permessage-deflate, compressed
/// once (with the window every client accepts) and shared like [`update`]; the plain frame when compressing
/// does not pay.
pub fn update_deflated(update: &CandleUpdate, deflate: Deflate) -> &Bytes {
    update
        .compressed
        .get_or_init(|| shared_deflated(self::update(update), deflate))
}

/// A shared text frame (`plain`, made by [`text`]) compressed once for every connection that negotiated
/// `deflate` (with the window every client accepts); `plain` again when compressing does not pay.
pub fn shared_deflated(plain: &Bytes, deflate: Deflate) -> Bytes {
    let shared = Deflate {
        window_bits: deflate::SHARED_WINDOW_BITS,
        ..deflate
    };
    compressed_text(payload(plain), shared).unwrap_or_else(|| plain.clone())
}

/// The payload of a frame this module encoded (unmasked, so the header is 2, 4 or 10 bytes).
fn payload(frame: &[u8]) -> &[u8] {
    let header = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    &frame[header..]
}

/// A ping with an empty payload (clients answer with a pong).
pub fn ping() -> Bytes {
    encode(OPCODE_PING, &[])
}

/// A close frame with `code` and `reason` (a control frame: the reason is cut to fit 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OPCODE_CLOSE, &payload)
}

/// A final frame: `flags_opcode` is the opcode, with [`RSV1`] for a compressed message.
fn encode(flags_opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut frame = BytesMut::with_capacity(len + 10);
    frame.put_u8(FIN | flags_opcode);
    if len < 126 {
        frame.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        frame.put_u8(126);
        frame.put_u16(len);
    } else {
        frame.put_u8(127);
        frame.put_u64(len as u64);
    }
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, coding::OpCode};

    /// Decodes with tungstenite's own frame parser: the bytes are what a client library reads.
    fn parse(bytes: &Bytes) -> Frame {
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let (header, length) =
            tokio_tungstenite::tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
                .expect("parses")
                .expect("complete header");
        let start = cursor.position() as usize;
        let payload = bytes[start..].to_vec();
        assert_eq!(
            payload.len() as u64,
            length,
            "the length field matches the payload"
        );
        Frame::from_payload(header, payload.into())
    }

    #[test]
    fn text_frames_of_every_length_class_decode() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload = "x".repeat(len);
            let frame = parse(&text(&payload));
            assert!(frame.header().is_final);
            assert_eq!(frame.header().opcode, OpCode::Data(coding_text()));
            assert!(
                frame.header().mask.is_none(),
                "server frames are not masked"
            );
            assert_eq!(frame.payload().len(), len);
        }
    }

    fn coding_text() -> tokio_tungstenite::tungstenite::protocol::frame::coding::Data {
        tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text
    }

    #[test]
    fn close_frames_carry_the_code_and_a_reason_cut_on_a_char_boundary() {
        let frame = parse(&close(4008, "client too slow"));
        assert_eq!(frame.payload()[..2], 4008u16.to_be_bytes());
        assert_eq!(&frame.payload()[2..], b"client too slow");
        let long = "é".repeat(100);
        let frame = parse(&close(1001, &long));
        assert!(frame.payload().len() <= 125, "control frames fit 125 bytes");
        assert!(std::str::from_utf8(&frame.payload()[2..]).is_ok());
    }

    #[test]
    fn ping_is_an_empty_control_frame() {
        assert_eq!(ping().as_ref(), [0x89, 0x00]);
    }
}
