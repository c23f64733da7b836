//! The `live` scenario's feed: kline-server's real Solana source, fed by the project's fake RPC node
//! (`kline_tests::fake_solana`) at slot pacing. Each slot (one driver tick, `--slot-ms`) becomes one batch
//! of transactions of `--events-per-tx` BuySell events each, spread over the scenario's mints, with the
//! slot's block time; every event's price encodes its sequence number as in the HTTP scenarios, and it is
//! timed from the moment the fake node sends the notification.

use base64::Engine;
use kline_core::event::{Pubkey, Signature};
use kline_server::source::solana::decode::BUY_SELL;
use kline_tests::fake_solana::{FakeSolana, FakeTx};
use kline_tests::tls::TestCa;

use crate::clients::price_raw;

/// The Spin Pet program id the server listens for (its default `source.solana.program_id`).
const PROGRAM: &str = "JBMmrp6jhksqnxDBskkmVvWHhJLaPBjgiMHEroJbUTBZ";
/// The first slot of a run; far from 0 so it looks like a real chain.
const FIRST_SLOT: u64 = 400_000_000;

/// The fake node and where the chain is.
pub struct SlotFeed {
    node: FakeSolana,
    /// The CA of the node's certificate, when it speaks TLS (boxed: it is large and rarely there).
    ca: Option<Box<TestCa>>,
    next_slot: u64,
    events_per_tx: usize,
}

impl SlotFeed {
    /// `tls`: the node serves `wss://` and `https://` only, with a certificate of a CA made here.
    /// `rpc_delay`: how late the node answers `getBlock` and `getTransaction`.
    pub async fn start(
        events_per_tx: usize,
        tls: bool,
        rpc_delay: std::time::Duration,
    ) -> SlotFeed {
        let ca = tls.then(|| Box::new(TestCa::new()));
        let node = match &ca {
            Some(ca) => FakeSolana::start_tls(Vec::new(), &ca.issue("node", &["localhost"])).await,
            None => FakeSolana::start(Vec::new()).await,
        };
        node.set_rpc_delay(rpc_delay);
        SlotFeed {
            node,
            ca,
            next_slot: FIRST_SLOT,
            events_per_tx: events_per_tx.max(1),
        }
    }

    /// `--set` arguments that point kline-server's Solana source at this node.
    pub fn server_args(&self) -> Vec<String> {
        [
            "source.solana.enabled=true".to_owned(),
            format!("source.solana.ws_url=\"{}\"", self.node.ws_url()),
            format!("source.solana.rpc_url=\"{}\"", self.node.rpc_url()),
            format!("source.solana.program_id=\"{PROGRAM}\""),
            "source.solana.reconnect_min_ms=100".to_owned(),
        ]
        .into_iter()
        .chain(self.ca.as_ref().map(|ca| {
            format!(
                "source.solana.ca_file={:?}",
                ca.ca_file.display().to_string()
            )
        }))
        .flat_map(|set| ["--set".to_owned(), set])
        .collect()
    }

    /// Produces one slot holding events `seqs` (`mint_of(seq)` for each), `run` making signatures unique
    /// across runs. Returns the number of events sent.
    pub fn produce_slot(
        &mut self,
        seqs: std::ops::Range<u64>,
        mint_of: impl Fn(u64) -> Pubkey,
        run: u64,
    ) -> u64 {
        let slot = self.next_slot;
        self.next_slot += 1;
        let block_time = kline_protocol::response::unix_millis_now() / 1000;
        let seqs: Vec<u64> = seqs.collect();
        let transactions: Vec<FakeTx> = seqs
            .chunks(self.events_per_tx)
            .enumerate()
            .map(|(tx_index, chunk)| {
                let mut tx = transaction(slot, block_time, chunk, &mint_of, run);
                tx.tx_index = tx_index as u32;
                tx
            })
            .collect();
        let count = transactions.len();
        self.node.extend_script(transactions);
        self.node.produce(count);
        seqs.len() as u64
    }
}

/// One successful transaction of the program emitting a BuySell event per sequence number.
fn transaction(
    slot: u64,
    block_time: i64,
    seqs: &[u64],
    mint_of: &impl Fn(u64) -> Pubkey,
    run: u64,
) -> FakeTx {
    let mut signature = [9u8; 64];
    signature[..8].copy_from_slice(&run.to_be_bytes());
    signature[8..16].copy_from_slice(&seqs[0].to_be_bytes());
    let mut logs = vec![
        format!("Program {PROGRAM} invoke [1]"),
        "Program log: Instruction: Buy".to_owned(),
    ];
    for &seq in seqs {
        let payload = buy_sell_borsh(&mint_of(seq), price_raw(seq), seq.is_multiple_of(2));
        logs.push(format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(payload)
        ));
    }
    logs.push(format!("Program {PROGRAM} success"));
    FakeTx {
        signature: Signature::from_bytes(signature).as_str().to_owned(),
        slot,
        tx_index: 0,
        block_time,
        failed: false,
        logs,
    }
}

/// A `BuySellEvent` as the program emits it: discriminator, then Borsh in IDL field order (payer, mint,
/// is_buy, token_amount u64, sol_amount u64, latest_price u128, little-endian).
fn buy_sell_borsh(mint: &Pubkey, latest_price: u128, is_buy: bool) -> Vec<u8> {
    let mut bytes = BUY_SELL.to_vec();
    bytes.extend_from_slice(&mint.to_bytes());
    bytes.extend_from_slice(&mint.to_bytes());
    bytes.push(u8::from(is_buy));
    bytes.extend_from_slice(&1_000_000u64.to_le_bytes());
    bytes.extend_from_slice(&10_000_000u64.to_le_bytes());
    bytes.extend_from_slice(&latest_price.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use kline_core::event::SpinPetEvent;
    use kline_core::simulated_market::SimulatedMarket;
    use kline_server::source::solana::decode::decode_event;

    use super::*;

    #[test]
    fn the_server_decodes_what_the_feed_encodes() {
        let mint = SimulatedMarket::new(1, 1).mints()[0].clone();
        let event = decode_event(&buy_sell_borsh(&mint, price_raw(41), true))
            .unwrap()
            .event;
        let SpinPetEvent::BuySell(buy) = event else {
            panic!("not a BuySell")
        };
        assert_eq!(buy.mint_account, mint);
        assert_eq!(buy.latest_price.0, price_raw(41));
        assert!(buy.is_buy);
    }
}
