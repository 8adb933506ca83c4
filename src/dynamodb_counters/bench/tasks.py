"""Workers as asyncio tasks (``bench --async``): one event loop, in a thread of its own.

The bench itself stays synchronous (targets one after another, a monitor thread reading from
the side, progress bars, Ctrl-C in the main thread); only the workers of a target run as tasks,
on an event loop that lives as long as the run, so that its one aiobotocore client (bound to
that loop) serves every target and round. The main thread waits for the loop's work in short
slices: Ctrl-C stops the run within a slice, as with threads, and cancels the tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: How often the main thread looks up from waiting on the loop (Ctrl-C is seen between).
_SLICE = 0.1


class LoopThread:
    """An asyncio event loop running in a daemon thread; :meth:`run` hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bench-event-loop", daemon=True
        )
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``work`` on the loop and return its result (or raise its error).

        Raises:
            TimeoutError: ``timeout`` seconds passed (``work`` is cancelled).
        """
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        waited = 0.0
        try:
            while True:
                try:
                    return future.result(timeout=_SLICE)
                except concurrent.futures.TimeoutError:
                    waited += _SLICE
                    if timeout is not None and waited >= timeout:
                        raise TimeoutError(f"no answer within {timeout:g} s") from None
        except BaseException:
            future.cancel()  # Ctrl-C, a timeout: the tasks stop at their next await
            raise

    def close(self, *, budget: float) -> None:
        """Stop the loop; wait for it at most ``budget`` seconds (a daemon thread otherwise)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(budget)
        if not self._thread.is_alive():
            self.loop.close()


async def in_tasks(
    count: int, body: Callable[[int], Awaitable[T]], stop: threading.Event
) -> list[T]:
    """``[await body(0), ..., await body(count - 1)]``, each in a task of its own, all at once.

    The first error sets ``stop``, cancels the other tasks and is raised at once (as
    :func:`~.runner.in_daemon_threads` does for threads); so does cancelling this coroutine.
    """

    async def run(index: int) -> T:
        return await body(index)

    tasks = [asyncio.create_task(run(index), name=f"bench-{index}") for index in range(count)]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            error = task.exception() if task in done else None
            if error is not None:
                raise error
    except BaseException:
        stop.set()
        for task in tasks:
            task.cancel()
        raise
    return [task.result() for task in tasks]
