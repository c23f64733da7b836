//! WebSocket connections as both transports (`/ws` in `kline_ws`, Socket.IO's own websocket transport in
//! `kline_socketio::engine`) run them: we write to the socket ourselves, below tungstenite.
//!
//! - [`handshake`]: the opening handshake and the hand-over of the raw TCP socket.
//! - [`outbox`]: a connection's socket writer: immediate writes, the bounded backlog, the overflow policy.
//! - [`frame`]: server frames, encoded once and shared.
//! - [`deflate`]: permessage-deflate: the negotiation, compressing a message once for every subscriber.
//! - [`inflate`]: the client's compressed messages, inflated below tungstenite.
//! - [`socket`]: the stream tungstenite reads client frames from.
//! - [`writer`]: writes a connection's backlog when the socket has room; pings; the close.
//! - [`close`]: the closing handshake: close codes for protocol violations, reading after our close.
//! - [`trades`]: a live trade's `/ws` frame, encoded once and shared.
//! - [`tickers`]: a ticker round's `/ws` frame, encoded once and shared.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod inflate;
pub mod outbox;
pub mod socket;
pub mod tickers;
pub mod trades;
pub mod writer;
