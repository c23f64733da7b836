//! `Inflater`: the client's compressed messages (permessage-deflate, RFC 7692), inflated below tungstenite.
//!
//! tungstenite reads and checks the client's frames, and it rejects every frame with RSV1 set. On a
//! connection that negotiated permessage-deflate, the bytes from the socket pass through an `Inflater` first:
//! every frame goes on unchanged, except a compressed message (RSV1 on its first data frame), which is
//! collected (all its fragments), inflated, and handed on as **one uncompressed frame** masked with a zero
//! key. tungstenite's checks all still apply to what it gets: UTF-8 of text, control frames, sizes, a
//! continuation without a start, reserved bits anywhere else (RSV1 on a control frame or a continuation is
//! passed through, and tungstenite closes with 1002).
//!
//! Control frames between the fragments of a compressed message are passed on as they arrive, before the
//! message they interrupt: where they belong. A data frame that starts a new message inside a fragmented
//! compressed one is a protocol error tungstenite cannot see (it never saw the first message start), so it
//! is reported here.
//!
//! The same reader serves a client of the server (the benchmark's), for the server's unmasked frames: see
//! [`Inflater::for_server_frames`].
//!
//! The negotiation asks for `client_no_context_takeover`: each message is inflated on its own, with one
//! decompressor per thread, reset per message. A connection keeps no inflate state, and between messages no
//! `Inflater` at all (the stream drops it when [`Inflater::is_at_rest`]).

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};
use kline_protocol::CloseCode;

use super::deflate::TAIL;

/// Why a connection that sent compressed messages is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("compressed message larger than {0} bytes (compressed or inflated)")]
    TooBig(usize),
    #[error("compressed message is not valid deflate data")]
    Corrupt,
    #[error("a data frame started a new message inside a fragmented compressed message")]
    Interleaved,
}

impl InflateError {
    /// The close code: 1009 too big, 1007 bad data (as Node `ws` does), 1002 framing.
    pub fn close_code(&self) -> CloseCode {
        match self {
            InflateError::TooBig(_) => CloseCode::MessageTooBig,
            InflateError::Corrupt => CloseCode::InvalidPayload,
            InflateError::Interleaved => CloseCode::ProtocolError,
        }
    }
}

/// Where the reader is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// At the start of a frame header.
    Header,
    /// Inside a frame passed on unchanged: this many more bytes.
    PassThrough(u64),
    /// Inside a frame of a compressed message: this many more payload bytes, unmasked with `mask` from
    /// `offset`; `fin` if the message ends with this frame.
    Collect {
        remaining: u64,
        mask: [u8; 4],
        offset: usize,
        fin: bool,
    },
}

pub struct Inflater {
    max_message_bytes: usize,
    /// Client frames are masked, server frames are not; a frame of the other kind is passed on unchanged
    /// (tungstenite refuses it).
    masked: bool,
    /// Bytes read from the socket and not processed yet (an incomplete frame header).
    input: Vec<u8>,
    /// Bytes for tungstenite, not taken yet.
    output: Vec<u8>,
    /// How much of `output` was taken.
    taken: usize,
    position: Position,
    /// The compressed message being collected: its opcode and its compressed payload so far.
    message: Option<(u8, Vec<u8>)>,
}

/// A frame header: the first byte, the mask key if masked, the payload length and the header's length.
struct Header {
    first: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    header_len: usize,
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

impl Header {
    fn parse(bytes: &[u8]) -> Option<Header> {
        let [first, second, ..] = *bytes else {
            return None;
        };
        let (len, mut header_len) = match second & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
                4,
            ),
            127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
            len => (u64::from(len), 2),
        };
        let mask = if second & 0x80 != 0 {
            let key = bytes.get(header_len..header_len + 4)?.try_into().ok()?;
            header_len += 4;
            Some(key)
        } else {
            None
        };
        Some(Header {
            first,
            mask,
            len,
            header_len,
        })
    }

    fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    fn is_data(&self) -> bool {
        matches!(self.opcode(), 0x1 | 0x2)
    }
}

/// Whether `bytes` are whole frames none of which starts a compressed message (RSV1): they can go to
/// tungstenite as they are, without an [`Inflater`] (the common case: a client's small requests).
pub fn whole_plain_frames(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let Some(header) = Header::parse(bytes) else {
            return false;
        };
        let end = header.header_len as u64 + header.len;
        if header.first & RSV1 != 0 || end > bytes.len() as u64 {
            return false;
        }
        bytes = &bytes[end as usize..];
    }
    true
}

impl Inflater {
    /// For a server reading a client's (masked) frames.
    pub fn new(max_message_bytes: usize) -> Inflater {
        Inflater::with_masking(max_message_bytes, true)
    }

    /// For a client reading a server's (unmasked) frames.
    pub fn for_server_frames(max_message_bytes: usize) -> Inflater {
        Inflater::with_masking(max_message_bytes, false)
    }

    fn with_masking(max_message_bytes: usize, masked: bool) -> Inflater {
        Inflater {
            max_message_bytes,
            masked,
            input: Vec::new(),
            output: Vec::new(),
            taken: 0,
            position: Position::Header,
            message: None,
        }
    }

    /// Whether processed bytes wait for [`Inflater::take`].
    pub fn has_output(&self) -> bool {
        self.taken < self.output.len()
    }

    /// Nothing in progress and nothing to hand on: the inflater can be dropped and made again.
    pub fn is_at_rest(&self) -> bool {
        matches!(self.position, Position::Header)
            && self.input.is_empty()
            && self.message.is_none()
            && !self.has_output()
    }

    /// Moves processed bytes into `buf`; returns how many.
    pub fn take(&mut self, buf: &mut [u8]) -> usize {
        let ready = &self.output[self.taken..];
        let n = ready.len().min(buf.len());
        buf[..n].copy_from_slice(&ready[..n]);
        self.taken += n;
        if self.taken == self.output.len() {
            // An idle connection keeps no buffer (a history request's answer may have grown it).
            self.output = Vec::new();
            self.taken = 0;
        }
        n
    }

    /// Processes bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InflateError> {
        if self.input.is_empty() {
            let used = self.process(bytes)?;
            self.input = bytes[used..].to_vec();
        } else {
            let mut pending = std::mem::take(&mut self.input);
            pending.extend_from_slice(bytes);
            let used = self.process(&pending)?;
            pending.drain(..used);
            self.input = pending;
        }
        Ok(())
    }

    /// Processes as much of `bytes` as forms whole headers; returns how many bytes were used.
    fn process(&mut self, bytes: &[u8]) -> Result<usize, InflateError> {
        let mut used = 0;
        loop {
            let rest = &bytes[used..];
            match self.position {
                Position::Header => {
                    let Some(header) = Header::parse(rest) else {
                        return Ok(used);
                    };
                    let header_len = header.header_len;
                    used += header_len;
                    self.start_frame(header, &rest[..header_len])?;
                }
                Position::PassThrough(remaining) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let n = rest
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.output.extend_from_slice(&rest[..n]);
                    used += n;
                    self.position = match remaining - n as u64 {
                        0 => Position::Header,
                        left => Position::PassThrough(left),
                    };
                }
                Position::Collect {
                    remaining,
                    mask,
                    offset,
                    fin,
                } => {
                    if remaining > 0 && rest.is_empty() {
                        return Ok(used);
                    }
                    let n = rest
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let (_, payload) = self.message.as_mut().expect("collecting a message");
                    payload.extend(
                        rest[..n]
                            .iter()
                            .enumerate()
                            .map(|(i, byte)| byte ^ mask[(offset + i) % 4]),
                    );
                    used += n;
                    let remaining = remaining - n as u64;
                    self.position = if remaining > 0 {
                        Position::Collect {
                            remaining,
                            mask,
                            offset: offset + n,
                            fin,
                        }
                    } else {
                        if fin {
                            self.finish_message()?;
                        }
                        Position::Header
                    };
                }
            }
        }
    }

    /// Decides what becomes of the frame whose header is `raw`.
    fn start_frame(&mut self, header: Header, raw: &[u8]) -> Result<(), InflateError> {
        let compressed_part = header.mask.is_some() == self.masked
            && match self.message {
                // A continuation of the compressed message (RSV1 only on its first frame).
                Some(_) => header.opcode() == 0 && header.first & RSV1 == 0,
                // The first frame of a compressed message.
                None => header.is_data() && header.first & RSV1 != 0,
            };
        if self.message.is_some() && header.is_data() {
            return Err(InflateError::Interleaved);
        }
        if !compressed_part {
            self.output.extend_from_slice(raw);
            self.position = match header.len {
                0 => Position::Header,
                len => Position::PassThrough(len),
            };
            return Ok(());
        }
        let (_, payload) = self
            .message
            .get_or_insert_with(|| (header.opcode(), Vec::new()));
        if payload.len() as u64 + header.len > self.max_message_bytes as u64 {
            return Err(InflateError::TooBig(self.max_message_bytes));
        }
        let fin = header.first & FIN != 0;
        self.position = Position::Collect {
            remaining: header.len,
            mask: header.mask.unwrap_or([0; 4]),
            offset: 0,
            fin,
        };
        if header.len == 0 && fin {
            self.finish_message()?;
            self.position = Position::Header;
        }
        Ok(())
    }

    /// Inflates the collected message and hands it on as one frame (a client's masked with a zero key).
    fn finish_message(&mut self) -> Result<(), InflateError> {
        let (opcode, compressed) = self.message.take().expect("a message was collected");
        let message = inflate(&compressed, self.max_message_bytes)?;
        let len = message.len();
        self.output.reserve(len + 14);
        self.output.push(FIN | opcode);
        let mask_bit = if self.masked { 0x80 } else { 0 };
        if len < 126 {
            self.output.push(mask_bit | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            self.output.push(mask_bit | 126);
            self.output.extend_from_slice(&len.to_be_bytes());
        } else {
            self.output.push(mask_bit | 127);
            self.output.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            self.output.extend_from_slice(&[0; 4]);
        }
        self.output.extend_from_slice(&message);
        Ok(())
    }
}

thread_local! {
    /// One raw-inflate decompressor (32 KiB window) per thread, reset before every message.
    static DECOMPRESSOR: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// A message compressed on its own (RFC 7692 §7.2.2: the trailing `00 00 ff ff` is appended here), inflated
/// to at most `max_bytes`.
pub fn inflate(compressed: &[u8], max_bytes: usize) -> Result<Vec<u8>, InflateError> {
    DECOMPRESSOR.with(|decompressor| {
        let mut decompressor = decompressor.borrow_mut();
        decompressor.reset(false);
        let mut input = Vec::with_capacity(compressed.len() + TAIL.len());
        input.extend_from_slice(compressed);
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity((compressed.len() * 4 + 64).min(max_bytes + 1));
        loop {
            let consumed = decompressor.total_in() as usize;
            let before = (decompressor.total_in(), decompressor.total_out());
            let status = decompressor
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            if out.len() > max_bytes {
                return Err(InflateError::TooBig(max_bytes));
            }
            let all_in = decompressor.total_in() as usize == input.len();
            if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
                return Ok(out);
            }
            let stalled = before == (decompressor.total_in(), decompressor.total_out());
            if stalled && out.len() < out.capacity() {
                return Err(InflateError::Corrupt);
            }
            out.reserve((out.capacity().max(64)).min(max_bytes + 1 - out.len()));
        }
    })
}

#[cfg(test)]
mod tests;
