"""tests/_api.py: a synchronous view of any object with async methods, on one background loop
(the way the suites will run AsyncCounterStore through the sync tests)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import pytest

from _api import SyncView, loop, opened, run, unwrap
from dynamodb_counters.local import DynamoDBLocal


class Toy:
    """A store-like toy: async methods, a handle factory, an async listing, a plain property."""

    def __init__(self, name: str = "toy") -> None:
        self.name = name
        self.total = 0
        self.threads: set[str] = set()
        self.closed = False

    async def add(self, amount: int) -> int:
        self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0.001)  # a real suspension: other tasks run meanwhile
        self.total += amount
        return self.total

    async def fail(self) -> None:
        raise ValueError("no such thing")

    def child(self, name: str) -> Toy:
        return Toy(name)  # no request: like store.counter(...)

    async def names(self) -> AsyncIterator[str]:
        for name in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True


def test_methods_run_on_the_background_loop() -> None:
    toy = Toy()
    view = SyncView(toy)
    assert view.add(2) == 2
    assert view.add(3) == 5
    assert view.name == "toy"
    assert toy.threads == {"async-api-loop"}
    assert unwrap(view) is toy


def test_handles_listings_errors_and_context_managers_are_viewed() -> None:
    view = SyncView(Toy())
    child = view.child("c1")
    assert isinstance(child, SyncView)
    assert (child.name, child.add(7)) == ("c1", 7)
    names = view.names()
    assert next(names) == "a"  # lazy: one item at a time
    assert list(names) == ["b", "c"]
    with pytest.raises(ValueError, match="no such thing"):
        view.fail()
    toy = Toy()
    with SyncView(toy) as entered:
        assert entered.add(1) == 1
    assert toy.closed


def test_threads_become_tasks_on_one_loop() -> None:
    toy = Toy()
    view = SyncView(toy)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: view.add(1), range(64)))
    assert toy.total == 64
    assert toy.threads == {"async-api-loop"}


def test_a_view_called_on_its_own_loop_refuses_to_wait_for_itself() -> None:
    async def inside() -> None:
        SyncView(Toy()).add(1)

    with pytest.raises(RuntimeError, match="its own event loop"):
        run(inside())
    assert loop().is_running()


def test_an_aiobotocore_client_opened_on_the_loop(ddb: DynamoDBLocal, table: str) -> None:
    with opened(ddb.async_client()) as client:
        assert not isinstance(client, SyncView)  # raw, for an async store
        described: Any = SyncView(client).describe_table(TableName=table)
    assert described["Table"]["TableName"] == table
