//! Decoding checked against an independent Borsh encoder driven by the program's IDL (vendored beside this
//! file as `spinpet.idl.json`): for every event type, random field values are encoded from the IDL's field
//! list and must decode back to the same values.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::decode::{self, DecodeError, decode_event};

const IDL: &str = include_str!("spinpet.idl.json");

/// A small deterministic generator (the test must not depend on our own code for randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next() as u8)
    }
}

/// Borsh-encodes random values for `fields` (IDL field list); returns the bytes and the expected JSON.
fn encode_random(fields: &[Value], rng: &mut Lcg) -> (Vec<u8>, Map<String, Value>) {
    let mut bytes = Vec::new();
    let mut expected = Map::new();
    for field in fields {
        let name = field["name"].as_str().unwrap().to_owned();
        let value = match field["type"].as_str().unwrap() {
            "pubkey" => {
                let key: [u8; 32] = rng.bytes();
                bytes.extend_from_slice(&key);
                json!(bs58::encode(key).into_string())
            }
            "bool" => {
                let b = rng.next() % 2 == 1;
                bytes.push(u8::from(b));
                json!(b)
            }
            "u8" => {
                let v = rng.next() as u8;
                bytes.push(v);
                json!(v)
            }
            "u16" => {
                let v = rng.next() as u16;
                bytes.extend_from_slice(&v.to_le_bytes());
                json!(v)
            }
            "u32" => {
                let v = rng.next() as u32;
                bytes.extend_from_slice(&v.to_le_bytes());
                json!(v)
            }
            "u64" => {
                let v = rng.next() ^ (rng.next() << 40);
                bytes.extend_from_slice(&v.to_le_bytes());
                json!(v)
            }
            "u128" => {
                // Non-zero and in Spin Pet's price range, so the event also validates as a price.
                let v = u128::from(rng.next() % 1_000_000 + 1) * 10u128.pow(18);
                bytes.extend_from_slice(&v.to_le_bytes());
                json!(v.to_string())
            }
            "string" => {
                let len = (rng.next() % 20) as usize;
                let text: String = (0..len)
                    .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
                    .collect();
                bytes.extend_from_slice(&(len as u32).to_le_bytes());
                bytes.extend_from_slice(text.as_bytes());
                json!(text)
            }
            other => panic!("IDL type {other} not handled by the test encoder"),
        };
        expected.insert(name, value);
    }
    (bytes, expected)
}

fn idl_events() -> Vec<(String, [u8; 8], Vec<Value>)> {
    let idl: Value = serde_json::from_str(IDL).unwrap();
    idl["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let name = event["name"].as_str().unwrap().to_owned();
            let discriminator: Vec<u8> = event["discriminator"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect();
            let fields = idl["types"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == event["name"])
                .unwrap()["type"]["fields"]
                .as_array()
                .unwrap()
                .clone();
            (name, discriminator.try_into().unwrap(), fields)
        })
        .collect()
}

#[test]
fn discriminators_are_sha256_of_the_event_name() {
    let ours = [
        ("TokenCreatedEvent", decode::TOKEN_CREATED),
        ("BuySellEvent", decode::BUY_SELL),
        ("LongShortEvent", decode::LONG_SHORT),
        ("ForceLiquidateEvent", decode::FORCE_LIQUIDATE),
        ("FullCloseEvent", decode::FULL_CLOSE),
        ("PartialCloseEvent", decode::PARTIAL_CLOSE),
        ("MilestoneDiscountEvent", decode::MILESTONE_DISCOUNT),
    ];
    let idl = idl_events();
    assert_eq!(idl.len(), 7);
    for (name, discriminator) in ours {
        let hash = Sha256::digest(format!("event:{name}").as_bytes());
        assert_eq!(&hash[..8], &discriminator, "{name}");
        let from_idl = idl.iter().find(|(n, ..)| n == name).unwrap().1;
        assert_eq!(from_idl, discriminator, "{name} in the IDL");
    }
}

#[test]
fn every_event_decodes_to_the_encoded_values() {
    let mut rng = Lcg(2024);
    for (name, discriminator, fields) in idl_events() {
        for _ in 0..50 {
            let (body, expected) = encode_random(&fields, &mut rng);
            let bytes = [discriminator.as_slice(), &body].concat();
            let decoded = decode_event(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(decoded.trailing, 0, "{name}");
            let event = decoded.event;
            assert_eq!(format!("{}Event", event.event_type()), name);
            let decoded = serde_json::to_value(&event).unwrap();
            for (field, value) in &expected {
                assert_eq!(&decoded[field], value, "{name}.{field}");
            }
            assert_eq!(
                decoded.as_object().unwrap().len(),
                expected.len() + 1,
                "{name}: no extra fields"
            );
        }
    }
}

/// How Anchor grows an event on a program upgrade: new fields after the old ones. The old fields still
/// decode, and the bytes after them are reported, not rejected.
#[test]
fn an_event_with_fields_after_the_known_ones_decodes_from_the_known_ones() {
    let mut rng = Lcg(11);
    for (name, discriminator, fields) in idl_events() {
        let (body, expected) = encode_random(&fields, &mut rng);
        let bytes = [discriminator.as_slice(), &body].concat();
        for extra in [1, 8, 40] {
            let mut longer = bytes.clone();
            longer.extend((0..extra).map(|i| i as u8 ^ 0x5a));
            let decoded = decode_event(&longer).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(decoded.trailing, extra, "{name}");
            assert_eq!(decoded.event, decode_event(&bytes).unwrap().event, "{name}");
            let json = serde_json::to_value(&decoded.event).unwrap();
            for (field, value) in &expected {
                assert_eq!(&json[field], value, "{name}.{field}");
            }
        }
    }
}

#[test]
fn truncated_and_garbage_payloads_are_rejected_with_a_reason() {
    let mut rng = Lcg(7);
    for (name, discriminator, fields) in idl_events() {
        let (body, _) = encode_random(&fields, &mut rng);
        let bytes = [discriminator.as_slice(), &body].concat();
        let truncated = decode_event(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            matches!(truncated, DecodeError::Truncated { .. }),
            "{name}: {truncated}"
        );
    }
    assert_eq!(decode_event(&[1, 2, 3]), Err(DecodeError::TooShort(3)));
    assert_eq!(
        decode_event(&[9; 40]),
        Err(DecodeError::UnknownDiscriminator([9; 8])),
        "an event kind the IDL does not have is told apart from broken input"
    );
    let mut bad_bool = decode::BUY_SELL.to_vec();
    bad_bool.extend_from_slice(&[0; 64]);
    bad_bool.push(2);
    let err = decode_event(&bad_bool).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Invalid {
                event: "BuySellEvent",
                ..
            }
        ) && err.to_string().contains("bool"),
        "{err}"
    );
    let mut huge_string = decode::TOKEN_CREATED.to_vec();
    huge_string.extend_from_slice(&[0; 32 * 8 + 5]);
    huge_string.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        decode_event(&huge_string)
            .unwrap_err()
            .to_string()
            .contains("longer than"),
        "oversized"
    );
}
