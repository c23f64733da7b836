"""Events in, candles out: the client side of the image test (deploy/test/image.sh).

    candles.py post HTTP_URL TOKEN START [--duplicates]
        POSTs the test's 20 BuySell events of one mint (one a second from START, Unix seconds, a minute
        boundary) to /api/v1/events; exits 1 unless every event is accepted (with --duplicates: unless every
        one is recognised as already stored).
    candles.py read WS_URL START
        Subscribes over /ws to the mint's s1 and m1 series and checks the history_data against candles
        computed here from the same events (time, open, high, low, close, volume, update_count); prints
        the checked candles as one JSON line, so two reads can be compared.

Needs Python `websockets` (as tests/py does).
"""

import asyncio
import json
import sys
import urllib.request
from decimal import Decimal

from websockets.asyncio.client import connect

COUNT = 20
PRICE_SCALE = Decimal(10) ** 28
TOKEN_AMOUNT = 35_000_000  # 35 whole tokens (6 decimals)
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


MINT = b58(bytes(range(1, 33)))
PAYER = b58(bytes([7] * 32))


def latest_price(i: int) -> int:
    """A walk with ups and downs, around 2.8e-8 SOL per token."""
    return 279_590_000_000_000_000_000 + ((i * 7919) % 23 - 11) * 1_000_000_000_000_000_000


def events(start: int) -> list:
    return [
        {
            "event_type": "BuySell", "payer": PAYER, "mint_account": MINT, "is_buy": i % 3 != 0,
            "token_amount": TOKEN_AMOUNT, "sol_amount": 1_000_000_000 + i,
            "latest_price": str(latest_price(i)), "timestamp": start + i,
            "signature": b58(bytes([200, i + 1]) + bytes(62)), "slot": 330_000_000 + i,
            "event_index": 0, "tx_index": 0,
        }
        for i in range(COUNT)
    ]


def price(i: int) -> float:
    return float(Decimal(latest_price(i)) / PRICE_SCALE)


def expected(start: int) -> dict:
    """The s1 candles (one event each) and the one m1 candle they fall in."""
    s1 = [[start + i, price(i), price(i), price(i), price(i), 35.0, 1] for i in range(COUNT)]
    prices = [price(i) for i in range(COUNT)]
    m1 = [[start, prices[0], max(prices), min(prices), prices[-1], 35.0 * COUNT, COUNT]]
    return {"s1": s1, "m1": m1}


def post(url: str, token: str, start: int, duplicates: bool) -> None:
    body = "".join(json.dumps(e) + "\n" for e in events(start)).encode()
    request = urllib.request.Request(
        url + "/api/v1/events", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        report = json.load(response)
    print(json.dumps(report))
    want = {"accepted": 0, "duplicates": COUNT} if duplicates else {"accepted": COUNT, "duplicates": 0}
    got = {key: report.get(key) for key in want}
    if got != want or report.get("rejected") != 0:
        sys.exit(f"ingest report {report}, expected {want} and nothing rejected")


def close_enough(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def values(candle: dict) -> list:
    return [candle["time"], candle["open"], candle["high"], candle["low"], candle["close"],
            candle["volume"], candle["update_count"]]


async def history(ws, interval: str) -> list:
    await ws.send(json.dumps({"msg_type": "subscribe", "symbol": MINT, "interval": interval,
                              "subscription_id": interval, "limit": 1000}))
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "error":
            sys.exit(f"subscribe {interval}: {message}")
        if message["type"] == "history_data" and message["data"]["interval"] == interval:
            return [values(c) for c in message["data"]["data"]]


async def read(url: str, start: int) -> None:
    want = expected(start)
    got = {}
    async with connect(url, open_timeout=10, close_timeout=5) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connection_success", hello
        for interval in ("s1", "m1"):
            got[interval] = await asyncio.wait_for(history(ws, interval), timeout=10)
    for interval, candles in want.items():
        have = got[interval]
        if len(have) != len(candles):
            sys.exit(f"{interval}: {len(have)} candles over /ws, expected {len(candles)}: {have}")
        for mine, theirs in zip(candles, have):
            same = all(close_enough(a, b) if isinstance(a, float) else a == b for a, b in zip(mine, theirs))
            if not same:
                sys.exit(f"{interval}: candle {theirs} over /ws, expected {mine}")
    print(json.dumps(got, sort_keys=True))


def main() -> None:
    if len(sys.argv) >= 5 and sys.argv[1] == "post":
        post(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--duplicates" in sys.argv[5:])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        asyncio.run(read(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
