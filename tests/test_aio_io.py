"""The async executor (``_aio_io``), faults below aiobotocore's retries, the tests' ``SendHook``
on an async client, and the packaging that keeps aiobotocore out of the sync package. Against
DynamoDB Local; each test runs its own event loop (``asyncio.run``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import new_table_name
from dynamodb_counters import CounterStore, TableNotFound
from dynamodb_counters._aio_io import AsyncDynamoIO, run_async
from dynamodb_counters._io import DynamoIO, response_of
from dynamodb_counters._steps import Now, Send, Sleep, run_sync
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.results import CallRecord

T = TypeVar("T")
RETRIES = {"mode": "standard", "total_max_attempts": 3}


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}, "sk": {"S": "#"}}


def add(table: str, name: str, amount: int, **extra: Any) -> dict[str, Any]:
    """UpdateItem params: add ``amount`` to ``quantity`` (the new value returned)."""
    return {
        "TableName": table,
        "Key": key(name),
        "UpdateExpression": "ADD quantity :d",
        "ExpressionAttributeValues": {":d": {"N": str(amount)}},
        "ReturnValues": "UPDATED_NEW",
        **extra,
    }


def once(table: str, name: str, amount: int, nonce: str) -> dict[str, Any]:
    """UpdateItem params that apply once per ``nonce``: a re-send of an applied one fails its
    condition and shows the item (so the caller can tell its own write)."""
    return add(
        table,
        name,
        amount,
        UpdateExpression="ADD quantity :d SET nonce = :n",
        ConditionExpression="attribute_not_exists(nonce) OR nonce <> :n",
        ExpressionAttributeValues={":d": {"N": str(amount)}, ":n": {"S": nonce}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


def quantity(ddb: DynamoDBLocal, table: str, name: str) -> int | None:
    item = ddb.client().get_item(TableName=table, Key=key(name), ConsistentRead=True).get("Item")
    return None if item is None else int(item["quantity"]["N"])


@pytest.fixture
def fixed_table(ddb: DynamoDBLocal, request: pytest.FixtureRequest) -> Generator[str]:
    """A table named after the test: the injector's decisions hash the request body, which
    holds the table name, so a fixed name makes the faults the same on every run."""
    client = ddb.client()
    name = "aio-" + request.node.name.removeprefix("test_")[:40]
    CounterStore(client, name).ensure_table()
    yield name
    client.delete_table(TableName=name)


def test_the_sync_package_never_imports_aiobotocore() -> None:
    """``pip install dynamodb-counters`` works without the ``async`` extra."""
    code = (
        "import sys, dynamodb_counters, dynamodb_counters.cli, dynamodb_counters.faults, "
        "dynamodb_counters.local\n"
        "assert 'aiobotocore' not in sys.modules, 'aiobotocore was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_call_asks_for_capacity_and_tells_listeners(ddb: DynamoDBLocal, table: str) -> None:
    records: list[CallRecord] = []

    async def main() -> dict[str, Any]:
        async with ddb.async_client() as client:
            io = AsyncDynamoIO(client, table)
            io.add_listener(records.append)
            return await io.call("UpdateItem", add(table, "c", 7), counter="c", strategy="x")

    answer = run(main)
    assert answer["Attributes"] == {"quantity": {"N": "7"}}
    assert answer["ConsumedCapacity"]["TableName"] == table
    assert answer["ConsumedCapacity"]["CapacityUnits"] > 0
    [record] = records
    assert (record.operation, record.counter, record.strategy) == ("UpdateItem", "c", "x")
    assert record.consumed_capacity == answer["ConsumedCapacity"]
    assert (record.error_code, record.sdk_retries) == (None, 0)
    assert record.params["ReturnConsumedCapacity"] == "INDEXES"
    assert record.seconds > 0
    assert quantity(ddb, table, "c") == 7


def test_a_missing_table_is_table_not_found(ddb: DynamoDBLocal) -> None:
    records: list[CallRecord] = []
    missing = new_table_name("missing")

    async def main() -> None:
        async with ddb.async_client() as client:
            io = AsyncDynamoIO(client, missing)
            io.add_listener(records.append)
            await io.call("UpdateItem", add(missing, "c", 1))

    with pytest.raises(TableNotFound, match=missing) as caught:
        run(main)
    assert isinstance(caught.value.__cause__, ClientError)
    assert [r.error_code for r in records] == ["ResourceNotFoundException"]


def test_a_lost_answer_is_re_sent_and_applied_once(ddb: DynamoDBLocal, table: str) -> None:
    """Every answer lost: aiobotocore sends three times; the first send applied it, the
    re-sends found their own write (the condition shows the nonce); 5 is counted once."""
    retried: list[BaseException] = []
    injector: list[FaultInjector] = []

    async def main() -> None:
        async with ddb.async_client(retries=RETRIES) as client:
            io = AsyncDynamoIO(client, table)
            await io.call("UpdateItem", add(table, "c", 10))
            with FaultInjector(client, FaultPlan(lost_answer_rate=1.0)) as faults:
                injector.append(faults)
                await io.call("UpdateItem", once(table, "c", 5, "n1"), retried=retried)

    with pytest.raises(ReadTimeoutError):
        run(main)
    assert [type(e) for e in retried] == [ReadTimeoutError] * 3
    assert injector[0].stats["lost_answers"] == 3
    assert quantity(ddb, table, "c") == 15


def test_lost_answers_on_many_tasks_count_each_add_once(
    ddb: DynamoDBLocal, fixed_table: str
) -> None:
    """32 adds in flight on one client, each answer lost at a rate of 40%: each add is applied
    by its first send, answered by a later one or found (its nonce) by the condition."""
    table = fixed_table
    retried: dict[int, list[BaseException]] = {i: [] for i in range(32)}

    async def one(io: AsyncDynamoIO, i: int) -> str:
        try:
            await io.call("UpdateItem", once(table, f"c{i}", i + 1, "n"), retried=retried[i])
        except ClientError as exc:
            assert response_of(exc)["Item"]["nonce"] == {"S": "n"}  # its own earlier send
            return "found"
        except ReadTimeoutError:
            return "lost"
        return "answered"

    async def main() -> tuple[list[str], int]:
        async with ddb.async_client(retries=RETRIES, max_pool_connections=32) as client:
            io = AsyncDynamoIO(client, table)
            with FaultInjector(client, FaultPlan(lost_answer_rate=0.4, seed=11)) as faults:
                outcomes = await asyncio.gather(*(one(io, i) for i in range(32)))
            return outcomes, faults.stats["lost_answers"]

    outcomes, lost = run(main)
    assert [quantity(ddb, table, f"c{i}") for i in range(32)] == [i + 1 for i in range(32)]
    # Each lost answer was seen by the capture (which also keeps a final failure, if any).
    timeouts = [e for r in retried.values() for e in r if isinstance(e, ReadTimeoutError)]
    assert len(timeouts) == lost > 0
    assert "found" in outcomes  # a re-send after a lost answer met its own write


def test_a_throttle_is_retried(ddb: DynamoDBLocal, fixed_table: str) -> None:
    """Throttled attempts send nothing; aiobotocore retries them; the listener's record counts
    the re-sends; an add throttled on every attempt raises and changed nothing."""
    table = fixed_table
    records: list[CallRecord] = []
    errors: dict[str, str] = {}

    async def one(io: AsyncDynamoIO, name: str) -> None:
        try:
            await io.call("UpdateItem", add(table, name, 3), counter=name)
        except ClientError as exc:
            errors[name] = exc.response["Error"]["Code"]

    async def main() -> int:
        async with ddb.async_client(retries=RETRIES) as client:
            io = AsyncDynamoIO(client, table)
            io.add_listener(records.append)
            with FaultInjector(client, FaultPlan(throttle_rate=0.5, seed=3)) as faults:
                await asyncio.gather(*(one(io, f"c{i}") for i in range(16)))
            return faults.stats["throttles"]

    throttles = run(main)
    assert set(errors.values()) <= {"ThrottlingException"}
    for record in records:
        assert record.counter is not None
        expected = None if record.counter in errors else 3
        assert quantity(ddb, table, record.counter) == expected
    answered = [r for r in records if r.error_code is None]
    assert any(r.sdk_retries > 0 for r in answered)  # throttled, retried, then answered
    assert sum(r.sdk_retries for r in records) + len(errors) == throttles


class LoseFirst(SendHook):
    """The first UpdateItem reaches the table, then ``meanwhile`` runs, then its answer is
    lost (the SDK re-sends)."""

    def __init__(self, client: Any, meanwhile: Callable[[], object]) -> None:
        self.client, self.meanwhile = client, meanwhile
        self.fired = False
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != "UpdateItem" or self.fired:
            return None
        self.fired = True
        self._http.send(request)
        self.meanwhile()
        raise ReadTimeoutError(endpoint_url=request.url)


def test_a_send_hook_works_on_an_async_client(ddb: DynamoDBLocal, table: str) -> None:
    """The tests' hooks are written for botocore; on an aiobotocore client they run in a worker
    thread (here ``meanwhile`` sends with the sync client) and their lost answer is re-sent."""
    sync = ddb.client()

    async def main() -> dict[str, Any]:
        async with ddb.async_client(retries=RETRIES) as client:
            io = AsyncDynamoIO(client, table)
            with LoseFirst(client, lambda: sync.update_item(**add(table, "c", 10))):
                return await io.call("UpdateItem", add(table, "c", 1))

    answer = run(main)
    # ADD is not idempotent: the first send, the other writer's 10, then the re-send.
    assert answer["Attributes"] == {"quantity": {"N": "12"}}
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def steps(table: str) -> Generator[Any, Any, tuple[str, dict[str, Any], float]]:
    """A tiny strategy operation: ask the time, sleep, fail a condition (the error is thrown in),
    then write."""
    started = yield Now()
    yield Sleep(0.05)
    try:
        yield Send("UpdateItem", add(table, "none", 1, ConditionExpression="attribute_exists(pk)"))
        raise AssertionError("the condition should have failed")
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
    answer = yield Send("UpdateItem", add(table, "s", 4), counter="s", strategy="toy")
    ended = yield Now()
    return code, answer["Attributes"], ended - started


def test_run_async_drives_steps_as_run_sync_does(ddb: DynamoDBLocal, table: str) -> None:
    records: list[CallRecord] = []

    async def main() -> tuple[str, dict[str, Any], float]:
        async with ddb.async_client() as client:
            io = AsyncDynamoIO(client, table)
            io.add_listener(records.append)
            return await run_async(io, steps(table))

    code, attributes, seconds = run(main)
    assert (code, attributes) == ("ConditionalCheckFailedException", {"quantity": {"N": "4"}})
    assert seconds >= 0.05
    assert [(r.error_code, r.counter) for r in records] == [
        ("ConditionalCheckFailedException", None),
        (None, "s"),
    ]
    sync_io = DynamoIO(ddb.client(), table)
    code, attributes, seconds = run_sync(sync_io, steps(table))
    assert (code, attributes) == ("ConditionalCheckFailedException", {"quantity": {"N": "8"}})
    assert seconds >= 0.05


def test_a_cancelled_run_closes_its_steps(ddb: DynamoDBLocal, table: str) -> None:
    closed: list[bool] = []

    def sleepy() -> Generator[Any, Any, None]:
        try:
            yield Sleep(60)
        finally:
            closed.append(True)

    async def main() -> None:
        async with ddb.async_client() as client:
            task = asyncio.create_task(run_async(AsyncDynamoIO(client, table), sleepy()))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(main)
    assert closed == [True]
