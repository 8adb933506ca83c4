"""collection's compaction: folding deltas keeps the value, ends the window, never folds twice."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conftest import scan_all
from dynamodb_counters import CounterStore, NotSupported
from dynamodb_counters.results import CallRecord


def test_compact_folds_deltas_and_keeps_the_value(store: CounterStore, client: Any) -> None:
    counter = store.counter("folded", strategy="collection")
    counter.create(initial=10)
    for i in range(150):  # more than one transaction's worth
        counter.add(1 if i % 3 else -1, request_id=f"r{i}")
    before = counter.value()
    assert before == 10 + 100 - 50
    assert counter.compact() == 150
    assert counter.value() == before
    items = scan_all(client, store.table_name)
    assert [i["sk"]["S"] for i in items] == ["#counter"]
    # The window has ended for folded ids: a replay counts again (documented).
    assert counter.add(1, request_id="r1").applied is True
    assert counter.value() == before + 1


def test_compact_respects_older_than(store: CounterStore) -> None:
    counter = store.counter("young", strategy="collection")
    counter.create()
    counter.add(5, request_id="a")
    assert counter.compact(older_than=3600) == 0
    assert counter.add(5, request_id="a").applied is False
    assert counter.value() == 5


def test_concurrent_compactions_never_fold_twice(store: CounterStore) -> None:
    counter = store.counter("raced", strategy="collection")
    counter.create()
    for i in range(60):
        counter.add(2, request_id=f"r{i}")
    folded: list[int] = []
    threads = [threading.Thread(target=lambda: folded.append(counter.compact())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value() == 120
    while counter.compact():  # whatever a cancelled batch left behind
        pass
    assert counter.value() == 120


def test_value_reads_less_after_compaction(client: Any, table: str) -> None:
    queries: list[CallRecord] = []
    store = CounterStore(client, table, on_call=queries.append)
    counter = store.counter("cheap", strategy="collection")
    counter.create()
    for i in range(30):
        counter.add(1, request_id=f"r{i}")
    counter.compact()
    queries.clear()
    assert counter.value() == 30
    # One page of the collection, then the counter item: did a compaction run meanwhile?
    assert [q.operation for q in queries] == ["Query", "GetItem"]


def test_compact_on_other_strategies_is_not_supported(store: CounterStore) -> None:
    with pytest.raises(NotSupported):
        store.counter("x", strategy="atomic").compact()


def test_compaction_retries_transaction_conflicts(ddb: Any, table: str) -> None:
    """A fold cancelled by a concurrent transaction (TransactionConflict) applied nothing: it
    is tried again, never surfaced as a bare botocore error."""
    from conftest import fresh_client
    from dynamodb_counters.faults import _error_response

    client = fresh_client(ddb)
    counter = CounterStore(client, table).counter("contended", strategy="collection")
    counter.create()
    for i in range(10):
        counter.add(3, request_id=f"r{i}")
    conflicts: list[str] = []

    def conflict_once(request: Any, **_: Any) -> Any:
        target = str(request.headers.get("X-Amz-Target", b""))
        if not target.endswith("TransactWriteItems'") or conflicts:
            return None
        conflicts.append(target)
        reasons = [{"Code": "TransactionConflict", "Message": "ongoing (test)"}]
        return _error_response(
            request.url,
            "TransactionCanceledException",
            "Transaction cancelled [TransactionConflict] (test)",
            CancellationReasons=reasons + [{"Code": "None"}] * 10,
        )

    client.meta.events.register("before-send.dynamodb", conflict_once)
    try:
        assert counter.compact() == 10
    finally:
        client.meta.events.unregister("before-send.dynamodb", conflict_once)
    assert len(conflicts) == 1
    assert counter.value() == 30
