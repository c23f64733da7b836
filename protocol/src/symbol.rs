//! Token mint addresses: base58 strings that decode to exactly 32 bytes (a Solana public key).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A validated Solana mint address. The string form is kept as given (base58 has one encoding per key), and
/// so are the 32 bytes validation decoded, so [`Symbol::to_bytes`] costs a copy rather than a decode.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol {
    // `text` first: the derived order is the string's order (`bytes` follows from `text`).
    text: String,
    bytes: [u8; 32],
}

/// Why a string is not a mint address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol is empty; expected a base58 mint address")]
    Empty,
    #[error("symbol `{symbol}` is not base58: {reason}")]
    NotBase58 { symbol: String, reason: String },
    #[error("symbol `{symbol}` decodes to {len} bytes; a mint address is 32 bytes")]
    WrongLength { symbol: String, len: usize },
}

impl Symbol {
    /// Parses and validates a mint address.
    pub fn parse(s: &str) -> Result<Symbol, SymbolError> {
        Self::decode(s).map(|bytes| Symbol {
            text: s.to_owned(),
            bytes,
        })
    }

    /// The symbol for a raw 32-byte public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Symbol {
        Symbol {
            text: crate::base58::encode_32(bytes),
            bytes: *bytes,
        }
    }

    /// The 32 raw bytes of the address.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The base58 string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn decode(s: &str) -> Result<[u8; 32], SymbolError> {
        if s.is_empty() {
            return Err(SymbolError::Empty);
        }
        if let Some(key) = crate::base58::decode_32(s) {
            return Ok(key);
        }
        // `bs58` says what is wrong with it.
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|err| SymbolError::NotBase58 {
                symbol: s.to_owned(),
                reason: err.to_string(),
            })?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| SymbolError::WrongLength {
            symbol: s.to_owned(),
            len: bytes.len(),
        })
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::parse(s)
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::decode(&value).map(|bytes| Symbol { text: value, bytes })
    }
}

impl From<Symbol> for String {
    fn from(symbol: Symbol) -> Self {
        symbol.text
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.text)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM_ID: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";

    #[test]
    fn accepts_a_real_address_and_round_trips_bytes() {
        let symbol = Symbol::parse(PROGRAM_ID).unwrap();
        assert_eq!(Symbol::from_bytes(&symbol.to_bytes()), symbol);
        assert_eq!(symbol.as_str(), PROGRAM_ID);
    }

    #[test]
    fn all_zero_key_is_32_ones() {
        let symbol = Symbol::from_bytes(&[0; 32]);
        assert_eq!(symbol.as_str(), "11111111111111111111111111111111");
        assert!(Symbol::parse(symbol.as_str()).is_ok());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert!(matches!(
            Symbol::parse("test_mint_account"),
            Err(SymbolError::NotBase58 { .. })
        ));
        // `0`, `O`, `I` and `l` are not in the base58 alphabet.
        assert!(matches!(
            Symbol::parse("0BMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ"),
            Err(SymbolError::NotBase58 { .. })
        ));
        let short = Symbol::parse("JBMmrp6jhksqnxDBskkmVvWHhJLaPBjg").unwrap_err();
        assert!(
            matches!(short, SymbolError::WrongLength { len, .. } if len < 32),
            "{short}"
        );
        let long = format!("{PROGRAM_ID}{PROGRAM_ID}");
        assert!(matches!(
            Symbol::parse(&long),
            Err(SymbolError::WrongLength { len, .. }) if len > 32
        ));
    }

    #[test]
    fn serde_validates() {
        let err = serde_json::from_str::<Symbol>("\"abc\"").unwrap_err();
        assert!(
            err.to_string().contains("a mint address is 32 bytes"),
            "{err}"
        );
    }
}
