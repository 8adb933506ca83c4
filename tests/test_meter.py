"""The bench's meter prices each attempt by AWS's published rules; one test per rule.

Every expected figure is worked out by hand in the test from the item's bytes (attribute name
plus value, numbers at 1 byte per two significant digits plus 1), then compared with what the
meter estimates -- and, where DynamoDB Local reports capacity, with what it reports.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import fresh_client
from dynamodb_counters import CounterStore, ThresholdExceeded
from dynamodb_counters.bench.meter import RequestMeter
from dynamodb_counters.local import DynamoDBLocal

KEYS = ("pk", "sk")


@pytest.fixture
def metered(ddb: DynamoDBLocal) -> Any:
    return fresh_client(ddb)


def _pad_item(pad: int) -> dict[str, Any]:
    # "pk" + "p" = 3 bytes, "sk" + "s" = 3 bytes, "pad" + pad characters = 3 + pad bytes.
    return {"pk": {"S": "p"}, "sk": {"S": "s"}, "pad": {"S": "x" * pad}}


def test_a_query_is_charged_on_whole_items_whatever_its_projection(
    metered: Any, table: str
) -> None:
    """``collection.value()`` projects its Query to two attributes; AWS charges whole items."""
    name = "n" * 100
    store = CounterStore(metered, table)
    counter = store.counter(name, strategy="collection")
    counter.create(0)
    meter = RequestMeter(KEYS).attach(metered)
    for i in range(200):
        counter.add(1, request_id=f"r{i:03d}")
    meter.take()
    assert counter.value() == 200
    totals = meter.take()
    # One delta item: pk (2 + 100) + sk "delta#" + 32 hex digits (2 + 38) + quantity 1 (8 + 2)
    # + call, a 32-hex-digit nonce (4 + 32) + request_id "rNNN" (10 + 4) + created, a 10-digit
    # epoch (7 + 6) + _inc, the incarnation (4 + 32) = 251 bytes; 200 of them: 50,200 bytes;
    # the counter item: pk (102) + sk "#counter" (10) + quantity 0 (8 + 2) + _created_by
    # (11 + 32) + _def, 77 characters of JSON (4 + 77) + _inc (4 + 32) = 282 bytes. 50,482
    # bytes read strongly consistent: ceil(50,482 / 4,096) = 13 read units; then value() reads
    # the counter item again (did a compaction run meanwhile?): 1 more. The projected
    # attributes alone (sk, quantity, _inc, _folds: 86 bytes a delta) would give 5.
    assert totals.operations == {"Query": 1, "GetItem": 1}
    assert totals.estimated_rru == 14
    assert totals.reported_rru == 14  # DynamoDB Local charges the same
    meter.detach()


def test_a_failed_condition_is_charged_on_the_larger_of_existing_and_would_be_item(
    metered: Any, table: str
) -> None:
    meter = RequestMeter(KEYS).attach(metered)
    metered.put_item(TableName=table, Item=_pad_item(989))  # 3 + 3 + 992 = 998 bytes
    meter.take()
    with pytest.raises(ClientError):
        metered.update_item(
            TableName=table,
            Key={"pk": {"S": "p"}, "sk": {"S": "s"}},
            UpdateExpression="SET extra = :x",
            ConditionExpression="attribute_not_exists(pad)",
            ExpressionAttributeValues={":x": {"S": "y" * 199}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    totals = meter.take()
    # Existing: 998 bytes (1 unit); would-be: 998 + "extra" (5) + 199 = 1,202 bytes: 2 units.
    assert totals.estimated_wru == 2
    # An error answer carries no capacity: the reported figure leaves it out, and says so.
    assert totals.reported_wru == 0
    assert (totals.unreported, totals.unreported_wru) == (1, 2)
    meter.detach()


def test_a_replayed_client_request_token_is_charged_as_a_read(metered: Any, table: str) -> None:
    metered.put_item(TableName=table, Item=_pad_item(989))  # 998 bytes
    meter = RequestMeter(KEYS).attach(metered)
    request = {
        "TransactItems": [
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "s"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        ],
        "ClientRequestToken": "token-1",
    }
    meter.sizes.put(table, {"pk": {"S": "p"}, "sk": {"S": "s"}}, _pad_item(989))
    metered.transact_write_items(**request)
    first = meter.take()
    # 998 -> 998 + "n" (1) + the number 1 (2) = 1,001 bytes: 1 KB started, x2 in a transaction.
    assert (first.estimated_wru, first.estimated_rru) == (2, 0)
    metered.transact_write_items(**request)
    replay = meter.take()
    # The replay changes nothing; AWS charges "the read capacity units consumed in reading the
    # item": 1,001 bytes read strongly consistent = 1 read unit, no write unit.
    assert (replay.estimated_wru, replay.estimated_rru) == (0, 1)
    item = metered.get_item(TableName=table, Key={"pk": {"S": "p"}, "sk": {"S": "s"}})["Item"]
    assert item["n"] == {"N": "1"}
    meter.detach()


def test_a_token_older_than_ten_minutes_is_a_new_write(metered: Any, table: str) -> None:
    metered.put_item(TableName=table, Item=_pad_item(989))
    meter = RequestMeter(KEYS).attach(metered)
    now = [1000.0]
    meter.clock = lambda: now[0]
    request = {
        "TransactItems": [
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "s"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        ],
        "ClientRequestToken": "token-2",
    }
    metered.transact_write_items(**request)
    meter.take()
    now[0] += 601  # DynamoDB Local keeps the token; the meter applies AWS's 10 minutes
    metered.transact_write_items(**request)
    assert meter.take().estimated_wru == 2
    meter.detach()


def test_rejected_adds_are_charged_but_not_reported(metered: Any, table: str) -> None:
    """``atomic`` at its floor: each refused add is a failed conditional write, charged 1 WRU
    by AWS's rules, absent from the reported capacity (error answers carry none)."""
    counter = CounterStore(metered, table).counter("stock", strategy="atomic", floor=0)
    counter.create(1)
    meter = RequestMeter(KEYS).attach(metered)
    counter.add(-1)
    for _ in range(3):
        with pytest.raises(ThresholdExceeded):
            counter.add(-1)
    totals = meter.take()
    assert totals.estimated_wru == 4  # one applied, three refused: 1 unit each (small item)
    assert totals.reported_wru == 1  # only the applied add's answer carries capacity
    assert (totals.unreported, totals.unreported_wru) == (3, 3)
    meter.detach()


def test_units_are_booked_on_the_operation_that_sent_them(metered: Any, table: str) -> None:
    counter = CounterStore(metered, table).counter("stock", strategy="occ", floor=0)
    counter.create(1)
    meter = RequestMeter(KEYS).attach(metered)
    with meter.operation("a", -1) as book:
        counter.add(-1)
        book.state = "acked"
    with meter.operation("b", -1) as book:
        with pytest.raises(ThresholdExceeded):
            counter.add(-1)
        book.state = "rejected"
    totals = meter.take()
    # occ: a consistent GetItem (1 RRU) then a conditional write (1 WRU); a refusal is found
    # by the client-side check after the GetItem alone.
    assert (totals.ops["a"].rru, totals.ops["a"].wru, totals.ops["a"].state) == (1, 1, "acked")
    assert (totals.ops["b"].rru, totals.ops["b"].wru, totals.ops["b"].state) == (
        1,
        0,
        "rejected",
    )
    meter.detach()


def test_a_transactional_read_is_charged_twice_per_item(metered: Any, table: str) -> None:
    """``sharded.value()`` reads its shards with TransactGetItems: 2 read units per 4 KB of
    each item, an item under 4 KB still a whole one."""
    store = CounterStore(metered, table)
    counter = store.counter("s", strategy="sharded", shards=3)
    counter.create(initial=7)
    meter = RequestMeter(KEYS).attach(metered)
    assert counter.value() == 7
    totals = meter.take()
    # Three shard items of well under 4 KB: 3 x 1 x 2 = 6.
    assert totals.operations == {"TransactGetItems": 1}
    assert totals.estimated_rru == 6
    meter.detach()


def _sized(pk: str, size: int) -> dict[str, Any]:
    # "pk" + pk, "sk" + "s" (3 bytes), "pad" + the rest: exactly ``size`` bytes.
    pad = size - (2 + len(pk)) - 3 - 3
    return {"pk": {"S": pk}, "sk": {"S": "s"}, "pad": {"S": "x" * pad}}


@pytest.mark.parametrize(("consistent", "expected"), [(False, 3.0), (True, 6.0)])
def test_a_batch_get_is_charged_per_key_each_item_rounded_on_its_own(
    metered: Any, table: str, consistent: bool, expected: float
) -> None:
    """AWS reads each key of a ``BatchGetItem`` as a ``GetItem`` of its own (the sharded
    survey's request): each item rounded up to 4 KB by itself, a missing item at the minimum,
    half a unit each when eventually consistent."""
    for pk in ("a", "b", "c"):
        metered.put_item(TableName=table, Item=_sized(pk, 1500))
    metered.put_item(TableName=table, Item=_sized("d", 4097))
    meter = RequestMeter(KEYS).attach(metered)
    keys = [{"pk": {"S": pk}, "sk": {"S": "s"}} for pk in ("a", "b", "c", "d", "missing")]
    answer = metered.batch_get_item(
        RequestItems={table: {"Keys": keys, "ConsistentRead": consistent}}
    )
    assert len(answer["Responses"][table]) == 4
    totals = meter.take()
    # Three items of 1,500 bytes: 1 unit each (together 4,500 bytes would round to 2 -- AWS
    # does not add them up first); one of 4,097 bytes: 2 units; the missing key: the minimum,
    # 1. That is 6 units strongly consistent, half of it eventually consistent.
    assert totals.operations == {"BatchGetItem": 1}
    assert totals.estimated_rru == expected
    assert totals.estimated_wru == 0
    meter.detach()


def test_unprocessed_keys_of_a_batch_get_are_not_charged() -> None:
    """Keys answered back as ``UnprocessedKeys`` were not read (AWS's partial answer under
    throttling): only the keys read are priced."""
    meter = RequestMeter(KEYS)
    key = {"pk": {"S": "a"}, "sk": {"S": "s"}}
    other = {"pk": {"S": "b"}, "sk": {"S": "s"}}
    params = {"RequestItems": {"t": {"Keys": [key, other]}}}
    answer = {
        "Responses": {"t": [_sized("a", 5000)]},
        "UnprocessedKeys": {"t": {"Keys": [other]}},
    }
    meter._record(
        "response-received.dynamodb.BatchGetItem",
        {"dynamodb_counters_bench_params": params},
        parsed_response=answer,
    )
    # The one item read: 5,000 bytes = 2 units of 4 KB, eventually consistent: 1.
    assert meter.take().estimated_rru == 1.0
