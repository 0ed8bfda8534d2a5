"""Drives tastyware's `tastytrade` SDK against the simulator, unchanged.

OAuth refresh-token login, customer, accounts, balances (`/balances/USD`), positions, today's
orders, then the AlertStreamer (account streamer: `connect`, liveness by WebSocket pings) while
the market script runs and one Order is injected through the simulator's control API.
Exits non-zero on any failure, including a notification the SDK cannot parse.

Environment: TT_SIM_URL (default http://127.0.0.1:8081), TT_SIM_STREAMER_URL (default
<TT_SIM_URL as ws>/streamer), TT_SECRET, TT_REFRESH (default the simulator's demo credentials),
TT_LISTEN_SECS (default 8).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone

import anyio

from tastytrade import Account, AlertStreamer, Session
from tastytrade.account import AccountBalance, CurrentPosition, TradingStatus
from tastytrade.order import PlacedComplexOrder, PlacedOrder
from tastytrade.streamer import (
    ExternalTransaction,
    QuoteAlert,
    UnderlyingYearGainSummary,
)
from tastytrade.watchlists import Watchlist

BASE = os.environ.get("TT_SIM_URL", "http://127.0.0.1:8081")
STREAMER = os.environ.get(
    "TT_SIM_STREAMER_URL", BASE.replace("http", "ws", 1) + "/streamer"
)
LISTEN_SECS = float(os.environ.get("TT_LISTEN_SECS", "8"))
INJECT_ACCOUNT = "5WT31842"
INJECT_ID = 990002
ALERT_TYPES = [
    PlacedOrder,
    PlacedComplexOrder,
    AccountBalance,
    CurrentPosition,
    TradingStatus,
    ExternalTransaction,
    UnderlyingYearGainSummary,
    QuoteAlert,
    Watchlist,
]


def inject_order() -> int:
    """POSTs one Live `Order` for INJECT_ACCOUNT to the simulator's control API."""
    order = {
        "id": INJECT_ID,
        "account-number": INJECT_ACCOUNT,
        "time-in-force": "Day",
        "order-type": "Limit",
        "size": 4,
        "underlying-symbol": "MSFT",
        "underlying-instrument-type": "Equity",
        "price": "401.25",
        "price-effect": "Debit",
        "status": "Live",
        "cancellable": True,
        "editable": True,
        "edited": False,
        "received-at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "updated-at": int(time.time() * 1000),
        "user-id": "99",
        "username": "demotrader",
        "legs": [
            {
                "instrument-type": "Equity",
                "symbol": "MSFT",
                "action": "Buy to Open",
                "quantity": 4,
                "remaining-quantity": 4,
                "fills": [],
            }
        ],
    }
    request = urllib.request.Request(
        f"{BASE}/sim/accounts/{INJECT_ACCOUNT}/events",
        data=json.dumps({"type": "Order", "data": order}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


async def main() -> int:
    session = Session(
        provider_secret=os.environ.get("TT_SECRET", "demo-client-secret"),
        refresh_token=os.environ.get("TT_REFRESH", "demo-refresh-token"),
    )
    # The SDK has no base-URL option: point its HTTP client at the simulator.
    session._client.base_url = BASE
    async with session:
        customer = await session.get_customer()
        print(f"customer: {customer.first_name} {customer.last_name} ({customer.external_id})")
        accounts = await Account.get(session)  # drops closed accounts, as tastyware does
        for account in accounts:
            balance = await account.get_balances(session)
            positions = await account.get_positions(session)
            orders = await account.get_live_orders(session)
            print(f"account {account.account_number} {account.nickname}")
            print(
                f"  net-liq {balance.net_liquidating_value} cash {balance.cash_balance}; "
                f"{len(positions)} positions ("
                + ", ".join(f"{p.symbol.strip()} {p.quantity} {p.quantity_direction}" for p in positions)
                + f"); {len(orders)} orders today ("
                + ", ".join(f"{o.id} {o.status.value}" for o in orders)
                + ")"
            )

        seen: Counter[str] = Counter()
        injected: list[PlacedOrder] = []
        streamer = AlertStreamer(session)
        streamer.base_url = STREAMER
        async with streamer:
            await streamer.subscribe_accounts(accounts)
            print("connect " + ",".join(a.account_number for a in accounts) + " -> acked")
            await streamer.subscribe_public_watchlists()
            await streamer.subscribe_quote_alerts()
            print("public-watchlists-subscribe, quote-alerts-subscribe -> acked")

            async def listen(kind: type) -> None:
                async for item in streamer.listen(kind):
                    name = type(item).__name__
                    seen[name] += 1
                    if isinstance(item, PlacedOrder) and item.id == INJECT_ID:
                        injected.append(item)
                    # The market script stamps its orders `source: tastytrade-sim`; print every
                    # other order (injected through the control API, e.g. with curl) in full.
                    if isinstance(item, PlacedOrder) and item.source != "tastytrade-sim":
                        print(f"injected {item!r}")
                    elif seen[name] <= 2:
                        detail = (
                            getattr(item, "status", None)
                            or getattr(item, "symbol", None)
                            or getattr(item, "name", None)
                            or getattr(item, "net_liquidating_value", "")
                        )
                        detail = getattr(detail, "value", detail)
                        print(f"event {name} {getattr(item, 'account_number', '')} {getattr(item, 'id', '')} {detail}".replace("  ", " "))

            async with anyio.create_task_group() as group:
                for kind in ALERT_TYPES:
                    group.start_soon(listen, kind)
                await anyio.sleep(2)
                status = await anyio.to_thread.run_sync(inject_order)
                print(f"injected Order {INJECT_ID}: HTTP {status}")
                await anyio.sleep(LISTEN_SECS)
                group.cancel_scope.cancel()

    print(f"received: {dict(seen)}")
    if not injected:
        print(f"FAIL streamer: the injected Order {INJECT_ID} never arrived", file=sys.stderr)
        return 1
    if len(seen) < 2:
        print("FAIL streamer: too few notification types", file=sys.stderr)
        return 1
    print(f"OK tastytrade (tastyware): injected Order {injected[0].id} {injected[0].status.value} arrived")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
