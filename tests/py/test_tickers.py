"""The ticker stream on /ws seen by Python `websockets` (a client the project did not write).

Against a server with its simulator on: `subscribe_tickers` is answered with a `tickers_snapshot` naming the
simulated tokens; the `tickers` updates that follow come at most once a second (two of them are at least
~1 s apart by the server's own timestamps), each holding only mints that changed, with numbers that agree
(price_change = last_price - open_price); `unsubscribe_tickers` is confirmed and no update follows it.
Run by tests/js/run.sh with KLINE_WS_URL set.
"""

import asyncio
import json
import math
import os
import sys

from websockets.asyncio.client import connect

URL = os.environ.get("KLINE_WS_URL", "ws://localhost:8080/ws")
NUMBERS = ["last_price", "open_price", "high_price", "low_price", "price_change",
           "price_change_percent", "volume", "quote_volume", "trade_count"]


async def until(ws, kind):
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return message
        assert message["type"] in ("tickers", "pong"), message


def check(ticker):
    for field in NUMBERS:
        assert isinstance(ticker[field], (int, float)) and math.isfinite(ticker[field]), (field, ticker)
    assert abs(ticker["price_change"] - (ticker["last_price"] - ticker["open_price"])) <= 1e-12, ticker
    assert ticker["low_price"] <= ticker["high_price"], ticker


async def main():
    async with connect(URL) as ws:
        await until(ws, "connection_success")
        snapshot = None
        # The simulator names its mints as it starts: ask again until the snapshot has a named one.
        for _ in range(50):
            await ws.send(json.dumps({"msg_type": "subscribe_tickers", "subscription_id": "py"}))
            snapshot = await until(ws, "tickers_snapshot")
            if any(t["name"] for t in snapshot["data"]["data"]):
                break
            await asyncio.sleep(0.2)
        data = snapshot["data"]
        assert data["subscription_id"] == "py", data
        assert data["data"], "the snapshot lists the simulated mints"
        assert all(t["name"] and t["name"].startswith("Simulated ") for t in data["data"]), data["data"]
        for ticker in data["data"]:
            check(ticker)
        print(f"✓ tickers_snapshot: {len(data['data'])} named mints, window from {data['window_start']}")

        updates = [await until(ws, "tickers") for _ in range(3)]
        for update in updates:
            assert update["data"]["data"], "an update carries the mints that changed"
            for ticker in update["data"]["data"]:
                check(ticker)
        stamps = [update["timestamp"] for update in updates]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        assert all(gap >= 900 for gap in gaps), f"updates closer than a second: {gaps} ms"
        print(f"✓ 3 tickers updates, {gaps} ms apart by the server's clock")

        await ws.send(json.dumps({"msg_type": "unsubscribe_tickers", "subscription_id": "py"}))
        confirmed = await until(ws, "tickers_unsubscribed")
        assert confirmed["data"]["success"] is True, confirmed
        await ws.send(json.dumps({"msg_type": "ping"}))
        while True:
            message = json.loads(await ws.recv())
            assert message["type"] == "pong", f"nothing after tickers_unsubscribed but the pong: {message}"
            break
        print("✓ unsubscribe_tickers confirmed, nothing after it")
    print("All ticker checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    except Exception as err:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"✗ {err!r}")
        sys.exit(1)
