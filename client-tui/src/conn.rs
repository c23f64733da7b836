//! The connection state machine: connect, pump messages both ways, and on loss reconnect with capped
//! exponential backoff and jitter. It knows nothing of charts: the app resubscribes on every `Connected`.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kline_protocol::{ClientRequest, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug)]
pub enum ConnEvent {
    Connected,
    Message(ServerMessage),
    /// The connection is gone; the next attempt starts at `retry_at`.
    Lost {
        error: String,
        retry_at: Instant,
        attempt: u32,
    },
}

#[derive(Debug)]
pub enum ConnCommand {
    Send(ClientRequest),
    /// Drop the connection (if any) and connect again now.
    Reconnect,
}

/// Capped exponential backoff with jitter: attempt n waits a random time in `[d/2, d]`, where
/// `d = min(cap, base · 2ⁿ)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Backoff {
            base,
            cap,
            attempt: 0,
            seed,
        }
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.cap);
        self.attempt += 1;
        // xorshift: plenty for jitter.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        ceiling.mul_f64(fraction)
    }
}

enum Ended {
    /// The app is gone: stop.
    Quit,
    Lost(String),
}

/// Starts the connection task for `endpoint`. It runs until the returned sender or receiver is dropped.
///
/// Both queues are bounded: commands are few (subscriptions, history pages); events wait for the app, and
/// a full event queue pauses reading from the socket (the server then sees a slow client, by design).
pub fn spawn(
    endpoint: crate::endpoint::Endpoint,
    backoff: Backoff,
) -> (mpsc::Sender<ConnCommand>, mpsc::Receiver<ConnEvent>) {
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(1024);
    tokio::spawn(run(endpoint, command_rx, event_tx, backoff));
    (command_tx, event_rx)
}

/// Runs until the app drops its command sender or its event receiver.
async fn run(
    endpoint: crate::endpoint::Endpoint,
    mut commands: mpsc::Receiver<ConnCommand>,
    events: mpsc::Sender<ConnEvent>,
    mut backoff: Backoff,
) {
    loop {
        let error = match endpoint.connect().await {
            Ok(socket) => {
                backoff.reset();
                if events.send(ConnEvent::Connected).await.is_err() {
                    return;
                }
                match pump(socket, &mut commands, &events).await {
                    Ended::Quit => return,
                    Ended::Lost(error) => error,
                }
            }
            Err(err) => crate::endpoint::describe(&err),
        };
        let delay = backoff.next_delay();
        let retry_at = Instant::now() + delay;
        tracing::info!(%error, ?delay, attempt = backoff.attempt(), "connection lost; reconnecting");
        let lost = ConnEvent::Lost {
            error,
            retry_at,
            attempt: backoff.attempt(),
        };
        if events.send(lost).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            command = commands.recv() => if command.is_none() { return },
        }
    }
}

async fn pump(
    mut socket: crate::endpoint::Socket,
    commands: &mut mpsc::Receiver<ConnCommand>,
    events: &mpsc::Sender<ConnEvent>,
) -> Ended {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => {
                    let _ = socket.close(None).await;
                    return Ended::Quit;
                }
                Some(ConnCommand::Reconnect) => {
                    let _ = socket.close(None).await;
                    return Ended::Lost("reconnect requested".into());
                }
                Some(ConnCommand::Send(request)) => {
                    if let Err(err) = socket.send(Message::text(request.to_json())).await {
                        return Ended::Lost(err.to_string());
                    }
                }
            },
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                    Ok(message) => {
                        if events.send(ConnEvent::Message(message)).await.is_err() {
                            return Ended::Quit;
                        }
                    }
                    Err(err) => tracing::warn!(%err, "unparseable server message"),
                },
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map_or("closed".to_owned(), |f| format!("closed by server ({} {})", u16::from(f.code), f.reason));
                    return Ended::Lost(why);
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Ended::Lost(err.to_string()),
                None => return Ended::Lost("connection closed".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(125) && delays[0] <= Duration::from_millis(250));
        assert!(delays[3] >= Duration::from_secs(1) && delays[3] <= Duration::from_secs(2));
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(10)),
            "capped (min, not max): {delays:?}"
        );
        assert!(
            delays[11] >= Duration::from_secs(5),
            "stays near the cap: {delays:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(250));
    }
}
