//! The wall clock as the server reads it: Unix milliseconds, the unit of every event time, candle time
//! and latency stamp.

/// Wall-clock Unix milliseconds.
#[inline]
pub fn now_ms() -> i64 {
    kline_protocol::response::unix_millis_now()
}
