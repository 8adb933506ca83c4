"""Logs under the ``dynamodb_counters`` logger: DEBUG per request and per retry, WARNING for a
throttle after botocore's retries, contention exhausted and an ambiguous add re-raised; exact
records, with their structured fields. Faults are forced below botocore (rates of 1.0)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import fresh_client
from dynamodb_counters import ContentionError, CounterStore
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal

IO = "dynamodb_counters._io"
BASE = "dynamodb_counters.strategies.base"
ONE_TRY = {"mode": "standard", "total_max_attempts": 1}
FIELDS = ("operation", "counter", "strategy", "reason", "error_code", "amount", "request_id")


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[Any, ...]]:
    """(logger, level, message, fields...) of the library's records, in order."""
    return [
        (r.name, r.levelname, r.getMessage(), *(getattr(r, f, "-") for f in FIELDS))
        for r in caplog.records
        if r.name.startswith("dynamodb_counters")
    ]


def row(logger: str, level: str, message: str, *fields: Any) -> tuple[Any, ...]:
    """An expected record: (logger, level, message, then FIELDS in order)."""
    return (logger, level, message, *fields)


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="dynamodb_counters")
    return caplog


def test_nothing_is_logged_at_the_default_levels(
    ddb: DynamoDBLocal, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = CounterStore(ddb.client(), table)
    counter = store.counter("quiet", strategy="marker")
    counter.create(initial=1)
    counter.add(1, request_id="r-1")
    assert records(caplog) == []
    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("dynamodb_counters").handlers
    )


def test_every_request_is_logged_at_debug(
    ddb: DynamoDBLocal, table: str, debug: pytest.LogCaptureFixture
) -> None:
    store = CounterStore(ddb.client(), table)
    counter = store.counter("seats", strategy="atomic", floor=0)
    counter.create(initial=5)
    counter.add(-2)
    with pytest.raises(Exception, match="floor"):
        counter.add(-9)
    ok, failed = (None, "-", "-"), ("ConditionalCheckFailedException", "-", "-")
    assert [(r[0], r[1], *r[3:]) for r in records(debug)] == [
        (IO, "DEBUG", "TransactWriteItems", "seats", "atomic", "-", *ok),
        (IO, "DEBUG", "UpdateItem", "seats", "atomic", "-", *ok),
        (IO, "DEBUG", "UpdateItem", "seats", "atomic", "-", *failed),
    ]
    message = records(debug)[2][2]
    assert message.startswith("UpdateItem failed in ")
    assert message.endswith(": ConditionalCheckFailedException")
    every = [r for r in debug.records if r.name == IO]
    assert {type(r.__dict__["seconds"]) for r in every} == {float}
    assert all(r.__dict__["aws_request_id"] for r in every)  # DynamoDB's own id, for AWS support
    # Never credentials, never the item's contents beyond the name.
    text = " ".join(str(vars(r)) for r in every)
    assert "local" not in text.replace("dynamodb_counters", "").lower().replace("_io", "")


def test_a_throttle_after_botocores_retries_is_a_warning(
    ddb: DynamoDBLocal, table: str, debug: pytest.LogCaptureFixture
) -> None:
    client = fresh_client(ddb, retries={"mode": "standard", "total_max_attempts": 3})
    store = CounterStore(client, table)
    counter = store.counter("hot", strategy="atomic")
    counter.create(initial=0)
    debug.clear()
    with FaultInjector(client, FaultPlan(throttle_rate=1.0)), pytest.raises(ClientError):
        counter.add(1)
    where = ("UpdateItem", "hot", "atomic")
    throttled = "UpdateItem on 'hot' throttled after botocore's retries: ThrottlingException"
    resent = row(IO, "DEBUG", "botocore re-sent UpdateItem after ThrottlingException", *where)
    assert records(debug) == [
        (*resent, "throttle", "ThrottlingException", "-", "-"),
        (*resent, "throttle", "ThrottlingException", "-", "-"),
        row(
            IO, "DEBUG", debug.records[2].getMessage(), *where, "-", "ThrottlingException", "-", "-"
        ),
        row(IO, "WARNING", throttled, *where, "-", "ThrottlingException", "-", "-"),
    ]
    assert debug.records[2].getMessage().startswith("UpdateItem failed in ")
    assert [r.__dict__["sdk_retries"] for r in debug.records] == [2, 2, 2, 2]


def test_conflicts_retried_then_contention_exhausted(
    ddb: DynamoDBLocal, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=BASE)
    client = fresh_client(ddb, retries=ONE_TRY)
    store = CounterStore(client, table)
    counter = store.counter("busy", strategy="marker", max_attempts=3, retry_delay=0)
    counter.create(initial=0)
    with FaultInjector(client, FaultPlan(conflict_rate=1.0)), pytest.raises(ContentionError):
        counter.add(1, request_id="order-1")
    code = "TransactionCanceledException"
    assert records(caplog) == [
        row(
            BASE,
            "DEBUG",
            "'busy' (marker): try 2 after conflict",
            "-",
            "busy",
            "marker",
            "conflict",
            code,
            "-",
            "-",
        ),
        row(
            BASE,
            "DEBUG",
            "'busy' (marker): try 3 after conflict",
            "-",
            "busy",
            "marker",
            "conflict",
            code,
            "-",
            "-",
        ),
        row(
            BASE,
            "WARNING",
            f"'busy' (marker): contention exhausted ({code})",
            "-",
            "busy",
            "marker",
            "contention exhausted",
            code,
            1,
            "order-1",
        ),
    ]


def test_an_ambiguous_add_re_raised_is_a_warning(
    ddb: DynamoDBLocal, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=BASE)
    client = fresh_client(ddb, retries=ONE_TRY)
    store = CounterStore(client, table)
    plain = store.counter("plain", strategy="atomic")
    plain.create(initial=0)
    exact = store.counter("exact", strategy="marker", ambiguity_retries=1, retry_delay=0)
    exact.create(initial=0)
    with FaultInjector(client, FaultPlan(lost_answer_rate=1.0)):
        with pytest.raises(ReadTimeoutError):
            plain.add(7)  # not idempotent: re-raised at once
        with pytest.raises(ReadTimeoutError):
            exact.add(3, request_id="order-9")  # one more try, lost too
    what = "ambiguous add re-raised: its outcome is unknown"
    assert records(caplog) == [
        row(
            BASE,
            "WARNING",
            f"'plain' (atomic): {what} (ReadTimeoutError)",
            "-",
            "plain",
            "atomic",
            what,
            "ReadTimeoutError",
            7,
            None,
        ),
        row(
            BASE,
            "DEBUG",
            "'exact' (marker): try 2 after ambiguity",
            "-",
            "exact",
            "marker",
            "ambiguity",
            "ReadTimeoutError",
            "-",
            "-",
        ),
        row(
            BASE,
            "WARNING",
            f"'exact' (marker): {what} (ReadTimeoutError)",
            "-",
            "exact",
            "marker",
            what,
            "ReadTimeoutError",
            3,
            "order-9",
        ),
    ]
