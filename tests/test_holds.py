# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str)
"""Holds (SPEC section 13): reserve, commit, cancel, expiry and reclaim, exactly once.

Every rule runs on ``marker`` and ``sharded`` (4 shards), through the sync and the async API,
against DynamoDB Local. Time is the executors' clock seam (``_steps.wall_clock``), moved on by
the tests: no sleeping. Lost answers are forced below botocore's retries (``LoseAnswers``:
the request is applied, its answer lost, botocore re-sends).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from _ledger import LoseAnswers
from conftest import fresh_client, new_table_name, scan_all, store_on
from dynamodb_counters import (
    CounterStore,
    Hold,
    HoldExpired,
    HoldNotFound,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    ThresholdExceeded,
    _steps,
)
from dynamodb_counters.local import DynamoDBLocal

START = 1_900_000_000  # the tests' clock starts here (epoch seconds)
HOLDING = {"marker": {}, "sharded": {"shards": 4}}


class Clock:
    """The executors' wall clock, moved on by hand."""

    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_steps, "wall_clock", fake)
    return fake


@pytest.fixture(params=list(HOLDING))
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def clients(ddb: DynamoDBLocal) -> dict[str, Any]:
    """Clients of this module's own (tests hook faults on them), one per API."""
    return {api: fresh_client(ddb, api) for api in ("sync", "async")}


@pytest.fixture(scope="module")
def table(clients: dict[str, Any]) -> Iterator[str]:
    """One table for the module (each test has counters of its own names)."""
    name = new_table_name("holds")
    CounterStore(clients["sync"], name).ensure_table()
    yield name
    clients["sync"].delete_table(TableName=name)


@pytest.fixture
def api() -> str:
    """The sync API; the tests marked ``BOTH_APIS`` run through the async one too (the same
    steps: they check the executor, lost answers and threads on the event loop)."""
    return "sync"


BOTH_APIS = pytest.mark.parametrize("api", ["sync", "async"])


@pytest.fixture
def own(clients: dict[str, Any], api: str) -> Any:
    return clients[api]


@pytest.fixture
def name() -> str:
    return f"seats-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def seats(own: Any, table: str, strategy: str, clock: Clock, name: str) -> Any:
    counter = store_on(own, table).counter(name, strategy=strategy, floor=0, **HOLDING[strategy])
    counter.create(initial=10)
    return counter


def items_of(client: Any, table: str, name: str) -> list[dict[str, Any]]:
    """The items of counter ``name`` (its own, and its shards')."""
    return [
        i
        for i in scan_all(client, table)
        if i["pk"]["S"] == name or i["pk"]["S"].startswith(name + "#shard#")
    ]


@pytest.fixture
def losing(own: Any) -> Iterator[Callable[[str, int], LoseAnswers]]:
    attached: list[LoseAnswers] = []

    def lose(operation: str, count: int = 1) -> LoseAnswers:
        hook = LoseAnswers(operation, count).attach(own)
        attached.append(hook)
        return hook

    yield lose
    for hook in attached:
        hook.detach(own)


# -- reserve ----------------------------------------------------------------------------------


@BOTH_APIS
def test_reserve_takes_the_amount_at_once(seats: Any, clock: Clock) -> None:
    hold = seats.reserve(3, hold_id="cart-1", ttl=timedelta(minutes=10))
    assert hold == Hold(hold_id="cart-1", amount=3, expires_at=START + 600)
    assert seats.value() == 7
    assert seats.holds() == [hold]


def test_a_hold_lives_at_least_its_ttl(seats: Any, clock: Clock) -> None:
    clock.advance(0.99)
    hold = seats.reserve(1, hold_id="cart-1", ttl=1)
    assert hold.expires_at == START + 2  # rounded up: never less than the ttl
    clock.advance(1.0)
    seats.commit("cart-1")  # 1.0 s later: still live
    assert seats.value() == 9


def test_the_checkout_scenario_is_exact(ddb: DynamoDBLocal) -> None:
    """bench --scenario checkout, small: 0 oversold, abandoned holds back once, final value =
    stock - paid, 0 false sold-out (real time: holds of 1 s expire during the run)."""
    from dynamodb_counters.bench.checkout import CheckoutOptions, run_checkout, verdict_ok
    from dynamodb_counters.bench.options import Backend

    options = CheckoutOptions(
        stock=6, carts=16, workers=4, ttl=1, think=0.0, backend=Backend(ddb.endpoint_url)
    )
    results = run_checkout(options)
    assert results["options"]["engine"] == "aws-like"  # the default, as the flash sale's
    assert results["all_exact"] is True
    for row in results["targets"]:
        assert verdict_ok(row), row
        assert row["held"] + row["refused"] == 16
        assert row["final_value"] == 6 - row["committed"]
        assert row["returned"] >= row["abandoned"] > 0


def test_the_checkout_scenario_refuses_options_it_has_no_use_for() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynamodb_counters",
            "bench",
            "--scenario",
            "checkout",
            "--ops",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "--ops does not apply to --scenario checkout" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--plain", "--staleness", "0.5"], "--staleness belongs to the AWS-like mode"),
        (["--plain", "--aws-like"], "--aws-like and --plain exclude each other"),
    ],
)
def test_the_checkout_scenario_is_aws_like_unless_plain(flags: list[str], message: str) -> None:
    """AWS-like by default, as the flash sale: its engine options mean nothing with --plain."""
    done = subprocess.run(
        [sys.executable, "-m", "dynamodb_counters", "bench", "--scenario", "checkout", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_reserve_beyond_the_floor_is_refused_and_holds_nothing(seats: Any) -> None:
    seats.reserve(4, hold_id="cart-1", ttl=60)
    with pytest.raises(ThresholdExceeded):
        seats.reserve(7, hold_id="cart-2", ttl=60)
    assert seats.value() == 6
    assert [h.hold_id for h in seats.holds()] == ["cart-1"]


def test_a_reserve_sent_again_is_one_hold(seats: Any, clock: Clock) -> None:
    first = seats.reserve(3, hold_id="cart-1", ttl=60)
    clock.advance(5)
    assert seats.reserve(3, hold_id="cart-1", ttl=60) == first  # its first expiry, not a new one
    assert seats.value() == 7
    with pytest.raises(RequestIdMismatch):
        seats.reserve(4, hold_id="cart-1", ttl=60)
    assert seats.value() == 7 and seats.holds() == [first]


@BOTH_APIS
def test_a_reserve_whose_answer_was_lost_is_one_hold(
    seats: Any, losing: Callable[[str, int], LoseAnswers]
) -> None:
    hook = losing("TransactWriteItems", 1)
    hold = seats.reserve(3, hold_id="cart-1", ttl=60)
    assert hook.lost == 1
    assert hold == Hold("cart-1", 3, START + 60)
    assert seats.value() == 7 and seats.holds() == [hold]


def test_a_reserve_sent_again_after_its_hold_ended_is_that_hold(seats: Any) -> None:
    hold = seats.reserve(3, hold_id="cart-1", ttl=60)
    seats.commit("cart-1")
    assert seats.reserve(3, hold_id="cart-1", ttl=60) == hold
    assert seats.value() == 7 and seats.holds() == []
    seats.reserve(7, hold_id="cart-2", ttl=60)  # sold out: a re-sent reserve still answers
    assert seats.reserve(3, hold_id="cart-1", ttl=60) == hold
    assert seats.value() == 0


# -- commit and cancel ------------------------------------------------------------------------


def test_commit_keeps_the_amount_and_is_idempotent(seats: Any) -> None:
    seats.reserve(3, hold_id="cart-1", ttl=60)
    seats.commit("cart-1")
    seats.commit("cart-1")
    assert seats.value() == 7 and seats.holds() == []
    with pytest.raises(HoldNotFound):
        seats.cancel("cart-1")  # a cancel after a commit
    assert seats.value() == 7


def test_cancel_gives_the_amount_back_once(seats: Any) -> None:
    seats.reserve(3, hold_id="cart-1", ttl=60)
    seats.cancel("cart-1")
    seats.cancel("cart-1")
    assert seats.value() == 10 and seats.holds() == []
    with pytest.raises(HoldNotFound):
        seats.commit("cart-1")  # a commit after a cancel
    assert seats.value() == 10


def test_an_unknown_hold_is_not_found(seats: Any) -> None:
    with pytest.raises(HoldNotFound):
        seats.commit("nobody")
    with pytest.raises(HoldNotFound):
        seats.cancel("nobody")
    assert seats.value() == 10


@BOTH_APIS
@pytest.mark.parametrize("ending", ["commit", "cancel"])
def test_a_commit_or_cancel_whose_answer_was_lost_ends_once(
    seats: Any, losing: Callable[[str, int], LoseAnswers], ending: str
) -> None:
    seats.reserve(3, hold_id="cart-1", ttl=60)
    hook = losing("TransactWriteItems", 1)
    getattr(seats, ending)("cart-1")
    assert hook.lost == 1
    assert seats.value() == (7 if ending == "commit" else 10)
    assert seats.holds() == []


# -- expiry -----------------------------------------------------------------------------------


def test_an_expired_hold_stays_taken_until_reclaimed(seats: Any, clock: Clock) -> None:
    hold = seats.reserve(3, hold_id="cart-1", ttl=60)
    clock.advance(60)
    assert seats.value() == 7
    assert seats.holds() == [hold]  # expired, listed until reclaimed
    assert seats.value(reclaim=True) == 10
    assert seats.holds() == []
    assert seats.reclaim() == 0


@BOTH_APIS
def test_commit_of_an_expired_hold_raises_and_the_amount_comes_back_once(
    seats: Any, clock: Clock
) -> None:
    seats.reserve(3, hold_id="cart-1", ttl=60)
    clock.advance(59)
    seats.reserve(2, hold_id="cart-2", ttl=60)
    clock.advance(1)  # cart-1 expires now, cart-2 lives
    with pytest.raises(HoldExpired):
        seats.commit("cart-1")
    assert seats.value() == 8
    with pytest.raises(HoldExpired):
        seats.commit("cart-1")
    seats.cancel("cart-1")  # a no-op
    assert seats.reclaim() == 0
    assert seats.value() == 8
    seats.commit("cart-2")
    assert seats.value() == 8


def test_cancel_of_an_expired_hold_gives_it_back_once(seats: Any, clock: Clock) -> None:
    seats.reserve(3, hold_id="cart-1", ttl=60)
    clock.advance(61)
    seats.cancel("cart-1")
    assert seats.value() == 10
    seats.cancel("cart-1")
    assert seats.reclaim() == 0
    with pytest.raises(HoldExpired):
        seats.commit("cart-1")
    assert seats.value() == 10


def test_reclaim_returns_every_expired_hold_and_counts_them(seats: Any, clock: Clock) -> None:
    for i, ttl in enumerate([10, 20, 30, 40]):
        seats.reserve(1 + i, hold_id=f"cart-{i}", ttl=ttl)
    assert seats.value() == 0
    clock.advance(25)
    assert seats.reclaim() == 2
    assert seats.value() == 3
    assert [h.hold_id for h in seats.holds()] == ["cart-2", "cart-3"]
    seats.commit("cart-2")
    clock.advance(100)
    assert seats.reclaim() == 1
    assert seats.value() == 7  # cart-2's 3 stay sold


@BOTH_APIS
@pytest.mark.parametrize("refused", ["add", "reserve"])
def test_a_refusal_reclaims_expired_holds_and_tries_once_more(
    seats: Any, clock: Clock, refused: str
) -> None:
    seats.reserve(6, hold_id="cart-1", ttl=60)
    seats.reserve(3, hold_id="cart-2", ttl=600)
    clock.advance(60)  # cart-1 expired, not reclaimed: 1 left, 7 after reclaiming
    if refused == "add":
        assert seats.add(-5, request_id="order-1").applied is True
    else:
        assert seats.reserve(5, hold_id="cart-3", ttl=60).amount == 5
    assert seats.value() == 2
    held = ["cart-2"] if refused == "add" else ["cart-3", "cart-2"]  # soonest to expire first
    assert [h.hold_id for h in seats.holds()] == held
    with pytest.raises(ThresholdExceeded):  # nothing left to reclaim: refused
        seats.add(-3, request_id="order-2")
    assert seats.value() == 2


def test_a_counter_that_never_held_refuses_without_looking_for_holds(
    own: Any, table: str, strategy: str, name: str
) -> None:
    calls: list[str] = []
    store = store_on(own, table, on_call=lambda record: calls.append(record.operation))
    counter = store.counter(name, strategy=strategy, floor=0, **HOLDING[strategy])
    counter.create(initial=1)
    with pytest.raises(ThresholdExceeded):
        counter.add(-2, request_id="order-1")
    assert "Query" not in calls and calls.count("TransactWriteItems") <= 2  # create, the add
    counter.reserve(1, hold_id="cart-1", ttl=60)
    calls.clear()
    with pytest.raises(ThresholdExceeded):
        counter.add(-1, request_id="order-2")
    assert calls.count("Query") == (4 if strategy == "sharded" else 1)  # one a partition


# -- races: one of commit, cancel and reclaim wins ----------------------------------------------


def _act(
    handle: Any, what: str, hold_id: str, start: threading.Barrier, outcomes: list[str]
) -> None:
    start.wait()
    try:
        if what == "reclaim":
            outcomes.append(f"reclaim:{handle.reclaim()}")
        else:
            getattr(handle, what)(hold_id)
            outcomes.append(what)
    except (HoldExpired, HoldNotFound) as exc:
        outcomes.append(f"{what}:{type(exc).__name__}")


@BOTH_APIS
def test_commit_cancel_and_reclaim_racing_on_one_hold_move_it_once(
    seats: Any, own: Any, table: str, clock: Clock, name: str
) -> None:
    others = [store_on(own, table).counter(name) for _ in range(3)]
    for round_ in range(4):
        seats.reserve(2, hold_id=f"cart-{round_}", ttl=60)
        if round_ % 2:
            clock.advance(60)  # odd rounds: the hold expired
        outcomes: list[str] = []
        start = threading.Barrier(3)

        threads = [
            threading.Thread(target=_act, args=(h, w, f"cart-{round_}", start, outcomes))
            for h, w in zip(others, ["commit", "cancel", "reclaim"], strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seats.holds() == []
        value = seats.value()
        if round_ % 2:  # expired: never committed; the 2 come back exactly once
            assert "commit" not in outcomes and value == 10, outcomes
        else:
            assert "reclaim:1" not in outcomes, outcomes
            committed = "commit" in outcomes
            assert committed != ("cancel" in outcomes), outcomes
            assert value == (8 if committed else 10), outcomes
            if committed:
                seats.add(2, request_id=f"restock-{round_}")


# -- incarnations, layout, strategies ---------------------------------------------------------


def test_delete_removes_holds_and_their_records(
    seats: Any, client: Any, table: str, name: str
) -> None:
    seats.reserve(2, hold_id="cart-1", ttl=60)
    seats.reserve(1, hold_id="cart-2", ttl=60)
    seats.commit("cart-2")
    assert len(items_of(client, table, name)) > 2
    seats.delete()
    assert items_of(client, table, name) == []
    seats.create(initial=5)
    with pytest.raises(HoldNotFound):
        seats.cancel("cart-1")  # a hold of the deleted counter
    assert seats.reserve(2, hold_id="cart-1", ttl=60).amount == 2  # a new hold
    assert seats.value() == 3


def test_where_holds_live_and_what_expires(
    seats: Any, client: Any, table: str, strategy: str, clock: Clock, name: str
) -> None:
    seats.reserve(2, hold_id="cart-1", ttl=60)
    live = [i for i in items_of(client, table, name) if "hold#" in i["sk"]["S"]]
    assert len(live) == 1
    if strategy == "marker":
        assert live[0]["pk"]["S"] == name and live[0]["sk"]["S"].startswith("hold#")
    else:  # beside the markers of one shard
        assert live[0]["pk"]["S"].startswith(name + "#shard#")
        assert live[0]["sk"]["S"].startswith("shard#hold#")
    # No TTL on a live hold: DynamoDB would delete it unreclaimed, its amount lost.
    assert "expires_at" not in live[0]
    clock.advance(10)
    seats.commit("cart-1")
    ended = [i for i in items_of(client, table, name) if "ended#" in i["sk"]["S"]]
    assert [i["_ended"]["S"] for i in ended] == ["committed"]
    assert int(ended[0]["expires_at"]["N"]) == START + 10 + 7 * 24 * 3600  # marker_ttl
    assert not [i for i in items_of(client, table, name) if "hold#" in i["sk"]["S"]]


def test_other_strategies_layouts_and_ceilings_cannot_hold(own: Any, table: str, name: str) -> None:
    store = store_on(own, table)
    atomic = store.counter(name, strategy="atomic", floor=0)
    atomic.create(initial=5)
    for call in (
        lambda: atomic.reserve(1, hold_id="h", ttl=60),
        lambda: atomic.commit("h"),
        lambda: atomic.cancel("h"),
        lambda: atomic.holds(),
        lambda: atomic.reclaim(),
        lambda: atomic.value(reclaim=True),
    ):
        with pytest.raises(NotSupported):
            call()
    capped = store.counter(name + "-capped", strategy="marker", floor=0, ceiling=10)
    capped.create(initial=5)
    with pytest.raises(NotSupported):
        capped.reserve(1, hold_id="h", ttl=60)
    for amount, ttl in ((0, 60), (-1, 60), (1, 0), (True, 60)):
        with pytest.raises(InvalidInput):
            capped.reserve(amount, hold_id="h", ttl=ttl)
    assert capped.value() == 5


def test_a_partition_key_only_table_cannot_hold(client: Any) -> None:
    name = new_table_name("pk-holds")
    store = CounterStore(client, name, sort_key=None)
    store.ensure_table()
    try:
        seats = store.counter("seats", strategy="marker", floor=0)
        seats.create(initial=5)
        with pytest.raises(NotSupported):
            seats.reserve(1, hold_id="h", ttl=60)
        assert seats.add(-5).applied is True  # a refusal there never looks for holds
        with pytest.raises(ThresholdExceeded):
            seats.add(-1)
    finally:
        client.delete_table(TableName=name)


# -- the steps, without a database ------------------------------------------------------------


def test_a_reserve_is_one_transaction_of_three_items_and_a_live_hold_has_no_ttl() -> None:
    """The reserve's steps driven by hand (I/O-free, ``_steps``): what it sends, and its answer
    to a re-send that meets the hold's ended record."""
    from botocore.exceptions import ClientError

    from dynamodb_counters._keys import Layout
    from dynamodb_counters._steps import NOW, Send
    from dynamodb_counters.strategies.marker import MarkerCounter

    layout = Layout("counters", "pk", "sk", "quantity", "#counter", "expires_at")
    marker = MarkerCounter(
        layout=layout, counter="seats", floor=0, ceiling=None, options={}, incarnation="inc-1"
    )
    steps = marker.reserve(2, hold_id="cart-1", ttl=60)
    assert next(steps) is NOW
    request = steps.send(START + 0.5)
    assert isinstance(request, Send) and request.operation == "TransactWriteItems"
    update, put, check = request.params["TransactItems"]
    assert update["Update"]["UpdateExpression"] == "ADD #v :amount SET #held = :held"
    assert update["Update"]["ExpressionAttributeValues"][":amount"] == {"N": "-2"}
    hold = put["Put"]["Item"]
    assert hold["sk"]["S"].startswith("hold#") and hold["_until"] == {"N": str(START + 61)}
    assert "expires_at" not in hold  # DynamoDB's TTL must never delete a live hold
    assert check["ConditionCheck"]["Key"]["sk"]["S"] == "ended#" + hold["sk"]["S"][5:]
    ended = {**check["ConditionCheck"]["Key"], "amount": {"N": "2"}, "_until": {"N": "99"}}
    answer: Any = {
        "Error": {"Code": "TransactionCanceledException", "Message": "canned"},
        "CancellationReasons": [
            {"Code": "None"},
            {"Code": "None"},
            {"Code": "ConditionalCheckFailed", "Item": ended},
        ],
    }
    failed = ClientError(answer, "TransactWriteItems")
    try:
        steps.throw(failed)
    except StopIteration as returned:
        assert returned.value == Hold("cart-1", 2, 99)  # the hold it is a re-send of
    else:
        raise AssertionError("the reserve asked for more")
