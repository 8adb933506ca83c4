"""``bench --scenario checkout`` (SPEC section 13): holds under a checkout rush, stock short.

Workers take carts. Each cart reserves one unit with its own hold id, then -- by a draw seeded
per cart -- pays (``commit``), gives up (``cancel``) or is abandoned (never touched again: its
hold expires after ``ttl``). Demand is above the stock, so late carts are refused; a refused
reserve reclaims the expired holds of abandoned carts and tries once more (the library's
rule), so abandoned stock is sold again without a janitor. At the end the scenario waits out
the last ttl, calls ``reclaim()`` once, and checks, from the table itself:

* **oversold**: units committed beyond the stock (must be 0);
* **returned once**: one ended record ``expired`` per abandoned cart that held, none for the
  others, no live hold left, and final value = stock - committed;
* **false sold-out**: a refused reserve that began after an abandoned hold had expired while
  that hold came back only after the refusal ended (must be 0);
* **cost per checkout**: read and write units (the bench's meter, AWS's pricing rules) per
  cart, and $ per million carts at on-demand prices.

Uses the public API only (and the bench's meter); DynamoDB Local by default, answering as AWS
does (``aws_like``, the default: the injector's AWS-like mode of SPEC section 11 -- overlapping
transactions conflict, a partition's budget throttles, eventually consistent reads are stale);
the conflicts and throttles the library absorbed are counted per target.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import CounterStore, HoldExpired, ThresholdExceeded
from .._keys import ENDED, REQUEST_ID
from ..aws_like import AwsLike, AwsLikeState
from ..faults import FaultInjector, FaultPlan
from ..strategies import StrategyName
from .meter import RequestMeter
from .options import Backend, Pricing
from .runner import Connection, open_backend_at

CHECKOUT = "checkout"
COMMIT, CANCEL, ABANDON = "commit", "cancel", "abandon"


@dataclass(frozen=True, slots=True)
class CheckoutOptions:
    """The checkout scenario: ``carts`` carts of one unit each against ``stock`` units."""

    stock: int = 40
    carts: int = 100
    workers: int = 8
    #: How long a hold lives, seconds (short: abandoned carts come back within the run).
    ttl: float = 1.0
    commit_rate: float = 0.5
    cancel_rate: float = 0.2  # the rest are abandoned
    strategies: tuple[StrategyName, ...] = ("marker", "sharded")
    shards: int = 4
    seed: int = 7
    #: Pause between a cart's reserve and its commit or cancel (a shopper paying), seconds.
    think: float = 0.05
    backend: Backend = field(default_factory=Backend)
    pricing: Pricing = field(default_factory=Pricing)
    #: DynamoDB Local answering as AWS does (SPEC section 11), with AWS's own per-partition
    #: budget (1,000 write units/s) and a write in flight 5 ms (so that transactions conflict);
    #: ``--plain``: DynamoDB Local as it is.
    aws_like: bool = True
    #: AWS-like: keys hashed onto this many partitions (None: one per key).
    partitions: int | None = None
    #: AWS-like: seconds a write is in flight before it is sent (conflicts).
    in_flight: float = 0.005
    #: AWS-like: how old (seconds) an eventually consistent read may be.
    staleness: float = 1.0

    def model(self) -> AwsLike | None:
        """The AWS-like engine's options (None: plain DynamoDB Local)."""
        if not self.aws_like:
            return None
        return AwsLike(
            partitions=self.partitions, in_flight=self.in_flight, staleness=self.staleness
        )


@dataclass
class _Books:
    """What the workers saw (appended under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[str, int] = field(default_factory=dict)  # cart -> the hold's expires_at
    committed: int = 0
    cancelled: int = 0
    expired_at_pay: int = 0  # a commit that came too late (HoldExpired)
    refused: list[tuple[float, float]] = field(default_factory=list)  # (began, ended)
    errors: list[str] = field(default_factory=list)


def fate(options: CheckoutOptions, cart: int) -> str:
    """What cart ``cart`` does once it holds (the same for every target)."""
    draw = random.Random(options.seed * 100_003 + cart).random()
    if draw < options.commit_rate:
        return COMMIT
    return CANCEL if draw < options.commit_rate + options.cancel_rate else ABANDON


def run_checkout(
    options: CheckoutOptions, *, done: Callable[[str, dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Start the backend, run every target; returns :func:`checkout_section`'s document."""
    with open_backend_at(options.backend) as connection:
        return checkout_section(options, connection, done=done)


def checkout_section(
    options: CheckoutOptions,
    connection: Connection,
    *,
    done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every target on ``connection`` (the demo's engine, or the scenario's own); returns
    ``{"scenario", "options", "targets": [rows], "all_exact", "verdict"}`` -- the results
    document's ``checkout`` section."""
    rows = []
    for strategy in options.strategies:
        row = CheckoutRun(options, connection, strategy).run()
        rows.append(row)
        if done is not None:
            done(strategy, row)
    exact = all(verdict_ok(row) for row in rows)
    return {
        "scenario": CHECKOUT,
        "options": {
            "stock": options.stock,
            "carts": options.carts,
            "workers": options.workers,
            "ttl": options.ttl,
            "commit_rate": options.commit_rate,
            "cancel_rate": options.cancel_rate,
            "shards": options.shards,
            "seed": options.seed,
            "engine": "aws-like" if options.aws_like else "plain",
        },
        "targets": rows,
        "all_exact": exact,
        "verdict": verdict_line(rows),
    }


def verdict_line(rows: list[dict[str, Any]]) -> str:
    """One sentence on the whole scenario (the report's and the terminal's)."""
    bad = [r["target"] for r in rows if not verdict_ok(r)]
    if bad:
        return f"NOT EXACT: {', '.join(bad)} (see the rows)"
    return (
        f"exact on {', '.join(r['target'] for r in rows)}: 0 oversold, every abandoned hold "
        "returned once, final value = stock - committed, 0 false sold-out"
    )


class CheckoutRun:
    """One target (``marker``, or ``sharded`` at ``shards``) through the checkout rush."""

    def __init__(
        self, options: CheckoutOptions, connection: Connection, strategy: StrategyName
    ) -> None:
        self.options = options
        self.strategy = strategy
        self.client = connection.client(pool=options.workers + 4)
        self.table = f"dynamodb-counters-checkout-{uuid.uuid4().hex[:8]}"
        self.store = CounterStore(self.client, self.table)
        self.books = _Books()
        model = options.model()
        self.aws = None if model is None else AwsLikeState(model)
        self.injector = (
            None
            if model is None
            else FaultInjector(self.client, FaultPlan(aws_like=model), aws_state=self.aws)
        )

    def run(self) -> dict[str, Any]:
        o = self.options
        self.store.ensure_table()
        try:
            window = {"shards": o.shards} if self.strategy == "sharded" else {}
            counter = self.store.counter("checkout", strategy=self.strategy, floor=0, **window)
            counter.create(initial=o.stock)
            meter = RequestMeter(("pk", "sk")).attach(self.client)
            if self.injector is not None:
                self.injector.attach()
            started = time.monotonic()
            workers = [
                threading.Thread(target=self._worker, args=(w,), daemon=True)
                for w in range(o.workers)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            seconds = time.monotonic() - started
            # The last abandoned holds: wait out their ttl, then one reclaim returns them.
            last = max(self.books.held.values(), default=0)
            time.sleep(max(0.0, last - time.time()) + 0.05)
            reclaimed_at_end = self.store.counter("checkout").reclaim()
            totals = meter.take()
            meter.detach()
            # The checks read the table as it is: past the engine model.
            if self.injector is not None:
                self.injector.detach()
            return self._row(counter, seconds, reclaimed_at_end, totals)
        finally:
            if self.injector is not None:
                self.injector.detach()
            self.client.delete_table(TableName=self.table)

    def _worker(self, index: int) -> None:
        o = self.options
        counter = self.store.counter("checkout")
        for cart in range(index, o.carts, o.workers):
            hold_id = f"cart-{cart}"
            began = time.time()
            try:
                hold = counter.reserve(1, hold_id=hold_id, ttl=o.ttl)
            except ThresholdExceeded:
                with self.books.lock:
                    self.books.refused.append((began, time.time()))
                continue
            except Exception as exc:  # the run reports it (a bench never hides an error)
                with self.books.lock:
                    self.books.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self.books.lock:
                self.books.held[hold_id] = hold.expires_at
            what = fate(o, cart)
            if what == ABANDON:
                continue
            time.sleep(o.think)
            try:
                if what == COMMIT:
                    counter.commit(hold_id)
                else:
                    counter.cancel(hold_id)
            except HoldExpired:
                with self.books.lock:
                    self.books.expired_at_pay += 1
                continue
            except Exception as exc:
                with self.books.lock:
                    self.books.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self.books.lock:
                if what == COMMIT:
                    self.books.committed += 1
                else:
                    self.books.cancelled += 1

    def _endings(self) -> dict[str, tuple[str, int]]:
        """hold id -> (how it ended, when: epoch seconds), from the ended records."""
        marker_ttl = 7 * 24 * 3600  # the library's default window (the counter's definition)
        partitions = ["checkout"]
        if self.strategy == "sharded":
            partitions = [f"checkout#shard#{i}" for i in range(self.options.shards)]
        found: dict[str, tuple[str, int]] = {}
        for pk in partitions:
            params: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}},
                "ConsistentRead": True,
            }
            while True:
                page = self.client.query(**params)
                for item in page["Items"]:
                    if ENDED in item:
                        ended_at = int(item["expires_at"]["N"]) - marker_ttl
                        found[item[REQUEST_ID]["S"]] = (item[ENDED]["S"], ended_at)
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def _row(
        self, counter: Any, seconds: float, reclaimed_at_end: int, totals: Any
    ) -> dict[str, Any]:
        o, books = self.options, self.books
        endings = self._endings()
        final = counter.value()
        live = counter.holds()
        abandoned = {h for h in books.held if fate(o, int(h.split("-")[1])) == ABANDON}
        expired_records = {h for h, (how, _) in endings.items() if how == "expired"}
        # One record per hold (its key is the hold's): every abandoned hold ended as expired,
        # nothing ended that was not held, none is left live; final = stock - paid then says
        # that each amount came back once.
        returned_once = not live and abandoned <= expired_records <= set(books.held)
        false_sold_out = 0
        for began, ended in books.refused:
            if any(
                books.held[h] <= began - 1 and endings.get(h, ("", 0))[1] > ended + 1
                for h in abandoned
            ):
                false_sold_out += 1
        committed = sum(1 for how, _ in endings.values() if how == "committed")
        carts = max(1, o.carts)
        rru, wru = totals.estimated_rru, totals.estimated_wru
        stats = self.aws.stats if self.aws is not None else {}
        return {
            "target": self.strategy if self.strategy == "marker" else f"sharded x{o.shards}",
            "carts": o.carts,
            "held": len(books.held),
            "refused": len(books.refused),
            "committed": books.committed,
            "cancelled": books.cancelled,
            "abandoned": len(abandoned),
            "expired_at_pay": books.expired_at_pay,
            "returned": len(expired_records),
            "reclaimed_at_end": reclaimed_at_end,
            "final_value": final,
            "expected_value": o.stock - committed,
            "oversold": max(0, committed - o.stock) + max(0, -final),
            "exact": final == o.stock - committed and committed == books.committed,
            "returned_once": returned_once,
            "false_sold_out": false_sold_out,
            "errors": books.errors[:5],
            "seconds": round(seconds, 2),
            "rru_per_cart": round(rru / carts, 2),
            "wru_per_cart": round(wru / carts, 2),
            "usd_per_million_carts": round((rru * o.pricing.rru + wru * o.pricing.wru) / carts, 2),
            # AWS-like: what the engine answered as AWS would, and the library absorbed.
            "conflicts": int(stats.get("conflicts", 0)),
            "throttled": int(stats.get("throttles", 0) + stats.get("transaction_throttles", 0)),
            "stale_reads": int(stats.get("stale_reads", 0)),
        }


def render(results: dict[str, Any]) -> str:
    """The scenario's table and verdict (fits 100 columns)."""
    o = results["options"]
    lines = [
        f"checkout: stock {o['stock']}, {o['carts']} carts of 1, {o['workers']} workers, "
        f"ttl {o['ttl']} s; pay {o['commit_rate']:.0%}, cancel {o['cancel_rate']:.0%}, "
        f"abandon the rest",
        f"{'target':<12}{'held':>6}{'refused':>8}{'paid':>6}{'cancel':>7}{'abandon':>8}"
        f"{'returned':>9}{'final':>6}{'oversold':>9}{'false':>6}{'WU/RU cart':>12}{'$/M':>8}",
    ]
    for r in results["targets"]:
        units = f"{r['wru_per_cart']:.2f}/{r['rru_per_cart']:.2f}"
        lines.append(
            f"{r['target']:<12}{r['held']:>6}{r['refused']:>8}{r['committed']:>6}"
            f"{r['cancelled']:>7}{r['abandoned']:>8}{r['returned']:>9}{r['final_value']:>6}"
            f"{r['oversold']:>9}{r['false_sold_out']:>6}"
            f"{units:>12}"
            f"{r['usd_per_million_carts']:>8.2f}"
        )
    for r in results["targets"]:
        good = verdict_ok(r)
        lines.append(
            f"{r['target']}: "
            + (
                "exact: 0 oversold, abandoned holds back once, final = stock - paid, "
                "0 false sold-out"
                if good
                else f"NOT EXACT: {r}"
            )
        )
    lines.append(
        "returned: holds that expired and came back (reclaimed by refused carts or at the end)"
    )
    lines.append("false: refusals while an expired hold could have come back")
    lines.append("WU/RU cart: write and read units per cart; $/M: $ per million carts")
    if o.get("engine") == "aws-like":
        absorbed = ", ".join(
            f"{r['target']} {r['conflicts']}/{r['throttled']}" for r in results["targets"]
        )
        lines.append(f"engine aws-like; absorbed by the library (conflicts/throttled): {absorbed}")
    else:
        lines.append("engine: DynamoDB Local as it is (--plain)")
    return "\n".join(lines)


def verdict_ok(row: dict[str, Any]) -> bool:
    return bool(
        row["oversold"] == 0
        and row["exact"]
        and row["returned_once"]
        and row["false_sold_out"] == 0
        and not row["errors"]
    )
