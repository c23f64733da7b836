//! Decoding Spin Pet events from their on-chain form: an 8-byte discriminator
//! (`sha256("event:<Name>")[..8]`) followed by the event's fields in Borsh, in the IDL's order
//! (little-endian integers, `bool` = 1 byte, `pubkey` = 32 bytes, `string` = u32 length + UTF-8).

use crate::event::{
    BuySell, ForceLiquidate, FullClose, LongShort, MilestoneDiscount, PartialClose, Pubkey,
    SpinPetEvent, TokenCreated, U128,
};

/// Discriminators from the program's IDL (`events`).
pub const TOKEN_CREATED: [u8; 8] = [96, 122, 113, 138, 50, 227, 149, 57];
pub const BUY_SELL: [u8; 8] = [98, 208, 120, 60, 93, 32, 19, 180];
pub const LONG_SHORT: [u8; 8] = [27, 69, 20, 116, 58, 250, 95, 220];
pub const FORCE_LIQUIDATE: [u8; 8] = [234, 196, 183, 105, 40, 26, 206, 48];
pub const FULL_CLOSE: [u8; 8] = [22, 244, 113, 245, 154, 168, 109, 139];
pub const PARTIAL_CLOSE: [u8; 8] = [133, 94, 3, 222, 24, 68, 69, 155];
pub const MILESTONE_DISCOUNT: [u8; 8] = [130, 232, 11, 37, 34, 185, 136, 128];

/// Longest `string` field accepted (token names, symbols and URIs are short; this bounds allocation).
const MAX_STRING: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {0} bytes is shorter than a discriminator")]
    TooShort(usize),
    #[error("unknown discriminator {0:?}")]
    UnknownDiscriminator([u8; 8]),
    #[error("{event}: truncated at field `{field}`")]
    Truncated {
        event: &'static str,
        field: &'static str,
    },
    #[error("{event}: {extra} trailing bytes after the last field")]
    Trailing { event: &'static str, extra: usize },
    #[error("{event}: field `{field}` is not valid: {reason}")]
    Invalid {
        event: &'static str,
        field: &'static str,
        reason: String,
    },
}

/// Decodes one `Program data:` payload (already base64-decoded).
pub fn decode_event(bytes: &[u8]) -> Result<SpinPetEvent, DecodeError> {
    if bytes.len() < 8 {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let discriminator: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
    let body = &bytes[8..];
    let event = match discriminator {
        TOKEN_CREATED => Reader::new("TokenCreatedEvent", body).finish(|r| {
            Ok(SpinPetEvent::TokenCreated(TokenCreated {
                payer: r.pubkey("payer")?,
                mint_account: r.pubkey("mint_account")?,
                curve_account: r.pubkey("curve_account")?,
                pool_token_account: r.pubkey("pool_token_account")?,
                pool_sol_account: r.pubkey("pool_sol_account")?,
                fee_recipient: r.pubkey("fee_recipient")?,
                base_fee_recipient: r.pubkey("base_fee_recipient")?,
                params_account: r.pubkey("params_account")?,
                swap_fee: r.u16("swap_fee")?,
                borrow_fee: r.u16("borrow_fee")?,
                fee_discount_flag: r.u8("fee_discount_flag")?,
                name: r.string("name")?,
                symbol: r.string("symbol")?,
                uri: r.string("uri")?,
            }))
        }),
        BUY_SELL => Reader::new("BuySellEvent", body).finish(|r| {
            Ok(SpinPetEvent::BuySell(BuySell {
                payer: r.pubkey("payer")?,
                mint_account: r.pubkey("mint_account")?,
                is_buy: r.bool("is_buy")?,
                token_amount: r.u64("token_amount")?,
                sol_amount: r.u64("sol_amount")?,
                latest_price: r.u128("latest_price")?,
            }))
        }),
        LONG_SHORT => Reader::new("LongShortEvent", body).finish(|r| {
            Ok(SpinPetEvent::LongShort(LongShort {
                payer: r.pubkey("payer")?,
                mint_account: r.pubkey("mint_account")?,
                order_pda: r.pubkey("order_pda")?,
                latest_price: r.u128("latest_price")?,
                order_type: r.u8("order_type")?,
                mint: r.pubkey("mint")?,
                user: r.pubkey("user")?,
                lock_lp_start_price: r.u128("lock_lp_start_price")?,
                lock_lp_end_price: r.u128("lock_lp_end_price")?,
                lock_lp_sol_amount: r.u64("lock_lp_sol_amount")?,
                lock_lp_token_amount: r.u64("lock_lp_token_amount")?,
                start_time: r.u32("start_time")?,
                end_time: r.u32("end_time")?,
                margin_sol_amount: r.u64("margin_sol_amount")?,
                borrow_amount: r.u64("borrow_amount")?,
                position_asset_amount: r.u64("position_asset_amount")?,
                borrow_fee: r.u16("borrow_fee")?,
            }))
        }),
        FORCE_LIQUIDATE => Reader::new("ForceLiquidateEvent", body).finish(|r| {
            Ok(SpinPetEvent::ForceLiquidate(ForceLiquidate {
                payer: r.pubkey("payer")?,
                mint_account: r.pubkey("mint_account")?,
                order_pda: r.pubkey("order_pda")?,
            }))
        }),
        FULL_CLOSE => Reader::new("FullCloseEvent", body).finish(|r| {
            Ok(SpinPetEvent::FullClose(FullClose {
                payer: r.pubkey("payer")?,
                user_sol_account: r.pubkey("user_sol_account")?,
                mint_account: r.pubkey("mint_account")?,
                is_close_long: r.bool("is_close_long")?,
                final_token_amount: r.u64("final_token_amount")?,
                final_sol_amount: r.u64("final_sol_amount")?,
                user_close_profit: r.u64("user_close_profit")?,
                latest_price: r.u128("latest_price")?,
                order_pda: r.pubkey("order_pda")?,
            }))
        }),
        PARTIAL_CLOSE => Reader::new("PartialCloseEvent", body).finish(|r| {
            Ok(SpinPetEvent::PartialClose(PartialClose {
                payer: r.pubkey("payer")?,
                user_sol_account: r.pubkey("user_sol_account")?,
                mint_account: r.pubkey("mint_account")?,
                is_close_long: r.bool("is_close_long")?,
                final_token_amount: r.u64("final_token_amount")?,
                final_sol_amount: r.u64("final_sol_amount")?,
                user_close_profit: r.u64("user_close_profit")?,
                latest_price: r.u128("latest_price")?,
                order_pda: r.pubkey("order_pda")?,
                order_type: r.u8("order_type")?,
                mint: r.pubkey("mint")?,
                user: r.pubkey("user")?,
                lock_lp_start_price: r.u128("lock_lp_start_price")?,
                lock_lp_end_price: r.u128("lock_lp_end_price")?,
                lock_lp_sol_amount: r.u64("lock_lp_sol_amount")?,
                lock_lp_token_amount: r.u64("lock_lp_token_amount")?,
                start_time: r.u32("start_time")?,
                end_time: r.u32("end_time")?,
                margin_sol_amount: r.u64("margin_sol_amount")?,
                borrow_amount: r.u64("borrow_amount")?,
                position_asset_amount: r.u64("position_asset_amount")?,
                borrow_fee: r.u16("borrow_fee")?,
            }))
        }),
        MILESTONE_DISCOUNT => Reader::new("MilestoneDiscountEvent", body).finish(|r| {
            Ok(SpinPetEvent::MilestoneDiscount(MilestoneDiscount {
                payer: r.pubkey("payer")?,
                mint_account: r.pubkey("mint_account")?,
                curve_account: r.pubkey("curve_account")?,
                swap_fee: r.u16("swap_fee")?,
                borrow_fee: r.u16("borrow_fee")?,
                fee_discount_flag: r.u8("fee_discount_flag")?,
            }))
        }),
        other => Err(DecodeError::UnknownDiscriminator(other)),
    }?;
    Ok(event)
}

/// Reads Borsh fields in order, naming the field that is missing when the bytes run out.
struct Reader<'a> {
    event: &'static str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(event: &'static str, bytes: &'a [u8]) -> Reader<'a> {
        Reader { event, bytes }
    }

    /// Runs `read` and requires that it consumed every byte.
    fn finish<T>(
        mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let value = read(&mut self)?;
        if !self.bytes.is_empty() {
            return Err(DecodeError::Trailing {
                event: self.event,
                extra: self.bytes.len(),
            });
        }
        Ok(value)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        if self.bytes.len() < N {
            return Err(DecodeError::Truncated {
                event: self.event,
                field,
            });
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("N bytes"))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take::<1>(field)?[0])
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::Invalid {
                event: self.event,
                field,
                reason: format!("a bool must be 0 or 1, got {other}"),
            }),
        }
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }

    fn u128(&mut self, field: &'static str) -> Result<U128, DecodeError> {
        Ok(U128(u128::from_le_bytes(self.take(field)?)))
    }

    fn pubkey(&mut self, field: &'static str) -> Result<Pubkey, DecodeError> {
        Ok(Pubkey::from_bytes(&self.take::<32>(field)?))
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.u32(field)? as usize;
        if len > MAX_STRING || len > self.bytes.len() {
            return Err(if len > MAX_STRING {
                DecodeError::Invalid {
                    event: self.event,
                    field,
                    reason: format!("string of {len} bytes is longer than {MAX_STRING}"),
                }
            } else {
                DecodeError::Truncated {
                    event: self.event,
                    field,
                }
            });
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|err| DecodeError::Invalid {
            event: self.event,
            field,
            reason: err.to_string(),
        })
    }
}
