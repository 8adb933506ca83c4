"""What each strategy promises beyond the shared contract (see each strategy's docstring)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from conftest import new_table_name, scan_all
from dynamodb_counters import (
    AddResult,
    CallRecord,
    ContentionError,
    CounterNotFound,
    CounterStore,
    InvalidInput,
    ThresholdExceeded,
)
from test_contract import make, run_threads

# -- occ --------------------------------------------------------------------------------------


def test_occ_retries_collisions_and_never_loses_an_update(store: CounterStore) -> None:
    counter = make(store, "occ", max_attempts=500, retry_delay=0.001)
    first_read = threading.local()
    readers = threading.Barrier(6, timeout=60)
    collisions: list[CallRecord] = []

    def on_call(record: CallRecord) -> None:
        if record.operation == "UpdateItem" and record.error_code:
            collisions.append(record)
        # Every thread's first read waits for the others: all six read the same version, so
        # at least five of their writes collide and must be retried.
        if record.operation == "GetItem" and not getattr(first_read, "done", False):
            first_read.done = True
            readers.wait()

    results: list[AddResult] = []
    lock = threading.Lock()

    def work(_: int) -> None:
        for _ in range(15):
            result = counter.add(1)
            with lock:
                results.append(result)

    store.add_listener(on_call)
    try:
        run_threads(6, work)
    finally:
        store.remove_listener(on_call)
    assert counter.value() == 90
    assert {r.applied for r in results} == {True}
    # Every write returned the value it made: each of 1..90 exactly once, none lost.
    assert sorted(r.value for r in results if r.value is not None) == list(range(1, 91))
    assert len(collisions) >= 5
    assert {c.error_code for c in collisions} == {"ConditionalCheckFailedException"}


def test_occ_contention_error_after_its_bound(store: CounterStore) -> None:
    """8 writers read the same version in each round; with max_attempts=1 only one may win."""
    counter = make(store, "occ", max_attempts=1)
    workers, rounds = 8, 4
    round_start = threading.Barrier(workers, timeout=60)
    after_read = threading.Barrier(workers, timeout=60)

    def on_call(record: CallRecord) -> None:
        if record.operation == "GetItem":
            after_read.wait()

    successes = errors = 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal successes, errors
        for _ in range(rounds):
            # Every write of the last round is done before anyone reads for this one.
            round_start.wait()
            try:
                counter.add(1)
            except ContentionError:
                with lock:
                    errors += 1
            else:
                with lock:
                    successes += 1

    store.add_listener(on_call)
    try:
        run_threads(workers, work)
    finally:
        store.remove_listener(on_call)
    assert (successes, errors) == (rounds, rounds * (workers - 1))
    assert counter.value() == successes


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_occ_retries_a_collision_with_the_item_the_failed_write_returned(
    client: Any, table: str, store: CounterStore, max_attempts: int
) -> None:
    counter = make(store, "occ", initial=10, max_attempts=max_attempts)
    # Another process (a store without the listener) writes between our read and our write.
    other = CounterStore(client, table).counter("c", strategy="occ")
    interfered: list[bool] = []

    def on_call(record: CallRecord) -> None:
        if record.operation == "GetItem" and not interfered:
            interfered.append(True)
            other.add(100)

    store.add_listener(on_call)
    try:
        if max_attempts == 1:
            with pytest.raises(ContentionError):
                counter.add(5)
            assert counter.value() == 110
        else:
            result = counter.add(5)
            # GetItem, the write that collided, the retry built from the returned item.
            assert (result.applied, result.value, result.requests) == (True, 115, 3)
            assert counter.value() == 115
    finally:
        store.remove_listener(on_call)
    assert interfered == [True]


# -- occ_history ------------------------------------------------------------------------------


def test_occ_history_remembers_exactly_its_last_n_ids(store: CounterStore) -> None:
    counter = make(store, "occ_history", history=3)
    for i, request_id in enumerate(["id1", "id2", "id3", "id4"], start=1):
        assert counter.add(1, request_id=request_id).applied is True
        assert counter.value() == i
    # id1 dropped out of the window; id2..id4 are in it.
    for request_id in ["id2", "id3", "id4"]:
        assert counter.add(1, request_id=request_id).applied is False
    assert counter.value() == 4
    # A replay after the window counts again (the documented window), and pushes id2 out.
    assert counter.add(1, request_id="id1").applied is True
    assert counter.value() == 5
    for request_id in ["id3", "id4", "id1"]:
        assert counter.add(1, request_id=request_id).applied is False
    assert counter.add(1, request_id="id2").applied is True
    assert counter.value() == 6


# -- set --------------------------------------------------------------------------------------


def test_set_rotates_and_keeps_working_forever(store: CounterStore) -> None:
    """SPEC section 7: a full generation rotates; the window is the last capacity..2 x capacity."""
    counter = make(store, "set", initial=10, capacity=3, floor=0)
    for request_id in ["a", "b", "c"]:
        assert counter.add(-1, request_id=request_id).applied is True
    assert counter.value() == 7
    # Full: a known id is still a duplicate...
    assert counter.add(-1, request_id="a").applied is False
    # ...and a new id rotates the generations instead of being refused.
    assert counter.add(-1, request_id="d").applied is True
    # a, b, c moved to the previous generation: still duplicates.
    assert [counter.add(-1, request_id=r).applied for r in "abcd"] == [False] * 4
    assert counter.add(-1, request_id="e").applied is True
    assert counter.add(-1, request_id="f").applied is True
    # d, e, f fill the current generation; g rotates again and drops a, b, c.
    assert counter.add(-1, request_id="g").applied is True
    assert counter.value() == 3
    assert [counter.add(-1, request_id=r).applied for r in "defg"] == [False] * 4
    # a left the window (its generation was dropped): a replay counts again.
    assert counter.add(-1, request_id="a").applied is True
    assert counter.value() == 2


def test_set_survives_many_more_adds_than_its_capacity(store: CounterStore) -> None:
    counter = make(store, "set", initial=0)  # the default capacity, 100
    for i in range(250):
        assert counter.add(1, request_id=f"r{i}").applied is True
    assert counter.value() == 250
    # The last 100..200 ids are remembered.
    assert counter.add(1, request_id="r249").applied is False
    assert counter.add(1, request_id="r150").applied is False
    assert counter.value() == 250


def test_set_capacity_that_could_reach_the_item_limit_is_refused(store: CounterStore) -> None:
    with pytest.raises(InvalidInput):
        store.counter("s", strategy="set", capacity=5001)
    store.counter("s", strategy="set", capacity=5000)


def test_set_reports_a_reused_id_with_another_amount_as_a_duplicate(store: CounterStore) -> None:
    counter = make(store, "set", initial=0)
    assert counter.add(5, request_id="a").applied is True
    # Documented: the set holds ids, not amounts, so it cannot tell this from a duplicate.
    assert counter.add(6, request_id="a").applied is False
    assert counter.value() == 5


def test_set_threshold_and_capacity_are_told_apart(store: CounterStore) -> None:
    counter = make(store, "set", initial=1, capacity=2, floor=0)
    with pytest.raises(ThresholdExceeded):
        counter.add(-2, request_id="a")
    assert counter.add(-1, request_id="a").applied is True
    assert counter.value() == 0


# -- marker -----------------------------------------------------------------------------------


def test_marker_items_carry_the_stores_ttl(client: Any, table: str, store: CounterStore) -> None:
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    counter = make(store, "marker", initial=0, marker_ttl=timedelta(hours=2))
    before = int(time.time())
    counter.add(1, request_id="order-1")
    after = int(time.time()) + 1
    markers = [i for i in scan_all(client, table) if i["sk"]["S"].startswith("marker#")]
    assert len(markers) == 1
    marker = markers[0]
    assert marker["pk"] == {"S": "c"}
    assert marker["request_id"] == {"S": "order-1"}
    assert before + 7200 <= int(marker["expires_at"]["N"]) <= after + 7200
    # The counter item itself does not expire.
    counter_item = next(i for i in scan_all(client, table) if i["sk"]["S"] == "#counter")
    assert "expires_at" not in counter_item


def test_marker_ttl_attribute_follows_the_store(client: Any) -> None:
    table = new_table_name()
    store = CounterStore(client, table, ttl_attribute="gone_at")
    store.ensure_table()
    try:
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "gone_at"}
        make(store, "marker").add(1, request_id="r")
        (marker,) = [i for i in scan_all(client, table) if i["sk"]["S"].startswith("marker#")]
        assert "gone_at" in marker and "expires_at" not in marker
    finally:
        client.delete_table(TableName=table)


def test_marker_in_a_partition_key_only_table(client: Any) -> None:
    table = new_table_name("pk-only")
    store = CounterStore(client, table, sort_key=None)
    store.ensure_table()
    try:
        counter = make(store, "marker", name="seats", initial=5, floor=0)
        counter.add(-1, request_id="r")
        assert counter.add(-1, request_id="r").applied is False
        assert counter.value() == 4
        (marker,) = [i for i in scan_all(client, table) if i["pk"]["S"] != "seats"]
        assert marker["pk"]["S"].startswith("seats#marker#")
        assert "expires_at" in marker
    finally:
        client.delete_table(TableName=table)


# -- collection -------------------------------------------------------------------------------


def test_collection_sums_across_query_pages(client: Any, table: str, store: CounterStore) -> None:
    counter = make(store, "collection", initial=7)
    amounts = [(i % 7) - 3 or 4 for i in range(40)]
    for i, amount in enumerate(amounts):
        counter.add(amount, request_id=f"r{i}")
    deltas = [i for i in scan_all(client, table) if i["sk"]["S"].startswith("delta#")]
    assert len(deltas) == 40
    padding = "x" * 30_000
    for item in deltas:
        client.update_item(
            TableName=table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET padding = :p",
            ExpressionAttributeValues={":p": {"S": padding}},
        )
    queries: list[CallRecord] = []
    store.add_listener(lambda r: queries.append(r) if r.operation == "Query" else None)
    assert counter.value() == 7 + sum(amounts)
    # 40 x 30 KB is more than the 1 MB a Query page may read.
    assert len(queries) > 1
    counter.delete()
    assert [i for i in scan_all(client, table) if i["pk"]["S"] == "c"] == []


def test_collection_add_refuses_a_missing_counter(
    client: Any, table: str, store: CounterStore
) -> None:
    """SPEC section 7 (issue case 5): never acknowledge a change that create() would drop."""
    ghost = store.counter("ghost", strategy="collection")
    with pytest.raises(CounterNotFound):
        ghost.add(2, request_id="r")
    assert scan_all(client, table) == []
    ghost.create()
    assert ghost.value() == 0


# -- transaction ------------------------------------------------------------------------------


def test_transaction_maps_long_request_ids_without_truncating(store: CounterStore) -> None:
    counter = make(store, "transaction", initial=0)
    prefix = "order-" + "x" * 40  # longer than ClientRequestToken's 36 characters
    counter.add(1, request_id=prefix + "-1")
    counter.add(1, request_id=prefix + "-1")
    assert counter.value() == 1
    # Same first 36 characters, different id: a different request.
    counter.add(1, request_id=prefix + "-2")
    counter.add(1, request_id="y" * 255)
    counter.add(1, request_id="y" * 255)
    assert counter.value() == 3


def test_transaction_token_is_scoped_to_the_counter(store: CounterStore) -> None:
    # A bare ClientRequestToken shared by two counters would make DynamoDB refuse the second
    # transaction as a mismatch; the token is a digest of table, counter and id instead.
    a = make(store, "transaction", name="a")
    b = make(store, "transaction", name="b")
    a.add(1, request_id="same")
    b.add(1, request_id="same")
    assert (a.value(), b.value()) == (1, 1)
