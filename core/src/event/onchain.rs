//! The Borsh side of the event types: how the fields that are not plain Borsh types are read from an
//! event's on-chain bytes (Anchor's `emit!` writes events in Borsh, the encoding the program's IDL describes).
//!
//! The event structs derive `BorshDeserialize` and `BorshSerialize`; their `pubkey` and `string` fields
//! name the readers (and writers) below. The store keeps events in this same form ([`super::stored`]).

use borsh::io::{Error, ErrorKind, Read, Result, Write};
use borsh::{BorshDeserialize, BorshSerialize};

use super::{Pubkey, U128};

/// Longest `string` field accepted (token names, symbols and URIs are short; this bounds allocation).
pub const MAX_STRING: usize = 1024;

/// A `pubkey`: 32 raw bytes.
pub fn pubkey<R: Read>(reader: &mut R) -> Result<Pubkey> {
    let bytes = <[u8; 32]>::deserialize_reader(reader)?;
    Ok(Pubkey::from_bytes(&bytes))
}

/// Writes a `pubkey` as its 32 raw bytes.
pub fn write_pubkey<W: Write>(key: &Pubkey, writer: &mut W) -> Result<()> {
    writer.write_all(&key.to_bytes())
}

/// A `string` (u32 length + UTF-8) of at most [`MAX_STRING`] bytes.
pub fn bounded_string<R: Read>(reader: &mut R) -> Result<String> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > MAX_STRING {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("string of {len} bytes is longer than {MAX_STRING}"),
        ));
    }
    let mut bytes = vec![0; len];
    reader.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|err| Error::new(ErrorKind::InvalidData, err.to_string()))
}

impl BorshDeserialize for U128 {
    fn deserialize_reader<R: Read>(reader: &mut R) -> Result<Self> {
        u128::deserialize_reader(reader).map(U128)
    }
}

impl BorshSerialize for U128 {
    fn serialize<W: Write>(&self, writer: &mut W) -> Result<()> {
        self.0.serialize(writer)
    }
}
