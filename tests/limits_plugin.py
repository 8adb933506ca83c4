"""Runs ``limits``' own storage suite against ``dynamodb://`` and ``async+dynamodb://``
(``make limits-suite``; SPEC section 12, conformance).

The suite is the pinned sdist's ``tests/`` directory, unpacked outside git and run unmodified;
this plugin (``-p limits_plugin``) changes only its list of storages: every
``@pytest.mark.parametrize("uri, args, fixture", ...)`` (``tests/utils.py``'s ``all_storage``,
``moving_window_storage``, ``sliding_window_counter_storage`` and their async twins) and the
``"uri, args, expected_instance, fixture"`` list of ``TestConcreteStorages`` is replaced, while
the suite is collected, by one parameter: our scheme on a DynamoDB Local that this plugin starts.
Its ``fixture`` is ``dynamodb_table`` (the role their ``redis_basic`` fixture plays): a fresh,
empty table for each test. Tests of the suite that take no storage parameter (the base classes'
error wrapping, the pluggable-storage examples) run as they are.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from pytest_lazy_fixtures import lf

import dynamodb_counters.limits as dynamodb_limits
from dynamodb_counters import CounterStore
from dynamodb_counters.local import DynamoDBLocal

_ENGINE: DynamoDBLocal | None = None
#: The one table of the run; ``dynamodb_table`` empties it before each test.
TABLE = "limits-suite"


def pytest_configure(config: pytest.Config) -> None:
    global _ENGINE
    _ENGINE = DynamoDBLocal().start()
    # boto3 and aiobotocore clients that the storages make from the URI find these.
    os.environ.update(
        AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1"
    )
    CounterStore(_ENGINE.client(), TABLE).ensure_table()
    _warm_up(_ENGINE)
    config.addinivalue_line("markers", "flaky: limits' own marker (never rerun here)")
    config.addinivalue_line("markers", "integration: limits' own marker")


def _warm_up(engine: DynamoDBLocal) -> None:
    """A few hundred requests of the kinds the storage sends, before the suite's timed tests:
    their tolerances (30 to 100 ms for a few round trips) are for a warm server, and a JVM
    that has not compiled its request path yet is several times slower."""
    s = dynamodb_limits.DynamoDBStorage(f"dynamodb://{TABLE}", client=engine.client())
    for i in range(60):
        s.incr(f"warm-up-{i % 3}", 60)
        s.acquire_entry(f"warm-up-{i % 3}", 1000, 60)
        s.acquire_sliding_window_entry(f"warm-up-{i % 3}", 1000, 60)
        s.get_moving_window(f"warm-up-{i % 3}", 1000, 60)
    s.reset()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _ENGINE is not None:
        _ENGINE.stop()


@pytest.fixture
def dynamodb_table() -> str:
    """An empty table: what their ``redis_basic`` fixture's flush is to Redis."""
    assert _ENGINE is not None
    client = _ENGINE.client()
    for page in client.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        for item in page["Items"]:
            client.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    return TABLE


def _params(with_instance: bool, scheme: str) -> list[Any]:
    assert _ENGINE is not None
    uri = f"{scheme}://{TABLE}?endpoint_url={_ENGINE.endpoint_url}"
    asynchronous = scheme.startswith("async")
    cls = dynamodb_limits.AsyncDynamoDBStorage if asynchronous else dynamodb_limits.DynamoDBStorage
    values: tuple[Any, ...] = (uri, {}, lf("dynamodb_table"))
    if with_instance:
        values = (uri, {}, cls, lf("dynamodb_table"))
    return [pytest.param(*values, id=scheme.replace("+", "-"))]


#: The storage lists replaced (their argument names), and whether they name the class.
_REPLACED = {
    "uri, args, fixture": False,
    "uri, args, expected_instance, fixture": True,
}


def _rewrite(obj: Any, path: str, owner: str) -> None:
    marks = getattr(obj, "pytestmark", None)
    if not isinstance(marks, list):
        return
    scheme = "async+dynamodb" if "/aio/" in path or "Async" in owner else "dynamodb"
    for i, mark in enumerate(marks):
        if mark.name == "parametrize" and mark.args[0] in _REPLACED:
            replaced = _params(_REPLACED[mark.args[0]], scheme)
            marks[i] = pytest.mark.parametrize(mark.args[0], replaced).mark


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> None:
    path = str(collector.path)
    if isinstance(obj, type):
        _rewrite(obj, path, name)
        for member in vars(obj).values():
            _rewrite(member, path, name)
    else:
        _rewrite(obj, path, collector.name)
