"""Stand-in for the lead's ``_steps`` protocol (same names and shapes); main's module replaces
this file on merge.

A strategy operation is a generator of steps: it yields :class:`Send` (one DynamoDB request),
:class:`Sleep` or :class:`Now`, receives each answer (or has the request's exception thrown in),
and returns its result. An executor runs it: :func:`run_sync` here, ``_aio_io.run_async``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ._io import About, DynamoIO

T = TypeVar("T")


@dataclass(slots=True)
class Send:
    """One DynamoDB request a strategy wants sent."""

    operation: str
    params: dict[str, Any]
    counter: str | None = None
    strategy: str | None = None
    retried: list[BaseException] | None = None

    @property
    def about(self) -> About:
        """What :meth:`DynamoIO.call` takes besides the operation and its parameters."""
        return {"counter": self.counter, "strategy": self.strategy, "retried": self.retried}


@dataclass(slots=True)
class Sleep:
    seconds: float


class Now:
    """Asks the executor for ``time.time()``."""


Step = Send | Sleep | Now
Steps = Generator[Step, Any, T]


async def drive(
    steps: Steps[T],
    send: Callable[[Send], Awaitable[dict[str, Any]]],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """The one executor loop, for both I/O styles: send each :class:`Send` with ``send``, sleep,
    tell the time; a failed request's exception (an ``Exception``) is thrown into the generator.
    A cancellation or an interrupt is not: it ends the run and closes the generator.

    With ``send`` and ``sleep`` that never suspend, the coroutine finishes in its first step,
    which is how :func:`run_sync` runs it without an event loop.
    """
    answer: Any = None
    failure: Exception | None = None
    try:
        while True:
            try:
                step = steps.send(answer) if failure is None else steps.throw(failure)
            except StopIteration as done:
                return cast(T, done.value)
            answer, failure = None, None
            if isinstance(step, Send):
                try:
                    answer = await send(step)
                except Exception as exc:
                    failure = exc
            elif isinstance(step, Sleep):
                await sleep(step.seconds)
            else:
                answer = time.time()
    finally:
        steps.close()


def run_sync(io: DynamoIO, steps: Steps[T]) -> T:
    """Run ``steps`` with botocore (see :func:`drive`)."""

    async def send(step: Send) -> dict[str, Any]:
        return io.call(step.operation, step.params, **step.about)

    async def sleep(seconds: float) -> None:
        time.sleep(seconds)

    running = drive(steps, send, sleep)
    try:
        running.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    running.close()
    raise RuntimeError("a sync run suspended: only the async executor awaits")
