//! `ClientStream`: the byte stream tungstenite reads the client's frames from.
//!
//! Reads come from the TCP socket (after any bytes the HTTP server had already read past the upgrade
//! request). Writes never touch the socket directly: tungstenite writes only control replies (a pong to a
//! client's ping, the echo of a client's close), and those are queued in the connection's [`Outbox`], the
//! one writer of the socket, so they can never interleave with a candle update being written.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::outbox::Outbox;

pub struct ClientStream {
    /// Bytes read by the HTTP server beyond the upgrade request (usually none).
    read_ahead: Bytes,
    outbox: Arc<Outbox>,
}

impl ClientStream {
    pub fn new(read_ahead: Bytes, outbox: Arc<Outbox>) -> ClientStream {
        // `read_ahead` is a view into hyper's 8 KiB read buffer: keeping it, even empty, would keep that
        // whole buffer alive for the life of the connection (massif: 8 KB of ~13 KB per idle connection).
        let read_ahead = if read_ahead.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&read_ahead)
        };
        ClientStream { read_ahead, outbox }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        let socket = self.outbox.socket();
        loop {
            ready!(socket.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match socket.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; `try_read` cleared it, so the next poll waits for the reactor.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
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
