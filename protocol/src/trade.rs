//! One trade of a mint as a trades list shows it, and the REST page of them (`GET /api/v1/trades`).
//!
//! A trade is one of the four price events of the Spin Pet program (buy/sell, long/short, full or partial
//! close), with the amounts it traded against the pool (the same rule as a candle's volume, see
//! `docs/protocol.md`). Trades of a mint are ordered as the chain ordered them: slot, the transaction's
//! position in its block (`tx_index`), the event's position in its transaction (`event_index`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Symbol;

/// Which program event a trade is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TradeKind {
    BuySell,
    LongShort,
    FullClose,
    PartialClose,
}

/// Whether the taker bought tokens from the pool or sold them to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// A trade's identity: its transaction signature and its event's position in the transaction, written
/// `"<signature>:<event_index>"`. It is also the paging cursor (`before`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TradeId {
    signature: String,
    signature_bytes: [u8; 64],
    event_index: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trade id `{id}`: {reason}; expected `<signature>:<event_index>`")]
pub struct TradeIdError {
    id: String,
    reason: String,
}

impl TradeId {
    pub fn new(signature_bytes: [u8; 64], event_index: u32) -> TradeId {
        TradeId {
            signature: crate::base58::encode_64(&signature_bytes),
            signature_bytes,
            event_index,
        }
    }

    /// For a caller that holds both forms of one signature already (a parsed event's signature): skips
    /// the base58 encoding of [`TradeId::new`], which is most of what building a trade costs. Debug builds
    /// check that `signature` is `signature_bytes` in base58.
    pub fn from_encoded(signature: &str, signature_bytes: [u8; 64], event_index: u32) -> TradeId {
        debug_assert_eq!(
            bs58::decode(signature).into_vec().ok().as_deref(),
            Some(&signature_bytes[..]),
            "the signature text is not the signature's bytes in base58"
        );
        TradeId {
            signature: signature.to_owned(),
            signature_bytes,
            event_index,
        }
    }

    pub fn parse(text: &str) -> Result<TradeId, TradeIdError> {
        let error = |reason: String| TradeIdError {
            id: text.chars().take(120).collect(),
            reason,
        };
        let (signature, index) = text
            .rsplit_once(':')
            .ok_or_else(|| error("no `:`".into()))?;
        let bytes = bs58::decode(signature)
            .into_vec()
            .map_err(|err| error(format!("the signature is not base58: {err}")))?;
        let signature_bytes = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| {
            error(format!(
                "the signature decodes to {} bytes, not 64",
                bytes.len()
            ))
        })?;
        let event_index = index
            .parse()
            .map_err(|_| error(format!("event index `{index}` is not a u32")))?;
        Ok(TradeId {
            signature: signature.to_owned(),
            signature_bytes,
            event_index,
        })
    }

    pub fn signature(&self) -> &str {
        &self.signature
    }

    pub fn signature_bytes(&self) -> [u8; 64] {
        self.signature_bytes
    }

    pub fn event_index(&self) -> u32 {
        self.event_index
    }
}

impl fmt::Display for TradeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.signature, self.event_index)
    }
}

impl FromStr for TradeId {
    type Err = TradeIdError;
    fn from_str(s: &str) -> Result<TradeId, TradeIdError> {
        TradeId::parse(s)
    }
}

impl TryFrom<String> for TradeId {
    type Error = TradeIdError;
    fn try_from(s: String) -> Result<TradeId, TradeIdError> {
        TradeId::parse(&s)
    }
}

impl From<TradeId> for String {
    fn from(id: TradeId) -> String {
        id.to_string()
    }
}

/// One trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// `"<signature>:<event_index>"`: identity and paging cursor.
    pub id: TradeId,
    pub symbol: Symbol,
    /// Block time, Unix milliseconds.
    pub time: i64,
    pub slot: u64,
    /// Position of the transaction in its block; `null` when the source could not tell.
    pub tx_index: Option<u32>,
    /// Position of the event in its transaction.
    pub event_index: u32,
    pub signature: String,
    pub event_type: TradeKind,
    pub side: Side,
    /// SOL per whole token after the trade (the event's `latest_price`).
    pub price: f64,
    /// Tokens traded against the pool, whole tokens.
    pub token_amount: f64,
    /// SOL traded against the pool.
    pub sol_amount: f64,
    /// The account that paid for the transaction (the trader).
    pub payer: Symbol,
}

/// `GET /api/v1/trades`: the newest trades of a mint before a cursor, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradesPage {
    pub symbol: Symbol,
    /// Newest first.
    pub data: Vec<Trade>,
    /// Older trades exist: ask again with `before` = the last trade's `id`.
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_ids_round_trip_and_bad_ones_say_why() {
        let id = TradeId::new([7; 64], 3);
        let text = id.to_string();
        assert!(text.ends_with(":3"));
        assert_eq!(TradeId::parse(&text), Ok(id));
        let no_colon = TradeId::parse("abc").unwrap_err().to_string();
        assert!(no_colon.contains("no `:`"), "{no_colon}");
        let short = TradeId::parse("abc:1").unwrap_err().to_string();
        assert!(short.contains("not 64"), "{short}");
        let sig = bs58::encode([1; 64]).into_string();
        let bad_index = TradeId::parse(&format!("{sig}:x")).unwrap_err().to_string();
        assert!(bad_index.contains("event index `x`"), "{bad_index}");
    }

    #[test]
    fn an_id_from_an_encoded_signature_is_the_same_id() {
        let sig = bs58::encode([9; 64]).into_string();
        assert_eq!(
            TradeId::from_encoded(&sig, [9; 64], 2),
            TradeId::new([9; 64], 2)
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not the signature's bytes")]
    fn debug_builds_refuse_a_signature_text_of_other_bytes() {
        let sig = bs58::encode([9; 64]).into_string();
        TradeId::from_encoded(&sig, [8; 64], 2);
    }
}
