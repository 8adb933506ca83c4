# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""Adversarial review of SPEC section 7: one failing test per confirmed bug.

Each test forces its interleaving at a DynamoDB call boundary (``Boundary``) or, where the race
is between two threads sharing one handle, with events that hold one thread between its answer
and its next step. Every test fails on the code as reviewed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import fresh_client, scan_all
from dynamodb_counters import ContentionError, CounterNotFound, CounterStore, _steps
from dynamodb_counters.faults import _error_response
from test_contract import make
from test_lifecycle import Boundary


@pytest.fixture
def own_client(ddb: Any) -> Any:
    return fresh_client(ddb)


def side_items(client: Any, table: str, name: str) -> list[dict[str, Any]]:
    return [
        item
        for item in scan_all(client, table)
        if item["pk"]["S"] == name and item["sk"]["S"] != "#counter"
    ]


# -- delete() follows a re-creation and deletes the new counter -------------------------------


@pytest.mark.parametrize("strategy", ["marker", "atomic", "collection"])
def test_delete_with_a_lost_answer_never_deletes_the_counter_created_meanwhile(
    own_client: Any, client: Any, table: str, strategy: str
) -> None:
    """SPEC 7: "delete() never removes anything that belongs to a counter created after it
    began".

    A deletes incarnation X; the DeleteItem lands but its answer is lost. Meanwhile B creates
    the counter again (Y) and adds +5 (acknowledged). botocore re-sends A's DeleteItem, whose
    condition ``_inc = X`` fails and returns Y's item; ``Strategy.delete`` turns that into
    ``Reincarnated`` and ``Counter._run`` re-runs delete() on Y: B's new counter and its
    acknowledged add are gone.
    """
    store_a, store_b = CounterStore(own_client, table), CounterStore(client, table)
    make(store_a, strategy, name="c", initial=1)
    handle = store_a.counter("c")
    handle.value()  # first use: the handle knows X

    def recreate() -> None:
        store_b.counter("c", strategy=strategy).create(initial=0)
        rid = None if strategy == "atomic" else "b5"
        store_b.counter("c").add(5, request_id=rid)

    with Boundary(own_client, operations={"DeleteItem"}, lose=True, meanwhile=recreate):
        handle.delete()
    assert CounterStore(client, table).counter("c").value() == 5


def test_delete_never_deletes_a_counter_created_after_it_began(
    own_client: Any, client: Any, table: str
) -> None:
    """SPEC 7, same promise, no fault at all.

    A's handle knows incarnation X and calls delete(). Before its DeleteItem reaches the
    table, B deletes X and creates Y (+5 acknowledged). A's DeleteItem fails its condition,
    the handle learns Y from the returned item and deletes Y too.
    """
    store_a, store_b = CounterStore(own_client, table), CounterStore(client, table)
    make(store_a, "marker", name="c", initial=1)
    handle = store_a.counter("c")
    handle.value()

    def replace() -> None:
        store_b.counter("c").delete()
        store_b.counter("c", strategy="marker").create(initial=0)
        store_b.counter("c").add(5, request_id="b5")

    # CounterNotFound would be fine: X was gone when A's delete reached the table.
    with (
        Boundary(own_client, operations={"DeleteItem"}, meanwhile=replace),
        contextlib.suppress(CounterNotFound),
    ):
        handle.delete()
    assert CounterStore(client, table).counter("c").value() == 5


# -- delete() whose sweep failed can never be completed -----------------------------------------


class ThrottleAll(SendHook):
    """Answer every request of ``operation`` with a ThrottlingException (never sent)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation = client, operation

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation:
            return None
        return _error_response(request.url, "ThrottlingException", "slow down (test)")


def test_a_delete_whose_sweep_failed_can_be_completed(own_client: Any, table: str) -> None:
    """SPEC 7: in a table with a sort key delete() "leaves nothing of the counter behind".

    delete()'s DeleteItem succeeds, then its sweep's BatchWriteItem is throttled until botocore
    gives up, so delete() raises. The caller retries delete(): the counter item is gone, so
    delete() raises CounterNotFound before sweeping, and the markers stay forever (nothing in
    the public API removes them).
    """
    store = CounterStore(own_client, table)
    counter = make(store, "marker", name="c")
    for i in range(3):
        counter.add(1, request_id=f"r{i}")
    with ThrottleAll(own_client, "BatchWriteItem"), pytest.raises(ClientError):
        counter.delete()
    with contextlib.suppress(CounterNotFound):
        store.counter("c").delete()  # the caller retries
    assert side_items(own_client, table, "c") == []


# -- collection: a compaction between a lost answer and the library's retry ---------------------


class LoseFirstCall(SendHook):
    """Every send of the first ``operation`` call reaches the table but its answer is lost;
    ``meanwhile`` runs after the first send. botocore's re-sends carry the same
    ClientRequestToken (replays, not applied) until it gives up; the library's own retry is a
    new call (a new token) and goes through."""

    def __init__(self, client: Any, operation: str, meanwhile: Any) -> None:
        self.client, self.operation, self.meanwhile = client, operation, meanwhile
        self.token: str | None = None
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation:
            return None
        token = json.loads(request.body).get("ClientRequestToken")
        first = self.token is None
        if first:
            self.token = token
        elif token != self.token:
            return None
        self._http.send(request)
        if first:
            self.meanwhile()
        raise ReadTimeoutError(endpoint_url=request.url)


def test_collection_retry_after_a_compaction_is_not_counted_twice(
    own_client: Any, client: Any, table: str
) -> None:
    """SPEC 3 "acknowledged means counted exactly once, including when ... the library
    retried" / SPEC 7 "windows never guess".

    A's collection add lands (delta written) and every answer botocore waits for is lost
    (its re-sends carry the same auto-filled ClientRequestToken: replays, not applied).
    Meanwhile a compaction (``compact()``, default ``older_than=0``) folds the delta and
    deletes it. botocore gives up; the library's ambiguity retry sends a new
    TransactWriteItems (new token): the ConditionCheck holds, the delta is absent, the Put
    succeeds -> ``applied=True`` and the add is counted twice. The evidence left the window
    while the add was ambiguous (the counter's ``_folds`` moved): it should re-raise the
    original error instead.
    """
    store_a, store_b = CounterStore(own_client, table), CounterStore(client, table)
    make(store_a, "collection", name="c")

    def compact() -> None:
        assert store_b.counter("c").compact() == 1

    with LoseFirstCall(own_client, "TransactWriteItems", compact):
        try:
            result = store_a.counter("c").add(5, request_id="r1")
        except ReadTimeoutError:
            result = None  # outcome unknown: acceptable
    assert store_b.counter("c").value() == 5, result


# -- set: one handle shared by threads --------------------------------------------------------


def test_set_handle_shared_by_threads_never_raises_threshold_exceeded_without_bounds(
    own_client: Any, client: Any, table: str
) -> None:
    """SPEC 2 "thread-safe for one store shared by threads"; SPEC 3 ThresholdExceeded only
    for a bound.

    ``SetCounter`` keeps ``_generation``/``_full`` on the handle's strategy, shared by threads.
    Thread B's add succeeds at generation 0 but B is held between its answer and its
    bookkeeping. Another process fills generation 0 and rotates to 1. Thread A (snapshot
    generation 0) fails its condition, ``_counted`` learns generation 1 -- then B writes its
    stale generation 0 back. A compares the shared state with its snapshot, sees "nothing
    moved", and raises ThresholdExceeded on a counter that has no bounds.
    """
    store = CounterStore(own_client, table)
    other = CounterStore(client, table)
    make(store, "set", name="c", capacity=2)
    handle = store.counter("c")
    handle.value()  # first use
    strategy = handle._current()

    b_answered = threading.Event()
    b_release = threading.Event()
    b_done = threading.Event()
    errors: list[BaseException] = []

    def hold_b(**_: Any) -> None:
        if threading.current_thread().name == "B":
            b_answered.set()
            b_release.wait(30)

    own_client.meta.events.register("after-call.dynamodb.UpdateItem", hold_b)

    def thread_b() -> None:
        try:
            handle.add(1, request_id="b")
        except BaseException as exc:
            errors.append(exc)
        finally:
            b_done.set()

    original = strategy._counted  # type: ignore[attr-defined]

    def counted_then_let_b_finish(old: Any, call: Any) -> Any:
        result = original(old, call)
        b_release.set()
        b_done.wait(30)
        return result

    strategy._counted = counted_then_let_b_finish  # type: ignore[attr-defined]
    b = threading.Thread(target=thread_b, name="B")
    try:
        b.start()
        assert b_answered.wait(30)
        other.counter("c").add(1, request_id="c")  # generation 0 full: [b, c]
        other.counter("c").add(1, request_id="d")  # rotates to generation 1
        handle.add(1, request_id="a")  # thread A: must not raise
    finally:
        b_release.set()
        b.join(30)
        own_client.meta.events.unregister("after-call.dynamodb.UpdateItem", hold_b)
    assert errors == []
    assert other.counter("c").value() == 4


# -- window options of two strategies are silently dropped ------------------------------------


def test_window_options_of_two_strategies_are_refused(store: CounterStore) -> None:
    """SPEC 6 "every public entry point validates ... known strategy and options"; SPEC 7 the
    window options are stored with the counter.

    ``store.counter("x", history=5, capacity=3)`` names two owners; ``Requested`` then falls
    back to ``atomic``, whose ``check_window`` ignores both options: the handle is accepted and
    ``create()`` stores an ``atomic`` counter with neither window option.
    """
    from dynamodb_counters import InvalidInput

    with pytest.raises(InvalidInput, match="different strategies"):
        store.counter("x", history=5, capacity=3)


# -- values() reports an existing counter as missing ------------------------------------------


class Unprocessed(SendHook):
    """Answer every ``operation`` (BatchGetItem or BatchWriteItem) with all of what it asked
    left unprocessed (what a throttled partition gives)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation = client, operation
        self.key = "UnprocessedKeys" if operation == "BatchGetItem" else "UnprocessedItems"

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation:
            return None
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        from dynamodb_counters.faults import _Body

        asked = json.loads(request.body)["RequestItems"]
        answer: dict[str, Any] = {self.key: asked}
        if self.key == "UnprocessedKeys":
            answer["Responses"] = {t: [] for t in asked}
        body = json.dumps(answer).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["Content-Length"] = str(len(body))
        return AWSResponse(request.url, 200, headers, _Body(body))


@pytest.fixture
def short_batch_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 49 tries of a batch's unprocessed keys without their pauses of up to 0.5 s."""
    monkeypatch.setattr(_steps, "BATCH_PAUSE_CAP", 0.001)


@pytest.mark.usefixtures("short_batch_pauses")
def test_values_never_reports_an_existing_counter_as_missing(own_client: Any, table: str) -> None:
    """SPEC 7 ``store.values(names)``: "unprocessed keys retried"; the docstring: "names of
    counters that do not exist are left out".

    Every BatchGetItem answer leaves the key unprocessed; after 49 tries ``_batch_get`` stops
    silently and ``values()`` returns ``{}`` for a counter that exists (value 3), instead of
    raising: the caller cannot tell "missing" from "not read".
    """
    store = CounterStore(own_client, table)
    make(store, "atomic", name="c", initial=3)
    with (
        Unprocessed(own_client, "BatchGetItem"),
        pytest.raises(ContentionError, match="unprocessed"),
    ):
        store.values(["c"])
    assert store.values(["c"]) == {"c": 3}


@pytest.mark.usefixtures("short_batch_pauses")
def test_delete_never_returns_quietly_with_side_items_left(own_client: Any, table: str) -> None:
    """SPEC 7: in a table with a sort key delete() "leaves nothing of the counter behind".

    Every BatchWriteItem of the sweep comes back with its deletes unprocessed; after 49 tries
    ``_batch_delete`` stops silently and delete() returns as if it had succeeded, with the
    markers still in the table (and, see above, no later delete() can remove them).
    """
    store = CounterStore(own_client, table)
    counter = make(store, "marker", name="c")
    counter.add(1, request_id="r1")
    with (
        Unprocessed(own_client, "BatchWriteItem"),
        pytest.raises(ContentionError, match="unprocessed"),
    ):
        counter.delete()
    assert side_items(own_client, table, "c") != []
    with pytest.raises(CounterNotFound):  # the caller retries: the sweep is finished
        store.counter("c").delete()
    assert side_items(own_client, table, "c") == []
