"""The AWS-like engine mode of the fault injector (SPEC section 11, ``dynamodb_counters.aws_like``).

Each answer AWS gives where DynamoDB Local is kinder, forced deterministically: buckets on a
frozen clock (a bucket is full or empty, never "almost"), writes put in flight by hand (or a real
write held in flight, waited for before the second request goes), rolls from the seed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from _api import run
from conftest import fresh_client
from dynamodb_counters import CounterStore
from dynamodb_counters.aws_like import AwsLike, AwsLikeState
from dynamodb_counters.bench.metrics import key_id
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal


class Frozen:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _key(pk: str, sk: str = "#counter") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _engine(
    ddb: DynamoDBLocal, *, attempts: int = 1, api: str = "sync", **options: Any
) -> tuple[Any, FaultInjector, AwsLikeState, Frozen]:
    client = fresh_client(ddb, api, retries={"mode": "standard", "total_max_attempts": attempts})
    clock = Frozen()
    model = AwsLike(**{"in_flight": 0.0, **options})
    state = AwsLikeState(model, clock=clock)
    injector = FaultInjector(client, FaultPlan(aws_like=model, seed=3), aws_state=state)
    return client, injector, state, clock


def _update(pk: str, table: str, sk: str = "#counter") -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": _key(pk, sk),
            "UpdateExpression": "ADD v :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, list[str | None]]:
    answer = exc.value.response
    reasons = [r.get("Code") for r in answer.get("CancellationReasons", [])]
    return str(answer["Error"]["Code"]), reasons


class Attempts:
    """Counts the HTTP attempts of one operation (registered before the injector)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.seen = 0
        self.operation = operation
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._count)

    def _count(self, **_: Any) -> None:
        self.seen += 1


def _item(client: Any, table: str, pk: str, sk: str = "#counter") -> dict[str, Any] | None:
    found = client.get_item(TableName=table, Key=_key(pk, sk), ConsistentRead=True)
    item: dict[str, Any] | None = found.get("Item")
    return item


@pytest.mark.parametrize(
    ("billing", "reason"),
    [("on-demand", "ThrottlingError"), ("provisioned", "ProvisionedThroughputExceeded")],
)
def test_a_throttled_transaction_is_cancelled_not_retried(
    ddb: DynamoDBLocal, client: Any, table: str, billing: str, reason: str
) -> None:
    aws, injector, state, _ = _engine(ddb, attempts=3, write_limit=10, billing=billing)
    attempts = Attempts(aws, "TransactWriteItems")
    state.drain([state.partition(table, _key("hot"))])
    with injector, pytest.raises(ClientError) as exc:
        aws.transact_write_items(TransactItems=[_update("cold", table), _update("hot", table)])
    assert _error(exc) == ("TransactionCanceledException", ["None", reason])
    assert attempts.seen == 1  # botocore does not retry a cancellation
    assert _item(client, table, "cold") is None and _item(client, table, "hot") is None
    assert state.stats["transaction_throttles"] == 1


def test_a_throttled_single_write_is_retried_by_botocore(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    aws, injector, state, _ = _engine(ddb, attempts=3, write_limit=10)
    attempts = Attempts(aws, "UpdateItem")
    state.drain([state.partition(table, _key("hot"))])
    with injector, pytest.raises(ClientError) as exc:
        aws.update_item(**_update("hot", table)["Update"])
    answer: dict[str, Any] = dict(exc.value.response)
    assert answer["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert answer["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
    assert attempts.seen == 3
    assert _item(client, table, "hot") is None


def test_an_item_collection_shares_one_partition(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    # One write unit per second, one second of burst: the first write takes the partition's.
    aws, injector, _state, _ = _engine(ddb, write_limit=1)
    with injector:
        aws.update_item(**_update("shard", table)["Update"])
        with pytest.raises(ClientError) as exc:
            aws.update_item(**_update("shard", table, "marker#1")["Update"])
        aws.update_item(**_update("other", table)["Update"])
    assert exc.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert _item(client, table, "shard", "marker#1") is None
    assert _item(client, table, "other") is not None


def test_keys_hashed_onto_one_partition_share_it(ddb: DynamoDBLocal, table: str) -> None:
    aws, injector, state, _ = _engine(ddb, write_limit=1, partitions=1)
    assert state.partition(table, _key("a")) == state.partition(table, _key("b"))
    with injector:
        aws.update_item(**_update("a", table)["Update"])
        with pytest.raises(ClientError):
            aws.update_item(**_update("b", table)["Update"])


def test_conflicts_with_writes_in_flight(ddb: DynamoDBLocal, client: Any, table: str) -> None:
    aws, injector, state, _ = _engine(ddb)
    hot = key_id(table, _key("hot"))
    with injector:
        with state.lock:
            state.board([hot], "transaction")
        with pytest.raises(ClientError) as exc:
            aws.transact_write_items(TransactItems=[_update("cold", table), _update("hot", table)])
        assert _error(exc) == ("TransactionCanceledException", ["None", "TransactionConflict"])
        with pytest.raises(ClientError) as single:
            aws.update_item(**_update("hot", table)["Update"])
        assert single.value.response["Error"]["Code"] == "TransactionConflictException"
        state.land([hot], "transaction")
        # A single write in flight: another single write goes through, a transactional read
        # of the item is cancelled.
        with state.lock:
            state.board([hot], "single")
        aws.update_item(**_update("hot", table)["Update"])
        with pytest.raises(ClientError) as read:
            aws.transact_get_items(
                TransactItems=[{"Get": {"TableName": table, "Key": _key("hot")}}]
            )
        assert _error(read) == ("TransactionCanceledException", ["TransactionConflict"])
        state.land([hot], "single")
        aws.transact_write_items(TransactItems=[_update("hot", table)])
    assert _item(client, table, "hot") == {**_key("hot"), "v": {"N": "2"}}
    assert _item(client, table, "cold") is None
    assert state.stats["conflicts"] == 3


def test_two_overlapping_transactions_conflict(ddb: DynamoDBLocal, table: str) -> None:
    aws, injector, state, _ = _engine(ddb, in_flight=0.6)
    hot = key_id(table, _key("hot"))
    outcome: list[BaseException | None] = []

    def first() -> None:
        try:
            aws.transact_write_items(TransactItems=[_update("hot", table)])
            outcome.append(None)
        except ClientError as exc:
            outcome.append(exc)

    with injector:
        thread = threading.Thread(target=first)
        thread.start()
        deadline = time.monotonic() + 5
        while not state.conflicts([hot], any_write=True) and time.monotonic() < deadline:
            time.sleep(0.001)
        with pytest.raises(ClientError) as exc:
            aws.transact_write_items(TransactItems=[_update("hot", table)])
        thread.join()
    assert _error(exc) == ("TransactionCanceledException", ["TransactionConflict"])
    assert outcome == [None]
    assert not state.conflicts([hot], any_write=True)  # landed


@pytest.fixture
def named_table(client: Any) -> Iterator[str]:
    """A table of a fixed name: the rolls hash the request body, which names the table."""
    CounterStore(client, "aws-like-batches").ensure_table()
    yield "aws-like-batches"
    client.delete_table(TableName="aws-like-batches")


def test_eventually_consistent_reads_answer_a_recent_version(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    aws, injector, state, clock = _engine(ddb, staleness=1.0, stale_read_rate=1.0)

    def two_versions(pk: str) -> dict[str, Any]:
        """An item seen at v = 1 (a consistent read), then updated to v = 2 unseen."""
        key = _key(pk)
        aws.put_item(TableName=table, Item={**key, "v": {"N": "1"}})
        seen = aws.get_item(TableName=table, Key=key, ConsistentRead=True)
        assert seen["Item"]["v"] == {"N": "1"}
        aws.update_item(**_update(pk, table)["Update"])
        clock.now += 0.5
        return key

    with injector:
        # The only version seen within the second is v = 1: each kind of read answers it.
        key = two_versions("get")
        assert aws.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "1"}
        key = two_versions("batch")
        batch = aws.batch_get_item(RequestItems={table: {"Keys": [key]}})
        assert batch["Responses"][table][0]["v"] == {"N": "1"}
        two_versions("query")
        query = aws.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "query"}},
        )
        assert [item["v"] for item in query["Items"]] == [{"N": "1"}]
        assert state.stats["stale_reads"] == 3
        # Consistent reads are never stale.
        key = two_versions("consistent")
        assert aws.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["v"] == {
            "N": "2"
        }
        both = aws.batch_get_item(RequestItems={table: {"Keys": [key], "ConsistentRead": True}})
        assert both["Responses"][table][0]["v"] == {"N": "2"}
        # Older than the staleness: nothing seen within the second, the answer is current.
        key = two_versions("old")
        clock.now += 0.75
        assert aws.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "2"}
    assert state.stats["stale_reads"] == 3


def test_a_created_item_may_not_be_visible_yet(ddb: DynamoDBLocal, table: str) -> None:
    aws, injector, state, _ = _engine(ddb, stale_read_rate=1.0)
    with injector:
        for pk in ("get", "batch"):
            key = _key(pk)
            assert "Item" not in aws.get_item(TableName=table, Key=key, ConsistentRead=True)
            aws.put_item(TableName=table, Item={**key, "v": {"N": "5"}})
        # Absence is the only version seen of each: the new item is not visible yet.
        assert "Item" not in aws.get_item(TableName=table, Key=_key("get"))
        batch = aws.batch_get_item(RequestItems={table: {"Keys": [_key("batch")]}})
        assert batch["Responses"][table] == []
    assert state.stats["stale_reads"] == 2


def _keys(n: int) -> list[dict[str, Any]]:
    return [_key(f"k{i}") for i in range(n)]


def _batch_get(aws: Any, table: str) -> tuple[list[str], list[str]]:
    answer = aws.batch_get_item(RequestItems={table: {"Keys": _keys(10), "ConsistentRead": True}})
    got = sorted(item["pk"]["S"] for item in answer["Responses"][table])
    left = answer.get("UnprocessedKeys", {}).get(table, {})
    assert left.get("ConsistentRead", True) is True
    return got, sorted(k["pk"]["S"] for k in left.get("Keys", []))


def test_batches_answer_partly_and_reproducibly(
    ddb: DynamoDBLocal, client: Any, named_table: str
) -> None:
    table = named_table
    aws, injector, state, _ = _engine(ddb, unprocessed_rate=0.4)
    requests = [{"PutRequest": {"Item": {**k, "v": {"N": "1"}}}} for k in _keys(10)]
    with injector:
        written = aws.batch_write_item(RequestItems={table: requests})
    left = sorted(r["PutRequest"]["Item"]["pk"]["S"] for r in written["UnprocessedItems"][table])
    stored = sorted(i["pk"]["S"] for k in _keys(10) if (i := _item(client, table, k["pk"]["S"])))
    assert left == ["k0", "k2", "k8", "k9"]  # the seed's choice, the same on every run
    assert stored == sorted(set(f"k{i}" for i in range(10)) - set(left))
    with injector:
        got, unprocessed = _batch_get(aws, table)
    assert unprocessed == ["k1", "k2", "k4", "k5", "k9"]
    assert got == sorted(set(stored) - set(unprocessed))
    assert state.stats["unprocessed"] == 9
    # The same request again (its second time: another roll) and another injector with the
    # same seed and history answer alike.
    again, again_injector, _, _ = _engine(ddb, unprocessed_rate=0.4)
    with again_injector:
        assert _batch_get(again, table) == (got, unprocessed)


def test_a_batch_with_nothing_processed_is_throttled(ddb: DynamoDBLocal, table: str) -> None:
    aws, injector, _state, _ = _engine(ddb, unprocessed_rate=1.0)
    with injector, pytest.raises(ClientError) as exc:
        aws.batch_get_item(RequestItems={table: {"Keys": _keys(2)}})
    assert exc.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


def test_lost_answers_are_sent_and_held_in_flight(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    client_aws = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
    plan = FaultPlan(lost_answer_rate=1.0, aws_like=AwsLike(in_flight=0.0))
    with FaultInjector(client_aws, plan) as injector, pytest.raises(ReadTimeoutError):
        client_aws.update_item(**_update("lost", table)["Update"])
    assert injector.stats["lost_answers"] == 1
    assert _item(client, table, "lost") == {**_key("lost"), "v": {"N": "1"}}


def test_an_async_client_gets_the_same_answers(ddb: DynamoDBLocal, client: Any, table: str) -> None:
    aws, injector, state, _ = _engine(ddb, api="async", write_limit=10, in_flight=0.01)
    state.drain([state.partition(table, _key("hot"))])
    with injector:
        run(aws.update_item(**_update("cold", table)["Update"]))
        with pytest.raises(ClientError) as exc:
            run(aws.transact_write_items(TransactItems=[_update("hot", table)]))
    assert _error(exc) == ("TransactionCanceledException", ["ThrottlingError"])
    assert _item(client, table, "cold") == {**_key("cold"), "v": {"N": "1"}}


@pytest.mark.parametrize(
    "options",
    [
        {"write_limit": 0},
        {"read_limit": -1},
        {"partitions": 0},
        {"partitions": True},
        {"in_flight": -0.1},
        {"staleness": float("inf")},
        {"stale_read_rate": 1.5},
        {"unprocessed_rate": -0.1},
        {"billing": "free"},
    ],
)
def test_options_are_validated(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        AwsLike(**options)


def test_one_budget_model_at_a_time() -> None:
    with pytest.raises(InvalidInput, match="AWS-like"):
        FaultPlan(item_write_limit=5, aws_like=AwsLike())
    assert json.dumps(AwsLike(in_flight=0.25).in_flight) == "0.25"


def test_a_shared_state_is_one_engine_for_several_processes(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """Writes in flight, partition budgets and stats cross processes: a worker process meets
    this process's transaction in flight, and spends the unit this process then lacks."""
    import multiprocessing

    from _aws_child import frozen, send
    from dynamodb_counters.aws_like import shared_state
    from dynamodb_counters.throughput import WRITE

    model = AwsLike(write_limit=1.0, in_flight=0.0)  # one unit a second, on a frozen clock
    hot = key_id(table, _key("hot"))
    update = _update("hot", table)["Update"]
    with (
        shared_state(model, clock=frozen) as shared,
        multiprocessing.get_context("spawn").Pool(1) as pool,
    ):
        state = shared.state
        # This process holds a transaction on "hot" in flight (by hand: it stays until landed).
        assert state.admit([(WRITE, table, hot, 0.0)], transaction=True, write=True) == (
            "admitted",
            [],
        )
        args = (ddb.endpoint_url, model, state)
        transaction = {"TransactItems": [{"Update": update}]}
        assert pool.apply(send, (*args, "transact_write_items", transaction)) == (
            "TransactionCanceledException TransactionConflict"
        )
        state.land([hot], "transaction")
        # The worker's write spends the partition's one unit; this process's then lacks it.
        assert pool.apply(send, (*args, "update_item", update)) == "ok"
        own = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
        with (
            FaultInjector(own, FaultPlan(aws_like=model), aws_state=state) as injector,
            pytest.raises(ClientError) as throttled,
        ):
            own.update_item(**update)
        assert throttled.value.response["Error"]["Code"] == (
            "ProvisionedThroughputExceededException"
        )
        assert state.totals() == {"conflicts": 1, "throttles": 1}
        assert dict(injector.stats) == {"throttles": 1}  # this client's own
    assert _item(client, table, "hot") == {**_key("hot"), "v": {"N": "1"}}


def test_a_shared_state_ends_with_the_process_that_started_it_even_killed() -> None:
    """SIGKILL runs no clean-up: the serving process must notice its parent's end itself."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import time\n"
        "from dynamodb_counters.aws_like import AwsLike, shared_state\n"
        "shared = shared_state(AwsLike())\n"
        "print(shared._server._process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        server = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(server, signal.SIGKILL)
    raise AssertionError("the serving process outlived its killed parent")
