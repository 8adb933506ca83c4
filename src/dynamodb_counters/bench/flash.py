"""The flash-sale scenario (SPEC sections 8 and 11): one hot counter, limited stock, more demand.

For each target -- ``atomic``, ``marker``, and ``sharded`` at each shard count -- a counter is
created with ``stock`` and ``floor=0``; ``workers`` threads then take orders from one queue of
``demand`` orders (more than the stock), each an ``add(-1)`` with the order's id as request id
(where the strategy is idempotent). The per-item throughput model of the fault injector is on
(``item_write_limit`` R write units/s per item, :mod:`dynamodb_counters.throughput`): one item
sells at most R adds/s with ``atomic`` (1 write unit each) and R/2 with ``marker`` (its
transaction writes the counter item at 2 units). An order that is throttled after botocore's own
retries, or meets a transaction conflict, is sent again (the same id): nothing was applied.

Per target: accepted adds/s (acknowledged adds / seconds from the start to the last
acknowledgement: the time the stock took to sell out, or the demand to run out), throttled
requests, false "sold out" answers, oversell, drift, write units per add and $ per million
adds. Stock only goes down here, so the ledger proves a refusal false: when the final value is
still >= 1, or when an order acknowledged later was sent after the refusal came back (stock was
left at the refusal).

By default the sale runs in the injector's AWS-like mode (:mod:`dynamodb_counters.aws_like`,
``aws_like=False`` keeps the per-item model): R is then the write units/s of one *partition*, so
``marker``'s counter and markers share one (4 units an add: R/4 adds/s) and each shard shares
its own with its markers; throttled transactions are cancelled (the library tries them again),
transactions on one item conflict while one is in flight, eventually consistent reads (the
sharded survey) may be stale; ``partitions=P`` hashes the keys onto P partitions (a new table
has about 4). Conflicts, throttles and errors are reported per target.

Workers are threads of one process sharing one client and one injector, hence one budget per
item (per partition): the budget is the item's, not a client's, and a model shared between
processes would add an inter-process round trip to every request. On 2 cores, threads give the
honest figure: the rates measured are R-scale (tens of adds/s), far below what the client or the
engine can do, and the counter's own items (counter item, shards) start with empty buckets
(already at their rate), so a short run shows no burst; an item first written in the sale (a
marker) starts with the one
second of burst a quiet item has.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from .. import STRATEGIES, ContentionError, CounterError, CounterStore, ThresholdExceeded
from .._retry import was_not_applied
from ..aws_like import AwsLike, AwsLikeState
from ..errors import InvalidInput
from ..faults import FaultInjector, FaultPlan, operation_of
from ..report.schema import SCHEMA, SCHEMA_VERSION, BenchResults
from ..store import Counter as StoreCounter
from ..strategies import StrategyName
from ..throughput import WRITE, ItemThroughput
from . import metrics as m
from .meter import RequestMeter
from .options import Backend, Pricing, SdkRetry
from .runner import Connection, _versions, open_backend_at, redact

FLASH_SALE = "flash-sale"
#: Longest pause (seconds) before an order is sent again after a throttle or a conflict.
BACKOFF_CAP = 0.25
#: The library's tries per add (a caller's retry option, SPEC section 7): room to absorb what a
#: hot partition answers (conflicts, throttled transactions) with its own capped backoff, as a
#: flash sale's application would give it, so that nothing retryable reaches a worker.
MAX_ATTEMPTS = 1000
#: What ``bench --scenario`` knows.
SCENARIOS = (FLASH_SALE,)
#: Single-request throttles that botocore retries (the library leaves them to it).
_SDK_THROTTLES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
#: Writes: the last one an add sends is the one that sold (the tries before it applied nothing).
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
#: Errors after which nothing was applied: the order is sent again with the same id.
_NOT_APPLIED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    }
)


@dataclass(frozen=True, slots=True)
class FlashTarget:
    """A strategy, with its shard count for ``sharded``."""

    strategy: str
    shards: int | None = None

    @property
    def label(self) -> str:
        return self.strategy if self.shards is None else f"{self.strategy}@{self.shards}"

    @property
    def available(self) -> bool:
        return self.strategy in STRATEGIES

    @property
    def strategy_name(self) -> StrategyName:
        """The strategy id, for ``store.counter`` (checked by ``available``)."""
        return cast(StrategyName, self.strategy)

    @property
    def counter_options(self) -> dict[str, Any]:
        return {} if self.shards is None else {"shards": self.shards}


@dataclass(frozen=True, slots=True)
class FlashSaleOptions:
    """A flash sale, reproducible from these.

    Attributes:
        stock: the counter's initial value (the floor is 0).
        demand: orders of one unit each (default: 1.3 x stock, rounded up); above the stock.
        workers: concurrent worker threads.
        item_write_limit: R, write units/s per item (None: the model is off, to measure the
            engine itself).
        item_read_limit: read units/s per item (default 3 R).
        shards: the shard counts ``sharded`` runs with.
        strategies: ``atomic``, ``marker`` and/or ``sharded``.
        time_limit: seconds a target may run before it is stopped (its figures say so).
        aws_like: the AWS-like engine mode (default): R and the read limit are per partition.
        partitions: AWS-like: keys hashed onto this many partitions (None: one per key).
        in_flight: AWS-like: seconds a write is in flight before it is sent (conflicts).
        staleness: AWS-like: how old (seconds) an eventually consistent read may be.
    """

    stock: int = 2000
    demand: int | None = None
    workers: int = 32
    item_write_limit: float | None = 25.0
    item_read_limit: float | None = None
    shards: tuple[int, ...] = (1, 2, 4, 8)
    strategies: tuple[str, ...] = ("atomic", "marker", "sharded")
    sdk: SdkRetry = field(default_factory=SdkRetry)
    pricing: Pricing = field(default_factory=Pricing)
    backend: Backend = field(default_factory=Backend)
    seed: int = 1
    time_limit: float = 600.0
    preset: str | None = None
    aws_like: bool = True
    partitions: int | None = None
    in_flight: float = 0.005
    staleness: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.stock, bool) or not 1 <= self.stock <= 1_000_000:
            raise InvalidInput("the flash sale's stock must be from 1 to 1000000")
        if self.demand is not None and not self.stock < self.demand <= 10_000_000:
            raise InvalidInput("the flash sale's demand must be above its stock (and 10^7 at most)")
        if not 1 <= self.workers <= 256:
            raise InvalidInput("workers must be from 1 to 256")
        # The model's own limits are validated by the FaultPlan.
        self.plan()
        if not self.shards or any(not 1 <= n <= 1000 for n in self.shards):
            raise InvalidInput("shard counts must be from 1 to 1000")
        if len(set(self.shards)) != len(self.shards):
            # Two rows of one name: the verdict would weigh one of them only.
            raise InvalidInput("shard counts must be distinct")
        known = ("atomic", "marker", "sharded")
        if not self.strategies or any(s not in known for s in self.strategies):
            raise InvalidInput(f"the flash sale runs {', '.join(known)} (or some of them)")
        if not 0 < self.time_limit < math.inf:
            raise InvalidInput("the time limit must be a number of seconds above 0")
        if self.backend.table is not None or self.backend.use_existing_table:
            raise InvalidInput(
                "the flash sale creates its own table: leave out --table / --use-existing-table"
            )

    @property
    def orders(self) -> int:
        return self.demand if self.demand is not None else math.ceil(self.stock * 1.3)

    def plan(self) -> FaultPlan:
        """The fault plan: the AWS-like mode, or the per-item model only."""
        if self.aws_like:
            return FaultPlan(aws_like=self.model(), seed=self.seed)
        return FaultPlan(
            item_write_limit=self.item_write_limit, item_read_limit=self.item_read_limit
        )

    def model(self) -> AwsLike:
        """The AWS-like engine's options: R and the read limit per partition."""
        return AwsLike(
            write_limit=self.item_write_limit,
            read_limit=self.item_read_limit,
            partitions=self.partitions,
            in_flight=self.in_flight,
            staleness=self.staleness,
        )

    @property
    def read_limit(self) -> float | None:
        """Read units/s per item (per partition, AWS-like): as given, else 3 R."""
        if self.item_read_limit is not None:
            return float(self.item_read_limit)
        return None if self.item_write_limit is None else 3.0 * self.item_write_limit

    @property
    def target_ratio(self) -> float:
        """What sharded@8 must sell over sharded@1: 5 x AWS-like (conflicts cost), 6 x plain."""
        return 5.0 if self.aws_like else 6.0

    @property
    def targets(self) -> tuple[FlashTarget, ...]:
        found: list[FlashTarget] = []
        for strategy in self.strategies:
            if strategy == "sharded":
                found.extend(FlashTarget(strategy, n) for n in self.shards)
            else:
                found.append(FlashTarget(strategy))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class _Order:
    """What became of one order: ``acked``, ``refused`` (ThresholdExceeded) or an error.

    ``started``: when the write that got ``outcome`` was sent -- the last write of the
    worker's last try (the writes before it, the library's own tries included, were throttled
    or conflicted and applied nothing) -- so that an order sold by a re-send after a refusal
    proves that refusal false."""

    order: str
    outcome: str
    started: float
    finished: float
    retries: int
    #: The errors after which the worker sent the order again (nothing was applied).
    retried: tuple[str, ...] = ()
    #: A re-send found the order counted already (``applied=False``): an error above said
    #: "nothing applied" and was wrong.
    landed_before: bool = False


def _not_applied(exc: BaseException) -> bool:
    if isinstance(exc, ContentionError) or was_not_applied(exc):
        return True  # (was_not_applied: a transaction cancelled only for throttling, too)
    return isinstance(exc, ClientError) and (
        str(exc.response.get("Error", {}).get("Code")) in _NOT_APPLIED
    )


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class _Sale:
    """One target's sale: the counter, its client, meter and injector, the workers."""

    def __init__(
        self,
        options: FlashSaleOptions,
        connection: Connection,
        table: str,
        target: FlashTarget,
        name: str,
    ) -> None:
        self.options = options
        self.target = target
        self.client = connection.client(sdk=options.sdk, pool=options.workers + 2)
        store = CounterStore(self.client, table)
        layout = store.layout
        keys = (layout.partition_key,) + ((layout.sort_key,) if layout.sort_key else ())
        self.meter = RequestMeter(keys)
        # The counter's items (partitions) are at their rate when the sale opens (their buckets
        # are drained then: no first second's burst); items first written in the sale (markers)
        # start full, as a quiet item does -- AWS-like, a marker shares its counter's or shard's
        # partition, drained.
        plan = options.plan()
        shards = target.shards or 0
        hot_keys = [layout.counter_key(name)] + [layout.shard_key(name, i) for i in range(shards)]
        self.aws: AwsLikeState | None = None
        if plan.aws_like is not None:
            self.aws = AwsLikeState(plan.aws_like, key_names=keys)
            self.budget = self.aws.throughput
            self.hot_items = sorted({self.aws.partition(table, key) for key in hot_keys})
        else:
            self.budget = ItemThroughput(
                write_limit=plan.item_write_limit, read_limit=plan.read_limit
            )
            self.hot_items = [m.key_id(table, key) for key in hot_keys]
        self.injector = FaultInjector(
            self.client,
            plan,
            key_names=keys,
            known_item=self.meter.sizes.get,
            throughput=self.budget if plan.limits_items else None,
            aws_state=self.aws,
        )
        # A handle per worker, as an application has one per request handler.
        self.counters = [
            store.counter(
                name,
                strategy=target.strategy_name,
                floor=0,
                max_attempts=MAX_ATTEMPTS,
                **target.counter_options,
            )
            for _ in range(options.workers)
        ]
        self.idempotent = STRATEGIES[target.strategy].idempotent
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._sent = threading.local()
        self.records: list[_Order] = []
        self.failure: BaseException | None = None

    def _take(self) -> str | None:
        with self._lock:
            if self._next >= self.options.orders:
                return None
            self._next += 1
            return f"order-{self._next:07d}"

    def _work(self, index: int, started: threading.Barrier) -> None:
        rng = random.Random(f"{self.options.seed}/{self.target.label}/{index}")
        mine: list[_Order] = []
        started.wait()
        try:
            while not self.stop.is_set():
                order = self._take()
                if order is None:
                    break
                mine.append(self._sell(self.counters[index], order, rng))
        except BaseException as exc:  # the sale stops, and run() raises it
            self.failure = exc
            self.stop.set()
        with self._lock:
            self.records.extend(mine)

    def watch_sends(self, client: Any) -> None:
        """Note when each worker thread last sent a write (before the injector, which may
        answer in place of DynamoDB, or hold the write in flight: the note is never late)."""
        client.meta.events.register_first("before-send.dynamodb", self._note_send)

    def unwatch_sends(self, client: Any) -> None:
        client.meta.events.unregister("before-send.dynamodb", self._note_send)

    def _note_send(self, request: Any, **_: Any) -> None:
        if operation_of(request) in _WRITES:
            self._sent.at = time.perf_counter()

    def _last_write(self, since: float) -> float:
        """When this thread last sent a write since ``since`` (``since`` when it sent none)."""
        at = getattr(self._sent, "at", None)
        return since if at is None or at < since else float(at)

    def _sell(self, counter: StoreCounter, order: str, rng: random.Random) -> _Order:
        retries = 0
        retried: list[str] = []
        landed = False
        request_id = order if self.idempotent else None
        while True:
            tried = time.perf_counter()
            with self.meter.operation(order, -1) as book:
                try:
                    result = counter.add(-1, request_id=request_id)
                except ThresholdExceeded:
                    book.state = "rejected"
                    outcome = "refused"
                except (CounterError, ClientError, BotoCoreError) as exc:
                    book.state = "error"
                    if _not_applied(exc) and not self.stop.is_set():
                        retries += 1
                        retried.append(_error_name(exc))
                        # botocore gives up at once when its retry quota is spent: back off
                        # here too (full jitter, capped well below the buckets' one second, so
                        # an item's rate is never left unused).
                        time.sleep(rng.uniform(0.0, min(BACKOFF_CAP, 0.01 * 2 ** min(retries, 8))))
                        continue
                    outcome = _error_name(exc)
                else:
                    book.state = "acked"
                    outcome = "acked"
                    # Each order is one worker's: "already counted" can only come from a
                    # re-send after an error that landed.
                    landed = result.applied is False
            sent = self._last_write(tried) if outcome == "acked" else tried
            finished = time.perf_counter()
            return _Order(
                order,
                outcome,
                sent,
                finished,
                retries,
                tuple(retried),
                landed_before=outcome == "acked" and landed,
            )

    def run(self) -> dict[str, Any]:
        workers = self.options.workers
        barrier = threading.Barrier(workers + 1)
        threads = [
            threading.Thread(target=self._work, args=(i, barrier), name=f"flash-{i}", daemon=True)
            for i in range(workers)
        ]
        for counter in self.counters:
            # Each handle reads the definition once: now, not among the measured requests.
            counter.definition  # noqa: B018
        self.meter.attach(self.client)
        self.watch_sends(self.client)
        self.injector.attach()
        try:
            for thread in threads:
                thread.start()
            self.budget.drain(self.hot_items)
            barrier.wait()
            opened = time.perf_counter()
            deadline = opened + self.options.time_limit
            for thread in threads:
                thread.join(max(0.0, deadline - time.perf_counter()))
                if thread.is_alive():
                    self.stop.set()
            stopped = self.stop.is_set()
            for thread in threads:
                thread.join(30.0)
            closed = time.perf_counter()
        finally:
            self.stop.set()
            self.injector.detach()
            self.unwatch_sends(self.client)
            self.meter.detach()
        if self.failure is not None:
            raise self.failure
        return {"opened": opened, "closed": closed, "stopped": stopped}


def false_sold_outs(refused_at: list[float], sold_sent_at: list[float], *, final: int) -> int:
    """Refusals ("sold out") proven false by the ledger, when every add is -1 with a floor of 0.

    Stock only goes down, so stock was left at a refusal (which came back at ``refused_at``)
    if some stock is left at the end (``final`` >= 1), or if an order sent after it
    (``sold_sent_at``) was then sold: that unit was there when the refusal was answered.
    """
    latest = max(sold_sent_at, default=-math.inf)
    return sum(1 for at in refused_at if final >= 1 or at < latest)


def _figures(sale: _Sale, timing: dict[str, Any], final: int, pricing: Pricing) -> dict[str, Any]:
    """One target's figures from the ledger of orders, the final value, meter and buckets."""
    options = sale.options
    records = sale.records
    acked = [r for r in records if r.outcome == "acked"]
    refused = [r for r in records if r.outcome == "refused"]
    errors = Counter(r.outcome for r in records if r.outcome not in ("acked", "refused"))
    opened = timing["opened"]
    # Selling time: to the last acknowledgement (the stock sold out, or the demand ran out).
    last = max((r.finished for r in acked), default=timing["closed"])
    seconds = max(last - opened, 1e-9)
    false_sold_out = false_sold_outs(
        [r.finished for r in refused], [r.started for r in acked], final=final
    )
    expected = options.stock - len(acked)
    oversold = max(0, len(acked) - options.stock, -final)
    totals = sale.meter.take()
    wru = totals.estimated_wru / len(acked) if acked else None
    rru = totals.estimated_rru / len(acked) if acked else None
    run_seconds = max(timing["closed"] - opened, 1e-9)
    hot = max(
        (units for (kind, _), units in sale.budget.admitted.items() if kind == WRITE),
        default=0.0,
    )
    written = sorted({item for (kind, item) in sale.budget.admitted if kind == WRITE})
    limit = options.item_write_limit
    ceiling = None
    if limit is not None and sale.target.shards is None:
        # The counter item's units per add: 1 for an UpdateItem, 2 in a transaction; AWS-like,
        # marker's marker (2 more) is in the counter's partition.
        per_add = {"atomic": 1.0, "marker": 4.0 if options.aws_like else 2.0}
        ceiling = limit / per_add[sale.target.strategy]
    stats = sale.aws.stats if sale.aws is not None else sale.injector.stats
    throttled = (
        stats.get("throttles", 0) + stats.get("transaction_throttles", 0)
        if sale.aws is not None
        else stats.get("item_throttles", 0)
    )
    # What reached a worker and was sent again: what the library's policy tries again itself
    # (conflicts, cancelled transactions: it gave up) must be 0; single requests that botocore
    # gave up on (its attempts or retry quota spent; the library leaves them to botocore) are
    # counted apart.
    sent_again = Counter(name for r in records for name in r.retried)
    sdk_gave_up = {k: v for k, v in sent_again.items() if k in _SDK_THROTTLES}
    not_applied = Counter({k: v for k, v in sent_again.items() if k not in _SDK_THROTTLES})
    # Orders never answered (the time limit stopped the sale): the units they would have
    # bought may be unsold, and nothing shows they would have sold -- not exact.
    unanswered = options.orders - len(records)
    # An order whose re-send found it counted: the error the worker had (documented as "nothing
    # applied") was wrong; idempotence hid it from the ledger.
    landed_before = sum(1 for r in acked if r.landed_before)
    exact = (
        final - expected == 0
        and oversold == 0
        and false_sold_out == 0
        and not errors
        and not not_applied
        and unanswered == 0
        and landed_before == 0
    )
    return {
        "name": sale.target.label,
        "strategy": sale.target.strategy,
        "shards": sale.target.shards,
        "skipped": None,
        "idempotent": sale.idempotent,
        "orders": len(records),
        "unanswered_orders": unanswered,
        "acknowledged": len(acked),
        "refused": len(refused),
        "errors": sum(errors.values()),
        "errors_by_type": dict(sorted(errors.items())),
        "app_retries": sum(r.retries for r in records),
        "stopped_by_time_limit": timing["stopped"],
        "seconds": seconds,
        "run_seconds": run_seconds,
        "accepted_adds_per_s": len(acked) / seconds,
        "model_ceiling_adds_per_s": ceiling,
        "throttled_requests": int(throttled),
        "throttled_transactions": int(stats.get("transaction_throttles", 0)),
        "conflicts": int(stats.get("conflicts", 0)),
        "stale_reads": int(stats.get("stale_reads", 0)),
        "unprocessed": int(stats.get("unprocessed", 0)),
        # Errors the library could have tried again that reached a worker (which sent the
        # order again with the same id): 0 when the library absorbs what AWS does.
        "retryable_errors_reaching_workers": sum(not_applied.values()),
        "retryable_errors_by_type": dict(sorted(not_applied.items())),
        "sdk_throttles_reaching_workers": sum(sdk_gave_up.values()),
        # Orders re-sent after an error that said "nothing applied", found counted: 0.
        "landed_before_re_send": landed_before,
        "exact": exact,
        "http_attempts": totals.attempts,
        "items_written": len(written),
        "hot_item_wu_per_s": hot / run_seconds,
        "ledger": {
            "initial": options.stock,
            "floor": 0,
            "expected": expected,
            "final": final,
            "drift": final - expected,
            "oversold": oversold,
            "false_sold_out": false_sold_out,
        },
        "units": {
            "wru": totals.estimated_wru,
            "rru": totals.estimated_rru,
            "wru_per_add": wru,
            "rru_per_add": rru,
        },
        "usd_per_million_adds": None
        if wru is None or rru is None
        else m.cost_per_million(wru, rru, wru_price=pricing.wru, rru_price=pricing.rru),
    }


def _skipped(target: FlashTarget) -> dict[str, Any]:
    return {
        "name": target.label,
        "strategy": target.strategy,
        "shards": target.shards,
        "skipped": f"the {target.strategy} strategy is not in this build",
    }


Advance = Callable[[str, dict[str, Any]], None]


class FlashSale:
    """Runs the targets of a :class:`FlashSaleOptions` on ``connection``; ``done(label, row)``
    after each; ``warm_up``: untimed adds first on the embedded engine (the demo's engine is
    warm from the bench already)."""

    def __init__(
        self,
        options: FlashSaleOptions,
        connection: Connection,
        *,
        done: Advance | None = None,
        warm_up: bool = True,
    ) -> None:
        self.options = options
        self.warm = warm_up
        self.connection = connection
        self.done = done or (lambda _label, _row: None)
        self.run_id = uuid.uuid4().hex[:12]
        self.table = f"dynamodb-counters-flash-{self.run_id}"
        self.observer = connection.client(pool=4)

    def run(self) -> dict[str, Any]:
        """Every target in turn; returns the ``flash_sale`` section of the results."""
        options = self.options
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        rows: list[dict[str, Any]] = []
        CounterStore(self.observer, self.table).ensure_table()
        try:
            self._warm_up()
            for target in options.targets:
                row = self._run_target(target) if target.available else _skipped(target)
                rows.append(row)
                self.done(target.label, row)
        finally:
            if not options.backend.embedded and not options.backend.keep_table:
                with contextlib.suppress(Exception):
                    self.observer.delete_table(TableName=self.table)
        return section(options, rows, started_at=started_at, seconds=time.perf_counter() - clock)

    def _warm_up(self) -> None:
        """Untimed adds first: a cold engine would make the first target look slow."""
        if not self.warm or not self.options.backend.embedded:
            return
        warm = CounterStore(self.observer, self.table).counter("flash-warm-up")
        warm.create(initial=0)
        for _ in range(100):
            warm.add(1)

    def _run_target(self, target: FlashTarget) -> dict[str, Any]:
        name = f"flash#{self.run_id}#{target.label}"
        setup = CounterStore(self.observer, self.table).counter(
            name, strategy=target.strategy_name, floor=0, **target.counter_options
        )
        setup.create(initial=self.options.stock)
        sale = _Sale(self.options, self.connection, self.table, target, name)
        timing = sale.run()
        final = setup.value()
        return _figures(sale, timing, final, self.options.pricing)


def section(
    options: FlashSaleOptions, rows: list[dict[str, Any]], *, started_at: datetime, seconds: float
) -> dict[str, Any]:
    """The ``flash_sale`` section of a results document."""
    by_name = {r["name"]: r for r in rows if not r.get("skipped")}
    one, eight = by_name.get("sharded@1"), by_name.get("sharded@8")
    speedup = None
    if one and eight and one["accepted_adds_per_s"]:
        speedup = eight["accepted_adds_per_s"] / one["accepted_adds_per_s"]
    data = asdict(options)
    data["backend"]["endpoint_url"] = (
        None if options.backend.endpoint_url is None else redact(options.backend.endpoint_url)
    )
    engine = "aws-like" if options.aws_like else "plain"
    per = "partition" if options.aws_like else "item"
    return {
        "scenario": FLASH_SALE,
        "started_at": started_at.isoformat(),
        "seconds": seconds,
        "options": {
            **data,
            "orders": options.orders,
            "item_read_limit_used": options.read_limit,
        },
        "model": {
            "engine": engine,
            "per": per,
            "item_write_limit": options.item_write_limit,
            "item_read_limit": options.read_limit,
            "partitions": options.partitions if options.aws_like else None,
            "in_flight_seconds": options.in_flight if options.aws_like else None,
            "staleness_seconds": options.staleness if options.aws_like else None,
            "burst": f"none for the counter's {per}s (their buckets start empty: already at "
            "their rate); "
            + (
                "a marker shares its counter's or shard's partition"
                if options.aws_like
                else "items first written in the sale (markers) start with one second's"
            ),
            "workers": f"threads of one process sharing one client and one budget per {per}",
        },
        "targets": rows,
        "sharded_8_vs_1": speedup,
        "target_ratio": options.target_ratio,
        "verdict": verdict(speedup, options.target_ratio),
        "all_exact": all(r["exact"] for r in rows if not r.get("skipped")),
    }


def verdict(ratio: float | None, target: float) -> str | None:
    """The scale result in words that read right whether it is met or not."""
    if ratio is None:
        return None
    met = "met" if ratio >= target else "NOT met"
    return f"sharded@8 sold {ratio:.1f} x the rate of sharded@1 (target >= {target:g} x: {met})"


def results_document(
    options: FlashSaleOptions, connection: Connection, flash: dict[str, Any]
) -> BenchResults:
    """A whole results document for a run of the scenario alone (the bench's schema; no
    strategy rows of the plain bench, the scenario in ``flash_sale``)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "scenario": FLASH_SALE,
        "run": {
            "started_at": flash["started_at"],
            "seconds": flash["seconds"],
            "seed": options.seed,
            "preset": options.preset,
            "backend": {
                "kind": connection.kind,
                "endpoint_url": None
                if connection.endpoint_url is None
                else redact(connection.endpoint_url),
                "region": connection.region,
            },
            "versions": _versions(),
            "cpus": os.cpu_count(),
            "pricing": {
                "usd_per_million_wru": options.pricing.wru,
                "usd_per_million_rru": options.pricing.rru,
            },
        },
        "strategies": [],
        "baseline": None,
        "comparison": {},
        "flash_sale": flash,
    }


def run_flash_sale(options: FlashSaleOptions, *, done: Advance | None = None) -> BenchResults:
    """Start the backend, run the scenario; returns a whole results document."""
    with open_backend_at(options.backend) as connection:
        flash = FlashSale(options, connection, done=done).run()
        return results_document(options, connection, flash)
