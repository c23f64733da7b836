//! Engine.IO v4 and Socket.IO v5 packets as one websocket text message each: what a client sends, parsed,
//! and what the server sends, encoded. No I/O.
//!
//! Over websocket an Engine.IO packet is a whole message: its type digit (`0` open, `1` close, `2` ping,
//! `3` pong, `4` message, `5` upgrade, `6` noop), then its data. A Socket.IO packet travels as the data of an
//! Engine.IO message: its type digit (`0` connect, `1` disconnect, `2` event, `3` ack, `4` connect error, `5`
//! and `6` their binary forms), the namespace and a comma (left out for `/`), an ack id, then JSON. So
//! `42/kline,7["history",{…}]` is an event on `/kline` with ack id 7.

use serde::Serialize;

use crate::NAMESPACE;

/// An Engine.IO packet from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    Close,
    Ping,
    Pong,
    /// A message: a Socket.IO packet.
    Message(&'a str),
    /// `5` (the end of an upgrade) and `6` (noop): nothing to do on a websocket opened as one.
    Ignored,
}

/// A message that is not a packet of the protocol: engine.io and socketioxide close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed packet: {0}")]
pub struct Malformed(pub &'static str);

/// Parses an Engine.IO packet.
pub fn parse_engine(text: &str) -> Result<EnginePacket<'_>, Malformed> {
    let mut chars = text.chars();
    let packet = match chars.next() {
        Some('1') => EnginePacket::Close,
        Some('2') => EnginePacket::Ping,
        Some('3') => EnginePacket::Pong,
        Some('4') => EnginePacket::Message(chars.as_str()),
        Some('5' | '6') => EnginePacket::Ignored,
        _ => return Err(Malformed("unknown Engine.IO packet type")),
    };
    Ok(packet)
}

/// A Socket.IO packet from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientPacket<'a> {
    /// Connect to `namespace` (an auth object may follow: the old server took none, so it is not read).
    Connect {
        namespace: &'a str,
    },
    Disconnect {
        namespace: &'a str,
    },
    /// An event: its name and its first argument (`Err`: it has none). An ack id is ignored: the old server
    /// acknowledged nothing, and socketioxide sends no ack for a handler that does not ask for one.
    Event {
        namespace: &'a str,
        event: String,
        data: Result<serde_json::Value, String>,
    },
    /// An acknowledgement (the server asks for none): ignored.
    Ack {
        namespace: &'a str,
    },
}

/// Parses a Socket.IO packet (the data of an Engine.IO message).
pub fn parse_socketio(text: &str) -> Result<ClientPacket<'_>, Malformed> {
    let kind = text
        .as_bytes()
        .first()
        .copied()
        .ok_or(Malformed("empty Socket.IO packet"))?;
    let rest = &text[1..];
    if matches!(kind, b'5' | b'6') {
        return Err(Malformed("binary packets are not supported"));
    }
    let (namespace, rest) = match rest.strip_prefix('/') {
        Some(_) => match rest.find(',') {
            Some(comma) => (&rest[..comma], &rest[comma + 1..]),
            None => (rest, ""),
        },
        None => ("/", rest),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let data = &rest[digits..];
    match kind {
        b'0' => Ok(ClientPacket::Connect { namespace }),
        b'1' => Ok(ClientPacket::Disconnect { namespace }),
        b'2' => parse_event(namespace, data),
        b'3' => Ok(ClientPacket::Ack { namespace }),
        _ => Err(Malformed("unknown Socket.IO packet type")),
    }
}

/// An event's data: a JSON array whose first element is the event's name.
fn parse_event<'a>(namespace: &'a str, data: &str) -> Result<ClientPacket<'a>, Malformed> {
    let Ok(serde_json::Value::Array(mut args)) = serde_json::from_str(data) else {
        return Err(Malformed("an event's data must be a JSON array"));
    };
    if !args.first().is_some_and(serde_json::Value::is_string) {
        return Err(Malformed("an event's first element must be its name"));
    }
    let mut args = args.drain(..);
    let Some(serde_json::Value::String(event)) = args.next() else {
        unreachable!("checked above");
    };
    let data = args
        .next()
        .ok_or_else(|| "the event has no argument".to_owned());
    Ok(ClientPacket::Event {
        namespace,
        event,
        data,
    })
}

/// The Engine.IO open packet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Open<'a> {
    pub sid: &'a str,
    /// None: the connection already is a websocket.
    pub upgrades: [&'a str; 0],
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub max_payload: u64,
}

impl Open<'_> {
    pub fn encode(&self) -> String {
        format!(
            "0{}",
            serde_json::to_string(self).expect("the open packet serializes")
        )
    }
}

/// The Engine.IO ping.
pub const PING: &str = "2";

/// `/kline`'s answer to a connect: the socket's id.
pub fn connected(sid: &str) -> String {
    format!("40{NAMESPACE},{}", serde_json::json!({ "sid": sid }))
}

/// The answer to a connect to any namespace but `/kline` (socketioxide's bytes).
pub fn invalid_namespace(namespace: &str) -> String {
    let message = r#"{"message":"Invalid namespace"}"#;
    if namespace == "/" {
        format!("44{message}")
    } else {
        format!("44{namespace},{message}")
    }
}

/// The server disconnects the socket from `/kline`.
pub fn disconnect() -> String {
    format!("41{NAMESPACE},")
}

/// An event on `/kline` with one argument, already encoded as JSON.
pub fn event(event: &str, payload_json: &str) -> String {
    let name = serde_json::to_string(event).expect("a string serializes");
    format!("42{NAMESPACE},[{name},{payload_json}]")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_packets_parse_and_unknown_types_are_malformed() {
        assert_eq!(parse_engine("3"), Ok(EnginePacket::Pong));
        assert_eq!(parse_engine("2"), Ok(EnginePacket::Ping));
        assert_eq!(parse_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(parse_engine("6"), Ok(EnginePacket::Ignored));
        assert_eq!(
            parse_engine("40/kline,"),
            Ok(EnginePacket::Message("0/kline,"))
        );
        for bad in ["", "0", "7", "x", "é"] {
            assert!(parse_engine(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn socketio_packets_parse_with_namespace_ack_id_and_auth() {
        let connect = |namespace| Ok(ClientPacket::Connect { namespace });
        assert_eq!(parse_socketio("0/kline,"), connect("/kline"));
        assert_eq!(
            parse_socketio(r#"0/kline,{"token":"x"}"#),
            connect("/kline")
        );
        assert_eq!(parse_socketio("0"), connect("/"));
        assert_eq!(parse_socketio("0/admin"), connect("/admin"));
        assert_eq!(
            parse_socketio("1/kline,"),
            Ok(ClientPacket::Disconnect {
                namespace: "/kline"
            })
        );
        let event = parse_socketio(r#"2/kline,7["ping",{}]"#).unwrap();
        assert_eq!(
            event,
            ClientPacket::Event {
                namespace: "/kline",
                event: "ping".into(),
                data: Ok(json!({}))
            }
        );
        let ClientPacket::Event { data, .. } = parse_socketio(r#"2/kline,["ping"]"#).unwrap()
        else {
            panic!("an event");
        };
        assert!(data.is_err(), "no argument");
    }

    #[test]
    fn packets_that_are_not_the_protocol_are_malformed() {
        for bad in [
            "",
            "9",
            "2/kline,",
            "2/kline,{}",
            "2/kline,[1]",
            "2/kline,[\"x\"",
            "51-/kline,[\"x\",{\"_placeholder\":true,\"num\":0}]",
        ] {
            assert!(parse_socketio(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn server_packets_are_socketioxides_bytes() {
        let open = Open {
            sid: "abc",
            upgrades: [],
            ping_interval: 25_000,
            ping_timeout: 60_000,
            max_payload: 1_048_576,
        };
        assert_eq!(
            open.encode(),
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":60000,"maxPayload":1048576}"#
        );
        assert_eq!(connected("s1"), r#"40/kline,{"sid":"s1"}"#);
        assert_eq!(
            invalid_namespace("/"),
            r#"44{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            invalid_namespace("/admin"),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
        assert_eq!(disconnect(), "41/kline,");
        assert_eq!(event("pong", r#"{"a":1}"#), r#"42/kline,["pong",{"a":1}]"#);
    }
}
