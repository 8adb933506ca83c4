"""The AWS-like mode and the flash sale's verdict under review (issue 17, SPEC section 11).

Each test is a hole an adversarial reading found, and failed before its fix (or is marked
``xfail(strict=True)`` where the fix belongs to a module under refactoring). The verdict's
holes are shown on the ledger of a sale built by hand (no engine, no clock: the figures are
a pure function of the orders' records); a worker's re-send runs ``_Sale._sell`` on a stand-in
counter whose answers are forced.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from _hooks import SendHook, operation_of
from conftest import fresh_client, new_table_name
from dynamodb_counters import AddResult, CounterStore
from dynamodb_counters.aws_like import AwsLike, AwsLikeState, error
from dynamodb_counters.bench.flash import (
    FlashSaleOptions,
    FlashTarget,
    _figures,
    _Order,
    _Sale,
    section,
)
from dynamodb_counters.bench.meter import RequestMeter
from dynamodb_counters.bench.options import Pricing
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.throughput import ItemThroughput


def _fake_sale(
    options: FlashSaleOptions, records: list[_Order], target: FlashTarget | None = None
) -> Any:
    """What ``_figures`` reads of a sale: its options, records, meter, budget and stats."""
    return SimpleNamespace(
        options=options,
        records=records,
        meter=RequestMeter(("pk", "sk")),
        budget=ItemThroughput(write_limit=None, read_limit=None),
        target=target or FlashTarget("atomic"),
        aws=None,
        injector=SimpleNamespace(stats=Counter()),
        idempotent=False,
    )


def _acked(i: int, at: float) -> _Order:
    return _Order(f"order-{i:07d}", "acked", at, at + 0.01, 0)


# -- the verdict ---------------------------------------------------------------------------------


def test_a_sale_stopped_by_its_time_limit_is_not_exact() -> None:
    # Stock 10, 13 orders; the time limit stopped the sale after 3 sales, the 10 other orders
    # never sent: 7 units unsold while demand was waiting. Nothing in the ledger is wrong (no
    # drift, no refusal), and the row said exact: True -- the sale never showed that every
    # unit sells, which is what "0 false sold-out" is for.
    options = FlashSaleOptions(stock=10, workers=2, time_limit=1.0)
    records = [_acked(i, 0.1 * i) for i in range(3)]
    timing = {"opened": 0.0, "closed": 1.0, "stopped": True}
    row = _figures(_fake_sale(options, records), timing, 7, Pricing())
    assert row["stopped_by_time_limit"] is True
    assert row["ledger"]["drift"] == 0 and row["ledger"]["false_sold_out"] == 0
    assert row["exact"] is False
    assert row["unanswered_orders"] == 10
    # A sale that answered every order, with the same ledger otherwise, stays exact.
    done = {"opened": 0.0, "closed": 1.0, "stopped": False}
    sold = [_acked(i, 0.01 * i) for i in range(10)]
    refused = [_Order(f"order-{i:07d}", "refused", 0.5, 0.6, 0) for i in range(10, 13)]
    row = _figures(_fake_sale(options, sold + refused), done, 0, Pricing())
    assert row["unanswered_orders"] == 0 and row["exact"] is True


def _row(name: str, *, exact: bool, rate: float) -> dict[str, Any]:
    return {"name": name, "skipped": None, "exact": exact, "accepted_adds_per_s": rate}


def test_all_exact_counts_every_row_even_two_of_one_name() -> None:
    # --shards 8,8 ran sharded@8 twice; the rows were keyed by name, so the second one's
    # exact: True hid the first one's False, and all_exact said True.
    options = FlashSaleOptions(stock=10, strategies=("sharded",), shards=(1, 8))
    rows = [
        _row("sharded@1", exact=True, rate=1.0),
        _row("sharded@8", exact=False, rate=8.0),
        _row("sharded@8", exact=True, rate=8.0),
    ]
    flash = section(options, rows, started_at=datetime.now(UTC), seconds=1.0)
    assert flash["all_exact"] is False


def test_shard_counts_are_distinct() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        FlashSaleOptions(stock=10, strategies=("sharded",), shards=(8, 8))


# -- false "sold out" after a worker's re-send ---------------------------------------------------


def _throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "UpdateItem",
    )


def _bare_sale(options: FlashSaleOptions, target: FlashTarget) -> _Sale:
    """A sale's worker side only (no client, no injector): ``_sell`` runs on it."""
    sale = _Sale.__new__(_Sale)
    sale.options = options
    sale.meter = RequestMeter(("pk", "sk"))
    sale.idempotent = True
    sale.stop = threading.Event()
    sale.target = target
    sale._sent = threading.local()
    return sale


class _ThrottledOnce:
    """A counter handle whose first add is throttled (botocore gave up; it notes when that came
    back) and whose second, the same order sent again, answers ``applied`` (True: sold now;
    False: found counted already -- the first one had landed)."""

    def __init__(self, *, applied: bool = True) -> None:
        self.applied = applied
        self.calls = 0
        self.throttled_at = 0.0

    def add(self, amount: int, *, request_id: str | None = None) -> AddResult:
        self.calls += 1
        if self.calls == 1:
            self.throttled_at = time.perf_counter()
            raise _throttled()
        return AddResult(applied=self.applied, value=None, request_id=request_id)


def test_a_refusal_before_a_re_sent_order_sold_is_false() -> None:
    # Stock 1. Order A is sent, throttled (nothing applied), and sent again by its worker.
    # Meanwhile order B is refused "sold out". A's second send sells the unit: the unit was
    # there when B's refusal came back, so that refusal was false. The ledger compared B's
    # refusal with the moment A was *first* sent (before the refusal), and found nothing.
    options = FlashSaleOptions(stock=1, workers=2, time_limit=1.0)
    sale = _bare_sale(options, FlashTarget("marker"))
    handle = _ThrottledOnce()
    order = sale._sell(handle, "order-0000001", random.Random(1))  # type: ignore[arg-type]
    assert handle.calls == 2
    assert order.outcome == "acked"
    assert order.retried == ("ProvisionedThroughputExceededException",)
    refusal = _Order("order-0000002", "refused", handle.throttled_at, handle.throttled_at, 0)
    timing = {"opened": 0.0, "closed": order.finished, "stopped": False}
    row = _figures(_fake_sale(options, [order, refusal]), timing, 0, Pricing())
    assert row["ledger"]["false_sold_out"] == 1
    assert row["exact"] is False


class _CancelFirstTransaction(SendHook):
    """Cancels the first ``TransactWriteItems`` as AWS does a throttled one (nothing applied,
    botocore does not retry it: the library does), noting when that answer came back."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cancelled_at: float | None = None

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != "TransactWriteItems" or self.cancelled_at is not None:
            return None
        self.cancelled_at = time.perf_counter()
        return error(
            request.url,
            "TransactionCanceledException",
            "Transaction cancelled [ThrottlingError, None]",
            CancellationReasons=[
                {"Code": "ThrottlingError", "Message": "throttled"},
                {"Code": "None"},
            ],
        )


def test_a_refusal_while_the_library_retried_the_selling_order_is_false(ddb: DynamoDBLocal) -> None:
    # AWS-like, the library itself tries a throttled transaction again (up to MAX_ATTEMPTS),
    # inside one add() call. Stock 1: order A's first transaction is cancelled for throttling,
    # order B is refused "sold out" right then, and A's next try sells the unit. B's refusal
    # was false; the ledger compared it with when A's add() was called (before the refusal).
    client = fresh_client(ddb)
    table = new_table_name("review")
    store = CounterStore(client, table)
    store.ensure_table()
    try:
        counter = store.counter("flash", strategy="marker", floor=0, retry_delay=0)
        counter.create(initial=1)
        options = FlashSaleOptions(stock=1, workers=2, time_limit=1.0)
        sale = _bare_sale(options, FlashTarget("marker"))
        sale.watch_sends(client)
        try:
            with _CancelFirstTransaction(client) as hook:
                order = sale._sell(counter, "order-0000001", random.Random(1))
        finally:
            sale.unwatch_sends(client)
        assert order.outcome == "acked" and order.retried == ()
        assert counter.value() == 0
        assert hook.cancelled_at is not None
        refusal = _Order("order-0000002", "refused", hook.cancelled_at, hook.cancelled_at, 0)
        timing = {"opened": 0.0, "closed": order.finished, "stopped": False}
        row = _figures(_fake_sale(options, [order, refusal]), timing, 0, Pricing())
        assert row["ledger"]["false_sold_out"] == 1
        assert row["exact"] is False
    finally:
        client.delete_table(TableName=table)


# -- the AWS-like engine against AWS's documentation ---------------------------------------------


def _counter_key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "#counter"}}


def test_an_ongoing_transactional_read_meets_a_write(ddb: DynamoDBLocal, table: str) -> None:
    # AWS's API reference (TransactionCanceledException): "DynamoDB cancels a TransactGetItems
    # request [when] there is an ongoing TransactGetItems operation that conflicts with a
    # concurrent PutItem, UpdateItem, DeleteItem or TransactWriteItems request". Before: the
    # engine only cancelled a read that *arrived* while a write was in flight: a write arriving
    # while the read was being served passed, and the read answered as if alone.
    model = AwsLike(write_limit=None, in_flight=0.0, stale_read_rate=0.0)
    state = AwsLikeState(model)
    reader, writer = fresh_client(ddb), fresh_client(ddb)
    readers = FaultInjector(reader, FaultPlan(aws_like=model), aws_state=state)
    writers = FaultInjector(writer, FaultPlan(aws_like=model), aws_state=state)
    update = {
        "TableName": table,
        "Key": _counter_key("hot"),
        "UpdateExpression": "ADD v :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    assert readers.aws is not None
    real_send = readers.aws.send

    def send(request: Any) -> Any:
        if operation_of(request) == "TransactGetItems":
            writer.update_item(**update)  # arrives while the read is being served
        return real_send(request)

    readers.aws.send = send
    with readers, writers:
        writer.update_item(**update)
        try:
            reader.transact_get_items(
                TransactItems=[{"Get": {"TableName": table, "Key": _counter_key("hot")}}]
            )
            outcome: tuple[str, list[str]] = ("answered", [])
        except ClientError as exc:
            reasons = [str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])]
            outcome = (str(exc.response["Error"]["Code"]), reasons)
    assert outcome == ("TransactionCanceledException", ["TransactionConflict"])
    found = writer.get_item(TableName=table, Key=_counter_key("hot"), ConsistentRead=True)
    assert found["Item"]["v"] == {"N": "2"}  # the write went through


def test_an_error_that_said_not_applied_but_had_landed_is_not_exact() -> None:
    # A worker sends an order again only after an error documented as "nothing applied".
    # When the re-send answers "already counted" (applied=False), that error was wrong -- the
    # very thing the sale is there to catch -- yet the order looked sold once, the ledger had
    # no drift (the strategy is idempotent) and the row said exact: True.
    options = FlashSaleOptions(stock=1, workers=2, time_limit=1.0)
    sale = _bare_sale(options, FlashTarget("marker"))
    handle = _ThrottledOnce(applied=False)
    order = sale._sell(handle, "order-0000001", random.Random(1))  # type: ignore[arg-type]
    assert order.outcome == "acked" and handle.calls == 2
    # The second order (demand 2) is refused after it: sold out, truly.
    later = order.finished + 1.0
    refusal = _Order("order-0000002", "refused", later, later, 0)
    timing = {"opened": 0.0, "closed": later, "stopped": False}
    row = _figures(_fake_sale(options, [order, refusal]), timing, 0, Pricing())
    assert row["ledger"]["drift"] == 0 and row["ledger"]["false_sold_out"] == 0
    assert row["exact"] is False
    assert row["landed_before_re_send"] == 1


def test_the_terminal_table_says_when_a_row_is_not_exact() -> None:
    # The table shows errors, false sold-outs, oversell and drift: a sale stopped by its time
    # limit (or an order found counted before its re-send) showed all of them 0, in green.
    from dynamodb_counters.bench.display import flash_table

    ledger = {"false_sold_out": 0, "oversold": 0, "drift": 0}
    row = {
        "name": "sharded@8",
        "skipped": None,
        "exact": False,
        "errors": 0,
        "unanswered_orders": 40,
        "landed_before_re_send": 0,
        "ledger": ledger,
        "accepted_adds_per_s": 10.0,
        "throttled_requests": 0,
        "units": {"wru_per_add": 4.0},
        "usd_per_million_adds": 2.5,
    }
    table = flash_table({"model": {"item_write_limit": 20}, "targets": [row]})
    assert "NOT exact: sharded@8 (40 orders never answered: stopped by the time limit)" in str(
        table.caption
    )
