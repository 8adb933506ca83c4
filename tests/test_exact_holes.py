# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str)
"""Issue 18, items 1-5: exactness holes found by the third review, one failing test each.

1, 2. One handle shared by threads (tasks): an add whose answer was lost for good (botocore's
   re-sends lost too) is retried by the library after other adds through the same handle moved
   what it knows (``set``'s generation, ``collection``'s fold count). The retry must carry what
   its own first send carried: else its condition passes where the evidence of its first write
   is gone, and it counts twice.
3. A re-sent ``create()`` (its first answer lost) after another process added and deleted the
   counter must not bring the deleted incarnation back.
4. A listener that raises never changes what an operation answers.
5. A long-lived store keeps a bounded amount of state, whatever names it is asked about.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook
from conftest import fresh_client, new_table_name, store_on
from dynamodb_counters import CounterNotFound, CounterStore
from dynamodb_counters.local import DynamoDBLocal
from test_lifecycle import Boundary

# -- 1, 2: one handle shared, an add whose answer is lost for good ------------------------------

#: botocore's re-sends of one request with the tests' clients (``max_attempts`` 3: retries).
RESENDS = 3


class LostForGood(SendHook):
    """The add whose body holds ``digest``: its first send is applied and its answer lost
    (``meanwhile`` runs then); botocore's re-sends are lost before they reach the table, so
    botocore gives up and the library's own retry (which goes through) must find out."""

    def __init__(self, client: Any, digest: str, meanwhile: Callable[[], object]) -> None:
        self.client, self.digest, self.meanwhile = client, digest.encode(), meanwhile
        self.sends = 0
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        body = request.body if isinstance(request.body, bytes) else b""
        if self.digest not in body:
            return None
        self.sends += 1
        if self.sends == 1:
            self._http.send(request)  # applied...
            self.meanwhile()  # ...other threads use the handle...
            raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer is lost
        if self.sends <= 1 + RESENDS:  # botocore's re-sends never arrive
            raise ReadTimeoutError(endpoint_url=request.url)
        return None


def in_other_thread(work: Callable[[], object]) -> None:
    """Run ``work`` on another thread (a sync application's other thread) and wait for it."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def digest_of(client: Any, table: str, name: str, request_id: str) -> str:
    handle = CounterStore(client, table).counter(name)
    handle.value()  # learns the incarnation the digest is scoped to
    strategy = handle._strategy
    assert strategy is not None
    return strategy.digest_of(request_id)


def test_set_shared_handle_retry_never_lands_twice(
    ddb: DynamoDBLocal, client: Any, table: str, api: str
) -> None:
    """Item 1: capacity 2; add x lands, its answer is lost for good; meanwhile four adds through
    the same handle rotate twice (x's generation is dropped). The library's retry of x used to
    read the generation from the handle's shared hint, pass its condition and land again
    (value 6); it must re-raise the original error (the outcome cannot be told) with value 5."""
    own = fresh_client(ddb, api)
    shared = store_on(own, table).counter("s", strategy="set", capacity=2)
    shared.create(initial=0)
    shared.value()  # first use: the handle's hint is generation 0
    digest = digest_of(client, table, "s", "x")

    def others() -> None:
        for i in range(4):
            if api == "sync":
                in_other_thread(lambda i=i: shared.add(1, request_id=f"o{i}"))  # type: ignore[misc]
            else:  # another task on the application's loop
                shared.add(1, request_id=f"o{i}")

    with LostForGood(own, digest, others), pytest.raises(ReadTimeoutError):
        shared.add(1, request_id="x")
    assert CounterStore(client, table).counter("s").value() == 5


def test_collection_shared_handle_retry_never_re_puts_a_folded_delta(
    ddb: DynamoDBLocal, client: Any, table: str, api: str
) -> None:
    """Item 2: add x's delta lands, its answer is lost for good; another process compacts
    (folds x); another thread's add on the same handle learns the new fold count. x's retry
    used to check that count, pass, and put x's delta again (value 3); it must re-raise the
    original error, value 2."""
    own = fresh_client(ddb, api)
    shared = store_on(own, table).counter("c", strategy="collection")
    shared.create(initial=0)
    shared.value()
    digest = digest_of(client, table, "c", "x")

    def others() -> None:
        assert CounterStore(client, table).counter("c").compact() == 1  # folds x
        if api == "sync":
            in_other_thread(lambda: shared.add(1, request_id="o"))
        else:
            shared.add(1, request_id="o")

    with LostForGood(own, digest, others), pytest.raises(ReadTimeoutError):
        shared.add(1, request_id="x")
    assert CounterStore(client, table).counter("c").value() == 2


# -- 3: a re-sent create() after an add and a delete by another process ------------------------


@pytest.mark.parametrize(
    ("strategy", "layout"),
    [("marker", "pk"), ("transaction", "sk"), ("transaction", "pk"), ("atomic", "sk")],
)
def test_a_re_sent_create_never_revives_a_deleted_incarnation(
    ddb: DynamoDBLocal, client: Any, strategy: str, layout: str
) -> None:
    """Item 3: create() lands, its answer is lost; another process adds request R and deletes
    the counter; botocore re-sends the create. The re-send used to put the same item (the
    same incarnation) again: the counter was back, and R a duplicate on it. What happened is
    create; add; delete: the counter must stay deleted, and R on a counter created afterwards
    is a new request."""
    sort_key = "sk" if layout == "sk" else None
    table = new_table_name("rc")
    CounterStore(client, table, sort_key=sort_key).ensure_table()
    own = fresh_client(ddb)
    try:
        store_a = CounterStore(own, table, sort_key=sort_key)
        store_b = CounterStore(client, table, sort_key=sort_key)
        request_id = None if strategy == "atomic" else "R"

        def add_and_delete() -> None:
            store_b.counter("c").add(1, request_id=request_id)
            store_b.counter("c").delete()

        with Boundary(
            own,
            operations={"PutItem", "TransactWriteItems"},
            lose=True,
            meanwhile=add_and_delete,
        ):
            store_a.counter("c", strategy=strategy).create(initial=4)
        with pytest.raises(CounterNotFound):
            store_b.counter("c").value()
        # A counter created afterwards owes nothing to the deleted one.
        store_b.counter("c", strategy=strategy).create(initial=4)
        assert store_b.counter("c").add(1, request_id=request_id).applied is not False
        assert store_b.counter("c").value() == 5
    finally:
        client.delete_table(TableName=table)


# -- 4: an observer never changes an outcome ---------------------------------------------------


def test_a_listener_that_raises_never_changes_the_outcome(
    ddb: DynamoDBLocal, client: Any, table: str, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 4: an ``on_call`` listener that raises used to make add() raise after the write
    landed (with ``atomic``, the application's natural retry counted twice). It is logged on
    the ``dynamodb_counters`` logger and ignored."""
    calls: list[str] = []

    def broken(record: Any) -> None:
        calls.append(record.operation)
        raise RuntimeError("listener bug")

    own = fresh_client(ddb, api)
    store = store_on(own, table, on_call=broken)
    counter = store.counter("a", strategy="atomic")
    with caplog.at_level(logging.ERROR, logger="dynamodb_counters"):
        counter.create(initial=1)
        result = counter.add(2)
        assert result.applied is True
        assert result.value == 3
        assert counter.value() == 3
    assert calls == ["TransactWriteItems", "UpdateItem", "GetItem"]
    logged = [r for r in caplog.records if r.name == "dynamodb_counters"]
    assert len(logged) == 3
    assert all("listener" in r.getMessage() and r.exc_info for r in logged)


# -- 5: a long-lived store's memory is bounded --------------------------------------------------


def test_a_store_asked_about_100000_names_keeps_bounded_state(client: Any, table: str) -> None:
    """Item 5: a store used to keep ~580 bytes for every name it was asked about (a first-use
    lock, names that do not exist included, and every counter's definition): a service taking
    counter names from requests grew without bound. The answers are canned (the executor's
    send answers GetItem and BatchGetItem itself: one name in five exists), so 100,000 names
    cost no DynamoDB request; the entries are counted."""
    from dynamodb_counters.store import FIRST_USE_LOCKS, KNOWN_COUNTERS

    store = CounterStore(client, table)
    store.counter("real", strategy="atomic").create(initial=1)
    real = client.get_item(
        TableName=table, Key={"pk": {"S": "real"}, "sk": {"S": "#counter"}}, ConsistentRead=True
    )["Item"]

    def item(name: str) -> dict[str, Any] | None:
        exists = name.endswith(("0", "5"))
        return {**real, "pk": {"S": name}} if exists else None

    sent: list[str] = []

    def canned(step: Any) -> dict[str, Any]:
        sent.append(step.operation)
        if step.operation == "BatchGetItem":
            keys = step.params["RequestItems"][table]["Keys"]
            items = [item(key["pk"]["S"]) for key in keys]
            return {"Responses": {table: [i for i in items if i is not None]}}
        assert step.operation == "GetItem"
        found = item(step.params["Key"]["pk"]["S"])
        return {} if found is None else {"Item": found}

    store._io.send = canned
    # 100,000 names read together (20,000 exist), then 10,000 more through handles' first use.
    names = [f"n{i}" for i in range(100_000)]
    for start in range(0, len(names), 10_000):
        assert len(store.values(names[start : start + 10_000])) == 2_000
    for i in range(100_000, 110_000):
        with contextlib.suppress(CounterNotFound):
            assert store.counter(f"n{i}").value() == 1
    assert len(store._known) == KNOWN_COUNTERS
    assert len(store._first_use_locks) == FIRST_USE_LOCKS
    # The most recently used are still known: value() reads the item, and nothing more.
    sent.clear()
    assert store.counter("n109995").value() == 1
    assert sent == ["GetItem"]
    # The oldest are forgotten: the first use reads the item again.
    sent.clear()
    assert store.counter("n0").value() == 1
    assert sent == ["GetItem", "GetItem"]


def test_a_forgotten_counter_is_read_again_and_still_exact(client: Any, table: str) -> None:
    """Item 5: a handle whose counter the store forgot (more than KNOWN_COUNTERS others used
    since) reads the counter item again on its next operation and goes on as before."""
    from dynamodb_counters import store as store_module

    store = CounterStore(client, table)
    handle = store.counter("kept", strategy="marker", floor=0)
    handle.create(initial=3)
    handle.add(-1, request_id="a")
    store._known.clear()  # as after KNOWN_COUNTERS other names
    assert store_module.KNOWN_COUNTERS >= 1000
    assert handle.add(-1, request_id="a").applied is False
    assert handle.add(-2, request_id="b").applied is True
    assert handle.value() == 0


def test_an_async_store_keeps_bounded_state(async_client: Any) -> None:
    """Item 5, async: an AsyncCounterStore's first-use locks do not grow with the names asked
    about (they used to: one per name), and what it knows is bounded as the sync store's."""
    from dynamodb_counters.aio import AsyncCounterStore
    from dynamodb_counters.store import FIRST_USE_LOCKS, KnownCounters

    store = AsyncCounterStore(async_client, "tbl")
    locks = {id(store._first_use(f"n{i}")) for i in range(10_000)}
    assert len(locks) == len(store._first_use_locks) == FIRST_USE_LOCKS
    assert isinstance(store._known, KnownCounters)
