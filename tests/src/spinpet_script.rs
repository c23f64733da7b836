//! Spin Pet transactions for the fake Solana node ([`crate::fake_solana`]): BuySell events encoded as the
//! program emits them (Borsh, from the IDL layout, written here independently of the server's decoder),
//! with the JSON the server should store for them, and the server settings that point the `solana` source
//! at a fake node.

use base64::Engine;
use serde_json::{Value, json};

use crate::fake_solana::{FakeSolana, FakeTx};

pub const PROGRAM: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";
pub const BUY_SELL: [u8; 8] = [98, 208, 120, 60, 93, 32, 19, 180];

/// An event as the test knows it: its Borsh bytes (written here from the IDL layout) and its JSON.
pub struct ScriptEvent {
    pub borsh: Vec<u8>,
    pub json: Value,
}

pub fn key(seed: u64) -> [u8; 32] {
    std::array::from_fn(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8 + 1)
}

pub fn buy_sell(
    mint: [u8; 32],
    payer: [u8; 32],
    price: u128,
    block_time: i64,
    signature: &str,
    slot: u64,
    index: u32,
) -> ScriptEvent {
    let mut borsh = BUY_SELL.to_vec();
    borsh.extend_from_slice(&payer);
    borsh.extend_from_slice(&mint);
    borsh.push(1);
    borsh.extend_from_slice(&1_000_000u64.to_le_bytes());
    borsh.extend_from_slice(&50_000_000u64.to_le_bytes());
    borsh.extend_from_slice(&price.to_le_bytes());
    let json = json!({
        "event_type": "BuySell", "payer": bs58::encode(payer).into_string(), "mint_account": bs58::encode(mint).into_string(),
        "is_buy": true, "token_amount": 1_000_000u64, "sol_amount": 50_000_000u64, "latest_price": price.to_string(),
        "timestamp": block_time, "signature": signature, "slot": slot, "event_index": index,
    });
    ScriptEvent { borsh, json }
}

/// `count` transactions, one or two BuySell events each over two mints; every seventh one failed.
/// Slots of `per_slot` transactions of one mint (one BuySell each). Within a slot the script delivers the
/// transactions in the reverse of their block order, and their signatures sort in the reverse of it too, so
/// only the block position can put them in order. Returns the script and the events' JSON with `tx_index`.
pub fn crowded_slots(
    slots: u64,
    per_slot: u32,
    first_block_time: i64,
) -> (Vec<FakeTx>, Vec<Value>) {
    let mut transactions = Vec::new();
    let mut expected = Vec::new();
    for s in 0..slots {
        let slot = 310_000_000 + s * 2;
        let block_time = first_block_time + s as i64 * 2;
        for position in (0..per_slot).rev() {
            // Block position 0 gets the largest signature.
            let mut signature_bytes = key(9000 + s * 100 + u64::from(position)).to_vec();
            signature_bytes.extend_from_slice(&key(7000 + s));
            signature_bytes[0] = 200 - position as u8;
            let signature = bs58::encode(&signature_bytes).into_string();
            let price = 279_590_000_000_000_000_000u128
                + u128::from(s * 100 + u64::from(position)) * 1_000_000_000_000_000;
            let tx_index = position * 3 + 1; // other programs' transactions in between
            let mut event = buy_sell(key(0), key(77), price, block_time, &signature, slot, 0);
            event.json["tx_index"] = json!(tx_index);
            transactions.push(FakeTx {
                signature,
                slot,
                tx_index,
                block_time,
                failed: false,
                logs: vec![
                    format!("Program {PROGRAM} invoke [1]"),
                    format!(
                        "Program data: {}",
                        base64::engine::general_purpose::STANDARD.encode(&event.borsh)
                    ),
                    format!("Program {PROGRAM} success"),
                ],
            });
            expected.push(event.json);
        }
    }
    (transactions, expected)
}

pub fn price_of(json: &Value) -> f64 {
    format!("{}e-28", json["latest_price"].as_str().unwrap())
        .parse()
        .unwrap()
}

/// `--set` arguments: the simulator off, the `solana` source on against `fake`, quick reconnects.
pub fn server_args(fake: &FakeSolana) -> Vec<String> {
    [
        "source.simulator.enabled=false",
        "source.solana.enabled=true",
        &format!("source.solana.ws_url=\"{}\"", fake.ws_url()),
        &format!("source.solana.rpc_url=\"{}\"", fake.rpc_url()),
        "source.solana.reconnect_min_ms=100",
        "source.solana.reconnect_max_ms=1000",
        "source.solana.backfill_page=4",
        // Passing RPC errors retried at most a second apart (jitter on top), so tests settle quickly.
        "source.solana.retry_max_ms=1000",
    ]
    .iter()
    .flat_map(|s| ["--set".to_owned(), s.to_string()])
    .collect()
}
