//! `ClientStream`: the byte stream tungstenite reads the client's frames from.
//!
//! Reads come from the TCP socket (after any bytes the HTTP server had already read past the upgrade
//! request). Writes never touch the socket directly: tungstenite writes only control replies (a pong to a
//! client's ping, the echo of a client's close), and those are queued in the connection's [`Outbox`], the
//! one writer of the socket, so they can never interleave with a candle update being written.
//!
//! On a connection that negotiated permessage-deflate, the bytes read pass through an [`Inflater`] first,
//! which hands tungstenite the client's compressed messages inflated (tungstenite refuses RSV1).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::inflate::{Inflater, whole_plain_frames};
use super::outbox::Outbox;

pub struct ClientStream {
    /// Bytes read by the HTTP server beyond the upgrade request (usually none).
    read_ahead: Bytes,
    outbox: Arc<Outbox>,
    /// Set when the connection negotiated permessage-deflate.
    inflation: Option<Inflation>,
}

/// permessage-deflate on the read side. The inflater exists only while a frame is in progress: it is
/// dropped whenever it is at rest, so an idle connection that negotiated compression holds none.
struct Inflation {
    max_message_bytes: usize,
    inflater: Option<Box<Inflater>>,
}

impl ClientStream {
    /// `inflate_max_bytes`: the largest inflated message, when the connection negotiated permessage-deflate.
    pub fn new(
        read_ahead: Bytes,
        outbox: Arc<Outbox>,
        inflate_max_bytes: Option<usize>,
    ) -> ClientStream {
        // `read_ahead` is a view into hyper's 8 KiB read buffer: keeping it, even empty, would keep that
        // whole buffer alive for the life of the connection (massif: 8 KB of ~13 KB per idle connection).
        let read_ahead = if read_ahead.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&read_ahead)
        };
        ClientStream {
            read_ahead,
            outbox,
            inflation: inflate_max_bytes.map(|max_message_bytes| Inflation {
                max_message_bytes,
                inflater: None,
            }),
        }
    }

    /// Reads through the inflater: its output first, else more bytes from the socket for it.
    fn poll_read_inflated(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let ClientStream {
            read_ahead,
            outbox,
            inflation,
        } = self;
        let inflation = inflation.as_mut().expect("compression negotiated");
        loop {
            if let Some(n) = inflation.take(buf.initialize_unfilled()) {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if !read_ahead.is_empty() {
                inflation.feed(&std::mem::take(read_ahead))?;
                continue;
            }
            // The caller's buffer serves as scratch space: the bytes move into the inflater at once, unless
            // they are whole uncompressed frames and no frame is in progress: then they stay.
            let scratch = buf.initialize_unfilled();
            let n = ready!(read_socket(outbox.socket(), cx, scratch))?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            if inflation.inflater.is_none() && whole_plain_frames(&scratch[..n]) {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            inflation.feed(&scratch[..n])?;
        }
    }
}

impl Inflation {
    /// Moves inflated bytes into `buf`: `Some(n)` if there were any.
    fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        let inflater = self.inflater.as_mut().filter(|i| i.has_output())?;
        let n = inflater.take(buf);
        self.drop_at_rest();
        Some(n)
    }

    /// Feeds bytes read from the socket to the inflater (made if none is in progress).
    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        let max = self.max_message_bytes;
        let inflater = self
            .inflater
            .get_or_insert_with(|| Box::new(Inflater::new(max)));
        let fed = inflater.feed(bytes);
        self.drop_at_rest();
        fed.map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    fn drop_at_rest(&mut self) {
        if self.inflater.as_ref().is_some_and(|i| i.is_at_rest()) {
            self.inflater = None;
        }
    }
}

/// One non-blocking read of the socket into `buf`, waiting for readiness.
fn read_socket(
    socket: &tokio::net::TcpStream,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(socket.poll_read_ready(cx))?;
        match socket.try_read(buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
            // Readiness was stale; `try_read` cleared it, so the next poll waits for the reactor.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Poll::Ready(Err(err)),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.inflation.is_some() {
            return self.poll_read_inflated(cx, buf);
        }
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        let n = ready!(read_socket(
            self.outbox.socket(),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        frames: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.outbox.push_message(Bytes::copy_from_slice(frames)) {
            Poll::Ready(Ok(frames.len()))
        } else {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
