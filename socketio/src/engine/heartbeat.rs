//! `Heartbeat`: Engine.IO v4's, run by the server. A ping (`2`) goes out `pingInterval` after the open
//! packet, and again `pingInterval` after each pong (`3`); a ping that gets no pong within `pingTimeout`
//! ends the connection. A connection that joins no namespace within [`CONNECT_TIMEOUT`] ends as well
//! (socketioxide's `connect_timeout`). One deadline, so a connection holds one timer. No I/O: the clock is
//! passed in.

use std::time::Duration;

use tokio::time::Instant;

/// How long a connection may stay without joining a namespace (socketioxide's default).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When to ping, or, while a pong is awaited, when the connection has timed out.
    deadline: Instant,
    awaiting_pong: bool,
    /// Until a namespace is joined: when the connection gives up waiting for one.
    connect_by: Option<Instant>,
}

/// What is due at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping.
    Ping,
    /// No pong came in time (or no namespace was joined): close the connection.
    Expired,
}

impl Heartbeat {
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            deadline: now + interval,
            awaiting_pong: false,
            connect_by: Some(now + CONNECT_TIMEOUT),
        }
    }

    pub fn deadline(&self) -> Instant {
        match self.connect_by {
            Some(connect_by) => self.deadline.min(connect_by),
            None => self.deadline,
        }
    }

    /// The deadline has come (`now >= self.deadline()`).
    pub fn beat(&mut self, now: Instant) -> Beat {
        if self.connect_by.is_some_and(|by| now >= by) || self.awaiting_pong {
            return Beat::Expired;
        }
        self.awaiting_pong = true;
        self.deadline = now + self.timeout;
        Beat::Ping
    }

    /// A pong came: the next ping is due an interval from now.
    pub fn pong(&mut self, now: Instant) {
        if std::mem::take(&mut self.awaiting_pong) {
            self.deadline = now + self.interval;
        }
    }

    /// A namespace was joined: no connect timeout any more.
    pub fn joined(&mut self) {
        self.connect_by = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(25);
    const TIMEOUT: Duration = Duration::from_secs(20);

    #[test]
    fn a_ping_an_interval_after_open_and_after_each_pong() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(INTERVAL, TIMEOUT, start);
        heartbeat.joined();
        assert_eq!(heartbeat.deadline(), start + INTERVAL);
        let pinged = start + INTERVAL;
        assert_eq!(heartbeat.beat(pinged), Beat::Ping);
        assert_eq!(heartbeat.deadline(), pinged + TIMEOUT);
        let ponged = pinged + Duration::from_secs(1);
        heartbeat.pong(ponged);
        assert_eq!(heartbeat.deadline(), ponged + INTERVAL);
        // A pong nobody asked for moves nothing.
        heartbeat.pong(ponged + Duration::from_secs(3));
        assert_eq!(heartbeat.deadline(), ponged + INTERVAL);
    }

    #[test]
    fn a_ping_without_pong_within_the_timeout_expires() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(INTERVAL, TIMEOUT, start);
        heartbeat.joined();
        assert_eq!(heartbeat.beat(start + INTERVAL), Beat::Ping);
        assert_eq!(heartbeat.beat(start + INTERVAL + TIMEOUT), Beat::Expired);
    }

    #[test]
    fn a_connection_that_joins_no_namespace_expires_after_the_connect_timeout() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(INTERVAL, TIMEOUT, start);
        let now = loop {
            let now = heartbeat.deadline();
            if heartbeat.beat(now) == Beat::Expired {
                break now;
            }
            heartbeat.pong(now);
        };
        assert_eq!(now, start + CONNECT_TIMEOUT);
    }
}
