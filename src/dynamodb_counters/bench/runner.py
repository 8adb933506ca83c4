"""Runs a bench: one target (:mod:`.targets`: a strategy, or the raw baseline) after another,
the same workload each.

For each target: create its counter (on a clean client: no faults, not metered), start the
workers together (threads sharing one boto3 client, processes with a client each, or asyncio
tasks sharing one aiobotocore client: :mod:`.tasks`), each behind a
:class:`~.meter.RequestMeter` and a :class:`~dynamodb_counters.faults.FaultInjector`, watch the
counter's bounds from the side, then read the final value and turn everything into the figures
of :func:`summarise`. Results are JSON, typed by :mod:`dynamodb_counters.report.schema`.

Safe to stop and to share an endpoint:

* Every client has connect and read timeouts, and nobody waits for a worker blocked in a socket
  read: worker threads are daemons, worker processes are terminated, the monitor is not joined
  for long, and cleanup after a failure runs within a few seconds' budget. Ctrl-C (or SIGTERM,
  which the CLI turns into the same) is out within seconds whatever the endpoint does.
* A run that stops early (an error, an interrupt) raises :class:`BenchFailed` or
  :class:`BenchInterrupted` carrying the results of the targets that finished, marked partial.
* A run has a random id: its counters are ``bench#<run-id>#<target>`` and its default table
  ``dynamodb-counters-bench-<run-id>``. It writes to an existing table only when
  ``Backend.use_existing_table`` says so, and deletes only what it created: the table only if
  its own CreateTable succeeded (a table someone else created meanwhile is not ours), else its
  own counters.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import queue
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TypeVar

from botocore.exceptions import ClientError, EndpointConnectionError

from .. import (
    CounterError,
    CounterNotFound,
    CounterStore,
    InvalidInput,
    ThresholdExceeded,
)
from .._endpoints import check_endpoint
from .._endpoints import redact as redact  # re-exported: the bench and its tests use it
from ..aws_like import SharedState, shared_state
from ..faults import FaultPlan
from ..local import LOCAL_CREDENTIALS
from ..report.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    BenchResults,
    Comparison,
    RoundFigures,
    Spread,
    TargetResult,
    ValueRead,
)
from ..results import AddResult, CallRecord
from . import metrics as m
from .fair import OperationFaults
from .meter import ItemSizes, MeterTotals, OpBook, RequestMeter
from .options import RAW, Backend, BenchOptions, SdkRetry
from .targets import Target, new_target
from .tasks import LoopThread, in_tasks
from .workload import (
    Adder,
    AppRetry,
    AsyncAdder,
    AsyncWorker,
    BenchAborted,
    Op,
    Worker,
    WorkerOutcome,
    expected_value,
    plan_ops,
)

#: Every target is watched at this rate (the same side load for each: a fair comparison).
MONITOR_INTERVAL = 0.1
#: Seconds a request may take to connect, and to be answered, before botocore gives up on it
#: (and retries): without them a hung endpoint holds a worker 60 s per SDK attempt.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
#: After a failure or an interrupt: the most that stopping the workers, and the cleanup, may take.
STOP_BUDGET = 1.0
CLEANUP_BUDGET = 1.5

T = TypeVar("T")


# -- a run that stops early ------------------------------------------------------------------


class BenchFailed(Exception):
    """A run stopped by an error. ``results``: the targets that finished (``partial`` true);
    ``cause``: the error."""

    def __init__(self, results: BenchResults, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.results = results
        self.cause = cause


class BenchInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (or SIGTERM turned into it). ``results``: the targets that
    finished (``partial`` true); ``at``: when the interrupt came (``time.monotonic()``), for a
    caller that must be out within seconds of it. A :class:`KeyboardInterrupt`, so it stops
    what it crosses."""

    def __init__(self, results: BenchResults, *, at: float) -> None:
        super().__init__("interrupted")
        self.results = results
        self.at = at


class ExistingTable(CounterError):
    """The bench's table exists and this run did not create it: the bench writes there only
    when told (``Backend.use_existing_table``, ``--use-existing-table``)."""


# -- connections -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach the backend; picklable, so worker processes can connect too."""

    kind: str
    endpoint_url: str | None
    region: str | None
    dummy_credentials: bool

    def client(
        self,
        *,
        sdk: SdkRetry | None = None,
        pool: int = 10,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(**self._config(sdk, pool, connect_timeout, read_timeout))
        return boto3.client("dynamodb", **self._where(), config=config)

    def _config(
        self, sdk: SdkRetry | None, pool: int, connect_timeout: float, read_timeout: float
    ) -> dict[str, Any]:
        """botocore's (and aiobotocore's) client configuration."""
        sdk = sdk or SdkRetry()
        return {
            # ``total_max_attempts`` counts the first send; botocore's ``max_attempts`` does not.
            "retries": {"mode": sdk.mode, "total_max_attempts": sdk.max_attempts},
            "max_pool_connections": pool,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }

    def _where(self) -> dict[str, Any]:
        """Endpoint, region and (for DynamoDB Local) credentials of a client."""
        extra: dict[str, Any] = LOCAL_CREDENTIALS if self.dummy_credentials else {}
        return {"endpoint_url": self.endpoint_url, "region_name": self.region, **extra}

    def async_client(
        self,
        *,
        sdk: SdkRetry | None = None,
        pool: int = 10,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> Any:
        """:meth:`client`'s aiobotocore twin: a client context manager (``async with``).

        Raises:
            InvalidInput: aiobotocore is not installed (the ``async`` extra).
        """
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session
        except ImportError as exc:
            raise InvalidInput(
                "--async needs aiobotocore: pip install 'dynamodb-counters[async]'"
            ) from exc
        config = AioConfig(**self._config(sdk, pool, connect_timeout, read_timeout))
        return get_session().create_client("dynamodb", **self._where(), config=config)


@contextlib.contextmanager
def open_backend(options: BenchOptions) -> Iterator[Connection]:
    """Start the embedded DynamoDB Local, or describe the endpoint / region given."""
    with open_backend_at(options.backend) as connection:
        yield connection


@contextlib.contextmanager
def open_backend_at(backend: Backend) -> Iterator[Connection]:
    """:func:`open_backend` for a :class:`Backend` alone (scenarios have options of their own)."""
    if backend.embedded:
        from ..local import DynamoDBLocal

        with DynamoDBLocal() as engine:
            yield Connection("dynamodb-local", engine.endpoint_url, "us-east-1", True)
        return
    import boto3

    region = backend.region or boto3.Session().region_name or "us-east-1"
    # Dummy credentials for a plain-HTTP endpoint on this machine (never the user's own: see
    # dynamodb_counters._endpoints), and for any endpoint when the user has none.
    endpoint, local = check_endpoint(backend.endpoint_url)
    dummy = local or (endpoint is not None and boto3.Session().get_credentials() is None)
    kind = "aws" if backend.endpoint_url is None else "endpoint"
    yield Connection(kind, backend.endpoint_url, region, dummy)


# -- one target ------------------------------------------------------------------------------


@contextlib.contextmanager
def booking(
    target: Target, meter: RequestMeter, faults: OperationFaults, amount: int, request_id: str
) -> Iterator[None]:
    """The books of one ``add()`` of the workload, around it (sync or awaited).

    The request id keys the fault decisions (every target meets the same faults, :mod:`.fair`)
    and the meter books the call's units and lost answers on it, with its outcome: ``acked``,
    ``rejected`` (a bound refused it) or ``error``.
    """
    with (
        faults.operation(target.name, request_id),
        meter.operation(request_id, amount) as book,
    ):
        try:
            yield
        except ThresholdExceeded:
            book.state = "rejected"
            raise
        except BaseException:
            book.state = "error"
            raise
        book.state = "acked"


def booked_adder(
    target: Target,
    add: Adder,
    meter: RequestMeter,
    faults: OperationFaults,
) -> Adder:
    """``add`` with its books kept per operation of the workload (:func:`booking`).

    Workers always pass the operation's request id; the library gets it only where the target
    is idempotent.
    """
    idempotent = target.idempotent

    def run(amount: int, request_id: str | None) -> AddResult:
        assert request_id is not None
        with booking(target, meter, faults, amount, request_id):
            return add(amount, request_id if idempotent else None)

    return run


def booked_async_adder(
    target: Target, add: AsyncAdder, meter: RequestMeter, faults: OperationFaults
) -> AsyncAdder:
    """:func:`booked_adder` for an awaited ``add`` (the books follow each asyncio task)."""
    idempotent = target.idempotent

    async def run(amount: int, request_id: str | None) -> AddResult:
        assert request_id is not None
        with booking(target, meter, faults, amount, request_id):
            return await add(amount, request_id if idempotent else None)

    return run


def _key_names(table_store: CounterStore) -> tuple[str, ...]:
    layout = table_store.layout
    return (layout.partition_key,) + ((layout.sort_key,) if layout.sort_key else ())


# -- worker processes ------------------------------------------------------------------------

_progress_queue: Any = None


def _init_process(progress: Any) -> None:
    global _progress_queue
    _progress_queue = progress
    # Ctrl-C reaches the whole process group: the parent alone decides, and terminates the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True, slots=True)
class ProcessTask:
    connection: Connection
    sdk: SdkRetry
    faults: FaultPlan
    retry: AppRetry
    target: Target
    slot: int
    ops: tuple[Op, ...]
    #: The AWS-like engine's state every process shares (a proxy), if the mode is on.
    aws_state: Any = None


def run_process_task(task: ProcessTask) -> tuple[WorkerOutcome, MeterTotals, dict[str, int]]:
    """One worker in a process of its own: its own client, meter and fault injector."""
    client = task.connection.client(sdk=task.sdk, pool=4)
    target = task.target
    sizes = ItemSizes()
    store = CounterStore(client, target.table)
    key = store.layout.counter_key(target.counter)
    sizes.put(target.table, key, dict(target.initial_item))
    adder = target.adder(client)
    meter = RequestMeter(_key_names(store), sizes).attach(client)
    progress = _progress_queue
    slot = task.slot

    def tick() -> None:
        if progress is not None:
            progress.put(slot)

    injector = OperationFaults(
        client, task.faults, key_names=_key_names(store), aws_state=task.aws_state
    )
    with injector:
        add = booked_adder(target, adder, meter, injector)
        worker = Worker(add, idempotent=True, retry=task.retry, tick=tick)
        outcome = worker.run(list(task.ops))
    meter.detach()
    return outcome, meter.take(), dict(injector.stats)


# -- the bench -------------------------------------------------------------------------------


ProgressHook = Callable[[int, int], None]


class Bench:
    """Runs the targets of ``options`` on ``connection``; see the module docstring.

    Args:
        options: what to run.
        connection: where.
        advance: ``advance(target_index, n)`` after operations complete (progress bars).
    """

    def __init__(
        self,
        options: BenchOptions,
        connection: Connection,
        *,
        advance: ProgressHook | None = None,
    ) -> None:
        self.options = options
        self.connection = connection
        self.advance = advance or (lambda _index, _n: None)
        pool = max(10, options.workers * 2)
        self.observer = connection.client(pool=4)
        self.client = connection.client(sdk=options.sdk, pool=pool)
        self.run_id = uuid.uuid4().hex[:12]
        self.created_table = False
        self._table_is_ours = False
        self._sizes = {}
        self.table = options.backend.table or f"dynamodb-counters-bench-{self.run_id}"
        self.plans = [
            plan_ops(seed=options.seed, worker=w, ops=options.ops, mix=options.mix)
            for w in range(options.workers)
        ]
        #: What a cleanup could not delete (the endpoint did not answer in time).
        self.left_behind: list[str] = []

    # -- setup -------------------------------------------------------------------------------

    def prepare_table(self) -> None:
        """Create the run's table, or (only when told) use an existing one, unchanged.

        Raises:
            ExistingTable: the table exists and ``use_existing_table`` is not set, or its keys
                are not the ones the bench writes.
        """
        use_existing = self.options.backend.use_existing_table
        existing = self._describe_table()
        if existing is not None:
            if not use_existing:
                raise self._refusal()
            self._check_keys(existing)  # and nothing else: its settings are its owner's
            return

        def note(record: CallRecord) -> None:
            # Only our own successful CreateTable makes the table ours: one that another
            # process created between our check and our create answers ResourceInUse. Noted
            # at once, so that a set-up stopped after it (an error, Ctrl-C) deletes it too.
            if record.operation == "CreateTable" and record.error_code is None:
                self.created_table = True

        # A table under the run's own name (the default) is this run's whoever saw the answer:
        # stopped during its CreateTable, the cleanup still tries to delete it.
        self._table_is_ours = self.options.backend.table is None
        CounterStore(self.observer, self.table, on_call=note).ensure_table()
        if not self.created_table and not use_existing:
            raise self._refusal()

    def _describe_table(self) -> dict[str, Any] | None:
        try:
            answer = self.observer.describe_table(TableName=self.table)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            return None
        return dict(answer["Table"])

    def _check_keys(self, description: dict[str, Any]) -> None:
        layout = CounterStore(self.observer, self.table).layout
        wanted = {layout.partition_key: ("HASH", "S")}
        if layout.sort_key is not None:
            wanted[layout.sort_key] = ("RANGE", "S")
        types = {
            a["AttributeName"]: a["AttributeType"]
            for a in description.get("AttributeDefinitions", [])
        }
        found = {
            k["AttributeName"]: (k["KeyType"], types.get(k["AttributeName"]))
            for k in description.get("KeySchema", [])
        }
        if found != wanted:
            keys = ", ".join(
                f"{name} {kind} ({kind_of})" for name, (kind, kind_of) in wanted.items()
            )
            raise ExistingTable(
                f"table {self.table!r} does not have the keys the bench uses: {keys}"
            )

    def _refusal(self) -> ExistingTable:
        return ExistingTable(
            f"table {self.table!r} already exists and this bench did not create it: pass "
            "--use-existing-table to add the bench's counters to it (they are deleted "
            "afterwards, nothing else is touched), or name a new table with --table"
        )

    def cleanup(self, targets: list[Target], *, budget: float | None = None) -> None:
        """Delete what the run created: its table, else its counters (the embedded engine
        goes away by itself). With ``budget``, give up after that many seconds (the endpoint
        may be the reason the run stopped) and note what was left in :attr:`left_behind`."""
        if self.options.backend.embedded:
            return
        ours = self.created_table or self._table_is_ours
        drop_table = ours and not self.options.backend.keep_table
        client = self.observer
        if budget is not None:
            client = self.connection.client(
                pool=4,
                sdk=SdkRetry(max_attempts=1),
                connect_timeout=min(1.0, budget),
                read_timeout=budget,
            )
        pending = [self.table] if drop_table else [t.counter for t in targets]

        def delete() -> None:
            if drop_table:
                try:
                    client.delete_table(TableName=self.table)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                        raise
                pending.clear()
                return
            for target in targets:
                with contextlib.suppress(CounterNotFound):
                    target.counter_on(client).delete()
                pending.remove(target.counter)

        # A failed cleanup is reported (left_behind), never raised: it must not replace the
        # run's results, or the error that stopped it.
        if budget is None:
            _quietly(delete)()
        else:
            worker = threading.Thread(target=_quietly(delete), name="bench-cleanup", daemon=True)
            worker.start()
            worker.join(budget)
        self.left_behind = list(pending)

    def warm_up(self, count: int = 400) -> None:
        """Untimed requests first, so the first target does not pay for a cold engine."""
        if not self.options.backend.embedded:
            return
        store = CounterStore(self.observer, self.table)
        key = store.layout.counter_key(f"bench-warm-up-{uuid.uuid4().hex[:8]}")
        threads = max(1, self.options.workers)

        def spin(_: int) -> None:
            for _i in range(count // threads):
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="ADD #v :one",
                    ExpressionAttributeNames={"#v": store.layout.value_attribute},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )

        in_daemon_threads(threads, spin, threading.Event())

    def make_target(self, name: str) -> Target:
        options = self.options
        bounded = Target.enforces_bounds(name)
        strategy_options: dict[str, Any] = {}
        if name == "occ_history" and options.history is not None:
            strategy_options["history"] = options.history
        if name == "set" and options.set_capacity is not None:
            # Otherwise the library's default: a bench measures what users get.
            strategy_options["capacity"] = options.set_capacity
        if name == "sharded" and options.shards is not None:
            strategy_options["shards"] = options.shards
        target = new_target(
            name,
            # Random per run: no one else's counter has this name, and a concurrent bench on
            # the same table has its own.
            counter=f"bench#{self.run_id}#{name}",
            table=self.table,
            floor=options.floor if bounded else None,
            ceiling=options.ceiling if bounded else None,
            options=tuple(sorted(strategy_options.items())),
        )
        target.create(self.observer, options.initial)
        item = self.observer.get_item(
            TableName=self.table,
            Key=CounterStore(self.observer, self.table).layout.counter_key(target.counter),
            ConsistentRead=True,
        ).get("Item", {})
        return replace(target, initial_item=tuple(sorted(item.items())))

    # -- running -----------------------------------------------------------------------------

    def run_targets(
        self, indexed: list[tuple[int, Target]], *, rounds: int = 1
    ) -> list[TargetResult]:
        """Run targets on the same workload in ``rounds``: a slice of every worker's operations
        at a time, targets of a group taking turns, so that each figure has a spread over
        rounds and a comparison is not skewed by what else the machine was doing at one
        moment. Every target is watched from the side the same way (the same load)."""
        monitors = {i: _Monitor(self.observer, t) for i, t in indexed}
        merged = {i: (WorkerOutcome(), MeterTotals(), Counter[str]()) for i, _ in indexed}
        per_round: dict[int, list[RoundFigures]] = {i: [] for i, _ in indexed}
        seconds = dict.fromkeys(merged, 0.0)
        ops = self.options.ops
        rounds = max(1, min(rounds, ops))
        cuts = [ops * r // rounds for r in range(rounds + 1)]
        for r in range(rounds):
            plans = [plan[cuts[r] : cuts[r + 1]] for plan in self.plans]
            # Alternate who goes first (ABBA): a machine warming up favours neither.
            for index, target in indexed if r % 2 == 0 else indexed[::-1]:
                monitor = monitors[index]
                monitor.start()
                try:
                    if self.options.processes:
                        part = self._run_processes(index, target, plans, round_=r)
                    elif self.options.api == "async":
                        part = self._run_tasks(index, target, plans)
                    else:
                        part = self._run_threads(index, target, plans)
                except BaseException:
                    if monitor is not None:  # the endpoint may hang: don't wait for its read
                        monitor.stop(timeout=STOP_BUDGET)
                    raise
                if monitor is not None:
                    monitor.stop()
                outcome, totals, injected = merged[index]
                elapsed = part[0].finished - part[0].started
                seconds[index] += elapsed
                per_round[index].append(round_figures(part[0], part[1], elapsed))
                outcome.merge(part[0])
                totals.merge(part[1])
                injected.update(part[2])
        results = []
        for index, target in indexed:
            outcome, totals, injected = merged[index]
            final, value_read = self._metered_value(index, target)
            results.append(
                summarise(
                    target,
                    self.options,
                    outcome,
                    totals,
                    dict(injected),
                    final=final,
                    observed=monitors[index].seen,
                    seconds=seconds[index],
                    rounds=per_round[index],
                    value_read=value_read,
                )
            )
        return results

    def _sizes_of(self, index: int, target: Target) -> ItemSizes:
        """The item sizes the meter follows for a target, kept across its rounds."""
        sizes = self._sizes.get(index)
        if sizes is None:
            store = CounterStore(self.observer, self.table)
            sizes = self._sizes[index] = ItemSizes()
            sizes.put(
                self.table, store.layout.counter_key(target.counter), dict(target.initial_item)
            )
        return sizes

    def _known_item(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        """The last full item the meters saw for ``key`` (prices the per-item model)."""
        for sizes in list(self._sizes.values()):
            if sizes.known(table, key):
                return sizes.get(table, key)
        return dict(key)

    def _metered_value(self, index: int, target: Target) -> tuple[int, ValueRead]:
        """The final value, read with ``value()`` as users read it, and what that read costs.

        The items of the counter's partition are looked at first (not metered), so the read's
        units are priced on whole items whichever mode the workers ran in."""
        store = CounterStore(self.observer, self.table)
        sizes = ItemSizes()
        key = store.layout.counter_key(target.counter)
        partition = store.layout.partition_key
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": partition},
            "ExpressionAttributeValues": {":pk": key[partition]},
            "ConsistentRead": True,
        }
        items = 0
        while True:
            page = self.observer.query(**query)
            for item in page.get("Items", []):
                sizes.put(self.table, {k: item[k] for k in _key_names(store) if k in item}, item)
                items += 1
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        handle = target.counter_on(self.observer)
        handle.definition  # noqa: B018 -- the once-per-handle read is not the read's cost
        meter = RequestMeter(_key_names(store), sizes).attach(self.observer)
        try:
            final = handle.value()
        finally:
            meter.detach()
        totals = meter.take()
        return final, {
            "requests": totals.attempts,
            "rru": totals.estimated_rru,
            "reported_rru": totals.reported_rru,
            "items_in_partition": items,
            "usd_per_million_reads": totals.estimated_rru * self.options.pricing.rru,
        }

    def _run_threads(
        self, index: int, target: Target, plans: list[list[Op]]
    ) -> tuple[WorkerOutcome, MeterTotals, dict[str, int]]:
        options = self.options
        store = CounterStore(self.observer, self.table)
        adders = [target.adder(self.client) for _ in range(options.workers)]
        meter = RequestMeter(_key_names(store), self._sizes_of(index, target)).attach(self.client)
        barrier = threading.Barrier(options.workers)
        stop = threading.Event()

        def tick() -> None:
            self.advance(index, 1)

        def body(worker_index: int) -> WorkerOutcome:
            assert self._injector is not None
            add = booked_adder(target, adders[worker_index], meter, self._injector)
            worker = Worker(add, idempotent=True, retry=options.app_retry, tick=tick, stop=stop)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # another worker failed: its error tells
                return worker.outcome
            return worker.run(plans[worker_index])

        try:
            assert self._injector is not None
            before = dict(self._injector.stats)
            try:
                outcomes = in_daemon_threads(options.workers, body, stop)
            except BaseException:
                barrier.abort()  # none waits at the barrier for a worker that failed
                raise
            injected = {k: v - before.get(k, 0) for k, v in self._injector.stats.items()}
        finally:
            meter.detach()
        merged = WorkerOutcome()
        for outcome in outcomes:
            merged.merge(outcome)
        return merged, meter.take(), injected

    def _run_tasks(
        self, index: int, target: Target, plans: list[list[Op]]
    ) -> tuple[WorkerOutcome, MeterTotals, dict[str, int]]:
        """:meth:`_run_threads` with asyncio tasks on the run's one aiobotocore client."""
        options = self.options
        loop, client, injector = self._loop, self.async_client, self._injector
        assert loop is not None and injector is not None
        adder = loop.run(target.async_adder(client))  # before the meter: see Target.adder
        store = CounterStore(self.observer, self.table)
        meter = RequestMeter(_key_names(store), self._sizes_of(index, target)).attach(client)
        add = booked_async_adder(target, adder, meter, injector)
        stop = threading.Event()

        def tick() -> None:
            self.advance(index, 1)

        async def body(worker_index: int) -> WorkerOutcome:
            worker = AsyncWorker(
                add, idempotent=True, retry=options.app_retry, tick=tick, stop=stop
            )
            return await worker.run(plans[worker_index])

        try:
            before = dict(injector.stats)
            try:
                outcomes = loop.run(in_tasks(options.workers, body, stop))
            except BaseException:
                stop.set()
                raise
            injected = {k: v - before.get(k, 0) for k, v in injector.stats.items()}
        finally:
            meter.detach()
        merged = WorkerOutcome()
        for outcome in outcomes:
            merged.merge(outcome)
        return merged, meter.take(), injected

    def _open_async(self) -> None:
        """The event loop and its one aiobotocore client (pool: every task at once)."""
        self._loop = LoopThread()
        self._async_manager = self.connection.async_client(
            sdk=self.options.sdk, pool=max(10, self.options.workers * 2)
        )
        self.async_client = self._loop.run(self._async_manager.__aenter__())

    def _close_async(self, *, budget: float | None) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self.async_client is not None:
            with contextlib.suppress(Exception):
                loop.run(self._async_manager.__aexit__(None, None, None), timeout=budget)
        loop.close(budget=STOP_BUDGET)

    def _run_processes(
        self, index: int, target: Target, plans: list[list[Op]], *, round_: int
    ) -> tuple[WorkerOutcome, MeterTotals, dict[str, int]]:
        options = self.options
        assert self._pool is not None and self._progress is not None
        tasks = [
            ProcessTask(
                connection=self.connection,
                sdk=options.sdk,
                # Decisions are keyed on each operation's request id (:mod:`.fair`): the same
                # seed in every process gives every target the same faults.
                faults=options.faults,
                retry=options.app_retry,
                target=target,
                slot=index,
                ops=tuple(plans[w]),
                aws_state=None if self._shared is None else self._shared.state,
            )
            for w in range(options.workers)
        ]
        pending = self._pool.map_async(run_process_task, tasks, chunksize=1)
        while not pending.ready():
            self._drain(timeout=0.05)
        self._drain(timeout=0)
        merged, totals = WorkerOutcome(), MeterTotals()
        injected: dict[str, int] = {}
        for outcome, meter_totals, stats in pending.get():
            merged.merge(outcome)
            totals.merge(meter_totals)
            for name, count in stats.items():
                injected[name] = injected.get(name, 0) + count
        return merged, totals, injected

    def _drain(self, *, timeout: float) -> None:
        assert self._progress is not None
        while True:
            try:
                slot = (
                    self._progress.get(timeout=timeout) if timeout else self._progress.get_nowait()
                )
            except queue.Empty:
                return
            self.advance(int(slot), 1)
            timeout = 0

    _pool: Any = None
    _progress: Any = None
    _shared: SharedState | None = None
    _loop: LoopThread | None = None
    _async_manager: Any = None
    #: The aiobotocore client of an ``--async`` run (else None).
    async_client: Any = None
    _injector: OperationFaults | None = None
    _sizes: dict[int, ItemSizes]

    def run(self) -> BenchResults:
        """Run every target; returns the results dict (see :mod:`dynamodb_counters.bench`).

        Raises:
            BenchInterrupted: Ctrl-C; its ``results`` hold the targets that finished.
            BenchFailed: any other error; likewise, with the error as ``cause``.
        """
        options = self.options
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        targets: list[Target] = []
        results: list[TargetResult] = []
        stopped: BaseException | None = None
        stopped_at = 0.0
        try:
            self.prepare_table()
            self.warm_up()
            if options.api == "async":
                self._open_async()
            key_names = _key_names(CounterStore(self.observer, self.table))
            if options.processes and options.faults.aws_like is not None:
                # Worker processes share one AWS-like engine (writes in flight, partition
                # budgets), served by a process of its own.
                self._shared = shared_state(options.faults.aws_like, key_names=key_names)
            # One injector for the run (threads, tasks): its decisions depend on how many
            # identical requests came before, across targets and rounds, as on one long-lived
            # client.
            self._injector = OperationFaults(
                self.client if self.async_client is None else self.async_client,
                options.faults,
                key_names=key_names,
                known_item=self._known_item,
                aws_state=None if self._shared is None else self._shared.state,
            )
            self._injector.attach()
            if options.processes:
                context = multiprocessing.get_context("spawn")
                self._progress = context.Queue()
                self._pool = context.Pool(
                    options.workers, initializer=_init_process, initargs=(self._progress,)
                )
            for group in _groups(options):
                indexed = []
                for i, name in group:
                    target = self.make_target(name)
                    targets.append(target)  # made, so cleaned up whatever happens next
                    indexed.append((i, target))
                results.extend(self.run_targets(indexed, rounds=options.rounds))
        except (Exception, KeyboardInterrupt) as exc:
            stopped, stopped_at = exc, time.monotonic()
        finally:
            # Whatever stopped the run must not be held up, or replaced, by the way out.
            if self._injector is not None:
                self._injector.detach()
            self._stop_pool(failed=stopped is not None)
            if self._shared is not None:
                self._shared.close()
                self._shared = None
            self._close_async(budget=None if stopped is None else STOP_BUDGET)
            self.cleanup(targets, budget=None if stopped is None else CLEANUP_BUDGET)
        document = assemble(
            options,
            # Recorded without the user and password an endpoint URL may carry.
            replace(self.connection, endpoint_url=_redacted(self.connection.endpoint_url)),
            results,
            table=self.table,
            started_at=started_at,
            seconds=time.perf_counter() - clock,
        )
        document["partial"] = stopped is not None
        finished = [r["name"] for r in results]
        document["run"].update(
            {
                "run_id": self.run_id,
                "stopped_by": None if stopped is None else stop_reason(stopped),
                "finished_targets": finished,
                "unfinished_targets": [t for t in options.targets if t not in finished],
                "left_behind": self.left_behind,
            }
        )
        if isinstance(stopped, KeyboardInterrupt):
            raise BenchInterrupted(document, at=stopped_at) from stopped
        if stopped is not None:
            raise BenchFailed(document, stopped) from stopped
        return document

    def _stop_pool(self, *, failed: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not failed:
            pool.close()
            pool.join()
            return
        # Workers may be mid-task, blocked in a read from a hung endpoint: terminate them,
        # and if the pool's own teardown lingers, kill what is left of them.
        processes = list(getattr(pool, "_pool", []))
        closer = threading.Thread(target=_quietly(pool.terminate), name="bench-pool", daemon=True)
        closer.start()
        closer.join(STOP_BUDGET)
        for process in processes:
            if process.is_alive():
                process.kill()


def in_daemon_threads(count: int, body: Callable[[int], T], stop: threading.Event) -> list[T]:
    """``[body(0), ..., body(count - 1)]``, each in a daemon thread of its own.

    The first error (or Ctrl-C in the calling thread) sets ``stop`` and is raised at once:
    nobody waits for threads that may be blocked in a socket read on a hung endpoint. They
    end with their request's timeout, or with the process, and hold up neither.
    """
    results: dict[int, T] = {}
    errors: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    done = threading.Semaphore(0)

    def run(index: int) -> None:
        try:
            results[index] = body(index)
        except BaseException as exc:
            stop.set()
            errors.put(exc)
        finally:
            done.release()

    for index in range(count):
        threading.Thread(target=run, args=(index,), name=f"bench-{index}", daemon=True).start()
    try:
        for _ in range(count):
            while not done.acquire(timeout=0.1):
                pass
            if not errors.empty():
                raise errors.get()
    except BaseException:
        stop.set()
        raise
    return [results[index] for index in range(count)]


def _quietly(action: Callable[[], object]) -> Callable[[], None]:
    """``action`` for a background thread whose failure nobody is waiting to hear about."""

    def run() -> None:
        with contextlib.suppress(Exception):
            action()

    return run


def _redacted(url: str | None) -> str | None:
    return None if url is None else redact(url)


def stop_reason(exc: BaseException) -> str:
    """One line saying what stopped a run (credentials in URLs redacted)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, BenchAborted):
        exc = exc.cause
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, EndpointConnectionError):
        text = f"cannot reach the endpoint: {text}"
    elif not isinstance(exc, CounterError):
        text = f"{type(exc).__name__}: {text}"
    return redact(text)


def _groups(options: BenchOptions) -> list[list[tuple[int, str]]]:
    """Targets in order, as groups run together: ``atomic`` with the raw baseline."""
    names = list(options.targets)
    pair = [(i, n) for i, n in enumerate(names) if n in ("atomic", RAW)]
    groups: list[list[tuple[int, str]]] = []
    for index, name in enumerate(names):
        if options.compare_raw and len(pair) == 2 and name in ("atomic", RAW):
            if (index, name) == pair[0]:
                groups.append(pair)
            continue
        groups.append([(index, name)])
    return groups


def _read_value(client: Any, target: Target) -> int:
    return target.counter_on(client).value()


class _Monitor:
    """Reads the counter from the side while the workers run: was a bound ever crossed?"""

    def __init__(self, client: Any, target: Target) -> None:
        self.target = target
        self.client = client
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bench-monitor", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float | None = None) -> None:
        """Stop reading; wait for the read in flight (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        # A first reading at once: a round shorter than the interval is watched too.
        while True:
            with contextlib.suppress(Exception):
                self.seen.append(_read_value(self.client, self.target))
            if self._stop.wait(MONITOR_INTERVAL):
                return


# -- figures ---------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def spread(values: list[float]) -> Spread:
    """Min, median and max of figures from repeated rounds."""
    return {
        "min": min(values) if values else None,
        "median": m.percentile(values, 50),
        "max": max(values) if values else None,
    }


def round_figures(outcome: WorkerOutcome, totals: MeterTotals, seconds: float) -> RoundFigures:
    """One round's throughput and latency (the spread comes from these)."""
    latencies_ms = [x * 1000 for x in outcome.latencies]
    return {
        "attempted": outcome.attempted,
        "seconds": seconds,
        "ops_per_s": outcome.attempted / max(seconds, 1e-9),
        "p50_ms": m.percentile(latencies_ms, 50),
        "p99_ms": m.percentile(latencies_ms, 99),
        "lost_answers": totals.lost,
    }


def _books(ops: dict[str, OpBook]) -> dict[str, Any]:
    """Units and counts per outcome of the workload's operations."""
    groups: dict[str, dict[str, float]] = {}
    for book in ops.values():
        group = groups.setdefault(book.state or "error", {"ops": 0, "rru": 0.0, "wru": 0.0})
        group["ops"] += 1
        group["rru"] += book.rru
        group["wru"] += book.wru
    return groups


def _cost(units: dict[str, float], count: int, pricing: Any) -> float | None:
    if not count:
        return None
    return m.cost_per_million(
        units["wru"] / count, units["rru"] / count, wru_price=pricing.wru, rru_price=pricing.rru
    )


def summarise(
    target: Target,
    options: BenchOptions,
    outcome: WorkerOutcome,
    totals: MeterTotals,
    injected: dict[str, int],
    *,
    final: int,
    observed: list[int],
    seconds: float | None = None,
    rounds: list[RoundFigures] | None = None,
    value_read: ValueRead | None = None,
) -> TargetResult:
    """One target's figures (a JSON-ready dict)."""
    from ..report import verdict_of

    expected = expected_value(options.initial, outcome.acked)
    seen = [*observed, *outcome.values_seen, final, options.initial]
    if seconds is None:
        seconds = outcome.finished - outcome.started
    seconds = max(seconds, 1e-9)
    rounds = rounds or []
    per_op = outcome.attempted or 1
    latencies_ms = [x * 1000 for x in outcome.latencies]
    est_rru = totals.estimated_rru / per_op
    est_wru = totals.estimated_wru / per_op
    rep_rru = totals.reported_rru / per_op
    rep_wru = totals.reported_wru / per_op
    pricing = options.pricing
    floor, ceiling = target.floor, target.ceiling
    # The bounds the run asked for; a strategy that cannot enforce them runs without, and the
    # figures say what happened to them (never silently dropped).
    asked_floor, asked_ceiling = options.floor, options.ceiling
    below = asked_floor - min(seen) if asked_floor is not None and min(seen) < asked_floor else 0
    above = (
        max(seen) - asked_ceiling if asked_ceiling is not None and max(seen) > asked_ceiling else 0
    )
    books = _books(totals.ops)
    # Ops that ended in an error or a refusal after an attempt reached the server with its
    # answer lost: they may have landed, and are not in the ledger. Counted apart from drift.
    # Each of their lost attempts may have been applied. An idempotent strategy resolves a
    # refusal after a lost answer (SPEC section 7: never ThresholdExceeded for an add that
    # landed); a non-idempotent one cannot (a lost first attempt took the last unit, its
    # re-send found the floor).
    unsure = ("error",) if target.idempotent else ("error", "rejected")
    maybe = [b.amount * b.lost for b in totals.ops.values() if b.state in unsure and b.lost]
    # Acknowledged ops that met lost answers: a non-idempotent strategy applied each lost
    # attempt once more. Split by sign, because a net drift lets a double +1 and a double -1
    # cancel.
    exposed = [(b.amount, b.lost) for b in totals.ops.values() if b.state == "acked" and b.lost]
    drift = final - expected
    low, high = sum(a for a in maybe if a < 0), sum(a for a in maybe if a > 0)
    beyond = drift - min(max(drift, low), high)
    row: TargetResult = {
        "name": target.name,
        "baseline": target.baseline,
        "counter": target.counter,
        "capabilities": target.capabilities(),
        "counts": {
            "operations": options.total_ops,
            "attempted": outcome.attempted,
            "acknowledged": outcome.acknowledged,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            # add() returned applied=None: the strategy could not tell applied from duplicate.
            "unknown": outcome.unknown,
            "rejected": outcome.rejected,
            "errors": sum(outcome.errors.values()),
            "errors_by_type": dict(sorted(outcome.errors.items())),
            "outcome_unknown": len(maybe),
            "outcome_unknown_range": [low, high],
            "app_retries": outcome.app_retries,
            "duplicate_sends": outcome.duplicate_sends,
            "acknowledged_ids": len(outcome.acked),
        },
        "ledger": {
            "initial": options.initial,
            "expected": expected,
            "final": final,
            "drift": drift,
            # The part of the drift no add of unknown outcome can account for.
            "drift_beyond_unknown": beyond,
            "lost_answer_ops": {
                "increments": sum(1 for a, _ in exposed if a > 0),
                "decrements": sum(1 for a, _ in exposed if a < 0),
                # What the re-sends after lost answers add per side if each applies (for a
                # non-idempotent target; near a bound some are refused).
                "resent_up": sum(a * n for a, n in exposed if a > 0),
                "resent_down": sum(a * n for a, n in exposed if a < 0),
            },
            "floor": floor,
            "ceiling": ceiling,
            "asked_floor": asked_floor,
            "asked_ceiling": asked_ceiling,
            "thresholds_enforced": floor is not None or ceiling is not None,
            "bounds_dropped": (asked_floor is not None and floor is None)
            or (asked_ceiling is not None and ceiling is None),
            "oversold": below,
            "over_ceiling": above,
            "min_seen": min(seen),
            "max_seen": max(seen),
            "observations": len(observed),
            "floor_crossed": asked_floor is not None and min(seen) < asked_floor,
            "ceiling_crossed": asked_ceiling is not None and max(seen) > asked_ceiling,
        },
        "throughput": {
            "seconds": seconds,
            "ops_per_s": outcome.attempted / seconds,
            "applied_per_s": outcome.applied / seconds,
            "rounds": len(rounds),
            "ops_per_s_spread": spread([r["ops_per_s"] for r in rounds]),
        },
        "latency_ms": {
            "p50": m.percentile(latencies_ms, 50),
            "p95": m.percentile(latencies_ms, 95),
            "p99": m.percentile(latencies_ms, 99),
            "mean": m.mean(latencies_ms),
            "max": max(latencies_ms) if latencies_ms else None,
            "p50_spread": spread([r["p50_ms"] for r in rounds if r["p50_ms"] is not None]),
            "p99_spread": spread([r["p99_ms"] for r in rounds if r["p99_ms"] is not None]),
        },
        "rounds": rounds,
        "requests": {
            "http_attempts": totals.attempts,
            "per_op": totals.attempts / per_op,
            "library_calls": outcome.library_requests,
            "sdk_retries": outcome.sdk_retries,
            "answered_by_injected_faults": totals.injected,
            "lost_answers": totals.lost,
            "throttled": totals.throttled,
            "by_operation": dict(sorted(totals.operations.items())),
        },
        "faults_injected": {
            "lost_answers": injected.get("lost_answers", 0),
            # AWS-like: its single-request throttles and its cancelled transactions.
            "throttles": injected.get("throttles", 0) + injected.get("transaction_throttles", 0),
            "conflicts": injected.get("conflicts", 0),
            # The per-item throughput model's throttles (when on).
            "item_throttles": injected.get("item_throttles", 0),
        },
        "units": {
            "estimated": {
                "rru": totals.estimated_rru,
                "wru": totals.estimated_wru,
                "rru_per_op": est_rru,
                "wru_per_op": est_wru,
            },
            "reported": {
                "rru": totals.reported_rru,
                "wru": totals.reported_wru,
                "rru_per_op": rep_rru,
                "wru_per_op": rep_wru,
                "answers_with_capacity": totals.reported_seen,
                # Error answers (failed conditions, cancelled transactions) and lost answers
                # carry no capacity: what the reported figures leave out, priced by the rules.
                "answers_without_capacity": totals.unreported,
                "left_out_rru": totals.unreported_rru,
                "left_out_wru": totals.unreported_wru,
            },
            "by_outcome": books,
        },
        "cost": {
            # Per add() call sent (attempt), the historical figure.
            "usd_per_million_ops": m.cost_per_million(
                est_wru, est_rru, wru_price=pricing.wru, rru_price=pricing.rru
            ),
            "usd_per_million_acked": _cost(
                books.get("acked", {}), int(books.get("acked", {}).get("ops", 0)), pricing
            ),
            "usd_per_million_rejected": _cost(
                books.get("rejected", {}), int(books.get("rejected", {}).get("ops", 0)), pricing
            ),
            "reported_usd_per_million_ops": m.cost_per_million(
                rep_wru, rep_rru, wru_price=pricing.wru, rru_price=pricing.rru
            ),
        },
        "value_read": value_read or {},
    }
    row["verdict"] = verdict_of(row)
    return row


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("dynamodb-counters", "boto3", "botocore", "rich", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def options_dict(options: BenchOptions) -> dict[str, Any]:
    data = asdict(options)
    data["backend"]["endpoint_url"] = _redacted(options.backend.endpoint_url)
    data["faults"]["operations"] = sorted(options.faults.operations)
    data["strategies"] = list(options.strategies)
    data["targets"] = list(options.targets)
    return data


def assemble(
    options: BenchOptions,
    connection: Connection,
    results: list[TargetResult],
    *,
    table: str,
    started_at: datetime,
    seconds: float,
) -> BenchResults:
    """The whole results document."""
    by_name = {r["name"]: r for r in results}
    comparison: Comparison = {}
    if RAW in by_name and "atomic" in by_name:
        raw, atomic = by_name[RAW], by_name["atomic"]
        # Round by round: the two took turns on the same slice of operations and met the same
        # fault decisions (:mod:`.fair`), so each round's ratio compares like with like.
        ratios = [
            _ratio(a["ops_per_s"], r["ops_per_s"])
            for a, r in zip(atomic.get("rounds", []), raw.get("rounds", []), strict=False)
        ]
        overall = _ratio(atomic["throughput"]["ops_per_s"], raw["throughput"]["ops_per_s"])
        comparison["atomic_vs_raw_throughput"] = m.percentile(ratios, 50) if ratios else overall
        comparison["atomic_vs_raw_spread"] = spread(ratios)
        comparison["atomic_vs_raw_rounds"] = len(ratios)
        comparison["same_faults"] = atomic["faults_injected"] == raw["faults_injected"]
        comparison["faults_active"] = options.faults.active
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {
            # Which API the workers used: "sync" (CounterStore on boto3; threads or
            # processes) or "async" (AsyncCounterStore on aiobotocore; asyncio tasks).
            "api": options.api,
            "started_at": started_at.isoformat(),
            "seconds": seconds,
            "seed": options.seed,
            "fault_seed": options.faults.seed,
            "preset": options.preset,
            "options": options_dict(options),
            "backend": {
                "kind": connection.kind,
                "endpoint_url": connection.endpoint_url,
                "region": connection.region,
                "table": table,
            },
            "versions": _versions(),
            "cpus": os.cpu_count(),
            "pricing": {
                "usd_per_million_wru": options.pricing.wru,
                "usd_per_million_rru": options.pricing.rru,
            },
            "rounds": options.rounds,
            "units_note": (
                "estimated units apply DynamoDB's pricing rules to each HTTP attempt that reached "
                "the server (1 KB per write unit, 4 KB per strongly consistent read unit, "
                "transactions x2, a failed condition charged on the larger of the existing and "
                "the would-be item, a replayed ClientRequestToken as a read, a Query on whole "
                "items, a BatchGetItem as a GetItem per key, throttles not charged), with item "
                "sizes followed from the requests and "
                "answers; reported units are what the backend returned as ConsumedCapacity: "
                "error and lost answers carry none (counted as answers without capacity), and "
                "DynamoDB Local under-reports transactions"
            ),
        },
        "strategies": [r for r in results if not r["baseline"]],
        "baseline": by_name.get(RAW),
        "comparison": comparison,
    }


def run_bench(
    options: BenchOptions,
    *,
    advance: ProgressHook | None = None,
    connection: Connection | None = None,
) -> BenchResults:
    """Run a whole bench: start the backend (unless ``connection`` is one already open), run
    every target, return the results dict.

    Raises:
        BenchInterrupted: Ctrl-C; ``results`` holds the targets that finished (partial).
        BenchFailed: an error stopped the run; likewise, and ``cause`` is the error.
    """
    if connection is not None:
        return Bench(options, connection, advance=advance).run()
    with open_backend(options) as opened:
        return Bench(options, opened, advance=advance).run()
