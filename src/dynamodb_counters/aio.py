"""The async API: the same counters on an aiobotocore client (SPEC section 9).

::

    from aiobotocore.session import get_session
    from dynamodb_counters.aio import AsyncCounterStore

    async with get_session().create_client("dynamodb") as client:
        store = AsyncCounterStore(client, "counters")
        await store.ensure_table()
        seats = store.counter("tickets#gig-42", strategy="marker", floor=0)
        await seats.create(initial=100)
        result = await seats.add(-2, request_id="order-81")

Same names, semantics, exceptions and guarantees as :class:`~dynamodb_counters.CounterStore`
and :class:`~dynamodb_counters.Counter`: both run the very same steps
(:mod:`dynamodb_counters._steps`); only the executor differs. ``counter.definition``,
``.strategy``, ``.floor`` and ``.ceiling`` are awaitables here (the first may read the counter).
Install with ``pip install 'dynamodb-counters[async]'``; the sync package never imports this
module or aiobotocore.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ._aio_hooks import is_async_client
from ._aio_io import AsyncDynamoIO, run_async
from ._observe import Observed
from ._steps import Steps
from .errors import CounterError, InvalidInput
from .quota import AsyncQuota
from .results import AddResult, CounterDefinition, Hold
from .store import FIRST_USE_LOCKS, HandleCore, StoreCore
from .table import TableReport, warn_about

if TYPE_CHECKING:
    # The stub package's client type (types-aiobotocore[dynamodb]); a string at run time.
    from types_aiobotocore_dynamodb import DynamoDBClient as AioDynamoDBClient  # noqa: F401

    from .strategies import Strategy

_T = TypeVar("_T")

__all__ = ["AsyncCounter", "AsyncCounterStore", "AsyncQuota"]


class AsyncCounter(HandleCore):
    """One counter, awaited; see :class:`~dynamodb_counters.Counter` for each operation."""

    async def _drive(self, steps: Steps[_T]) -> _T:
        return await run_async(self._store._io, steps)

    def _drive_known(self, steps: Steps[_T]) -> Awaitable[_T]:
        """As ``Counter._drive_known``: many tasks on a new handle read the counter once. (Not
        a coroutine itself: a known counter's operation is awaited with one frame less.)"""
        if self._name in self._store._known:
            return run_async(self._store._io, steps)
        return self._learn_then(steps)

    async def _learn_then(self, steps: Steps[_T]) -> _T:
        async with self._store._first_use(self._name):
            if self._name not in self._store._known:
                with contextlib.suppress(CounterError):  # the operation says it again
                    await self._drive(self._current_steps())
        return await run_async(self._store._io, steps)

    async def _current(self) -> Strategy:
        return await self._drive(self._current_steps())

    @property
    def definition(self) -> Awaitable[CounterDefinition]:
        """Await the stored :class:`CounterDefinition` (read once from the counter item)."""
        return self._drive_known(self._definition_steps())

    @property
    def strategy(self) -> Awaitable[str]:
        """Await the stored strategy id."""
        return self._field(lambda d: d.strategy)

    @property
    def floor(self) -> Awaitable[int | None]:
        """Await the stored floor."""
        return self._field(lambda d: d.floor)

    @property
    def ceiling(self) -> Awaitable[int | None]:
        """Await the stored ceiling."""
        return self._field(lambda d: d.ceiling)

    async def _field(self, pick: Any) -> Any:
        return pick(await self._drive_known(self._definition_steps()))

    async def create(self, initial: int = 0, *, exist_ok: bool = False) -> bool:
        """See :meth:`dynamodb_counters.Counter.create`."""
        return await self._drive(self._create_steps(initial, exist_ok))

    async def add(self, amount: int, *, request_id: str | None = None) -> AddResult:
        """See :meth:`dynamodb_counters.Counter.add`."""
        telemetry = self._store._io.telemetry
        if telemetry is None:
            return await self._drive_known(self._add_steps(amount, request_id))
        with Observed(telemetry, "add", self) as seen:  # dynamodb_counters.otel
            seen.result = result = await self._drive_known(self._add_steps(amount, request_id))
        return result

    async def value(self, *, reclaim: bool = False) -> int:
        """See :meth:`dynamodb_counters.Counter.value`."""
        return await self._drive_known(self._value_steps(reclaim))

    async def reserve(self, amount: int, *, hold_id: str, ttl: float | timedelta) -> Hold:
        """See :meth:`dynamodb_counters.Counter.reserve`."""
        return await self._drive_known(self._reserve_steps(amount, hold_id, ttl))

    async def commit(self, hold_id: str) -> None:
        """See :meth:`dynamodb_counters.Counter.commit`."""
        await self._drive_known(self._commit_steps(hold_id))

    async def cancel(self, hold_id: str) -> None:
        """See :meth:`dynamodb_counters.Counter.cancel`."""
        await self._drive_known(self._cancel_steps(hold_id))

    async def holds(self) -> list[Hold]:
        """See :meth:`dynamodb_counters.Counter.holds`."""
        return await self._drive_known(self._holds_steps())

    async def reclaim(self) -> int:
        """See :meth:`dynamodb_counters.Counter.reclaim`."""
        return await self._drive_known(self._reclaim_steps())

    async def delete(self) -> None:
        """See :meth:`dynamodb_counters.Counter.delete`."""
        await self._drive_known(self._delete_steps())

    async def inspect(self) -> dict[str, Any]:
        """See :meth:`dynamodb_counters.Counter.inspect`."""
        return await self._drive_known(self._inspect_steps())

    async def compact(self, *, older_than: float | timedelta = 0) -> int:
        """See :meth:`dynamodb_counters.Counter.compact`."""
        return await self._drive_known(self._compact_steps(older_than))


class AsyncCounterStore(StoreCore[AsyncCounter, "AioDynamoDBClient"]):
    """Counters kept in one DynamoDB table, on an aiobotocore client.

    The arguments are those of :class:`~dynamodb_counters.CounterStore`; ``client`` is an
    aiobotocore DynamoDB client (``get_session().create_client("dynamodb")``, entered). Share
    one store between the tasks of an event loop.
    """

    _handle_type = AsyncCounter

    def _first_use(self, name: str) -> asyncio.Lock:
        return self._first_use_locks[hash(name) % FIRST_USE_LOCKS]

    def _make_io(self, client: Any, table_name: str) -> AsyncDynamoIO:
        # Bounded, whatever names the store is asked about (see FIRST_USE_LOCKS).
        self._first_use_locks = [asyncio.Lock() for _ in range(FIRST_USE_LOCKS)]
        if not is_async_client(client):
            raise InvalidInput(
                "client must be an aiobotocore DynamoDB client "
                "(get_session().create_client('dynamodb'), entered); for a boto3 client use "
                "dynamodb_counters.CounterStore"
            )
        return AsyncDynamoIO(client, table_name)

    async def counters(self, *, scan: bool = False) -> AsyncIterator[str]:
        """The names of the counters in the table, page by page (``async for``); see
        :meth:`dynamodb_counters.CounterStore.counters`."""
        params: dict[str, Any] | None = self._scan_params(scan=scan)
        while params is not None:
            names, params = await run_async(self._io, self._scan_page_steps(params))
            for name in names:
                yield name

    async def values(self, names: Iterable[str]) -> dict[str, int]:
        """See :meth:`dynamodb_counters.CounterStore.values`."""
        return await run_async(self._io, self._values_steps(names))

    def quota(
        self, name: str, *, limit: int, per: float | timedelta, window: str = "fixed"
    ) -> AsyncQuota:
        """See :meth:`dynamodb_counters.CounterStore.quota`; the quota's operations are
        awaited."""
        return AsyncQuota(self._io, self.layout, name, limit=limit, per=per, window=window)

    async def ensure_table(
        self, *, wait_seconds: float = 120.0, enable_ttl: bool = False, create: bool = True
    ) -> TableReport:
        """See :meth:`dynamodb_counters.CounterStore.ensure_table`."""
        steps = self._ensure_table_steps(wait_seconds, enable_ttl, create)
        return warn_about(await run_async(self._io, steps))
