//! `RawClient`: a WebSocket client that writes frames byte by byte (any opcode, bits, mask and length, valid
//! or not) and reads the server's frames as they are on the wire, for the RFC 6455 conformance tests.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A client frame to send: every header bit is chosen by the test.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (0b100 = RSV1).
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A final, masked frame (what a correct client sends).
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> RawFrame {
        RawFrame {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload: payload.into(),
        }
    }

    pub fn text(text: &str) -> RawFrame {
        RawFrame::new(OP_TEXT, text.as_bytes())
    }

    /// A close frame with `code` and `reason` (raw bytes: may be invalid UTF-8).
    pub fn close(code: u16, reason: &[u8]) -> RawFrame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        RawFrame::new(OP_CLOSE, payload)
    }

    /// A compressed text message (RSV1 set, permessage-deflate): `text` deflated by flate2 on its own.
    pub fn deflated_text(text: &[u8]) -> RawFrame {
        RawFrame::new(OP_TEXT, deflate(text)).with_rsv(0b100)
    }

    pub fn not_final(mut self) -> RawFrame {
        self.fin = false;
        self
    }

    pub fn with_rsv(mut self, rsv: u8) -> RawFrame {
        self.rsv = rsv;
        self
    }

    pub fn unmasked(mut self) -> RawFrame {
        self.masked = false;
        self
    }

    /// The bytes on the wire (RFC 6455 §5.2), masked with a fixed key when `masked`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            vec![(u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | (self.opcode & 0xF)];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The code of a close frame (`None` for an empty close payload).
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap_or("<not UTF-8>")
    }
}

/// What reading a frame produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Frame(ServerFrame),
    /// The server closed TCP (or reset it).
    Eof,
}

pub struct RawClient {
    socket: TcpStream,
    buffer: Vec<u8>,
    /// The response head of the opening handshake.
    pub handshake: String,
}

/// A valid opening handshake for `/ws`, with `extra` header lines (each ending in `\r\n`).
pub fn upgrade_request(addr: SocketAddr, extra: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl RawClient {
    /// Connects and completes the opening handshake; panics unless the answer is 101.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient::connect_with(addr, "").await
    }

    /// Like [`RawClient::connect`], with extra request header lines (e.g. an extension offer).
    pub async fn connect_with(addr: SocketAddr, extra_headers: &str) -> RawClient {
        let mut socket = TcpStream::connect(addr).await.expect("TCP connects");
        socket.set_nodelay(true).expect("TCP_NODELAY");
        let request = upgrade_request(addr, extra_headers);
        socket
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut client = RawClient {
            socket,
            buffer: Vec::new(),
            handshake: String::new(),
        };
        let head_end = loop {
            if let Some(end) = client.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            assert!(
                client.fill().await,
                "the server closed during the handshake"
            );
        };
        client.handshake = String::from_utf8_lossy(&client.buffer[..head_end]).into_owned();
        client.buffer.drain(..head_end);
        assert!(
            client.handshake.starts_with("HTTP/1.1 101"),
            "expected 101, got {}",
            client.handshake
        );
        client
    }

    pub async fn send(&mut self, frame: &RawFrame) {
        self.send_bytes(&frame.encode()).await;
    }

    /// Writes raw bytes; a failed write is ignored (the server may already have closed).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.socket.write_all(bytes).await;
    }

    /// Reads more bytes into the buffer; `false` at the end of the stream or on an error.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.socket.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next whole frame, or the end of the stream; panics after `timeout`.
    pub async fn read(&mut self, timeout: Duration) -> Read {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some((frame, used)) = parse(&self.buffer) {
                    self.buffer.drain(..used);
                    return Read::Frame(frame);
                }
                if !self.fill().await {
                    return Read::Eof;
                }
            }
        })
        .await
        .expect("a frame or the end of the stream within the timeout")
    }

    /// Reads until a frame that is not a ping or a text message (or the end of the stream).
    pub async fn read_control(&mut self, timeout: Duration) -> Read {
        loop {
            match self.read(timeout).await {
                Read::Frame(frame) if matches!(frame.opcode, OP_TEXT | OP_PING) => continue,
                other => return other,
            }
        }
    }

    /// Reads to the server's close frame, skipping messages and pings; `None` if TCP ended without one.
    pub async fn close_frame(&mut self, timeout: Duration) -> Option<ServerFrame> {
        match self.read_control(timeout).await {
            Read::Frame(frame) if frame.opcode == OP_CLOSE => Some(frame),
            Read::Frame(frame) => panic!("expected a close frame, got {frame:?}"),
            Read::Eof => None,
        }
    }

    /// `true` if the server closes TCP (nothing but the end of the stream follows) within `timeout`.
    pub async fn ends(&mut self, timeout: Duration) -> bool {
        matches!(self.read(timeout).await, Read::Eof)
    }
}

/// Parses one server frame from the front of `bytes`: the frame and the bytes it used, or `None` if
/// incomplete.
pub fn parse(bytes: &[u8]) -> Option<(ServerFrame, usize)> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let (len, mut at) = match second & 0x7F {
        126 => (
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        len => (len as usize, 2),
    };
    let key: Option<[u8; 4]> = if masked {
        let key = bytes.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let mut payload = bytes.get(at..at + len)?.to_vec();
    if let Some(key) = key {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= key[i % 4]);
    }
    let frame = ServerFrame {
        fin: first & 0x80 != 0,
        rsv: (first >> 4) & 0b111,
        opcode: first & 0xF,
        masked,
        payload,
    };
    Some((frame, at + len))
}

/// The permessage-deflate offer browsers send.
pub const BROWSER_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// `bytes` compressed on its own with raw deflate, without the trailing `00 00 ff ff` (RFC 7692 §7.2.1).
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compressor = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(bytes.len() + 64);
    compressor
        .compress_vec(bytes, &mut out, FlushCompress::Sync)
        .expect("deflate");
    assert!(
        out.ends_with(&[0, 0, 0xff, 0xff]),
        "a sync flush ends the data"
    );
    out.truncate(out.len() - 4);
    out
}

/// A compressed message's payload inflated (RFC 7692 §7.2.2: `00 00 ff ff` appended first).
pub fn inflate(compressed: &[u8]) -> Vec<u8> {
    use flate2::{Decompress, FlushDecompress};
    let mut input = compressed.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflater = Decompress::new(false);
    let mut out = Vec::with_capacity(compressed.len() * 20 + 1024);
    loop {
        let at = inflater.total_in() as usize;
        inflater
            .decompress_vec(&input[at..], &mut out, FlushDecompress::Sync)
            .expect("valid deflate data");
        if inflater.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

impl ServerFrame {
    /// The message's payload: inflated if the frame is compressed (RSV1).
    pub fn message(&self) -> Vec<u8> {
        if self.rsv & 0b100 != 0 {
            inflate(&self.payload)
        } else {
            self.payload.clone()
        }
    }
}
