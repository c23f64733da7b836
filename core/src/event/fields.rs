//! Field types of the event JSON that need more than serde's defaults: exact `u128`, flexible timestamps,
//! and validated transaction signatures.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A `u128` that is a decimal string in JSON. A JSON integer is accepted too, read from its exact text (a
/// plain `f64` round trip would lose digits of values above 2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U128(pub u128);

impl Serialize for U128 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U128 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(deserializer)?;
        let text = raw.get();
        let digits = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(de::Error::custom(format!(
                "expected an unsigned integer (a decimal string or a JSON integer), got {text}"
            )));
        }
        digits
            .parse::<u128>()
            .map(U128)
            .map_err(|_| de::Error::custom(format!("{digits} does not fit in a u128")))
    }
}

/// An event time in Unix milliseconds. JSON: RFC 3339 (`"2025-11-26T10:00:00.250Z"`) or Unix seconds (an
/// integer, or a number with a fraction). Written back as RFC 3339 in UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub i64);

impl EventTime {
    pub fn unix_millis(self) -> i64 {
        self.0
    }

    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time = DateTime::<Utc>::from_timestamp_millis(self.0)
            .ok_or_else(|| serde::ser::Error::custom("timestamp out of range"))?;
        serializer.collect_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;

        impl Visitor<'_> for TimeVisitor {
            type Value = EventTime;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventTime, E> {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| EventTime(t.timestamp_millis()))
                    .map_err(|err| E::custom(format!("`{v}` is not an RFC 3339 time: {err}")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventTime, E> {
                v.checked_mul(1000)
                    .map(EventTime)
                    .ok_or_else(|| E::custom(format!("{v} is out of range for Unix seconds")))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventTime, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is out of range for Unix seconds")))
                    .and_then(|v| self.visit_i64(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EventTime, E> {
                let millis = (v * 1000.0).round();
                if !millis.is_finite() || millis.abs() > 1e15 {
                    return Err(E::custom(format!("{v} is out of range for Unix seconds")));
                }
                Ok(EventTime(millis as i64))
            }
        }

        deserializer.deserialize_any(TimeVisitor)
    }
}

/// A transaction signature: base58 of 64 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    text: String,
    bytes: [u8; 64],
}

impl Signature {
    pub fn parse(text: &str) -> Result<Signature, String> {
        if let Some(bytes) = kline_protocol::base58::decode_64(text) {
            return Ok(Signature {
                text: text.to_owned(),
                bytes,
            });
        }
        // `bs58` says what is wrong with it.
        let decoded = bs58::decode(text)
            .into_vec()
            .map_err(|err| format!("signature `{text}` is not base58: {err}"))?;
        let bytes = <[u8; 64]>::try_from(decoded.as_slice()).map_err(|_| {
            format!(
                "signature `{text}` decodes to {} bytes; a signature is 64 bytes",
                decoded.len()
            )
        })?;
        Ok(Signature {
            text: text.to_owned(),
            bytes,
        })
    }

    pub fn from_bytes(bytes: [u8; 64]) -> Signature {
        Signature {
            text: kline_protocol::base58::encode_64(&bytes),
            bytes,
        }
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.bytes
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.text)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Signature::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Signature;

    #[test]
    fn signatures_decode_as_bs58_does_and_bad_ones_say_why() {
        // Leading zero bytes (leading '1's), all zeros, all 0xFF and mixed bytes.
        let mut cases: Vec<[u8; 64]> = vec![[0; 64], [0xFF; 64]];
        for seed in 0..200u64 {
            let mut bytes: [u8; 64] = std::array::from_fn(|i| {
                (seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(i as u32)
                    >> 7) as u8
            });
            bytes[..(seed % 5) as usize].fill(0);
            cases.push(bytes);
        }
        for bytes in cases {
            let text = bs58::encode(bytes).into_string();
            assert_eq!(Signature::parse(&text).unwrap().to_bytes(), bytes, "{text}");
        }
        let short = bs58::encode([7u8; 32]).into_string();
        assert!(Signature::parse(&short).unwrap_err().contains("32 bytes"));
        assert!(Signature::parse("0OIl").unwrap_err().contains("not base58"));
    }
}
