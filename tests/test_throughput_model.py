"""The per-item throughput model of the fault injector (SPEC section 8).

A token bucket per item: R write units/s (3 R read units/s by default), one second of burst, a
request over budget answered like AWS answers it (``ProvisionedThroughputExceededException``
with ``ThrottlingReasons``) without being sent. The rate tests hammer DynamoDB Local for about
three seconds with R = 10 (DynamoDB Local, warmed up, on a shared 2-core machine must stay well
above it) and check the accepted rate from the bucket's own counts: exactly what
went through is ``burst + R x elapsed`` less what the bucket still holds, so the 10% allowed is
for the end of the window, not for luck.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import fresh_client
from dynamodb_counters.bench.metrics import key_id
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.throughput import READ, WRITE, ItemThroughput, RequestPricer

R = 10.0
WINDOW = 3.0


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}, "sk": {"S": "#counter"}}


def _hammer(client: Any, table: str, names: list[str], seconds: float) -> dict[str, Any]:
    """Six threads per item adding 1 as fast as they can for ``seconds``; what they saw."""
    accepted = dict.fromkeys(names, 0)
    throttled: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def spin(name: str) -> None:
        while time.monotonic() < stop:
            try:
                client.update_item(
                    TableName=table,
                    Key=_key(name),
                    UpdateExpression="ADD v :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
            except ClientError as exc:
                with lock:
                    throttled.append(dict(exc.response))
                time.sleep(0.004)  # a short pause: demand stays far above R, the CPU is shared
                continue
            with lock:
                accepted[name] += 1

    threads = [threading.Thread(target=spin, args=(n,)) for n in names for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"accepted": accepted, "throttled": throttled, "seconds": time.monotonic() - started}


def _value(client: Any, table: str, name: str) -> int:
    item = client.get_item(TableName=table, Key=_key(name), ConsistentRead=True).get("Item", {})
    return int(item.get("v", {}).get("N", "0"))


def _warm(client: Any, table: str) -> None:
    """A cold engine answers a few dozen requests a second: warm it before measuring."""
    _hammer(client, table, ["warm-up"], 1.5)


class _Clock:
    """``time.monotonic`` that remembers the last time the buckets looked at it."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self) -> float:
        self.last = time.monotonic()  # called under the buckets' lock
        return self.last


def _measure(ddb: Any, table: str, names: list[str]) -> tuple[Any, dict[str, Any], float]:
    """Hammer ``names`` through an injector at R; returns the client, what the threads saw
    and the seconds the buckets were open (from their creation, together, to the last take)."""
    client = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
    _warm(client, table)
    clock = _Clock()
    budget = ItemThroughput(write_limit=R, read_limit=3 * R, clock=clock)
    # Open every bucket at the same moment: the window is measured from there.
    slots = [(WRITE, table, key_id(table, _key(name)), 0.0) for name in names]
    assert budget.take(slots) is None
    opened = clock.last
    with FaultInjector(client, FaultPlan(item_write_limit=R), throughput=budget) as faults:
        seen = _hammer(client, table, names, WINDOW)
    seen["faults"] = faults
    return client, seen, clock.last - opened


def _check_rate(budget: ItemThroughput, table: str, name: str, seconds: float) -> float:
    units = budget.admitted[(WRITE, key_id(table, _key(name)))]
    # Full at the start (one second of burst), then R a second.
    rate = (units - budget.capacity(WRITE)) / seconds
    assert abs(rate - R) <= 0.1 * R, (name, units, seconds)
    return units


def test_one_item_gets_its_rate_and_no_more(ddb: Any, table: str) -> None:
    client, seen, seconds = _measure(ddb, table, ["hot"])
    faults = seen["faults"]
    assert faults.throughput is not None
    accepted = seen["accepted"]["hot"]
    # Throttled requests were never sent: the item holds exactly the accepted adds.
    assert _value(client, table, "hot") == accepted
    assert faults.stats["item_throttles"] == len(seen["throttled"]) > 0
    # 1 write unit per add of a small item.
    assert _check_rate(faults.throughput, table, "hot", seconds) == accepted
    answer = seen["throttled"][0]
    assert answer["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert answer["ThrottlingReasons"] == [
        {
            "reason": "TableWriteKeyRangeThroughputExceeded",
            "resource": f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}",
        }
    ]


def test_each_item_has_its_own_budget(ddb: Any, table: str) -> None:
    client, seen, seconds = _measure(ddb, table, ["left", "right"])
    for name in ("left", "right"):
        accepted = seen["accepted"][name]
        assert _value(client, table, name) == accepted
        assert _check_rate(seen["faults"].throughput, table, name, seconds) == accepted


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_botocore_retries_an_item_throttle(ddb: Any, table: str, mode: str) -> None:
    """The synthetic answer is one botocore retries: a throttling error in standard mode, the
    ``throughput_exceeded`` policy (HTTP 400 + the code) in legacy mode."""
    client = fresh_client(ddb, retries={"mode": mode, "total_max_attempts": 3})
    clock = [0.0]
    budget = ItemThroughput(write_limit=1.0, read_limit=3.0, clock=lambda: clock[0])
    with FaultInjector(client, FaultPlan(item_write_limit=1.0), throughput=budget) as faults:
        params = {
            "TableName": table,
            "Key": _key("slow"),
            "UpdateExpression": "ADD v :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        client.update_item(**params)  # the burst: one unit
        with pytest.raises(ClientError) as raised:
            client.update_item(**params)  # the clock stands still: every attempt throttled
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert faults.stats["item_throttles"] == 3
    assert _value(client, table, "slow") == 1


def test_reads_have_their_own_budget_and_reason(ddb: Any, table: str) -> None:
    client = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 1})
    clock = [0.0]
    plan = FaultPlan(item_write_limit=1.0)
    assert plan.read_limit == 3.0
    budget = ItemThroughput(write_limit=1.0, read_limit=plan.read_limit, clock=lambda: clock[0])
    with FaultInjector(client, plan, throughput=budget) as faults:
        for _ in range(3):  # 3 strongly consistent reads of 1 unit: the burst
            client.get_item(TableName=table, Key=_key("r"), ConsistentRead=True)
        with pytest.raises(ClientError) as raised:
            client.get_item(TableName=table, Key=_key("r"), ConsistentRead=True)
        clock[0] += 0.5  # 1.5 units back: an eventually consistent read costs 0.5
        for _ in range(3):
            client.get_item(TableName=table, Key=_key("r"))
    answer: dict[str, Any] = dict(raised.value.response)
    reasons = answer["ThrottlingReasons"]
    assert reasons[0]["reason"] == "TableReadKeyRangeThroughputExceeded"
    assert faults.stats["item_read_throttles"] == faults.stats["item_throttles"] == 1


def test_bucket_arithmetic() -> None:
    """Offers far above the rate: exactly burst + R x t units go through."""
    clock = [0.0]
    budget = ItemThroughput(write_limit=R, read_limit=None, clock=lambda: clock[0])
    taken = 0
    for step in range(3000):  # 3 s, an offer every millisecond
        clock[0] = step / 1000
        if budget.take([(WRITE, "t", "item", 1.0)]) is None:
            taken += 1
    assert taken == int(R + R * 2.999)
    assert budget.refused[WRITE] == 3000 - taken
    # A charge larger than a whole bucket passes when the bucket is full, and leaves a debt.
    assert budget.take([(WRITE, "t", "big", 3 * R)]) is None
    assert budget.take([(WRITE, "t", "big", 1.0)]) is not None
    # Reads are not limited here; a request is refused whole when one of its items is short.
    assert budget.take([(READ, "t", "item", 1e9)]) is None
    assert budget.take([(WRITE, "t", "fresh", 1.0), (WRITE, "t", "big", 1.0)]) is not None
    assert budget.admitted.get((WRITE, "fresh")) is None


def test_drained_items_have_no_burst_and_new_items_have_theirs() -> None:
    """A sale's counter and shards are at their rate when it opens (drained); a marker it
    writes first is a quiet item, with one second of burst: it is not throttled on its first
    write (it was, when every bucket started empty: one throttle and a backoff per add)."""
    clock = [0.0]
    budget = ItemThroughput(write_limit=R, read_limit=3 * R, clock=lambda: clock[0])
    budget.drain(["shard"])
    assert budget.take([(WRITE, "t", "shard", 2.0), (WRITE, "t", "marker-1", 2.0)]) == (
        WRITE,
        "t",
        "shard",
        2.0,
    )
    assert budget.take([(READ, "t", "shard", 1.0)]) is not None
    clock[0] = 2.0 / R  # the shard's two units have come in
    assert budget.take([(WRITE, "t", "shard", 2.0), (WRITE, "t", "marker-1", 2.0)]) is None
    assert budget.admitted == {(WRITE, "shard"): 2.0, (WRITE, "marker-1"): 2.0}


def test_pricing_follows_the_meter() -> None:
    """Transactional items cost twice; reads by consistency; the known item's size counts."""
    big = {**_key("big"), "blob": {"S": "x" * 3000}}
    known = {"big": big}

    def lookup(_table: str, key: dict[str, Any]) -> dict[str, Any]:
        return known.get(key["pk"]["S"]) or dict(key)

    pricer = RequestPricer(("pk", "sk"), lookup)
    update = {
        "TableName": "t",
        "Key": _key("c"),
        "UpdateExpression": "ADD v :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    put = {"TableName": "t", "Item": {**_key("m"), "amount": {"N": "-1"}}}
    charges = pricer.charges(
        "TransactWriteItems", {"TransactItems": [{"Update": update}, {"Put": put}]}
    )
    assert [(c[0], c[3]) for c in charges] == [(WRITE, 2.0), (WRITE, 2.0)]
    assert pricer.charges("UpdateItem", {**update, "Key": _key("big")})[0][3] == 3.0
    assert pricer.charges("GetItem", {"TableName": "t", "Key": _key("c")})[0][3] == 0.5
    assert (
        pricer.charges("GetItem", {"TableName": "t", "Key": _key("c"), "ConsistentRead": True})[0][
            3
        ]
        == 1.0
    )
    get = {"Get": {"TableName": "t", "Key": _key("c")}}
    assert pricer.charges("TransactGetItems", {"TransactItems": [get, get]})[1][3] == 2.0
    assert pricer.charges("Query", {"TableName": "t"}) == []


@pytest.mark.parametrize(
    "limits",
    [
        {"item_write_limit": 0},
        {"item_write_limit": -1.0},
        {"item_read_limit": float("inf")},
        {"item_write_limit": True},
        {"item_write_limit": "40"},
    ],
)
def test_limits_are_validated(limits: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        FaultPlan(**limits)
    assert not FaultPlan().limits_items
    assert FaultPlan(item_read_limit=5).read_limit == 5.0
