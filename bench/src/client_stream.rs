//! `CountingStream`: a load client's TCP stream, counting the bytes the server put on the wire and, for a
//! client that offered permessage-deflate, inflating the server's compressed messages before tungstenite
//! reads them (tungstenite refuses RSV1; the server crate's [`Inflater`] does the work).
//!
//! The HTTP response of the opening handshake is handed to tungstenite up to its blank line and never a byte
//! further: what follows is frames, and they must all pass through the inflater.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use kline_push::websocket::inflate::Inflater;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub struct CountingStream {
    inner: TcpStream,
    /// Bytes read from the socket.
    read_bytes: u64,
    /// `Some` when the client offered permessage-deflate.
    inflater: Option<Box<Inflater>>,
    /// How many bytes of the handshake's `\r\n\r\n` were seen at the end of what was read so far; 4 = done.
    head_end_seen: usize,
}

impl CountingStream {
    pub fn new(inner: TcpStream, inflate: bool) -> CountingStream {
        CountingStream {
            inner,
            read_bytes: 0,
            inflater: inflate.then(|| Box::new(Inflater::for_server_frames(64 << 20))),
            head_end_seen: 0,
        }
    }

    /// Bytes the server sent (on the wire: compressed if it compressed).
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(inflater) = this.inflater.as_mut() else {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            this.read_bytes += (buf.filled().len() - before) as u64;
            return Poll::Ready(Ok(()));
        };
        loop {
            if inflater.has_output() {
                let n = inflater.take(buf.initialize_unfilled());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let bytes = read.filled();
            if bytes.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.read_bytes += bytes.len() as u64;
            if this.head_end_seen < 4 {
                // Still in the handshake's response: hand on the head, keep what follows for the inflater.
                let head = head_len(bytes, &mut this.head_end_seen);
                // The response head fits tungstenite's buffer; anything else would be a broken server.
                if head > buf.remaining() {
                    return Poll::Ready(Err(io::Error::other("handshake response too long")));
                }
                buf.put_slice(&bytes[..head]);
                inflater.feed(&bytes[head..]).map_err(io::Error::other)?;
                return Poll::Ready(Ok(()));
            }
            inflater.feed(bytes).map_err(io::Error::other)?;
        }
    }
}

/// How many bytes of `bytes` belong to the HTTP head (up to and including `\r\n\r\n`), given how much of
/// that terminator ended the previous read (`seen`, updated; 4 once complete).
fn head_len(bytes: &[u8], seen: &mut usize) -> usize {
    const END: &[u8; 4] = b"\r\n\r\n";
    for (i, byte) in bytes.iter().enumerate() {
        *seen = if *byte == END[*seen] {
            *seen + 1
        } else if *byte == b'\r' {
            1
        } else {
            0
        };
        if *seen == 4 {
            return i + 1;
        }
    }
    bytes.len()
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::head_len;

    #[test]
    fn the_head_ends_at_the_blank_line_also_across_reads() {
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
        let mut seen = 0;
        assert_eq!(head_len(response, &mut seen), response.len() - 4);
        assert_eq!(seen, 4);
        for cut in 1..response.len() - 4 {
            let mut seen = 0;
            let first = head_len(&response[..cut], &mut seen);
            assert_eq!(first, cut, "the whole first part is head");
            let second = head_len(&response[cut..], &mut seen);
            assert_eq!(first + second, response.len() - 4, "cut at {cut}");
        }
    }
}
