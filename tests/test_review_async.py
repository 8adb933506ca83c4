# mypy: disable-error-code="arg-type"
# (fake and wrong-kind clients are passed on purpose)
"""Adversarial review of the steps rewrite and the async API (SPEC sections 2, 3, 7, 9).

Tests marked ``xfail(strict=True)`` fail on the code as reviewed (one per confirmed bug); the
others pin down what held. Against DynamoDB Local; each async test runs its own event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from dynamodb_counters import (
    AddResult,
    ContentionError,
    CounterStore,
    InvalidInput,
    TableNotFound,
    ThresholdExceeded,
)
from dynamodb_counters.aio import AsyncCounterStore
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.results import CallRecord

T = TypeVar("T")
RETRIES = {"mode": "standard", "total_max_attempts": 3}


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def stored_value(client: Any, table: str, name: str) -> int | None:
    key = {"pk": {"S": name}, "sk": {"S": "#counter"}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return None if item is None else int(item["quantity"]["N"])


def test_async_store_refuses_a_sync_client(client: Any, table: str) -> None:
    """A boto3 client given to the async store sends every request (blocking the loop), then
    ``await``s the answer dict: the write is applied and reported as a ``TypeError``."""
    try:
        store = AsyncCounterStore(client, table)
    except InvalidInput:
        return  # the fix: refused up front, like a client without update_item
    seen: type[BaseException] | None = None
    try:
        run(lambda: store.counter("c", strategy="atomic").create(initial=5))
    except Exception as exc:  # the type is the finding
        seen = type(exc)
    # Today: (TypeError, 5): the counter was created, and the caller was told it failed.
    assert (seen, stored_value(client, table, "c")) == (InvalidInput, None)


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_sync_store_refuses_an_async_client(ddb: DynamoDBLocal, table: str) -> None:
    """An aiobotocore client given to the sync store: nothing is sent (the coroutine is never
    awaited) and the first operation fails with a bare ``AttributeError``."""
    seen: list[type[BaseException]] = []

    async def main() -> None:
        async with ddb.async_client() as aclient:
            try:
                store = CounterStore(aclient, table)
            except InvalidInput as exc:
                seen.append(type(exc))
                return
            try:
                store.counter("c", strategy="atomic").create()
            except Exception as exc:
                seen.append(type(exc))

    run(main)
    assert seen == [InvalidInput]


def test_64_tasks_on_one_handle_with_lost_answers_never_over_acknowledge(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """64 tasks, one ``marker`` handle, 32 in stock, floor 0, 40% of answers lost below
    aiobotocore's retries: the floor holds, every ``applied=True`` is one unit sold, and an add
    that failed is one that was never acknowledged."""

    async def main() -> list[Any]:
        async with ddb.async_client(retries=RETRIES, max_pool_connections=64) as aclient:
            store = AsyncCounterStore(aclient, table)
            await store.counter("s", strategy="marker", floor=0).create(initial=32)
            handle = store.counter("s")
            with FaultInjector(aclient, FaultPlan(lost_answer_rate=0.4, seed=5)):
                return await asyncio.gather(
                    *(handle.add(-1, request_id=f"r{i}") for i in range(64)),
                    return_exceptions=True,
                )

    outcomes = run(main)
    applied = [o for o in outcomes if isinstance(o, AddResult) and o.applied]
    failed = [type(o) for o in outcomes if isinstance(o, BaseException)]
    value = stored_value(client, table, "s")
    assert value is not None and value >= 0
    # Gave up (never acknowledged): contention, or an outcome that stayed unknown.
    assert set(failed) <= {ThresholdExceeded, ContentionError, ReadTimeoutError, ClientError}
    assert len(applied) <= 32 - value
    if set(failed) == {ThresholdExceeded}:
        assert (value, len(applied)) == (0, 32)


class _CreatingTable:
    """A client whose table stays CREATING (the only request ensure_table sends here)."""

    def update_item(self, **_: Any) -> dict[str, Any]:  # pragma: no cover -- never sent
        raise AssertionError("no write expected")

    def describe_table(self, **_: Any) -> dict[str, Any]:
        return {
            "Table": {
                "TableName": "tbl",
                "TableStatus": "CREATING",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
            }
        }


def test_ensure_table_deadline_survives_a_wall_clock_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first release timed ``wait_seconds`` with ``time.monotonic()``; the steps rewrite
    reads the deadline from :data:`NOW` (``time.time()``). An NTP step of the wall clock back by
    an hour while a table is CREATING turns ``wait_seconds=1`` into an hour of polling."""
    clock = {"wall": 1_000_000.0, "mono": 50.0, "slept": 0.0}

    def sleep(seconds: float) -> None:
        if clock["slept"] == 0:
            clock["wall"] -= 3600.0  # the wall clock is stepped back once, during the wait
        clock["slept"] += seconds
        clock["wall"] += seconds
        clock["mono"] += seconds
        if clock["slept"] > 30:
            raise AssertionError(f"still polling after {clock['slept']:g} s of wait_seconds=1")

    import time

    monkeypatch.setattr(time, "time", lambda: clock["wall"])
    monkeypatch.setattr(time, "monotonic", lambda: clock["mono"])
    monkeypatch.setattr(time, "sleep", sleep)
    store = CounterStore(_CreatingTable(), "tbl")
    with pytest.raises(TableNotFound, match="still CREATING"):
        store.ensure_table(wait_seconds=1.0)
    assert clock["slept"] <= 2.0


def test_concurrent_first_use_reads_the_counter_once(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """SPEC 7: "A handle may read the counter item once on first use; after that, requests per
    add stay at the strategy's minimum." The natural async pattern (``gather`` of 64 adds on a
    fresh handle, the counter created elsewhere) sends 64 GetItems, one per task: each add
    costs twice the strategy's minimum."""
    CounterStore(client, table).counter("s", strategy="atomic").create(initial=0)
    records: list[CallRecord] = []

    async def main() -> int:
        async with ddb.async_client(max_pool_connections=64) as aclient:
            store = AsyncCounterStore(aclient, table, on_call=records.append)
            handle = store.counter("s")
            await asyncio.gather(*(handle.add(1) for _ in range(64)))
            return await handle.value()

    assert run(main) == 64
    reads = [r.operation for r in records if r.operation == "GetItem"]
    assert len(reads) == 1 + 1  # the first use, and value()


def _cancel_after(operation: str, records: list[CallRecord]) -> Callable[[CallRecord], None]:
    """A listener that cancels the sending task once ``operation`` was answered (the request
    applied): the cancellation lands at the task's next await."""

    def listener(record: CallRecord) -> None:
        records.append(record)
        if record.operation == operation and record.error_code is None:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    return listener


def test_an_add_cancelled_after_it_landed_is_counted_once(ddb: DynamoDBLocal, table: str) -> None:
    """The write applied, the task cancelled before it saw the answer; the caller's retry with
    the same request id is a duplicate, and the counter moved once."""
    records: list[CallRecord] = []

    async def main() -> tuple[bool | None, int]:
        async with ddb.async_client() as aclient:
            store = AsyncCounterStore(aclient, table)
            handle = store.counter("c", strategy="marker", floor=0)
            await handle.create(initial=5)
            store.add_listener(_cancel_after("TransactWriteItems", records))
            with pytest.raises(asyncio.CancelledError):
                await asyncio.create_task(handle.add(-2, request_id="o1"))
            store.remove_listener(store._io._listeners[0])
            again = await handle.add(-2, request_id="o1")
            return again.applied, await handle.value()

    assert run(main) == (False, 3)


def test_a_delete_cancelled_mid_sweep_leaves_nothing_that_counts(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """delete() cancelled after its DeleteItem (markers not swept yet): the store forgets the
    counter (the generator's ``finally``); re-created, an old request id is a new request, and
    a second delete() sweeps the orphans."""
    records: list[CallRecord] = []

    async def main() -> tuple[bool | None, int]:
        async with ddb.async_client() as aclient:
            store = AsyncCounterStore(aclient, table)
            handle = store.counter("d", strategy="marker", floor=0)
            await handle.create(initial=10)
            for i in range(3):
                await handle.add(-1, request_id=f"o{i}")
            listener = _cancel_after("DeleteItem", records)
            store.add_listener(listener)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.create_task(handle.delete())
            store.remove_listener(listener)
            assert "d" not in store._known
            await handle.create(initial=10)
            replay = await handle.add(-1, request_id="o0")
            return replay.applied, await handle.value()

    assert run(main) == (True, 9)
    # The sweep's first Query was cut short by the cancellation: nothing after it was sent.
    assert [(r.operation, r.error_code) for r in records] == [
        ("DeleteItem", None),
        ("Query", "CancelledError"),
    ]


def test_compact_never_folds_a_delta_younger_than_older_than(
    store: CounterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta's ``created`` is the :data:`NOW` of its add truncated to whole seconds, and
    ``compact`` folds it when ``created <= now - older_than``: an add at t = x.9 s is folded by
    ``compact(older_than=1)`` at t = x + 1.05 s, 0.15 s after it landed. The docs say a replay
    of a folded id is counted again, so fold only deltas older than any retry you expect: the
    caller's retry 0.5 s after the add, well inside ``older_than``, is counted twice."""
    import time

    base = float(int(time.time()))
    now = {"t": base + 0.9}
    monkeypatch.setattr(time, "time", lambda: now["t"])
    counter = store.counter("c", strategy="collection")
    counter.create(initial=0)
    assert counter.add(5, request_id="order-1").applied is True
    now["t"] = base + 1.05
    folded = counter.compact(older_than=1.0)  # nothing is a second old yet
    now["t"] = base + 1.4
    replay = counter.add(5, request_id="order-1")  # the caller's retry, 0.5 s later
    assert (folded, replay.applied, counter.value()) == (0, False, 5)


_PARITY_OPS: list[Callable[[Any], Any]] = [
    lambda store: store.counter("x").add(1),
    lambda store: store.counter("x").value(),
    lambda store: store.counter("m", strategy="set").add(-1, request_id="r"),
    lambda store: store.counter("m", floor=1).value(),
    lambda store: store.counter("m").compact(),
]


def _seen(exc: Exception | None) -> tuple[str, str]:
    if exc is None:
        return ("ok", "")
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return (type(exc).__name__, code)


def test_sync_and_async_raise_the_same_errors(ddb: DynamoDBLocal, client: Any, table: str) -> None:
    """Parity: a botocore error that is not ours passes through unchanged in both (same class,
    same code), a missing table is ``TableNotFound``, a mismatching handle is
    ``DefinitionMismatch`` before anything is written, a bad value is ``InvalidInput``."""
    key = {"pk": {"S": "x"}, "sk": {"S": "#counter"}}
    client.put_item(TableName=table, Item={**key, "quantity": {"S": "abc"}})
    CounterStore(client, table).counter("m", strategy="marker", floor=0).create(initial=3)

    def sync_outcomes(name: str) -> list[tuple[str, str]]:
        seen = []
        for op in _PARITY_OPS:
            try:
                op(CounterStore(client, name))
                seen.append(_seen(None))
            except Exception as exc:  # the type and code are the point
                seen.append(_seen(exc))
        return seen

    async def async_outcomes(name: str) -> list[tuple[str, str]]:
        seen = []
        async with ddb.async_client() as aclient:
            for op in _PARITY_OPS:
                try:
                    await op(AsyncCounterStore(aclient, name))
                    seen.append(_seen(None))
                except Exception as exc:
                    seen.append(_seen(exc))
        return seen

    expected = [
        ("ClientError", "ValidationException"),
        ("InvalidInput", ""),
        ("DefinitionMismatch", ""),
        ("DefinitionMismatch", ""),
        ("NotSupported", ""),
    ]
    assert sync_outcomes(table) == expected
    assert run(lambda: async_outcomes(table)) == expected
    missing = [("TableNotFound", "")] * len(_PARITY_OPS)
    assert sync_outcomes("no-such-table") == missing
    assert run(lambda: async_outcomes("no-such-table")) == missing
    assert stored_value(client, table, "m") == 3


def test_ensure_table_warns_at_the_callers_line_in_both(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """TTL off on an existing table: one ``TableWarning``, attributed to the caller's file in
    both APIs (``stacklevel`` through the coroutine frames)."""
    import warnings

    from dynamodb_counters.table import TableWarning

    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"},
    )

    async def main() -> list[warnings.WarningMessage]:
        async with ddb.async_client() as aclient:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                await AsyncCounterStore(aclient, table).ensure_table()
            return seen

    with warnings.catch_warnings(record=True) as sync_seen:
        warnings.simplefilter("always")
        CounterStore(client, table).ensure_table()
    async_seen = run(main)
    for seen in (sync_seen, async_seen):
        assert [(w.category, w.filename) for w in seen] == [(TableWarning, __file__)]


def test_a_keyboard_interrupt_is_not_thrown_into_the_steps(store: CounterStore) -> None:
    """A ``KeyboardInterrupt`` during a request (here: from a listener, after the write) ends
    the sync run and closes the steps; it is never taken for a botocore failure, and the
    handle and store go on working."""
    counter = store.counter("k", strategy="marker", floor=0)
    counter.create(initial=5)
    armed = [True]

    def interrupt(record: CallRecord) -> None:
        if armed and record.operation == "TransactWriteItems":
            armed.clear()
            raise KeyboardInterrupt

    store.add_listener(interrupt)
    with pytest.raises(KeyboardInterrupt):
        counter.add(-1, request_id="o1")
    again = counter.add(-1, request_id="o1")
    other = counter.add(-1, request_id="o2")
    assert (again.applied, other.applied, counter.value()) == (False, True, 3)


def test_threads_first_use_of_one_handle_reads_the_counter_once(client: Any, table: str) -> None:
    """The sync twin of the above: 16 threads on a fresh handle, one GetItem between them."""
    import threading

    CounterStore(client, table).counter("t", strategy="atomic").create(initial=0)
    records: list[CallRecord] = []
    handle = CounterStore(client, table, on_call=records.append).counter("t")
    threads = [threading.Thread(target=handle.add, args=(1,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert handle.value() == 16
    assert [r.operation for r in records].count("GetItem") == 1 + 1  # first use, value()
