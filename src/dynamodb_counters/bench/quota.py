"""``bench --scenario api-quota``: many clients against one quota, per window type (SPEC 12).

``--workers`` threads (default 16) each send ``--ops`` hits (default 100), every hit with its own
request id, to one quota of :data:`LIMIT` units per :data:`PER` seconds, once with fixed windows
and once with the sliding window counter. Only the public API is used. Checked, per window
type: the units granted in each window never exceed the limit (sliding: the window's count plus
the previous window's count weighted as at the window's last answered grant -- the answer comes
after the hit's own clock reading, so this is a lower bound of the weight it used), and the
window items hold exactly the units granted (no lost or double count). Measured: hits/s, p50
and p99 latency, write and read units per hit (the requests' consumed capacity; a write refused
by its condition is billed too on AWS, at least one unit, which DynamoDB Local's error answer
does not report: counted as one) and $ per million hits at on-demand prices.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
import uuid
from typing import Any

from ..results import CallRecord
from ..store import CounterStore

API_QUOTA = "api-quota"
LIMIT = 50
PER = 1.0
WINDOWS = ("fixed", "sliding")
_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


class _Units:
    """Sums the consumed capacity of every request (an ``on_call`` listener)."""

    def __init__(self) -> None:
        self.read = self.write = 0.0
        self._lock = threading.Lock()

    def __call__(self, record: CallRecord) -> None:
        consumed = record.consumed_capacity
        parts = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        units = sum(float(part.get("CapacityUnits", 0)) for part in parts)
        if record.error_code == "ConditionalCheckFailedException":
            units = max(units, 1.0)
        with self._lock:
            if record.operation in _READS:
                self.read += units
            else:
                self.write += units


def _run_window(
    client: Any, table: str, window: str, *, workers: int, ops: int, prices: tuple[float, float]
) -> dict[str, Any]:
    units = _Units()
    store = CounterStore(client, table, on_call=units)
    name = f"bench#api#{window}"
    quota = store.quota(name, limit=LIMIT, per=PER, window=window)
    # (answered at, seconds, allowed, reset_at)
    hits: list[tuple[float, float, bool, float]] = []
    lock = threading.Lock()
    failures: list[str] = []

    def client_loop(worker: int) -> None:
        mine = []
        try:
            for i in range(ops):
                started = time.perf_counter()
                decision = quota.hit(request_id=f"{worker}-{i}")
                answered = time.time()
                took = time.perf_counter() - started
                mine.append((answered, took, decision.allowed, decision.reset_at))
        except Exception as exc:  # reported, never hidden
            failures.append(f"{type(exc).__name__}: {exc}")
        with lock:
            hits.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started

    granted: dict[float, int] = {}
    last_grant: dict[float, float] = {}
    for answered, _, allowed, reset_at in hits:
        if allowed:
            granted[reset_at] = granted.get(reset_at, 0) + 1
            last_grant[reset_at] = max(last_grant.get(reset_at, 0.0), answered)
    over = []
    for reset_at, count in granted.items():
        load = count
        if window == "sliding":
            previous = granted.get(reset_at - PER, 0)
            overlap = 1 - (last_grant[reset_at] - (reset_at - PER)) / PER
            load += math.ceil(previous * max(0.0, overlap))
        if load > LIMIT:
            over.append((reset_at, load))
    # What the window items hold, read back: exactly what was granted. A window whose TTL
    # (its start + 2 per) has passed may be gone already (DynamoDB Local deletes expired items
    # too): not checked.
    stored = {r: _stored(client, table, name, window, r) for r in granted}
    gone = {r for r, count in stored.items() if count is None and time.time() >= r + PER}
    checked = {r: count for r, count in stored.items() if r not in gone}
    latencies = sorted(s for _, s, _, _ in hits)
    total = len(hits)
    wcu, rcu = units.write / max(total, 1), units.read / max(total, 1)
    return {
        "window": window,
        "limit": LIMIT,
        "per_s": PER,
        "workers": workers,
        "hits": total,
        "granted": sum(granted.values()),
        "windows": len(granted),
        "max_granted_in_a_window": max(granted.values(), default=0),
        "windows_over_the_limit": len(over),
        "stored_equals_granted": all(count == granted[r] for r, count in checked.items()),
        "windows_checked": len(checked),
        "hits_per_s": total / seconds if seconds else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p99_ms": 1000 * latencies[min(total - 1, int(0.99 * total))] if latencies else 0.0,
        "write_units_per_hit": wcu,
        "read_units_per_hit": rcu,
        "usd_per_million_hits": wcu * prices[0] + rcu * prices[1],
        "failures": failures[:5],
        "windows_stored_otherwise": sorted(
            (r, granted[r], count) for r, count in checked.items() if count != granted[r]
        )[:5],
    }


def _stored(client: Any, table: str, name: str, window: str, reset_at: float) -> int | None:
    k = round((reset_at - PER) / PER)
    key = {"pk": {"S": f"{name}#quota#{window}#{int(PER * 1000)}"}, "sk": {"S": f"quota#{k}"}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return None if item is None else int(item.get("quantity", {}).get("N", "0"))


def run_api_quota(
    client: Any, *, workers: int, ops: int, prices: tuple[float, float]
) -> list[dict[str, Any]]:
    """Both window types on a new table, deleted afterwards."""
    table = f"dynamodb-counters-bench-quota-{uuid.uuid4().hex[:8]}"
    CounterStore(client, table).ensure_table()
    try:
        return [
            _run_window(client, table, window, workers=workers, ops=ops, prices=prices)
            for window in WINDOWS
        ]
    finally:
        client.delete_table(TableName=table)


def main(args: Any) -> int:
    """``dynamodb-counters bench --scenario api-quota`` (uses ``--workers``, ``--ops``,
    ``--endpoint-url``/``--region``, ``--wru-price``/``--rru-price``, ``--json``,
    ``--quiet``). Exit code 1 when a window granted more than its limit."""
    workers = args.workers or 16
    prices = (args.wru_price, args.rru_price)
    config = {"max_pool_connections": workers + 4}
    if args.endpoint_url is None and args.region is None:
        from ..local import DynamoDBLocal

        with DynamoDBLocal() as ddb:
            rows = run_api_quota(ddb.client(**config), workers=workers, ops=args.ops, prices=prices)
    else:
        import boto3
        from botocore.config import Config

        where: dict[str, Any] = {"endpoint_url": args.endpoint_url, "region_name": args.region}
        client = boto3.client("dynamodb", config=Config(max_pool_connections=workers + 4), **where)
        rows = run_api_quota(client, workers=workers, ops=args.ops, prices=prices)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"scenario": API_QUOTA, "rows": rows}, out, indent=2)
    if not args.quiet:
        print(
            f"api-quota: {LIMIT} per {PER:g} s, {workers} clients x {args.ops} hits, "
            "each with its own request id"
        )
        print(
            f"{'window':8} {'hits/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'granted':>8} "
            f"{'max/window':>10} {'over':>5} {'exact':>9} {'WCU/hit':>8} {'RCU/hit':>8} "
            f"{'$/M hits':>9}"
        )
        for r in rows:
            exact = "yes" if r["stored_equals_granted"] else "NO"
            exact += f" {r['windows_checked']}/{r['windows']}"
            print(
                f"{r['window']:8} {r['hits_per_s']:8.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
                f"{r['granted']:8d} {r['max_granted_in_a_window']:10d} "
                f"{r['windows_over_the_limit']:5d} {exact:>9} "
                f"{r['write_units_per_hit']:8.2f} {r['read_units_per_hit']:8.3f} "
                f"{r['usd_per_million_hits']:9.3f}"
            )
            for failure in r["failures"]:
                print(f"  {r['window']}: {failure}")
    bad = any(r["windows_over_the_limit"] or not r["stored_equals_granted"] for r in rows)
    return 1 if bad else 0
