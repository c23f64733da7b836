//! Decoding Spin Pet events from their on-chain form: an 8-byte discriminator
//! (`sha256("event:<Name>")[..8]`) followed by the event's fields in Borsh, in the IDL's order.
//!
//! The fields are declared once, on the event structs of [`kline_core::event`] (which derive
//! `BorshDeserialize`); this module only maps a discriminator to its struct and names what was wrong.
//!
//! Forward compatible: when the program is upgraded, Anchor appends new fields at the end of an event, so
//! bytes after the known fields are not an error: the event decodes from the fields it knows and says how
//! many bytes it left ([`Decoded::trailing`]). A discriminator the program's IDL does not have (an event
//! added by an upgrade) is its own error, [`DecodeError::UnknownDiscriminator`], for the caller to count
//! apart from broken input.

use borsh::BorshDeserialize;

use kline_core::event::SpinPetEvent;

/// Discriminators from the program's IDL (`events`).
pub const TOKEN_CREATED: [u8; 8] = [96, 122, 113, 138, 50, 227, 149, 57];
pub const BUY_SELL: [u8; 8] = [98, 208, 120, 60, 93, 32, 19, 180];
pub const LONG_SHORT: [u8; 8] = [27, 69, 20, 116, 58, 250, 95, 220];
pub const FORCE_LIQUIDATE: [u8; 8] = [234, 196, 183, 105, 40, 26, 206, 48];
pub const FULL_CLOSE: [u8; 8] = [22, 244, 113, 245, 154, 168, 109, 139];
pub const PARTIAL_CLOSE: [u8; 8] = [133, 94, 3, 222, 24, 68, 69, 155];
pub const MILESTONE_DISCOUNT: [u8; 8] = [130, 232, 11, 37, 34, 185, 136, 128];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {0} bytes is shorter than a discriminator")]
    TooShort(usize),
    #[error("unknown discriminator {0:?}")]
    UnknownDiscriminator([u8; 8]),
    #[error("{event}: truncated (the bytes end before the last field)")]
    Truncated { event: &'static str },
    #[error("{event}: a field is not valid: {reason}")]
    Invalid { event: &'static str, reason: String },
}

/// An event and what of its payload it did not read.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event: SpinPetEvent,
    /// Bytes after the last known field (fields a newer program version added), ignored.
    pub trailing: usize,
}

/// Decodes one `Program data:` payload (already base64-decoded).
pub fn decode_event(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.len() < 8 {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let discriminator: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
    let body = &bytes[8..];
    let (event, trailing) = match discriminator {
        TOKEN_CREATED => with(read("TokenCreatedEvent", body)?, SpinPetEvent::TokenCreated),
        BUY_SELL => with(read("BuySellEvent", body)?, SpinPetEvent::BuySell),
        LONG_SHORT => with(read("LongShortEvent", body)?, SpinPetEvent::LongShort),
        FORCE_LIQUIDATE => with(
            read("ForceLiquidateEvent", body)?,
            SpinPetEvent::ForceLiquidate,
        ),
        FULL_CLOSE => with(read("FullCloseEvent", body)?, SpinPetEvent::FullClose),
        PARTIAL_CLOSE => with(read("PartialCloseEvent", body)?, SpinPetEvent::PartialClose),
        MILESTONE_DISCOUNT => with(
            read("MilestoneDiscountEvent", body)?,
            SpinPetEvent::MilestoneDiscount,
        ),
        other => return Err(DecodeError::UnknownDiscriminator(other)),
    };
    Ok(Decoded { event, trailing })
}

fn with<T>((value, trailing): (T, usize), kind: fn(T) -> SpinPetEvent) -> (SpinPetEvent, usize) {
    (kind(value), trailing)
}

/// Reads one event struct from the start of `body`; returns it and the count of bytes left after it.
fn read<T: BorshDeserialize>(
    event: &'static str,
    mut body: &[u8],
) -> Result<(T, usize), DecodeError> {
    let value = T::deserialize(&mut body).map_err(|err| {
        // Borsh reports bytes running out inside a primitive as `InvalidData` with this text (its constant
        // is private); the truncation tests fail if that changes.
        if err.kind() == borsh::io::ErrorKind::UnexpectedEof
            || err.to_string() == "Unexpected length of input"
        {
            DecodeError::Truncated { event }
        } else {
            DecodeError::Invalid {
                event,
                reason: err.to_string(),
            }
        }
    })?;
    Ok((value, body.len()))
}
