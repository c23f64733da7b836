//! permessage-deflate (RFC 7692): the negotiation, and compressing a message once for every subscriber.
//!
//! **What is negotiated.** The answer is always `permessage-deflate; server_no_context_takeover;
//! client_no_context_takeover`: every message, both ways, is compressed on its own. That keeps the push
//! path's "encode once": one compressed `kline_data` frame serves every subscriber that negotiated
//! compression, and no connection holds a compressor or decompressor between messages (their state, tens of
//! KB each, lives once per thread and is reset per message). An offer is declined (the next one in the
//! header is tried; none left = no compression, exactly as for a client that offers none) when it has an
//! unknown or repeated parameter, or a `server_max_window_bits` below 9 (zlib cannot honour 8).
//! `client_max_window_bits` needs no answer: a client's message is inflated with the largest window.
//!
//! **What is compressed.** Text messages of at least `websocket.compression_min_bytes` (a `kline_data` is
//! ~300 bytes, a 1000-candle `history_data` ~170 KB), and only when the result is smaller; RSV1 marks a
//! compressed message, and per RFC 7692 §6 an uncompressed one may follow on the same connection. Control
//! frames (ping, pong, close) are never compressed.
//!
//! The window: a connection's own messages (history, replies) use the window the client allows
//! (`server_max_window_bits`, 15 by default); the shared `kline_data` frames use the smallest one (2^9 =
//! 512 bytes), which every client accepts and which loses nothing on a message of ~300 bytes.

use std::cell::RefCell;

use axum::http::{HeaderMap, HeaderValue, header};
use flate2::{Compress, Compression, FlushCompress};

/// The answer to an accepted offer.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The window (log2 bytes) of frames shared by every compressing subscriber: the smallest any client may
/// ask for, so one copy fits all.
pub const SHARED_WINDOW_BITS: u8 = 9;

/// The deflate stream of a message ends with an empty stored block, `00 00 ff ff`, which RFC 7692 §7.2.1
/// removes on the wire (and the receiver appends before inflating).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What a connection agreed to: its messages of at least `min_bytes` are compressed with a window of at
/// most `2^window_bits` bytes, at zlib's `level` (1 fastest … 9 smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    pub window_bits: u8,
    pub min_bytes: u32,
    pub level: u8,
}

/// The first acceptable permessage-deflate offer of `Sec-WebSocket-Extensions`, as the window it allows.
pub fn negotiate(headers: &HeaderMap) -> Option<u8> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(accept_offer)
}

/// The `Sec-WebSocket-Extensions` value of the 101 response.
pub fn response_header() -> HeaderValue {
    HeaderValue::from_static(RESPONSE)
}

/// One offer (`permessage-deflate; param; param=value`): the server window it allows, or `None` to decline.
fn accept_offer(offer: &str) -> Option<u8> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut window_bits = 15;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(bits)) => {
                window_bits_value(bits)?;
            }
            ("server_max_window_bits", Some(bits)) => {
                window_bits = window_bits_value(bits)?;
                if window_bits < SHARED_WINDOW_BITS {
                    return None;
                }
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some(window_bits)
}

/// A window size parameter: a decimal 8..=15 without leading zeros (RFC 7692 §7.1.2.1).
fn window_bits_value(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

thread_local! {
    /// One raw-deflate compressor per (window size, level) and thread, reset before every message.
    static COMPRESSORS: RefCell<Vec<((u8, u8), Compress)>> = const { RefCell::new(Vec::new()) };
}

/// `payload` compressed on its own (no context) with a window of `2^window_bits` at `level`, without the
/// trailing `00 00 ff ff`; `None` when that is not smaller than `payload`.
pub fn compress(payload: &[u8], window_bits: u8, level: u8) -> Option<Vec<u8>> {
    let key = (window_bits, level);
    COMPRESSORS.with(|compressors| {
        let mut compressors = compressors.borrow_mut();
        let index = match compressors
            .iter()
            .position(|(settings, _)| *settings == key)
        {
            Some(index) => index,
            None => {
                let compressor = Compress::new_with_window_bits(
                    Compression::new(level.into()),
                    false,
                    window_bits,
                );
                compressors.push((key, compressor));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].1;
        compressor.reset();
        // Room for the worst case (stored blocks: 5 bytes per 16 KiB, plus the flush): one call suffices.
        let mut out = Vec::with_capacity(payload.len() + payload.len() / 16_384 * 5 + 64);
        compressor
            .compress_vec(payload, &mut out, FlushCompress::Sync)
            .ok()?;
        if compressor.total_in() != payload.len() as u64 {
            return None;
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        (out.len() < payload.len()).then_some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn offer(value: &'static str) -> Option<u8> {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(value),
        );
        negotiate(&headers)
    }

    #[test]
    fn the_offers_browsers_and_libraries_send_are_accepted() {
        assert_eq!(offer("permessage-deflate"), Some(15));
        // Chromium, Firefox, Node `ws`, Python `websockets`.
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits"),
            Some(15)
        );
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            Some(15)
        );
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"),
            Some(10)
        );
        assert_eq!(
            offer("Permessage-Deflate; Server_Max_Window_Bits=\"12\""),
            Some(12)
        );
    }

    #[test]
    fn bad_offers_are_declined_and_the_next_one_is_tried() {
        assert_eq!(offer("x-webkit-deflate-frame"), None);
        assert_eq!(offer("permessage-deflate; unknown_param"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=8"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=16"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=09"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits"), None);
        assert_eq!(offer("permessage-deflate; client_max_window_bits=7"), None);
        assert_eq!(
            offer("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            None
        );
        assert_eq!(
            offer(
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11"
            ),
            Some(11)
        );
        assert_eq!(offer("foo, permessage-deflate"), Some(15));
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    fn inflate(compressed: &[u8]) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&TAIL);
        let mut inflater = Decompress::new(false);
        let mut out = Vec::with_capacity(1 << 20);
        inflater
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate data");
        out
    }

    #[test]
    fn compressed_messages_inflate_on_their_own_to_the_original() {
        let json = r#"{"type":"history_data","data":{"candles":["#.to_owned()
            + &r#"{"time":1700000000,"open":"0.0000000279","close":"0.0000000281"},"#.repeat(2000)
            + "]}}";
        for bits in [9, 12, 15] {
            let first = compress(json.as_bytes(), bits, 6).expect("JSON compresses");
            assert!(
                first.len() * 10 < json.len(),
                "{} of {}",
                first.len(),
                json.len()
            );
            assert_eq!(inflate(&first), json.as_bytes());
            // No context carried over: the same message compresses to the same bytes again.
            assert_eq!(compress(json.as_bytes(), bits, 6), Some(first));
            let fast = compress(json.as_bytes(), bits, 1).expect("level 1 compresses too");
            assert_eq!(inflate(&fast), json.as_bytes());
        }
    }

    #[test]
    fn what_does_not_shrink_is_not_compressed() {
        assert_eq!(compress(b"", 15, 1), None);
        assert_eq!(compress(b"{}", 15, 1), None);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert_eq!(compress(&noise, 15, 1), None);
    }
}
