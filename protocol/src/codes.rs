//! Numeric codes of the protocol: `error.code` values and WebSocket close codes.

use serde::{Deserialize, Serialize};

/// The `code` of an `error` message. On the wire it is the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u16", try_from = "u16")]
pub enum ErrorCode {
    /// Unparseable JSON, unknown `msg_type`, or a missing or invalid field.
    InvalidRequest = 1001,
    /// The per-connection subscription limit is reached.
    SubscriptionRefused = 1002,
    /// The history could not be read.
    HistoryFailed = 1003,
    /// The client sent messages faster than its rate limit.
    RateLimited = 1004,
    /// A binary frame; the protocol is JSON text frames only.
    UnsupportedFrame = 1005,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 5] = [
        ErrorCode::InvalidRequest,
        ErrorCode::SubscriptionRefused,
        ErrorCode::HistoryFailed,
        ErrorCode::RateLimited,
        ErrorCode::UnsupportedFrame,
    ];

    pub const fn as_u16(self) -> u16 {
        self as u16
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        code.as_u16()
    }
}

/// A number that is not a protocol error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0}")]
pub struct UnknownErrorCode(pub u16);

impl TryFrom<u16> for ErrorCode {
    type Error = UnknownErrorCode;

    fn try_from(value: u16) -> Result<Self, Self::Error> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_u16() == value)
            .ok_or(UnknownErrorCode(value))
    }
}

/// WebSocket close codes the server uses, and what each means to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// A normal close: the server's answer to a client's close frame that carried no code.
    Normal = 1000,
    /// The server is shutting down ("going away"): reconnect later.
    ServerShutdown = 1001,
    /// The client kept abusing the protocol after being rate limited.
    PolicyViolation = 1008,
    /// The client broke RFC 6455: an unmasked frame, reserved bits or opcodes, a fragmented or oversize
    /// control frame, a continuation without a start, an invalid close code.
    ProtocolError = 1002,
    /// A text message (or a close reason) that is not valid UTF-8.
    InvalidPayload = 1007,
    /// A message was larger than the server accepts.
    MessageTooBig = 1009,
    /// The server is at its connection limit ("try again later").
    ServerAtCapacity = 1013,
    /// Nothing was heard from the client for the idle timeout.
    IdleTimeout = 4000,
    /// The client did not read fast enough and fell too far behind.
    TooSlow = 4008,
}

impl CloseCode {
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// The close code with this number, if the server uses it.
    pub fn from_u16(value: u16) -> Option<CloseCode> {
        [
            CloseCode::Normal,
            CloseCode::ServerShutdown,
            CloseCode::ProtocolError,
            CloseCode::InvalidPayload,
            CloseCode::PolicyViolation,
            CloseCode::MessageTooBig,
            CloseCode::ServerAtCapacity,
            CloseCode::IdleTimeout,
            CloseCode::TooSlow,
        ]
        .into_iter()
        .find(|code| code.as_u16() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_numbers_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::RateLimited).unwrap(),
            "1004"
        );
        assert_eq!(
            serde_json::from_str::<ErrorCode>("1002").unwrap(),
            ErrorCode::SubscriptionRefused
        );
        assert!(serde_json::from_str::<ErrorCode>("1999").is_err());
    }

    #[test]
    fn close_codes_round_trip() {
        assert_eq!(CloseCode::from_u16(4008), Some(CloseCode::TooSlow));
        assert_eq!(CloseCode::from_u16(1000), Some(CloseCode::Normal));
        assert_eq!(CloseCode::from_u16(1003), None);
        assert_eq!(CloseCode::ServerAtCapacity.as_u16(), 1013);
    }
}
