# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""SPEC section 7: a counter is a record; its lifecycle and windows never lose an acknowledged add.

One test (or one parametrised test) per case of the issue "Exact beyond our own tests", each
forcing its interleaving or fault at a DynamoDB call boundary: a ``before-send`` hook below
botocore's retries (:class:`Boundary`) or the store's ``on_call`` seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import ALL, IDEMPOTENT, THRESHOLDS, fresh_client, new_table_name, scan_all
from dynamodb_counters import (
    STRATEGIES,
    CallRecord,
    CapacityExceeded,
    CounterDefinition,
    CounterExists,
    CounterNotFound,
    CounterStore,
    DefinitionMismatch,
    InvalidInput,
    NotSupported,
    ThresholdExceeded,
)
from dynamodb_counters.faults import _error_response
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.strategies.base import OpState
from dynamodb_counters.strategies.transaction import TransactionCounter
from test_contract import expected_applied, make, rid

MAX = 10**38 - 1
WRITES = {"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"}


class Boundary(SendHook):
    """A ``before-send`` hook: at the n-th request of ``operations``, do something.

    ``lose``: send the request (the server applies it), call ``meanwhile``, then raise
    ``ReadTimeoutError`` (a lost answer: botocore re-sends). Else call ``meanwhile`` first and let
    the request go. ``throttle``: answer with a synthetic ThrottlingException, not sent.
    """

    def __init__(
        self,
        client: Any,
        *,
        nth: int = 1,
        operations: frozenset[str] | set[str] = frozenset(WRITES),
        lose: bool = False,
        throttle: bool = False,
        meanwhile: Callable[[], object] = lambda: None,
    ) -> None:
        self.client, self.nth, self.operations = client, nth, operations
        self.lose, self.throttle, self.meanwhile = lose, throttle, meanwhile
        self.seen = 0
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) not in self.operations:
            return None
        self.seen += 1
        if self.seen != self.nth:
            return None
        if self.throttle:
            return _error_response(request.url, "ThrottlingException", "slow down (test)")
        if not self.lose:
            self.meanwhile()
            return None
        self._http.send(request)
        self.meanwhile()
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.fixture
def own_client(ddb: DynamoDBLocal) -> Any:
    """A client whose events this test may hook (botocore re-sends up to 2 times)."""
    return fresh_client(ddb)


def two_stores(own_client: Any, client: Any, table: str) -> tuple[CounterStore, CounterStore]:
    """Store A on the hooked client, store B (another process) on the shared one."""
    return CounterStore(own_client, table), CounterStore(client, table)


def plain_counter_item(client: Any, table: str, name: str, **attributes: Any) -> None:
    client.put_item(
        TableName=table, Item={"pk": {"S": name}, "sk": {"S": "#counter"}, **attributes}
    )


# -- 1. the definition lives with the counter -------------------------------------------------


def test_a_bare_handle_uses_the_stored_definition(store: CounterStore, client: Any) -> None:
    counter = store.counter("seats", strategy="marker", floor=0, ceiling=100, marker_ttl=3600)
    counter.create(initial=97)
    other = CounterStore(client, store.table_name).counter("seats")
    assert other.definition == CounterDefinition(
        strategy="marker", floor=0, ceiling=100, options={"marker_ttl": timedelta(hours=1)}
    )
    assert other.strategy == "marker"
    with pytest.raises(ThresholdExceeded):
        other.add(-300, request_id="m1")
    assert other.add(-2, request_id="m1").applied is True
    assert other.add(-2, request_id="m1").applied is False
    assert counter.value() == 95


@pytest.mark.parametrize("stored", ALL)
def test_a_handle_stating_another_strategy_is_refused_before_anything_is_written(
    store: CounterStore, client: Any, stored: str
) -> None:
    bounds = {"floor": 0} if stored in THRESHOLDS else {}
    make(store, stored, name="c", initial=3, **bounds)
    before = scan_all(client, store.table_name)
    for stated in ALL:
        if stated == stored:
            continue
        handle = CounterStore(client, store.table_name).counter("c", strategy=stated)
        request_id = rid(stated, "x")
        for operation in (
            lambda h=handle, r=request_id: h.add(-300, request_id=r),
            handle.value,
            handle.delete,
            handle.inspect,
        ):
            with pytest.raises(DefinitionMismatch):
                operation()
    assert scan_all(client, store.table_name) == before
    assert store.counter("c").value() == 3


@pytest.mark.parametrize(
    ("stated", "what"),
    [
        ({"floor": -5}, "floor"),
        ({"floor": None}, "floor"),
        ({"ceiling": 9}, "ceiling"),
        ({"marker_ttl": 60}, "marker_ttl"),
        ({"history": 3}, "history"),
    ],
)
def test_a_handle_stating_other_bounds_or_window_is_refused(
    store: CounterStore, stated: dict[str, Any], what: str
) -> None:
    make(store, "marker", name="c", initial=3, floor=0)
    with pytest.raises(DefinitionMismatch, match=what):
        store.counter("c", **stated).add(1, request_id="r")
    assert store.counter("c").value() == 3


def test_the_default_handle_cannot_bypass_a_floor(store: CounterStore) -> None:
    """Issue case 1: a default-atomic handle used to add -300 to a marker counter with floor 0."""
    make(store, "marker", name="c", initial=97, floor=0)
    with pytest.raises(ThresholdExceeded):
        store.counter("c").add(-300)
    with pytest.raises(DefinitionMismatch):
        store.counter("c", strategy="atomic").add(-300)
    with pytest.raises(DefinitionMismatch):
        store.counter("c", strategy="collection").add(-300, request_id="m1")
    assert store.counter("c").value() == 97


def test_an_item_without_a_definition_works_with_the_handles_arguments(
    store: CounterStore, client: Any
) -> None:
    plain_counter_item(client, store.table_name, "abc123", quantity={"N": "3"})
    bare = store.counter("abc123")
    assert bare.definition == CounterDefinition("atomic", None, None, {}, stored=False)
    guarded = store.counter("abc123", strategy="marker", floor=0)
    assert guarded.add(-3, request_id="o1").applied is True
    with pytest.raises(ThresholdExceeded):
        guarded.add(-1, request_id="o2")
    assert bare.value() == 0


def test_a_handle_learns_that_the_counter_was_created_again(
    store: CounterStore, client: Any
) -> None:
    """Another process deletes the counter and creates it with another definition: a cached
    handle's next write meets the new incarnation, learns it, and obeys the new definition."""
    mine = store.counter("c")
    make(store, "atomic", name="c", initial=5)
    assert mine.add(1).value == 6
    elsewhere = CounterStore(client, store.table_name)
    elsewhere.counter("c").delete()
    elsewhere.counter("c", strategy="atomic", floor=0).create(initial=1)
    with pytest.raises(ThresholdExceeded):
        mine.add(-2)
    assert mine.definition.floor == 0
    stated = store.counter("c", strategy="atomic", floor=None)
    with pytest.raises(DefinitionMismatch):
        stated.add(1)
    assert mine.value() == 1


def test_the_window_is_the_counters_not_the_handles(store: CounterStore) -> None:
    """Issue case 11: a handle with a smaller history used to trim the window others rely on."""
    make(store, "occ_history", name="c", history=5)
    with pytest.raises(DefinitionMismatch):
        store.counter("c", history=1).add(1, request_id="r0")
    bare = store.counter("c")
    for i in range(5):
        assert bare.add(1, request_id=f"r{i}").applied is True
    assert [bare.add(1, request_id=f"r{i}").applied for i in range(5)] == [False] * 5
    assert bare.value() == 5


# -- 2. an incarnation: delete() and create() -------------------------------------------------


@pytest.mark.parametrize("strategy", ["marker", "collection", "transaction", "sharded"])
def test_delete_never_sweeps_a_counter_created_meanwhile(
    own_client: Any, client: Any, table: str, strategy: str
) -> None:
    """Issue case 2: between A's DeleteItem and A's sweep, B creates the counter and adds +5."""
    store_a, store_b = two_stores(own_client, client, table)
    make(store_b, strategy, name="c", initial=1)
    store_b.counter("c").add(1, request_id="old")
    acknowledged = []

    def create_and_add() -> None:
        store_b.counter("c", strategy=strategy).create(initial=0)
        acknowledged.append(store_b.counter("c").add(5, request_id="b5").applied)

    # The hook fires after A's DeleteItem, before the Query of A's sweep.
    deleted = store_a.counter("c")
    deleted.value()  # first use: the handle knows the counter (no read inside delete())
    with Boundary(own_client, operations={"Query"}, meanwhile=create_and_add):
        deleted.delete()
    assert acknowledged == [expected_applied(strategy, True)]
    fresh = CounterStore(client, table).counter("c")
    assert fresh.value() == 5
    # B's acknowledged add is still counted once: its marker (or delta) survived A's sweep.
    assert fresh.add(5, request_id="b5").applied is expected_applied(strategy, False)
    assert fresh.value() == 5


@pytest.mark.parametrize("sort_key", ["sk", None])
@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_nothing_of_a_deleted_counter_counts_for_the_new_one(
    client: Any, strategy: str, sort_key: str | None
) -> None:
    """Issue cases 9 and 10: markers, tokens, ids of the old counter are not the new one's."""
    if strategy == "collection" and sort_key is None:
        pytest.skip("collection needs a sort key")
    table = new_table_name("inc")
    store = CounterStore(client, table, sort_key=sort_key)
    store.ensure_table()
    try:
        counter = make(store, strategy, name="c", initial=0)
        assert counter.add(5, request_id="order-1").applied is expected_applied(strategy, True)
        counter.delete()
        counter.create(initial=0)
        assert counter.add(5, request_id="order-1").applied is expected_applied(strategy, True)
        assert counter.value() == 5
        # Another amount under the old id is no mismatch either: the old request is gone.
        counter.delete()
        counter.create(initial=0)
        assert counter.add(7, request_id="order-1").applied is expected_applied(strategy, True)
        assert counter.value() == 7
    finally:
        client.delete_table(TableName=table)


def test_delete_leaves_nothing_behind(store: CounterStore, client: Any) -> None:
    for strategy in ("marker", "collection", "sharded"):
        counter = make(store, strategy, name=f"c-{strategy}")
        for i in range(30):
            counter.add(1, request_id=f"r{i}")
        counter.delete()
    assert scan_all(client, store.table_name) == []


def test_delete_of_a_missing_counter_after_a_throttle_says_not_found(
    own_client: Any, table: str
) -> None:
    """Issue case 11: the first DeleteItem throttled, the re-send failed its condition, and
    delete() returned quietly for a counter that never existed."""
    store = CounterStore(own_client, table)
    with (
        Boundary(own_client, operations={"DeleteItem", "GetItem"}, throttle=True),
        pytest.raises(CounterNotFound),
    ):
        store.counter("never").delete()
    counter = make(store, "atomic", name="gone")
    store.counter("gone").delete()
    with (
        Boundary(own_client, operations={"DeleteItem"}, throttle=True),
        pytest.raises(CounterNotFound),
    ):
        counter.delete()


def test_create_then_delete_then_create_again_under_lost_answers(
    own_client: Any, table: str
) -> None:
    store = CounterStore(own_client, table)
    counter = store.counter("c", strategy="marker")
    with Boundary(own_client, operations={"TransactWriteItems"}, lose=True):
        counter.create(initial=4)
    with Boundary(own_client, operations={"DeleteItem"}, lose=True):
        counter.delete()
    with pytest.raises(CounterNotFound):
        counter.value()
    counter.create(initial=2)
    assert counter.value() == 2


# -- 3, 4, 5. collection: never acknowledge what can be lost ----------------------------------


def padded(client: Any, table: str, name: str) -> None:
    """Make every delta of ``name`` 30 KB, so that 40 of them span two Query pages."""
    for item in scan_all(client, table):
        if item["pk"]["S"] == name and item["sk"]["S"].startswith("delta#"):
            client.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET padding = :p",
                ExpressionAttributeValues={":p": {"S": "x" * 30_000}},
            )


def test_value_is_exact_while_a_compaction_runs_between_its_pages(client: Any, table: str) -> None:
    """Issue case 3: a compaction between value()'s Query pages made value() miss deltas."""
    store = CounterStore(client, table)
    counter = make(store, "collection", name="c", initial=0)
    for i in range(40):
        counter.add(1, request_id=f"r{i}")
    padded(client, table, "c")
    pages: list[str] = []

    def compact_after_the_first_page(record: CallRecord) -> None:
        if record.operation == "Query" and not pages:
            pages.append("first")
            assert CounterStore(client, table).counter("c").compact() == 40

    store.add_listener(compact_after_the_first_page)
    assert counter.value() == 40
    assert pages == ["first"]


def test_compaction_never_folds_a_delta_it_did_not_read(client: Any, table: str) -> None:
    """Issue case 4: compaction A read delta d (5); B folded it; d was replayed with 7 (after its
    window); A deleted the new d and folded 5: 10 instead of 12."""
    store = CounterStore(client, table)
    counter = make(store, "collection", name="c", initial=0)
    counter.add(5, request_id="d")
    other = CounterStore(client, table).counter("c")
    raced: list[bool] = []

    def fold_and_replay(record: CallRecord) -> None:
        if record.operation == "Query" and not raced:
            raced.append(True)
            assert other.compact() == 1
            assert other.add(7, request_id="d").applied is True

    store.add_listener(fold_and_replay)
    counter.compact()
    assert raced == [True]
    assert counter.value() == 12
    assert other.compact() <= 1
    assert counter.value() == 12


def test_collection_add_during_delete_is_never_acknowledged_and_lost(
    own_client: Any, client: Any, table: str
) -> None:
    """A handle that knows the counter adds while another process deletes it: the add is
    refused, not acknowledged into a counter that no longer exists."""
    store_a, store_b = two_stores(own_client, client, table)
    counter = make(store_b, "collection", name="c", initial=1)
    handle = store_a.counter("c")
    assert handle.value() == 1
    counter.delete()
    with pytest.raises(CounterNotFound):
        handle.add(5, request_id="late")
    counter.create(initial=0)
    assert handle.value() == 0


# -- 6. windows never guess -------------------------------------------------------------------


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize(
    ("strategy", "window"), [("occ_history", 1), ("occ_history", 2), ("set", 1)]
)
def test_a_lost_answer_whose_evidence_left_the_window_reraises(
    own_client: Any, client: Any, table: str, strategy: str, window: int, bounded: bool
) -> None:
    """Issue case 6: the add lands, its answer is lost, other orders push its id out of the
    window before botocore re-sends: the add raises the original error, never
    ThresholdExceeded and never a second application."""
    option = {"history": window} if strategy == "occ_history" else {"capacity": window}
    bounds = {"floor": 0, "ceiling": 12} if bounded else {}
    store_a, store_b = two_stores(own_client, client, table)
    make(store_b, strategy, name="c", initial=10, **bounds, **option)
    mine = store_a.counter("c")
    mine.value()
    others = store_b.counter("c")
    pushes = 2 * window + 1

    def others_order() -> None:
        for i in range(pushes):
            others.add(1 if i % 2 else -1, request_id=f"other-{i}")

    # +2 lands (12, the ceiling when bounded); the re-send would cross it or count twice.
    with (
        Boundary(own_client, operations={"UpdateItem"}, lose=True, meanwhile=others_order),
        pytest.raises(ReadTimeoutError),
    ):
        mine.add(2, request_id="mine")
    expected = 10 + 2 + sum(1 if i % 2 else -1 for i in range(pushes))
    assert mine.value() == expected


@pytest.mark.parametrize("strategy", ["occ_history", "set"])
def test_a_lost_answer_whose_evidence_is_still_there_is_recognised(
    own_client: Any, client: Any, table: str, strategy: str
) -> None:
    option = {"history": 3} if strategy == "occ_history" else {"capacity": 3}
    store_a, store_b = two_stores(own_client, client, table)
    make(store_b, strategy, name="c", initial=10, **option)
    mine = store_a.counter("c")
    mine.value()
    with Boundary(
        own_client,
        operations={"UpdateItem"},
        lose=True,
        meanwhile=lambda: store_b.counter("c").add(1, request_id="other"),
    ):
        result = mine.add(2, request_id="mine")
    # set: another writer came between, so it cannot tell its own id from a replay's (None).
    assert result.applied is (True if strategy == "occ_history" else None)
    assert mine.value() == 13


# -- 8. items written by others ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", [s for s in THRESHOLDS])
def test_an_item_without_the_value_attribute_is_zero_and_honours_bounds(
    store: CounterStore, client: Any, strategy: str
) -> None:
    """Issue case 8: ceiling=10 refused add(1), floor=-10 refused add(-1) on such an item."""
    plain_counter_item(client, store.table_name, "up", note={"S": "written by others"})
    plain_counter_item(client, store.table_name, "down")
    if strategy == "sharded":
        # Its value lives in shards that only create() writes: a plain item is not one.
        with pytest.raises(NotSupported):
            store.counter("up", strategy=strategy, ceiling=10).add(1, request_id="a")
        return
    up = store.counter("up", strategy=strategy, ceiling=10)
    assert up.add(1, request_id=rid(strategy, "a")).applied is expected_applied(strategy, True)
    down = store.counter("down", strategy=strategy, floor=-10)
    assert down.add(-1, request_id=rid(strategy, "a")).applied is expected_applied(strategy, True)
    assert (up.value(), down.value()) == (1, -1)
    plain_counter_item(client, store.table_name, "tight")
    with pytest.raises(ThresholdExceeded):
        store.counter("tight", strategy=strategy, ceiling=0).add(1, request_id=rid(strategy, "a"))
    with pytest.raises(ThresholdExceeded):
        store.counter("tight", strategy=strategy, floor=0).add(-1, request_id=rid(strategy, "b"))
    assert store.counter("tight", strategy=strategy).value() == 0


# -- 9. partition-key-only tables -------------------------------------------------------------


@pytest.fixture
def pk_only_store(client: Any) -> Iterator[CounterStore]:
    table = new_table_name("pk")
    store = CounterStore(client, table, sort_key=None)
    store.ensure_table()
    yield store
    client.delete_table(TableName=table)


def test_names_that_could_be_a_side_key_are_refused_in_a_pk_only_table(
    pk_only_store: CounterStore, client: Any
) -> None:
    counter = make(pk_only_store, "marker", name="seats", initial=5)
    counter.add(-1, request_id="r")
    (marker,) = [i for i in scan_all(client, pk_only_store.table_name) if i["pk"]["S"] != "seats"]
    with pytest.raises(InvalidInput):
        pk_only_store.counter(marker["pk"]["S"]).value()
    for name in ("a#marker#b", "a#delta#b", "a#shard#1"):
        with pytest.raises(InvalidInput):
            pk_only_store.counter(name)


# -- 10. transaction --------------------------------------------------------------------------


def test_transaction_replay_through_another_handle_is_a_duplicate(
    store: CounterStore, client: Any
) -> None:
    """Issue case 10: the same id and amount through a handle with another floor raised
    RequestIdMismatch; now the floor is the counter's, and a bare handle replays cleanly."""
    make(store, "transaction", name="c", initial=5, floor=0)
    store.counter("c").add(1, request_id="r")
    other = CounterStore(client, store.table_name).counter("c")
    assert other.add(1, request_id="r").applied is None
    assert other.value() == 6
    with pytest.raises(DefinitionMismatch):
        CounterStore(client, store.table_name).counter("c", floor=-5).add(1, request_id="r")


def test_transaction_applied_is_derived_from_consumed_capacity() -> None:
    """``applied`` from the capacity DynamoDB reports (SPEC section 2, per strategy)."""

    def answer(reads: float | None, writes: float | None) -> dict[str, Any]:
        table: dict[str, float] = {}
        if reads is not None:
            table["ReadCapacityUnits"] = reads
        if writes is not None:
            table["WriteCapacityUnits"] = writes
        return {"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 2.0, "Table": table}]}

    def call(ambiguous: bool) -> OpState:
        made = OpState(amount=1, request_id="r", digest="d")
        made.ambiguous = ambiguous
        return made

    applied = TransactionCounter._applied_from_capacity
    assert applied(answer(None, 2.0), call(False)) is True
    assert applied(answer(None, 2.0), call(True)) is True
    assert applied(answer(2.0, None), call(False)) is False  # a replay of another call
    assert applied(answer(2.0, None), call(True)) is None  # may be this call's own lost write
    assert applied({"ConsumedCapacity": [{"CapacityUnits": 2.0}]}, call(False)) is None
    assert applied({}, call(False)) is None


# -- 11. numbers and names --------------------------------------------------------------------


class Sly(int):
    """An int whose text says something else."""

    def __str__(self) -> str:
        return "1"

    __repr__ = __str__


@pytest.mark.parametrize("strategy", THRESHOLDS)
def test_an_int_subclass_is_used_as_its_value(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, name="c", initial=0, ceiling=3)
    with pytest.raises(ThresholdExceeded):
        counter.add(Sly(5), request_id=rid(strategy, "r"))
    counter.add(Sly(2), request_id=rid(strategy, "s"))
    assert counter.value() == 2


@pytest.mark.parametrize("strategy", ALL)
def test_beyond_38_digits_is_a_library_error(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, name="big", initial=MAX - 1)
    if strategy == "collection":
        # Each delta is its own number; the sum is only a number when folded.
        counter.add(5, request_id="r")
        assert counter.value() == MAX + 4
        with pytest.raises(ThresholdExceeded):
            counter.compact()
        assert counter.value() == MAX + 4
        return
    with pytest.raises(ThresholdExceeded):
        counter.add(5, request_id=rid(strategy, "r"))
    if strategy in THRESHOLDS:
        # A shifted bound beyond 38 digits: floor - amount.
        low = make(store, strategy, name="low", initial=MAX, floor=MAX - 1)
        with pytest.raises(ThresholdExceeded):
            low.add(-MAX, request_id=rid(strategy, "r"))
        assert low.value() == MAX
    assert counter.value() == MAX - 1


@pytest.mark.parametrize(
    "attribute",
    ["_created_by", "_ids", "_hist", "_tag", "_def", "_inc", "created", "amount", "call"],
)
def test_attributes_the_library_writes_cannot_be_the_users(client: Any, attribute: str) -> None:
    with pytest.raises(InvalidInput):
        CounterStore(client, "tbl", value_attribute=attribute)
    with pytest.raises(InvalidInput):
        CounterStore(client, "tbl", ttl_attribute=attribute)


def test_the_ttl_attribute_cannot_be_the_value_or_a_key(client: Any) -> None:
    with pytest.raises(InvalidInput):
        CounterStore(client, "tbl", value_attribute="expires_at")
    with pytest.raises(InvalidInput):
        CounterStore(client, "tbl", ttl_attribute="pk")


# -- 13. an engine that leaves out the item on a failed condition -----------------------------


def strip_items(parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
    """``after-call`` hook: behave like an engine without ReturnValuesOnConditionCheckFailure."""
    if http_response.status_code < 300:
        return
    parsed.pop("Item", None)
    for reason in parsed.get("CancellationReasons") or []:
        reason.pop("Item", None)


@pytest.mark.parametrize("strategy", ALL)
def test_an_engine_that_omits_the_failed_item_gets_correct_answers(
    own_client: Any, table: str, strategy: str
) -> None:
    """Issue case 13: on dynalite a set replay raised CounterNotFound for a counter that exists."""
    store = CounterStore(own_client, table)
    bounds = {"ceiling": 3} if strategy in THRESHOLDS else {}
    counter = make(store, strategy, name="c", initial=0, **bounds)
    counter.add(1, request_id=rid(strategy, "r"))
    own_client.meta.events.register("after-call.dynamodb", strip_items)
    try:
        if STRATEGIES[strategy].idempotent:
            assert counter.add(1, request_id="r").applied is expected_applied(strategy, False)
        if bounds:
            with pytest.raises(ThresholdExceeded):
                counter.add(5, request_id=rid(strategy, "big"))
        with pytest.raises(CounterExists):
            store.counter("c", strategy=strategy).create()
        with pytest.raises(CounterNotFound):
            store.counter("nobody", strategy=strategy).add(1, request_id=rid(strategy, "x"))
    finally:
        own_client.meta.events.unregister("after-call.dynamodb", strip_items)
    assert counter.value() == 1


# -- tests that a plausible bug in the retry policy would fail (mutation review) ---------------


@pytest.mark.parametrize("strategy", ["atomic", "occ"])
def test_non_idempotent_strategies_never_resend_an_ambiguous_add(
    ddb: DynamoDBLocal, table: str, strategy: str
) -> None:
    """The library must re-raise at once: a re-send would count twice."""
    client = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
    sent: list[str] = []
    store = CounterStore(client, table, on_call=lambda r: sent.append(r.operation))
    counter = make(store, strategy, name="c", initial=10)
    sent.clear()
    with (
        Boundary(client, operations={"UpdateItem"}, lose=True),
        pytest.raises(ReadTimeoutError),
    ):
        counter.add(1)
    assert [op for op in sent if op == "UpdateItem"] == ["UpdateItem"]
    assert counter.value() == 11


@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_idempotent_strategies_resolve_a_lost_answer_themselves(
    ddb: DynamoDBLocal, table: str, strategy: str
) -> None:
    """botocore's retries off: the library itself must treat the timeout as ambiguous, find
    out whether its write landed, and count it once."""
    client = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
    counter = make(CounterStore(client, table), strategy, name="c", initial=10)
    with Boundary(client, lose=True):
        result = counter.add(3, request_id="r")
    assert result.applied is expected_applied(strategy, True)
    assert result.sdk_retries == 0
    assert result.requests >= 2  # the library asked again itself
    assert counter.value() == 13


def test_occ_recognises_its_own_write_after_a_botocore_resend(own_client: Any, table: str) -> None:
    """occ is not idempotent, but a botocore re-send of its write finds its own tag: counted
    once, applied=True, with the new value."""
    counter = make(CounterStore(own_client, table), "occ", name="c", initial=10)
    with Boundary(own_client, operations={"UpdateItem"}, lose=True):
        result = counter.add(3)
    assert (result.applied, result.value, result.sdk_retries) == (True, 13, 1)
    assert counter.value() == 13


def test_a_throttled_resend_is_not_ambiguous(own_client: Any, table: str) -> None:
    """botocore re-sent after a throttle (never applied): a duplicate is plainly a duplicate."""
    counter = make(CounterStore(own_client, table), "set", name="c", initial=0)
    counter.add(1, request_id="r")
    with Boundary(own_client, operations={"UpdateItem"}, throttle=True):
        assert counter.add(1, request_id="r").applied is False


# -- listing and reading many -----------------------------------------------------------------


def test_counters_lists_counters_only(store: CounterStore, client: Any) -> None:
    for i, strategy in enumerate(ALL):
        counter = make(store, strategy, name=f"n{i}", initial=i)
        counter.add(1, request_id=rid(strategy, "r"))
    plain_counter_item(client, store.table_name, "theirs", quantity={"N": "4"})
    made = [f"n{i}" for i in range(len(ALL))]
    # The listing index holds what create() made; an item written by other code is listed by
    # a scan of the table (issue 18, item 12).
    assert sorted(store.counters()) == made
    assert sorted(store.counters(scan=True)) == sorted([*made, "theirs"])


def test_counters_pages_through_a_big_table(store: CounterStore, client: Any) -> None:
    for i in range(30):
        plain_counter_item(client, store.table_name, f"big{i}", pad={"S": "x" * 40_000})
    calls: list[CallRecord] = []
    store.add_listener(calls.append)
    assert sorted(store.counters(scan=True)) == sorted(f"big{i}" for i in range(30))
    assert [c.operation for c in calls].count("Scan") > 1  # 30 x 40 KB > one 1 MB page


# -- issue 18, item 12: costs that grow with history ---------------------------------------------


@pytest.mark.parametrize("sort_key", ["sk", None], ids=["pk+sk", "pk-only"])
def test_counters_reads_counter_items_only(client: Any, sort_key: str | None) -> None:
    """It scanned the whole table: with 20,000 markers, 20,004 items read for 3 names."""
    table = new_table_name("listing")
    store = CounterStore(client, table, sort_key=sort_key)
    assert store.ensure_table().counter_index is True
    try:
        seats = make(store, "marker", name="seats", initial=100)
        for i in range(40):
            seats.add(-1, request_id=f"order-{i}")
        make(store, "sharded", name="hot", initial=8).add(-1, request_id="h")
        make(store, "atomic", name="plain", initial=1)
        assert len(scan_all(client, table)) == 3 + 40 + 8 + 1  # counters, markers, shards...
        calls: list[CallRecord] = []
        reader = CounterStore(client, table, sort_key=sort_key, on_call=calls.append)
        assert sorted(reader.counters()) == ["hot", "plain", "seats"]
        (scan,) = calls
        assert scan.params["IndexName"] == "counter-list"
        # Read units: one page of the index's entries (keys only), 0.5 per 4 KB.
        assert scan.consumed_capacity["CapacityUnits"] == 0.5
    finally:
        client.delete_table(TableName=table)


def test_counters_falls_back_to_a_scan_on_a_table_without_the_index(
    client: Any, foreign_table: str
) -> None:
    """A table made before the index (or by other code) is scanned, as stated; once."""
    store = CounterStore(client, foreign_table)
    assert store.ensure_table().counter_index is False
    make(store, "marker", name="seats", initial=3).add(-1, request_id="r")
    calls: list[CallRecord] = []
    store.add_listener(calls.append)
    assert list(store.counters()) == ["seats"]
    assert [(c.operation, c.params.get("IndexName"), c.error_code) for c in calls] == [
        ("Scan", "counter-list", "ValidationException"),
        ("Scan", None, None),
    ]
    calls.clear()
    assert list(store.counters()) == ["seats"]
    assert [(c.operation, c.params.get("IndexName")) for c in calls] == [("Scan", None)]


@pytest.fixture
def foreign_table(client: Any) -> Iterator[str]:
    """A pk+sk table created without the listing index (an earlier release's, or by hand)."""
    name = new_table_name("no-index")
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    yield name
    client.delete_table(TableName=name)


MARKERS = 23


def _with_markers(store: CounterStore, strategy: str) -> Any:
    counter = make(store, strategy, name="busy", initial=100)
    for i in range(MARKERS):
        counter.add(-1, request_id=f"order-{i}")
    return counter


@pytest.mark.parametrize("strategy", ["marker", "collection", "sharded:2"])
def test_delete_streams_its_items_in_pages(
    store: CounterStore, client: Any, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """delete() loaded every marker or delta into memory first (tens of GB for a busy
    marker counter): now a page at a time, each page deleted before the next is read."""
    from dynamodb_counters.strategies import base

    monkeypatch.setattr(base, "PAGE_ITEMS", 5)
    _with_markers(store, strategy)
    calls: list[CallRecord] = []
    CounterStore(client, store.table_name, on_call=calls.append).counter("busy").delete()
    queries = [c for c in calls if c.operation == "Query"]
    assert {c.params["Limit"] for c in queries} == {5}
    assert len(queries) >= MARKERS // 5
    # A page's deletes are sent before the next page is read: deleting began before reading
    # ended (it used to read everything, then delete).
    sequence = [c.operation for c in calls if c.operation in ("Query", "BatchWriteItem")]
    assert sequence.count("BatchWriteItem") >= MARKERS // 5
    last_read = len(sequence) - 1 - sequence[::-1].index("Query")
    assert sequence.index("BatchWriteItem") < last_read
    assert scan_all(client, store.table_name) == []


def test_an_interrupted_delete_is_finished_by_the_next(
    own_client: Any, client: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynamodb_counters.strategies import base

    monkeypatch.setattr(base, "PAGE_ITEMS", 5)
    _with_markers(CounterStore(client, table), "marker")

    def fail_the_second(request: Any, **_: Any) -> Any:
        fail_the_second.seen += 1  # type: ignore[attr-defined]
        if fail_the_second.seen == 2:  # type: ignore[attr-defined]
            return _error_response(request.url, "AccessDeniedException", "stopped (test)")
        return None

    fail_the_second.seen = 0  # type: ignore[attr-defined]
    own_client.meta.events.register("before-send.dynamodb.BatchWriteItem", fail_the_second)
    with pytest.raises(Exception, match="stopped"):
        CounterStore(own_client, table).counter("busy").delete()
    left = scan_all(client, table)
    assert 0 < len(left) < MARKERS  # the counter item and a page are gone, the rest is not
    with pytest.raises(CounterNotFound):  # delete() again: nothing to delete, the rest swept
        CounterStore(client, table).counter("busy").delete()
    assert scan_all(client, table) == []


@pytest.mark.parametrize("strategy", ["marker", "collection", "sharded:2"])
def test_inspect_counts_without_holding_the_items(store: CounterStore, strategy: str) -> None:
    counter = _with_markers(store, strategy)
    calls: list[CallRecord] = []
    store.add_listener(calls.append)
    shown = counter.inspect()
    kind = "deltas" if strategy == "collection" else "markers"
    assert (shown["markers"], shown["deltas"]) == (
        (0, MARKERS) if kind == "deltas" else (MARKERS, 0)
    )
    queries = [c for c in calls if c.operation == "Query" and "Select" in c.params]
    assert queries and {c.params["Select"] for c in queries} == {"COUNT"}


def test_counters_in_a_pk_only_table_leave_markers_out(pk_only_store: CounterStore) -> None:
    counter = make(pk_only_store, "marker", name="seats", initial=5)
    counter.add(-1, request_id="r")
    assert list(pk_only_store.counters()) == ["seats"]


def test_values_reads_many_in_few_requests(store: CounterStore, client: Any) -> None:
    expected = {}
    for i, strategy in enumerate(ALL):
        counter = make(store, strategy, name=f"v{i}", initial=i)
        counter.add(2, request_id=rid(strategy, "r"))
        expected[f"v{i}"] = i + 2
    plain_counter_item(client, store.table_name, "theirs")
    expected["theirs"] = 0
    calls: list[CallRecord] = []
    reader = CounterStore(client, store.table_name, on_call=calls.append)
    assert reader.values([*expected, "missing"]) == expected
    operations = [c.operation for c in calls]
    # One BatchGetItem for every counter item; collection adds its own Query (and a GetItem).
    assert operations.count("BatchGetItem") == 1
    assert operations.count("GetItem") + operations.count("Query") == 2


def test_values_splits_requests_of_more_than_100(store: CounterStore, client: Any) -> None:
    names = [f"m{i}" for i in range(130)]
    for i, name in enumerate(names):
        plain_counter_item(client, store.table_name, name, quantity={"N": str(i)})
    calls: list[CallRecord] = []
    reader = CounterStore(client, store.table_name, on_call=calls.append)
    assert reader.values(names) == {name: i for i, name in enumerate(names)}
    assert [c.operation for c in calls].count("BatchGetItem") >= 2


def test_requests_per_add_stay_at_the_minimum_after_first_use(
    store: CounterStore, client: Any
) -> None:
    """A handle reads the counter item once on first use; then each add sends the strategy's
    minimum (SPEC section 7)."""
    minimum = {
        "atomic": 1,
        "occ": 2,
        "occ_history": 2,
        "transaction": 1,
        "marker": 1,
        "collection": 1,
        "set": 1,
        "sharded": 1,
    }
    for strategy in ALL:
        make(store, strategy, name=f"q-{strategy}", initial=0)
        calls: list[CallRecord] = []
        handle = CounterStore(client, store.table_name, on_call=calls.append).counter(
            f"q-{strategy}"
        )
        handle.add(1, request_id=rid(strategy, "first"))
        assert len(calls) == minimum[strategy] + 1  # the one read of the definition
        calls.clear()
        for i in range(5):
            handle.add(1, request_id=rid(strategy, f"r{i}"))
        assert len(calls) == 5 * minimum[strategy], strategy


def test_a_new_handle_on_a_rotated_set_needs_no_extra_write(
    store: CounterStore, client: Any
) -> None:
    counter = make(store, "set", name="s", capacity=2)
    for i in range(5):  # two rotations: generation 2, current generation full... or not
        counter.add(1, request_id=f"r{i}")
    calls: list[CallRecord] = []
    handle = CounterStore(client, store.table_name, on_call=calls.append).counter("s")
    assert handle.add(1, request_id="new").applied is True
    assert [c.operation for c in calls] == ["GetItem", "UpdateItem"]


@pytest.mark.parametrize("strategy", ["atomic", "marker", "set"])
def test_an_item_that_cannot_grow_is_capacity_exceeded(
    store: CounterStore, client: Any, strategy: str
) -> None:
    """An item at DynamoDB's 400 KB (written by others): the add that would make it grow is
    refused as CapacityExceeded, never a bare botocore error, in a transaction too."""
    padding = "x" * (400 * 1024 - 25)  # with the keys, a few bytes short of 400 KB
    plain_counter_item(client, store.table_name, "full", pad={"S": padding})
    with pytest.raises(CapacityExceeded):
        store.counter("full", strategy=strategy).add(1, request_id=rid(strategy, "r"))


def test_the_strategy_property_is_the_stored_one(store: CounterStore) -> None:
    make(store, "marker", name="c")
    assert store.counter("c").strategy == "marker"
    with pytest.raises(DefinitionMismatch):
        _ = store.counter("c", strategy="atomic").strategy


# -- issue 18, item 11: an engine without transactions ------------------------------------------

TRANSACTIONAL = ["transaction", "marker", "collection", "sharded"]


def test_the_transactional_strategies_are_the_four_that_need_transactions() -> None:
    assert [name for name, cls in STRATEGIES.items() if cls.transactional] == TRANSACTIONAL


@pytest.mark.parametrize("strategy", TRANSACTIONAL)
def test_an_engine_without_transactions_is_refused_before_anything_is_written(
    own_client: Any, client: Any, table: str, strategy: str
) -> None:
    """dynalite answers TransactWriteItems with UnknownOperationException and no message:
    create() succeeded and left a counter no add could change, and add() raised botocore's
    bare error."""
    from test_table import _unknown_operation

    for operation in ("TransactWriteItems", "TransactGetItems"):
        own_client.meta.events.register(f"before-send.dynamodb.{operation}", _unknown_operation)
    on_dynalite = CounterStore(own_client, table).counter("c", strategy=strategy)
    with pytest.raises(NotSupported) as caught:
        on_dynalite.create(initial=5)
    assert str(caught.value) == (
        "this DynamoDB engine does not support TransactWriteItems (UnknownOperationException), "
        f"which strategy {strategy!r} needs; use DynamoDB, DynamoDB Local or another strategy"
    )
    assert scan_all(client, table) == []  # nothing written
    # A counter made elsewhere: its adds say the same, and nothing changes.
    CounterStore(client, table).counter("c", strategy=strategy).create(initial=5)
    with pytest.raises(NotSupported, match="does not support TransactWriteItems"):
        CounterStore(own_client, table).counter("c").add(1, request_id="r1")
    assert CounterStore(client, table).counter("c").value() == 5
