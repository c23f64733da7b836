//! The Spin Pet event model: the seven events of the program's IDL, their identity, and their JSON form.
//!
//! JSON follows the existing Spin Pet server: `{"event_type":"BuySell", <IDL fields>, "timestamp", "signature",
//! "slot"}` plus an optional `event_index` (the event's position inside its transaction, default 0) and an
//! optional `tx_index` (the transaction's position inside its block; absent: unknown). `u128`
//! fields are decimal strings (JSON integers are accepted too, without losing digits); `timestamp` is RFC 3339
//! or Unix seconds. See [`parse`] for turning text into a validated [`EventRecord`].

mod fields;
pub mod onchain;
mod parse;
mod price;
pub mod stored;
mod trade;

use borsh::{BorshDeserialize, BorshSerialize};
use kline_protocol::Symbol;
use serde::{Deserialize, Serialize};

pub use fields::{EventTime, Signature, U128};
pub use parse::{EventError, ParseLimits, parse_event, parse_stored, split_body, validate};
pub use price::{PriceError, scaled_price};
pub use trade::{SOL_DECIMALS, TOKEN_DECIMALS, TradeAmounts, TradePosition, whole_units};

/// A Solana public key (any account, not only mints): base58 of 32 bytes.
pub type Pubkey = Symbol;

/// A stored event: what happened plus where and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    #[serde(flatten)]
    pub event: SpinPetEvent,
    #[serde(flatten)]
    pub meta: EventMeta,
}

/// Where and when an event happened. (`signature`, `event_index`) is the event's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    pub timestamp: EventTime,
    pub signature: Signature,
    pub slot: u64,
    #[serde(default)]
    pub event_index: u32,
    /// The transaction's position in its block (0 = first), when known. It orders the transactions of one
    /// slot; without it they are ordered by signature (see [`crate::aggregator::OrderKey`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_index: Option<u32>,
    /// How `timestamp` was obtained, when a source knows (`block_time` or `received`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_source: Option<TimeSource>,
    /// How `tx_index` was obtained, when a source knows (`block`, or `unavailable`: the node could not give
    /// the block, so the event has no `tx_index` and the signature rule orders it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_index_source: Option<TxIndexSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxIndexSource {
    /// The position of the transaction's signature in `getBlock`'s list.
    Block,
    /// The node could not give the block (after retries): ordered by signature within the slot.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The block time of the event's slot, from the RPC node.
    BlockTime,
    /// The time the server received the event (the node could not tell the block time yet).
    Received,
}

/// The identity of an event: the transaction and the event's position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    pub signature: [u8; 64],
    pub event_index: u32,
}

/// One of the program's events, with the IDL's field names and types. Each struct below is the one
/// declaration of its event: serde reads and writes its JSON, and Borsh ([`onchain`]) decodes its on-chain
/// form, whose field order is the declaration order (the IDL's; checked by the IDL-driven tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event_type")]
pub enum SpinPetEvent {
    TokenCreated(TokenCreated),
    BuySell(BuySell),
    LongShort(LongShort),
    ForceLiquidate(ForceLiquidate),
    FullClose(FullClose),
    PartialClose(PartialClose),
    MilestoneDiscount(MilestoneDiscount),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct TokenCreated {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub curve_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub pool_token_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub pool_sol_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub fee_recipient: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub base_fee_recipient: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub params_account: Pubkey,
    pub swap_fee: u16,
    pub borrow_fee: u16,
    pub fee_discount_flag: u8,
    #[borsh(deserialize_with = "onchain::bounded_string")]
    pub name: String,
    #[borsh(deserialize_with = "onchain::bounded_string")]
    pub symbol: String,
    #[borsh(deserialize_with = "onchain::bounded_string")]
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct BuySell {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    pub is_buy: bool,
    pub token_amount: u64,
    pub sol_amount: u64,
    pub latest_price: U128,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct LongShort {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub order_pda: Pubkey,
    pub latest_price: U128,
    pub order_type: u8,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub user: Pubkey,
    pub lock_lp_start_price: U128,
    pub lock_lp_end_price: U128,
    pub lock_lp_sol_amount: u64,
    pub lock_lp_token_amount: u64,
    pub start_time: u32,
    pub end_time: u32,
    pub margin_sol_amount: u64,
    pub borrow_amount: u64,
    pub position_asset_amount: u64,
    pub borrow_fee: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct ForceLiquidate {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub order_pda: Pubkey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct FullClose {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub user_sol_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    pub is_close_long: bool,
    pub final_token_amount: u64,
    pub final_sol_amount: u64,
    pub user_close_profit: u64,
    pub latest_price: U128,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub order_pda: Pubkey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct PartialClose {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub user_sol_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    pub is_close_long: bool,
    pub final_token_amount: u64,
    pub final_sol_amount: u64,
    pub user_close_profit: u64,
    pub latest_price: U128,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub order_pda: Pubkey,
    pub order_type: u8,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub user: Pubkey,
    pub lock_lp_start_price: U128,
    pub lock_lp_end_price: U128,
    pub lock_lp_sol_amount: u64,
    pub lock_lp_token_amount: u64,
    pub start_time: u32,
    pub end_time: u32,
    pub margin_sol_amount: u64,
    pub borrow_amount: u64,
    pub position_asset_amount: u64,
    pub borrow_fee: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct MilestoneDiscount {
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub payer: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub mint_account: Pubkey,
    #[borsh(
        deserialize_with = "onchain::pubkey",
        serialize_with = "onchain::write_pubkey"
    )]
    pub curve_account: Pubkey,
    pub swap_fee: u16,
    pub borrow_fee: u16,
    pub fee_discount_flag: u8,
}

impl SpinPetEvent {
    /// The `event_type` tag, e.g. `"BuySell"`.
    pub fn event_type(&self) -> &'static str {
        match self {
            SpinPetEvent::TokenCreated(_) => "TokenCreated",
            SpinPetEvent::BuySell(_) => "BuySell",
            SpinPetEvent::LongShort(_) => "LongShort",
            SpinPetEvent::ForceLiquidate(_) => "ForceLiquidate",
            SpinPetEvent::FullClose(_) => "FullClose",
            SpinPetEvent::PartialClose(_) => "PartialClose",
            SpinPetEvent::MilestoneDiscount(_) => "MilestoneDiscount",
        }
    }

    /// The token the event is about.
    pub fn mint(&self) -> &Pubkey {
        match self {
            SpinPetEvent::TokenCreated(e) => &e.mint_account,
            SpinPetEvent::BuySell(e) => &e.mint_account,
            SpinPetEvent::LongShort(e) => &e.mint_account,
            SpinPetEvent::ForceLiquidate(e) => &e.mint_account,
            SpinPetEvent::FullClose(e) => &e.mint_account,
            SpinPetEvent::PartialClose(e) => &e.mint_account,
            SpinPetEvent::MilestoneDiscount(e) => &e.mint_account,
        }
    }

    /// `latest_price` (scaled integer) for the four events that move candles.
    pub fn latest_price(&self) -> Option<u128> {
        match self {
            SpinPetEvent::BuySell(e) => Some(e.latest_price.0),
            SpinPetEvent::LongShort(e) => Some(e.latest_price.0),
            SpinPetEvent::FullClose(e) => Some(e.latest_price.0),
            SpinPetEvent::PartialClose(e) => Some(e.latest_price.0),
            _ => None,
        }
    }
}

impl EventRecord {
    pub fn id(&self) -> EventId {
        EventId {
            signature: self.meta.signature.to_bytes(),
            event_index: self.meta.event_index,
        }
    }

    /// The stored JSON form (u128 as strings, timestamp as RFC 3339).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}
