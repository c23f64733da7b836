"""permessage-deflate on /ws seen by Python `websockets` (a client the project did not write).

websockets offers compression by default and compresses every message it sends, so the server must inflate
its requests; a subscribe is answered with history and confirmation; with compression=None nothing is
negotiated. Run by tests/js/run.sh with KLINE_WS_URL and KLINE_MINT set.
"""

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect

URL = os.environ.get("KLINE_WS_URL", "ws://localhost:8080/ws")
MINT = os.environ["KLINE_MINT"]


async def until(ws, kind):
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == kind:
            return message


async def subscribe_and_close(compression):
    async with connect(URL, compression=compression) as ws:
        names = [extension.name for extension in ws.protocol.extensions]
        await until(ws, "connection_success")
        await ws.send(json.dumps({"msg_type": "subscribe", "symbol": MINT, "interval": "s1"}))
        history = await until(ws, "history_data")
        assert history["data"]["symbol"] == MINT, history
        await until(ws, "subscription_confirmed")
        await ws.close(1000)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
        return names, len(history["data"]["data"])


async def main():
    names, candles = await subscribe_and_close("deflate")
    assert names == ["permessage-deflate"], names
    print(f"✓ compression negotiated; compressed subscribe answered ({candles} candles); clean close")
    names, _ = await subscribe_and_close(None)
    assert names == [], names
    print("✓ compression=None: nothing negotiated, same answers")
    print("All compression checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    except Exception as err:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"✗ {err!r}")
        sys.exit(1)
