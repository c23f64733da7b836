//! Base58 of the two fixed sizes Solana uses: 32-byte keys (mints, payers) and 64-byte signatures.
//!
//! `five8` encodes and decodes these sizes in linear time; the general `bs58` codec is quadratic in the
//! length and was a tenth of the server's CPU at full-speed ingest (decoding every event's signature,
//! mint and payer) and most of the load generator's. `bs58` stays for what `five8` refuses, to say why.

/// The base58 text of a 32-byte key.
pub fn encode_32(bytes: &[u8; 32]) -> String {
    let mut out = [0u8; 44];
    let len = five8::encode_32(bytes, &mut out) as usize;
    String::from_utf8_lossy(&out[..len]).into_owned()
}

/// The base58 text of a 64-byte signature.
pub fn encode_64(bytes: &[u8; 64]) -> String {
    let mut out = [0u8; 88];
    let len = five8::encode_64(bytes, &mut out) as usize;
    String::from_utf8_lossy(&out[..len]).into_owned()
}

/// The 32 bytes `text` encodes, if it is the base58 of exactly 32 bytes.
pub fn decode_32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    five8::decode_32(text, &mut out).ok().map(|()| out)
}

/// The 64 bytes `text` encodes, if it is the base58 of exactly 64 bytes.
pub fn decode_64(text: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    five8::decode_64(text, &mut out).ok().map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_as_bs58_both_ways() {
        for seed in 0..300u64 {
            let mut long: [u8; 64] = std::array::from_fn(|i| {
                (seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(i as u32 * 3)
                    >> 11) as u8
            });
            long[..(seed % 6) as usize].fill(0); // leading zero bytes are leading '1's
            let short: [u8; 32] = long[32..].try_into().unwrap();
            let (text_64, text_32) = (
                bs58::encode(long).into_string(),
                bs58::encode(short).into_string(),
            );
            assert_eq!(encode_64(&long), text_64);
            assert_eq!(encode_32(&short), text_32);
            assert_eq!(decode_64(&text_64), Some(long));
            assert_eq!(decode_32(&text_32), Some(short));
        }
        assert_eq!(encode_64(&[0; 64]), "1".repeat(64));
        assert_eq!(decode_32(&encode_64(&[5; 64])), None, "64 bytes are not 32");
        assert_eq!(decode_64("0OIl"), None);
    }
}
