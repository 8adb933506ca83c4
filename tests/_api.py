"""The async API, usable from the synchronous test suites, so that they can be parametrised over
``api=["sync", "async"]`` instead of copied.

One event loop runs in a background thread for the whole test process. :class:`SyncView` wraps
any object with async methods: ``SyncView(obj).m(...)`` runs ``obj.m(...)`` on that loop and
blocks until it is done, from any thread (threads of a concurrent test become tasks on the one
loop, as an async application's would). What comes back is viewed the same way:

* an awaitable is awaited on the loop, and its result viewed;
* an async iterator becomes a lazy iterator (each item fetched on the loop);
* an object with async methods (e.g. a counter handle) becomes a ``SyncView`` itself;
* anything else (ints, results, definitions) is returned as it is.

``with SyncView(cm) as x`` enters an async context manager on the loop. Exceptions are the
coroutine's own, so ``pytest.raises(ThresholdExceeded)`` works unchanged. Aiobotocore clients
must be opened on the loop too (:func:`opened`), and ``unwrap`` gives the async object back::

    with opened(ddb.async_client()) as client:                # the raw aiobotocore client
        store = SyncView(AsyncCounterStore(client, table))    # behaves like CounterStore
        store.counter("c", strategy="marker").create(initial=5)

Never call a view from the loop's own thread (a hook run on the loop): that would wait for
itself, so it raises ``RuntimeError`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The background event loop (started on first use; a daemon thread, for the process)."""
    global _loop, _thread
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="async-api-loop", daemon=True)
            _thread.start()
        return _loop


def run(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` on the background loop; its result, or its exception raised here."""
    running = loop()
    if threading.current_thread() is _thread:
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never to run: no "never awaited" warning
        raise RuntimeError("a SyncView was called on its own event loop: it would wait forever")

    async def wait() -> T:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(wait(), running).result()


@contextlib.contextmanager
def opened(manager: Any) -> Iterator[Any]:
    """Enter the async context manager ``manager`` on the background loop; yields what its
    ``__aenter__`` gives, as it is (e.g. an aiobotocore client for an async store)."""
    entered = run(manager.__aenter__())
    try:
        yield entered
    except BaseException as exc:
        if not run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        run(manager.__aexit__(None, None, None))


def unwrap(value: Any) -> Any:
    """The async object behind a :class:`SyncView` (anything else as it is)."""
    return value._SyncView__target if isinstance(value, SyncView) else value


_ASYNC_KINDS: dict[type, bool] = {}


def _has_async_methods(kind: type) -> bool:
    """Whether instances of ``kind`` have public async methods (remembered per type)."""
    known = _ASYNC_KINDS.get(kind)
    if known is None:
        known = _ASYNC_KINDS[kind] = any(
            inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
            for name, member in inspect.getmembers(kind)
            if not name.startswith("_")
        )
    return known


def view(value: Any) -> Any:
    """``value`` as the sync side sees it (see the module docstring)."""
    if inspect.isawaitable(value):
        value = run(value)
    if isinstance(value, AsyncIterator):
        return _Iterator(value)
    if not isinstance(value, SyncView) and _has_async_methods(type(value)):
        return SyncView(value)
    return value


class _Iterator(Iterator[Any]):
    def __init__(self, items: AsyncIterator[Any]) -> None:
        self._items = items

    def __next__(self) -> Any:
        try:
            return view(run(anext(self._items)))
        except StopAsyncIteration:
            raise StopIteration from None


class SyncView(Generic[T]):
    """A synchronous view of ``target``, an object with async methods (see the module)."""

    __slots__ = ("__target",)

    def __init__(self, target: T) -> None:
        self.__target = target

    def __getattr__(self, name: str) -> Any:
        member = getattr(self.__target, name)
        if not callable(member) or isinstance(member, type):
            return view(member)

        @functools.wraps(member)
        def synchronously(*args: Any, **kwargs: Any) -> Any:
            return view(member(*args, **kwargs))

        return synchronously

    def __enter__(self) -> Any:
        return view(self.__target.__aenter__())  # type: ignore[attr-defined]

    def __exit__(self, *exc: Any) -> Any:
        return run(self.__target.__aexit__(*exc))  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        return _Iterator(self.__target.__aiter__())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"SyncView({self.__target!r})"


__all__ = ["SyncView", "loop", "opened", "run", "unwrap", "view"]
