"""``bench --scenario api-quota``: many clients against one quota, per window type (SPEC 12).

``--workers`` threads (default 16) each send ``--ops`` hits (default 100), every hit with its own
request id, to one quota of :data:`LIMIT` units per :data:`PER` seconds, once with fixed windows
and once with the sliding window counter. Only the public API is used.

AWS-like by default (SPEC 11; ``--plain``: DynamoDB Local as it is): a quota's windows are single
items under one partition key (``name#quota#window#per``), so what AWS limits is that partition's
write units/s -- ``--item-write-limit`` R (default :data:`AWS_LIKE_WRITE_LIMIT`), writes held in
flight, throttles answered as AWS does. A hit that is throttled after botocore's own retries (or
fails otherwise) is sent again by its client with the same request id, up to :data:`HIT_TRIES`
times, as an application would: the id makes that safe, a hit that did land answers
``duplicate``. Throttled requests and the errors that reached the clients are reported per window
type.

Checked, per window type: the units granted in each window never exceed the limit (sliding: the
window's count plus the previous window's count weighted as at the window's last answered grant
-- the answer comes after the hit's own clock reading, so this is a lower bound of the weight it
used), and the window items hold exactly the units granted (no lost or double count). Measured:
hits/s, p50 and p99 latency (a hit from its first send to its answer, re-sends included), write
and read units per hit (the requests' consumed capacity; a write refused by its condition is
billed too on AWS, at least one unit, which DynamoDB Local's error answer does not report:
counted as one) and $ per million hits at on-demand prices.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws_like import AwsLike, AwsLikeState
from ..errors import CounterError
from ..faults import FaultInjector, FaultPlan
from ..report.schema import SCHEMA, SCHEMA_VERSION, ApiQuota, ApiQuotaRow, BenchResults
from ..results import CallRecord
from ..store import CounterStore

API_QUOTA = "api-quota"
LIMIT = 50
PER = 1.0
WINDOWS = ("fixed", "sliding")
#: AWS-like: write units/s of the quota's partition. AWS gives a partition 1,000; DynamoDB Local
#: on a shared 2-core machine answers a few hundred hits/s, so R is scaled down as the flash
#: sale's is: 16 clients go over it, as ~1,000 hits/s of one tenant would on AWS.
AWS_LIKE_WRITE_LIMIT = 100.0
#: How many times a client sends one hit (the same request id) before it gives up.
HIT_TRIES = 8
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


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _run_window(
    client: Any,
    table: str,
    window: str,
    *,
    workers: int,
    ops: int,
    prices: tuple[float, float],
    aws_like: AwsLike | None,
) -> ApiQuotaRow:
    units = _Units()
    store = CounterStore(client, table, on_call=units)
    name = f"bench#api#{window}"
    quota = store.quota(name, limit=LIMIT, per=PER, window=window)
    # (answered at, seconds, allowed, reset_at)
    hits: list[tuple[float, float, bool, float]] = []
    lock = threading.Lock()
    failures: list[str] = []
    errors: Counter[str] = Counter()
    given_up = [0]

    def client_loop(worker: int) -> None:
        mine = []
        seen: Counter[str] = Counter()
        lost = 0
        try:
            for i in range(ops):
                started = time.perf_counter()
                for attempt in range(HIT_TRIES):
                    try:
                        decision = quota.hit(request_id=f"{worker}-{i}")
                        break
                    except (ClientError, BotoCoreError, CounterError) as exc:
                        seen[_error_name(exc)] += 1
                        time.sleep(min(0.2, 0.01 * 2**attempt))
                else:
                    lost += 1
                    continue
                answered = time.time()
                took = time.perf_counter() - started
                mine.append((answered, took, decision.allowed, decision.reset_at))
        except Exception as exc:  # reported, never hidden
            failures.append(f"{type(exc).__name__}: {exc}")
        with lock:
            hits.extend(mine)
            errors.update(seen)
            given_up[0] += lost

    state = None if aws_like is None else AwsLikeState(aws_like)
    injector = None
    if aws_like is not None:
        injector = FaultInjector(client, FaultPlan(aws_like=aws_like), aws_state=state).attach()
    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(workers)]
    started = time.perf_counter()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if injector is not None:
            injector.detach()
    seconds = time.perf_counter() - started
    stats: Counter[str] = Counter() if state is None else state.stats

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
        "throttled_requests": int(stats["throttles"] + stats["transaction_throttles"]),
        "conflicts": int(stats["conflicts"]),
        "errors_reaching_clients": dict(sorted(errors.items())),
        "hits_given_up": given_up[0],
        "failures": failures[:5],
        "windows_stored_otherwise": [
            [r, granted[r], count] for r, count in sorted(checked.items()) if count != granted[r]
        ][:5],
    }


def _stored(client: Any, table: str, name: str, window: str, reset_at: float) -> int | None:
    k = round((reset_at - PER) / PER)
    key = {"pk": {"S": f"{name}#quota#{window}#{int(PER * 1000)}"}, "sk": {"S": f"quota#{k}"}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return None if item is None else int(item.get("quantity", {}).get("N", "0"))


def run_api_quota(
    client: Any,
    *,
    workers: int,
    ops: int,
    prices: tuple[float, float],
    aws_like: AwsLike | None = None,
) -> list[ApiQuotaRow]:
    """Both window types on a new table, deleted afterwards (AWS-like when ``aws_like``)."""
    table = f"dynamodb-counters-bench-quota-{uuid.uuid4().hex[:8]}"
    CounterStore(client, table).ensure_table()
    try:
        return [
            _run_window(
                client, table, window, workers=workers, ops=ops, prices=prices, aws_like=aws_like
            )
            for window in WINDOWS
        ]
    finally:
        client.delete_table(TableName=table)


def section(
    rows: list[ApiQuotaRow], aws_like: AwsLike | None, *, ops: int, started_at: datetime
) -> ApiQuota:
    """The ``api_quota`` section of a results document."""
    return {
        "scenario": API_QUOTA,
        "started_at": started_at.isoformat(),
        "engine": "plain" if aws_like is None else "aws-like",
        "write_limit_per_partition": None if aws_like is None else aws_like.write_limit,
        "limit": LIMIT,
        "per_s": PER,
        "ops_per_client": ops,
        "hit_tries": HIT_TRIES,
        "rows": rows,
        "all_exact": all(
            r["windows_over_the_limit"] == 0 and r["stored_equals_granted"] for r in rows
        ),
    }


def results_document(
    quota: ApiQuota, *, seconds: float, backend: dict[str, Any], prices: tuple[float, float]
) -> BenchResults:
    """A whole results document for a run of the scenario alone (the bench's schema; no
    strategy rows, the scenario in ``api_quota``)."""
    from .runner import _versions

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "scenario": API_QUOTA,
        "run": {
            "started_at": quota["started_at"],
            "seconds": seconds,
            "seed": 0,
            "preset": None,
            "backend": {
                "kind": backend["kind"],
                "endpoint_url": backend.get("endpoint_url"),
                "region": backend.get("region"),
            },
            "versions": _versions(),
            "cpus": os.cpu_count(),
            "pricing": {"usd_per_million_wru": prices[0], "usd_per_million_rru": prices[1]},
        },
        "strategies": [],
        "baseline": None,
        "comparison": {},
        "api_quota": quota,
    }


def main(args: Any, aws_like: AwsLike | None) -> int:
    """``dynamodb-counters bench --scenario api-quota`` (uses ``--workers``, ``--ops``,
    ``--endpoint-url``/``--region``, ``--wru-price``/``--rru-price``, ``--json``, ``--report``,
    ``--quiet``; ``aws_like``: the engine model, None with ``--plain``). Exit code 1 when a
    window granted more than its limit or its item holds other than what was granted."""
    workers = args.workers or 16
    prices = (args.wru_price, args.rru_price)
    config = {"max_pool_connections": workers + 4}
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    if args.endpoint_url is None and args.region is None:
        from ..local import DynamoDBLocal

        backend: dict[str, Any] = {"kind": "dynamodb-local"}
        with DynamoDBLocal() as ddb:
            client = ddb.client(**config)
            rows = run_api_quota(
                client, workers=workers, ops=args.ops, prices=prices, aws_like=aws_like
            )
    else:
        import boto3
        from botocore.config import Config

        from .._endpoints import redact

        backend = {
            "kind": "endpoint" if args.endpoint_url else "aws",
            "endpoint_url": None if args.endpoint_url is None else redact(args.endpoint_url),
            "region": args.region,
        }
        where: dict[str, Any] = {"endpoint_url": args.endpoint_url, "region_name": args.region}
        client = boto3.client("dynamodb", config=Config(max_pool_connections=workers + 4), **where)
        rows = run_api_quota(
            client, workers=workers, ops=args.ops, prices=prices, aws_like=aws_like
        )
    quota = section(rows, aws_like, ops=args.ops, started_at=started_at)
    results = results_document(
        quota, seconds=time.perf_counter() - began, backend=backend, prices=prices
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    if args.report:
        from ..report import write_report

        write_report(results, args.report)
    if not args.quiet:
        _print(quota, workers=workers, ops=args.ops)
    return 0 if quota["all_exact"] else 1


def _print(quota: ApiQuota, *, workers: int, ops: int) -> None:
    engine = quota["engine"]
    if quota["write_limit_per_partition"] is not None:
        engine += f", {quota['write_limit_per_partition']:g} write units/s per partition"
    print(
        f"api-quota: {LIMIT} per {PER:g} s, {workers} clients x {ops} hits, "
        f"each with its own request id ({engine})"
    )
    print(
        f"{'window':8} {'hits/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'granted':>8} "
        f"{'max/window':>10} {'over':>5} {'exact':>9} {'throttled':>9} {'errors':>6} "
        f"{'WCU/hit':>8} {'RCU/hit':>8} {'$/M hits':>9}"
    )
    for r in quota["rows"]:
        exact = "yes" if r["stored_equals_granted"] else "NO"
        exact += f" {r['windows_checked']}/{r['windows']}"
        print(
            f"{r['window']:8} {r['hits_per_s']:8.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
            f"{r['granted']:8d} {r['max_granted_in_a_window']:10d} "
            f"{r['windows_over_the_limit']:5d} {exact:>9} {r['throttled_requests']:9d} "
            f"{sum(r['errors_reaching_clients'].values()):6d} "
            f"{r['write_units_per_hit']:8.2f} {r['read_units_per_hit']:8.3f} "
            f"{r['usd_per_million_hits']:9.3f}"
        )
        for code, count in r["errors_reaching_clients"].items():
            print(f"  {r['window']}: {count} x {code} reached a client (the hit was sent again)")
        if r["hits_given_up"]:
            print(f"  {r['window']}: {r['hits_given_up']} hits given up after {HIT_TRIES} tries")
        for failure in r["failures"]:
            print(f"  {r['window']}: {failure}")
