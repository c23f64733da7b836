use std::io::Read;

use kline_protocol::{Interval, Symbol};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use super::*;

fn series() -> SeriesKey {
    (Symbol::from_bytes(&[1; 32]), Interval::S1)
}

/// An update of `series()` whose frame reads `time/count/is_final`.
fn update(time: i64, count: u32, is_final: bool) -> Arc<CandleUpdate> {
    update_reading(time, count, is_final, &format!("{time}/{count}/{is_final}"))
}

/// An update of `series()` whose frame carries `text`.
fn update_reading(time: i64, count: u32, is_final: bool, text: &str) -> Arc<CandleUpdate> {
    let encoded = std::sync::OnceLock::new();
    let _ = encoded.set(frame::text(text));
    Arc::new(CandleUpdate {
        symbol: series().0,
        interval: series().1,
        candle: Candle::new(time, [1.0; 4], count, is_final),
        produced_at_ms: 0,
        received_at_ms: None,
        provisional: false,
        encoded,
        compressed: std::sync::OnceLock::new(),
        socketio_payload: std::sync::OnceLock::new(),
        socketio_frame: std::sync::OnceLock::new(),
    })
}

fn message(text: &str) -> Frame {
    Frame::Message(frame::text(text))
}

/// The payloads of the frames in `bytes` (server frames: unmasked), in order; panics on a torn frame.
fn payloads(bytes: &[u8]) -> Vec<String> {
    let mut cursor = std::io::Cursor::new(bytes);
    let mut texts = Vec::new();
    while (cursor.position() as usize) < bytes.len() {
        let (header, length) = FrameHeader::parse(&mut cursor)
            .expect("a valid header")
            .expect("a complete header");
        assert!(header.is_final && header.mask.is_none());
        let start = cursor.position() as usize;
        let end = start + length as usize;
        assert!(end <= bytes.len(), "a frame was cut short");
        let payload = &bytes[start..end];
        texts.push(if header.opcode == OpCode::Control(Control::Close) {
            format!("close {}", u16::from_be_bytes([payload[0], payload[1]]))
        } else {
            String::from_utf8(payload.to_vec()).expect("UTF-8")
        });
        cursor.set_position(end as u64);
    }
    texts
}

/// A socket with no room: every write would block.
fn no_room(_: &[u8]) -> io::Result<usize> {
    Err(io::ErrorKind::WouldBlock.into())
}

fn write_all_into(state: &mut State, sink: &mut Vec<u8>) -> Backlog {
    state.write(
        &mut |bytes| {
            sink.extend_from_slice(bytes);
            Ok(bytes.len())
        },
        &PushStats::default(),
    )
}

#[test]
fn a_newer_update_of_the_same_candle_replaces_the_waiting_one_in_place() {
    let mut state = State::new(8);
    state.queue.push_back(Frame::Update(update(1, 1, false)));
    state.queue.push_back(message("reply"));
    assert!(state.replace_waiting(&update(1, 2, false)));
    assert!(
        !state.replace_waiting(&update(2, 1, false)),
        "another candle"
    );
    state.queue.push_back(Frame::Update(update(2, 1, false)));
    let mut sink = Vec::new();
    assert_eq!(write_all_into(&mut state, &mut sink), Backlog::Empty);
    assert_eq!(payloads(&sink), ["1/2/false", "reply", "2/1/false"]);
}

#[test]
fn a_partly_written_frame_is_finished_before_anything_else_and_never_replaced() {
    let mut state = State::new(8);
    state.queue.push_back(Frame::Update(update(1, 1, false)));
    let mut sink = Vec::new();
    // The socket takes 3 bytes, then has no room.
    let mut room = 3;
    let blocked = state.write(
        &mut |bytes| {
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = bytes.len().min(room);
            room -= n;
            sink.extend_from_slice(&bytes[..n]);
            Ok(n)
        },
        &PushStats::default(),
    );
    assert_eq!(blocked, Backlog::Blocked { progressed: true });
    assert!(
        !state.replace_waiting(&update(1, 2, false)),
        "the frame on the wire is not replaced"
    );
    state.queue.push_back(Frame::Update(update(1, 2, false)));
    state.retain_waiting(|_| false);
    assert_eq!(
        state.queue.len(),
        1,
        "dropping the backlog keeps the partly written frame"
    );
    assert_eq!(write_all_into(&mut state, &mut sink), Backlog::Empty);
    assert_eq!(payloads(&sink), ["1/1/false"]);
}

#[test]
fn nothing_is_written_while_the_socket_has_no_room_and_a_failed_write_ends_it() {
    let mut state = State::new(8);
    state.queue.push_back(message("a"));
    let stats = PushStats::default();
    assert_eq!(
        state.write(&mut no_room, &stats),
        Backlog::Blocked { progressed: false }
    );
    assert_eq!(state.queue.len(), 1);
    let reset = state.write(&mut |_| Err(io::ErrorKind::ConnectionReset.into()), &stats);
    assert_eq!(reset, Backlog::Ended(Ending::Failed));
    assert!(state.queue.is_empty());
}

/// An outbox on a real loopback socket, and the client's end of it.
async fn connected(capacity: usize) -> (Arc<Outbox>, std::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let outbox = Arc::new(Outbox::new(
        server,
        capacity,
        usize::MAX,
        Arc::new(PushStats::default()),
    ));
    (outbox, client)
}

/// Everything the client receives until the server closes its side.
fn read_to_end(mut client: std::net::TcpStream) -> Vec<String> {
    let mut bytes = Vec::new();
    client.read_to_end(&mut bytes).unwrap();
    payloads(&bytes)
}

/// Ends the outbox with 1001 and runs its writer until that close frame is written.
async fn close_with_1001(outbox: &Outbox) {
    outbox.close(CloseCode::ServerShutdown);
    assert_eq!(
        run_writer(outbox).await,
        Ending::Close(CloseCode::ServerShutdown)
    );
}

async fn run_writer(outbox: &Outbox) -> Ending {
    let settings = super::super::writer::WriterSettings {
        ping_every: Some(std::time::Duration::from_secs(3600)),
        write_timeout: std::time::Duration::from_secs(10),
        min_drain_bytes_per_sec: 0,
    };
    super::super::writer::run(outbox, &settings).await
}

#[tokio::test]
async fn the_gate_keeps_order_and_drops_what_the_snapshot_already_has() {
    let (outbox, client) = connected(16).await;
    outbox.close_gate(&series());
    assert_eq!(outbox.push_update(&update(10, 3, false)), Pushed::Held); // older than snapshot: dropped
    outbox.push_update(&update(9, 5, true)); // final of a candle the snapshot has open: kept
    outbox.push_update(&update(11, 1, false)); // a new candle: kept
    outbox.push_update(&update(5, 1, false)); // older than the snapshot's oldest: dropped
    let snapshot = [
        Candle::new(9, [1.0; 4], 5, false),
        Candle::new(10, [1.0; 4], 4, false),
    ];
    outbox.open_gate(
        &series(),
        &snapshot,
        vec![frame::text("history"), frame::text("confirmed")],
    );
    assert_eq!(
        outbox.push_update(&update(11, 2, false)),
        Pushed::Written,
        "the gate is open and the socket has room"
    );
    close_with_1001(&outbox).await;
    assert_eq!(
        read_to_end(client),
        [
            "history",
            "confirmed",
            "9/5/true",
            "11/1/false",
            "11/2/false",
            "close 1001"
        ]
    );
}

#[tokio::test]
async fn a_client_that_does_not_read_gets_a_backlog_then_4008_and_nothing_is_torn() {
    let (outbox, client) = connected(64).await;
    let big = "x".repeat(64 * 1024);
    let mut pushed = Vec::new();
    // Fill the socket: the first frames are written at once, then the backlog grows to the capacity.
    for n in 0.. {
        let text = format!("{n}:{big}");
        if !outbox.push_message(frame::text(&text)) {
            break;
        }
        pushed.push(text);
    }
    assert!(outbox.is_closed(), "the full backlog closed the outbox");
    assert!(pushed.len() >= 64, "{} frames accepted", pushed.len());
    let reader = std::thread::spawn(move || read_to_end(client));
    assert_eq!(run_writer(&outbox).await, Ending::Close(CloseCode::TooSlow));
    let received = reader.join().unwrap();
    let (close, frames) = received.split_last().unwrap();
    assert_eq!(close, "close 4008");
    assert!(
        frames.len() < pushed.len(),
        "the backlog was dropped, except what was on the wire"
    );
    assert_eq!(frames, &pushed[..frames.len()], "whole frames, in order");
}

#[tokio::test]
async fn updates_pushed_together_are_written_in_order_replaced_in_place_or_held() {
    let (outbox, client) = connected(16).await;
    assert_eq!(
        outbox.push_updates(&[update(1, 3, true), update(2, 1, false)]),
        Ok(0)
    );
    // Behind a waiting frame, the batch queues and replaces the waiting state of its candle.
    outbox
        .lock()
        .queue
        .push_back(Frame::Update(update(2, 2, false)));
    assert_eq!(
        outbox.push_updates(&[update(2, 3, false), update(3, 1, false)]),
        Ok(1)
    );
    outbox.close_gate(&series());
    assert_eq!(
        outbox.push_updates(&[update(3, 2, false), update(4, 1, false)]),
        Ok(0)
    );
    outbox.open_gate(&series(), &[], vec![frame::text("snapshot")]);
    close_with_1001(&outbox).await;
    assert_eq!(
        read_to_end(client),
        // Closing the gate dropped what still waited of the series (2/3, 3/1): the snapshot covers it.
        [
            "1/3/true",
            "2/1/false",
            "snapshot",
            "3/2/false",
            "4/1/false",
            "close 1001"
        ]
    );
}

#[tokio::test]
async fn a_batch_to_a_socket_with_little_room_is_finished_by_the_writer_untorn() {
    let (outbox, client) = connected(4096).await;
    let big = "z".repeat(512 * 1024);
    let batch: Vec<_> = (0..MAX_FRAMES_PER_WRITE as i64 + 4)
        .map(|time| update_reading(time, 1, false, &format!("{time}:{big}")))
        .collect();
    assert_eq!(outbox.push_updates(&batch), Ok(0));
    assert!(
        !outbox.lock().queue.is_empty(),
        "10 MB do not fit a loopback socket at once"
    );
    let reader = std::thread::spawn(move || read_to_end(client));
    close_with_1001(&outbox).await;
    let received = reader.join().unwrap();
    let expected: Vec<String> = (0..batch.len())
        .map(|time| format!("{time}:{big}"))
        .chain(["close 1001".to_owned()])
        .collect();
    assert_eq!(received, expected, "whole frames, in order");
}

#[tokio::test]
async fn purge_removes_waiting_updates_of_the_series_only() {
    let (outbox, client) = connected(8).await;
    {
        let mut state = outbox.lock();
        state.queue.push_back(Frame::Update(update(1, 1, false)));
        state.queue.push_back(message("reply"));
    }
    outbox.purge(&series());
    outbox.close(CloseCode::ServerShutdown);
    run_writer(&outbox).await;
    assert_eq!(read_to_end(client), ["reply", "close 1001"]);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout_then_dropped() {
    let (outbox, client) = connected(1024).await;
    let big = "y".repeat(64 * 1024);
    // Fill the socket until frames wait, staying far below the capacity: only the stall timer can end it.
    while outbox.push_message(frame::text(&big)) {
        if !outbox.lock().queue.is_empty() {
            break;
        }
    }
    assert!(!outbox.is_closed());
    let settings = super::super::writer::WriterSettings {
        ping_every: Some(std::time::Duration::from_secs(3600)),
        write_timeout: std::time::Duration::from_millis(200),
        min_drain_bytes_per_sec: 0,
    };
    let started = std::time::Instant::now();
    // No progress for the write timeout: 4008 is queued; it cannot be delivered either, so after another
    // write timeout the connection is given up without a close frame.
    let ended = super::super::writer::run(&outbox, &settings).await;
    assert_eq!(ended, Ending::Failed);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(outbox.stats.slow_client_closes.get(), 1);
    assert!(
        !outbox.push_message(frame::text("late")),
        "nothing is accepted after the end"
    );
    drop(client);
}

#[tokio::test]
async fn a_resubscribe_never_delivers_an_older_state_after_a_newer_one() {
    let (outbox, client) = connected(16).await;
    // A slow client: an update of candle 1 (5 events) waits behind a reply...
    {
        let mut state = outbox.lock();
        state.queue.push_back(message("earlier reply"));
        state.queue.push_back(Frame::Update(update(1, 5, false)));
    }
    // ...when it subscribes to the series again; the snapshot has candle 1 at 7 events.
    outbox.close_gate(&series());
    outbox.open_gate(
        &series(),
        &[Candle::new(1, [1.0; 4], 7, false)],
        vec![frame::text("history"), frame::text("confirmed")],
    );
    // The next update of candle 1 must follow the snapshot, not replace an older one queued before it.
    outbox.push_update(&update(1, 8, false));
    outbox.close(CloseCode::ServerShutdown);
    run_writer(&outbox).await;
    assert_eq!(
        read_to_end(client),
        [
            "earlier reply",
            "history",
            "confirmed",
            "1/8/false",
            "close 1001"
        ]
    );
}

#[tokio::test]
async fn waiting_bytes_are_bounded_even_below_the_frame_capacity() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let outbox = Outbox::new(server, 1024, 256 * 1024, Arc::new(PushStats::default()));
    let big = frame::text(&"h".repeat(64 * 1024));
    let mut most_waiting = 0;
    for _ in 0..4096 {
        if !outbox.push_message(big.clone()) {
            break;
        }
        let state = outbox.lock();
        let queued: usize = state
            .queue
            .iter()
            .map(|f| f.bytes(Framing::Protocol(None)).len())
            .sum();
        most_waiting = most_waiting.max(queued - state.front_written);
    }
    assert!(outbox.is_closed(), "the byte budget closed it (4008)");
    assert!(most_waiting <= 256 * 1024, "{most_waiting} bytes waited");
    drop(client);
}

#[tokio::test]
async fn a_client_reading_a_trickle_is_closed_as_too_slow() {
    let (outbox, client) = connected(1024).await;
    // A live stream: 64 KB every 10 ms, until the outbox closes.
    let producer = {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let big = frame::text(&"t".repeat(64 * 1024));
            while outbox.push_message(big.clone()) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    // The client reads 16 KB every 100 ms (160 KB/s): steady progress, but below the minimum drain rate.
    let trickle = std::thread::spawn(move || {
        let mut client = client;
        let mut buf = vec![0u8; 16 * 1024];
        while matches!(client.read(&mut buf), Ok(n) if n > 0) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let settings = super::super::writer::WriterSettings {
        ping_every: Some(std::time::Duration::from_secs(3600)),
        write_timeout: std::time::Duration::from_secs(2),
        min_drain_bytes_per_sec: 1024 * 1024,
    };
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        super::super::writer::run(&outbox, &settings),
    )
    .await
    .expect("a trickling client does not hold its backlog forever");
    assert!(
        matches!(ended, Ending::Close(CloseCode::TooSlow) | Ending::Failed),
        "{ended:?}"
    );
    assert_eq!(outbox.stats.slow_client_closes.get(), 1);
    producer.await.unwrap();
    // The trickling reader still has megabytes of socket buffer to read: leave it.
    drop(trickle);
}

/// A ticker round of the mints `bytes`, each at `price`.
fn round(bytes: &[u8], price: f64) -> Arc<TickerRound> {
    let mut tickers: Vec<_> = bytes
        .iter()
        .map(|&b| kline_protocol::Ticker::new(Symbol::from_bytes(&[b; 32]), price, None))
        .collect();
    tickers.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    Arc::new(TickerRound::new(0, tickers))
}

/// The (mint byte, last price) pairs of a `tickers` payload.
fn tickers_in(payload: &str) -> Vec<(u8, f64)> {
    let message = kline_protocol::ServerMessage::parse(payload).unwrap();
    let kline_protocol::ServerPayload::Tickers(tickers) = message.payload else {
        panic!("not tickers: {payload}");
    };
    let mut prices: Vec<(u8, f64)> = tickers
        .data
        .iter()
        .map(|t| (t.symbol.to_bytes()[0], t.last_price))
        .collect();
    prices.sort_by_key(|(byte, _)| *byte);
    prices
}

#[test]
fn a_ticker_round_merges_into_the_waiting_one_and_never_into_one_being_written() {
    let mut state = State::new(8);
    state.queue.push_back(Frame::Tickers(round(&[1, 2], 1.0)));
    state.front_written = 3;
    assert!(
        !state.merge_waiting_tickers(&round(&[2], 2.0)),
        "a partly written round is not touched"
    );
    state.queue.push_back(message("candle"));
    state.queue.push_back(Frame::Tickers(round(&[2, 3], 2.0)));
    assert!(state.merge_waiting_tickers(&round(&[3, 4], 3.0)));
    assert_eq!(state.queue.len(), 3, "merged in place, nothing added");
    state.front_written = 0;
    let mut sink = Vec::new();
    assert_eq!(write_all_into(&mut state, &mut sink), Backlog::Empty);
    let written = payloads(&sink);
    assert_eq!(tickers_in(&written[0]), [(1, 1.0), (2, 1.0)]);
    assert_eq!(written[1], "candle");
    assert_eq!(
        tickers_in(&written[2]),
        [(2, 2.0), (3, 3.0), (4, 3.0)],
        "every mint once, each with its newest ticker"
    );
}

#[tokio::test]
async fn a_client_that_reads_no_tickers_holds_one_merged_round_then_gets_4008() {
    let (outbox, client) = connected(1024).await;
    let mints: Arc<Vec<u8>> = Arc::new((0..=255).collect());
    // Rounds of 256 tickers (~60 KB) until one is being written and one waits behind it.
    let mut pushed = 0.0;
    while outbox.lock().queue.len() < 2 {
        assert!(outbox.push_tickers(&round(&mints, pushed)));
        pushed += 1.0;
    }
    for price in 0..100 {
        assert!(outbox.push_tickers(&round(&mints, f64::from(price))));
        assert_eq!(
            outbox.lock().queue.len(),
            2,
            "the round being written and one merged round, never more"
        );
    }
    // Rounds keep coming while the writer runs; the client never reads: once the socket buffers are
    // full, a window without progress queues 4008, and the next gives the connection up.
    let pusher = {
        let (outbox, mints) = (outbox.clone(), mints.clone());
        tokio::spawn(async move {
            let mut price = 0.0;
            while outbox.push_tickers(&round(&mints, price)) {
                price += 1.0;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    let settings = super::super::writer::WriterSettings {
        ping_every: Some(std::time::Duration::from_secs(3600)),
        write_timeout: std::time::Duration::from_millis(200),
        min_drain_bytes_per_sec: 0,
    };
    assert_eq!(
        super::super::writer::run(&outbox, &settings).await,
        Ending::Failed
    );
    pusher.await.unwrap();
    assert_eq!(outbox.stats.slow_client_closes.get(), 1);
    drop(client);
}
