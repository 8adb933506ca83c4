# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str)
"""Holds under review (issue 21, SPEC section 13): the holes an adversarial reading found, each
with the test that failed before its fix. Time is the executors' clock seam; faults are forced
below botocore's retries; no sleeping, nothing left to chance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from _ledger import LoseAnswers
from conftest import new_table_name, store_on
from dynamodb_counters import (
    CounterStore,
    HoldNotFound,
    InvalidInput,
    NotSupported,
    ThresholdExceeded,
    _steps,
)

START = 1_900_000_000
HOLDING = {"marker": {}, "sharded": {"shards": 4}}


class Clock:
    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_steps, "wall_clock", fake)
    return fake


@pytest.fixture(scope="module")
def table(client: Any) -> Iterator[str]:
    name = new_table_name("holds-review")
    CounterStore(client, name).ensure_table()
    yield name
    client.delete_table(TableName=name)


@pytest.fixture
def name() -> str:
    return f"seats-{uuid.uuid4().hex[:8]}"


def _counter(client: Any, table: str, name: str, strategy: str) -> Any:
    """A handle on a store of its own (its own cache of definitions): another process."""
    return store_on(client, table).counter(name, strategy=strategy, floor=0, **HOLDING[strategy])


# -- a handle that knew an earlier incarnation ------------------------------------------------


@pytest.mark.parametrize("strategy", list(HOLDING))
def test_a_handle_of_an_earlier_incarnation_finds_the_holds_of_the_current_one(
    client: Any, table: str, name: str, strategy: str, clock: Clock
) -> None:
    """Holds belong to their incarnation -- the current one, for every handle: a handle that
    learned the counter before another process deleted and created it again (a reset) must
    commit, cancel, list and reclaim the new incarnation's holds, as its adds and reads follow
    the new incarnation. Before the fix it answered HoldNotFound, [] and 0 (its hold keys and
    filters were the old incarnation's), so a scheduled reclaim() never returned anything."""
    first = _counter(client, table, name, strategy)
    first.create(initial=10)
    stale = [_counter(client, table, name, strategy) for _ in range(4)]
    for handle in stale:
        assert handle.value() == 10  # each learns the first incarnation
    first.delete()
    first.create(initial=10)
    for i, ttl in enumerate((60, 60, 60, 10)):
        first.reserve(1 + i, hold_id=f"cart-{i}", ttl=ttl)
    assert first.value() == 0
    committer, canceller, lister, reclaimer = stale
    committer.commit("cart-0")
    canceller.cancel("cart-1")
    assert first.value() == 2
    assert [h.hold_id for h in lister.holds()] == ["cart-3", "cart-2"]
    clock.now += 10  # cart-3 expired
    assert reclaimer.reclaim() == 1
    assert first.value() == 6
    assert [h.hold_id for h in first.holds()] == ["cart-2"]
    with pytest.raises(HoldNotFound):
        committer.commit("cart-1")  # cancelled: still not found, on the current incarnation


def test_unsupported_holds_say_so(client: Any, table: str, name: str) -> None:
    capped = store_on(client, table).counter(name, strategy="marker", floor=0, ceiling=10)
    capped.create(initial=5)
    with pytest.raises(NotSupported, match="holds are not supported on a counter with a ceiling"):
        capped.reserve(1, hold_id="h", ttl=60)


def test_holds_in_a_partition_key_only_table_say_so() -> None:
    """The steps alone (no database): NotSupported before any request, saying why."""
    from dynamodb_counters._keys import Layout
    from dynamodb_counters.strategies.marker import MarkerCounter

    layout = Layout("counters", "pk", None, "quantity", "#counter", "expires_at")
    marker = MarkerCounter(
        layout=layout, counter="seats", floor=0, ceiling=None, options={}, incarnation="inc-1"
    )
    with pytest.raises(NotSupported, match="not supported in a table without a sort key"):
        marker.reserve(1, hold_id="h", ttl=60)


# -- a refusal reclaims once, and tries once more, when the reclaim's answer is lost ---------


class LoseReclaims(LoseAnswers):
    """Loses the answers of the first ``count`` transactions that end holds as expired."""

    def __init__(self, count: int) -> None:
        super().__init__("TransactWriteItems", count)

    def __call__(self, request: Any, **kwargs: Any) -> None:
        if b'"expired"' in bytes(request.body or b""):
            super().__call__(request, **kwargs)


@pytest.mark.parametrize("strategy", list(HOLDING))
@pytest.mark.parametrize("lost", [1, 3])  # botocore's re-send; botocore gives up: the library's
def test_a_refused_add_whose_reclaim_lost_its_answer_is_applied_once(
    client: Any, table: str, name: str, strategy: str, clock: Clock, lost: int
) -> None:
    seats = _counter(client, table, name, strategy)
    seats.create(initial=10)
    seats.reserve(6, hold_id="cart-1", ttl=60)
    seats.reserve(3, hold_id="cart-2", ttl=600)
    clock.now += 60  # cart-1 expired: 1 left, 7 once it is back
    calls: list[str] = []
    watched = store_on(client, table, on_call=lambda record: calls.append(record.operation))
    handle = watched.counter(name)
    handle.value()
    calls.clear()
    hook = LoseReclaims(lost).attach(client)
    try:
        assert handle.add(-5, request_id="order-1").applied is True
    finally:
        hook.detach(client)
    assert hook.lost == lost
    assert seats.value() == 2  # 10 - 3 (cart-2) - 5: cart-1's 6 came back once
    assert [h.hold_id for h in seats.holds()] == ["cart-2"]
    calls.clear()
    with pytest.raises(ThresholdExceeded):
        handle.add(-3, request_id="order-2")  # once more, then refused: nothing to reclaim
    assert calls.count("Query") == (4 if strategy == "sharded" else 1)  # one reclaim, no more
    assert seats.value() == 2
    assert seats.reclaim() == 0


# -- bad input says what was wrong ------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["marker"])
def test_bad_hold_ids_are_named_as_hold_ids(
    client: Any, table: str, name: str, strategy: str
) -> None:
    seats = _counter(client, table, name, strategy)
    seats.create(initial=5)
    for bad, said in ((7, "must be a str, not int"), ("", "must be 1 to 255 characters, got 0")):
        for method, args, kwargs in (
            (seats.reserve, (1,), {"hold_id": bad, "ttl": 60}),
            (seats.commit, (bad,), {}),
            (seats.cancel, (bad,), {}),
        ):
            with pytest.raises(InvalidInput, match=f"^hold_id {said}"):
                method(*args, **kwargs)
    for amount, ttl, said in (
        (0, 60, "amount must not be zero"),
        (-1, 60, "a hold's amount must be positive, got -1"),
        (True, 60, "amount must be an int, not bool"),
        (1, 0, "ttl must be positive"),
        (1, float("inf"), "ttl must be a finite number of seconds"),
        (1, 10**300, "ttl is too long"),
    ):
        with pytest.raises(InvalidInput, match=f"^{said}"):
            seats.reserve(amount, hold_id="h", ttl=ttl)
    assert seats.value() == 5 and seats.holds() == []


# -- a hold on a dry shard, when the room is spread over every shard -------------------------


def test_a_hold_that_needs_room_from_every_shard_of_99_is_taken(
    client: Any, table: str, name: str, clock: Clock
) -> None:
    """A move of room writes the dry shard, the hold and up to 98 donors: 100 items, a
    transaction's most; the hold's ended-record check made it 101 (DynamoDB's ValidationException,
    a bare botocore error) where the same add succeeded. The room now moves first, on its own
    (the sum unchanged), and the hold takes it."""
    seats = store_on(client, table).counter(name, strategy="sharded", floor=0, shards=99)
    seats.create(initial=99)  # one on each shard
    assert seats.reserve(99, hold_id="cart-1", ttl=60).amount == 99
    assert seats.value() == 0
    seats.cancel("cart-1")
    assert seats.value() == 99
    assert seats.add(-99, request_id="order-1").applied is True  # as an add always could
    assert seats.value() == 0
