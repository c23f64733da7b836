//! Token names in the `symbols` column family: `mint (32) ++ b'n'` → the name's encoding.
//!
//! Why there: a name belongs to its mint like its stats do, the family is replicated whole by snapshots
//! (so an edge loading one gets the names), and the 33-byte keys sort right after their mint's 32-byte
//! stats key, so one scan could read both. Readers of the stats skip keys that are not 32 bytes
//! ([`CandleStore::symbols`]). Names are not swept by retention: they outlive the events they came from.
//!
//! Value: a format byte ([`NAME_FORMAT`]), then borsh of `(ticker, name, uri)`, each an optional string;
//! decoding sanitises again, so a value written by hand cannot smuggle in what the writer removes.

use rocksdb::IteratorMode;

use super::{CF_SYMBOLS, CandleStore, CorruptValue, StoreBatch, StoreError};
use kline_core::names::TokenName;

/// Marks a name key (the byte after the mint).
const NAME_KEY_SUFFIX: u8 = b'n';
const NAME_FORMAT: u8 = 1;

/// The key of `mint`'s name.
pub fn name_key(mint: &[u8; 32]) -> [u8; 33] {
    let mut key = [0; 33];
    key[..32].copy_from_slice(mint);
    key[32] = NAME_KEY_SUFFIX;
    key
}

/// The mint a name key names, or `None` if `key` is not a name key.
pub fn decode_name_key(key: &[u8]) -> Option<[u8; 32]> {
    let (mint, suffix) = key.split_first_chunk::<32>()?;
    (suffix == [NAME_KEY_SUFFIX]).then_some(*mint)
}

pub fn encode_name(name: &TokenName) -> Vec<u8> {
    let texts = (
        name.ticker.as_ref().map(|t| t.as_str()),
        name.name.as_ref().map(|t| t.as_str()),
        name.uri.as_ref().map(|t| t.as_str()),
    );
    let mut out = vec![NAME_FORMAT];
    borsh::to_writer(&mut out, &texts).expect("names serialize into memory");
    out
}

pub fn decode_name(bytes: &[u8]) -> Result<TokenName, CorruptValue> {
    let corrupt = CorruptValue {
        what: "token name",
        len: bytes.len(),
    };
    let Some((&NAME_FORMAT, rest)) = bytes.split_first() else {
        return Err(corrupt);
    };
    let (ticker, name, uri): (Option<String>, Option<String>, Option<String>) =
        borsh::from_slice(rest).map_err(|_| corrupt.clone())?;
    let text = |t: &Option<String>| t.as_deref().unwrap_or("").to_owned();
    TokenName::from_texts(&text(&ticker), &text(&name), &text(&uri)).ok_or(corrupt)
}

impl CandleStore {
    /// Every stored name, in mint order.
    pub fn names(&self) -> Result<Vec<([u8; 32], TokenName)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_SYMBOLS), IteratorMode::Start)
        {
            let (key, value) = item?;
            if let Some(mint) = decode_name_key(&key) {
                out.push((mint, decode_name(&value)?));
            }
        }
        Ok(out)
    }

    /// The names of `mints`, in their order (one multi-get: for a page of a list, not a scan).
    pub fn names_of(&self, mints: &[[u8; 32]]) -> Result<Vec<Option<TokenName>>, StoreError> {
        let cf = self.cf(CF_SYMBOLS);
        let keys: Vec<_> = mints.iter().map(|mint| (cf, name_key(mint))).collect();
        self.db
            .multi_get_cf(keys)
            .into_iter()
            .map(|found| match found? {
                Some(value) => Ok(Some(decode_name(&value)?)),
                None => Ok(None),
            })
            .collect()
    }

    /// `mint`'s name, if one is stored.
    pub fn name(&self, mint: &[u8; 32]) -> Result<Option<TokenName>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_SYMBOLS), name_key(mint))? {
            Some(value) => Ok(Some(decode_name(&value)?)),
            None => Ok(None),
        }
    }
}

impl StoreBatch<'_> {
    /// Stores `mint`'s name (replacing an earlier one).
    pub fn put_name(&mut self, mint: &[u8; 32], name: &TokenName) {
        self.batch
            .put_cf(self.store.cf(CF_SYMBOLS), name_key(mint), encode_name(name));
    }

    /// Edge: a name as the writer encoded it.
    pub fn put_replicated_name(&mut self, mint: &[u8; 32], value: &[u8]) {
        self.batch
            .put_cf(self.store.cf(CF_SYMBOLS), name_key(mint), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_beside_the_stats_without_being_stats() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let name = TokenName::from_texts("PET", "Spin Pet", "ipfs://x").unwrap();
        let stats = super::super::SymbolStats {
            last_price: 1.0,
            last_key: Default::default(),
            updated_at_ms: 1,
            event_count: 1,
        };
        let mut batch = store.batch();
        batch.put_symbol(&[7; 32], &stats);
        batch.put_name(&[7; 32], &name);
        batch.put_symbol(&[8; 32], &stats);
        store.write(batch).unwrap();
        assert_eq!(store.symbols().unwrap().len(), 2, "a name is not a symbol");
        assert_eq!(store.names().unwrap(), vec![([7; 32], name.clone())]);
        assert_eq!(store.name(&[7; 32]).unwrap(), Some(name.clone()));
        assert_eq!(store.name(&[8; 32]).unwrap(), None);
        assert_eq!(
            store.names_of(&[[8; 32], [7; 32]]).unwrap(),
            vec![None, Some(name)]
        );
        assert_eq!(decode_name_key(&name_key(&[9; 32])), Some([9; 32]));
        assert_eq!(decode_name_key(&[9; 32]), None);
    }

    #[test]
    fn a_hand_written_value_is_sanitised_on_read() {
        let mut bytes = vec![NAME_FORMAT];
        let texts: (Option<&str>, Option<&str>, Option<&str>) =
            (Some("\u{1b}[1mX"), Some("\u{202E}evil"), None);
        borsh::to_writer(&mut bytes, &texts).unwrap();
        let name = decode_name(&bytes).unwrap();
        assert_eq!(name.ticker.unwrap().as_str(), "[1mX");
        assert_eq!(name.name.unwrap().as_str(), "evil");
        assert!(decode_name(&[2, 0]).is_err());
    }
}
