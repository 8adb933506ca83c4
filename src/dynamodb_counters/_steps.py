"""Strategy logic without I/O: operations are generators of steps, run by an executor.

A strategy's ``add``, ``create``, ``value``, ``delete`` and ``compact`` are generators. Each
yields what it needs from the outside world -- a request sent (:class:`Send`), a pause
(:class:`Sleep`), the time (:data:`NOW`; :data:`ELAPSED` for deadlines) -- and receives the
answer; a failed request is
thrown back into the generator as the exception botocore raised, so the strategy interprets
its own errors. The generator's return value is the operation's result.

Nothing here sends, sleeps or reads a clock: :func:`run_sync` does that with botocore (and
``dynamodb_counters.aio`` with aiobotocore), and a test can drive a generator by hand with
canned answers::

    steps = strategy.add_steps(-1, request_id="order-1")
    request = next(steps)                      # Send("TransactWriteItems", {...})
    steps.throw(ReadTimeoutError(endpoint_url="x"))   # a lost answer
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from ._io import About, DynamoIO

T = TypeVar("T")


@dataclass(slots=True)
class Send:
    """One DynamoDB request to send; the answer is botocore's parsed response."""

    operation: str
    params: dict[str, Any]
    counter: str | None = None
    strategy: str | None = None
    #: The executor appends the failures botocore met and retried during the request.
    retried: list[BaseException] | None = None

    @property
    def about(self) -> About:
        """What :meth:`DynamoIO.call` takes besides the operation and its parameters."""
        return {"counter": self.counter, "strategy": self.strategy, "retried": self.retried}


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this long (backoff); the answer is None."""

    seconds: float


#: A batch request's unprocessed keys (throttled) are sent again this many times in all, with
#: :func:`unprocessed_pause` between tries; then the operation raises rather than report a
#: half-done batch as done.
BATCH_TRIES = 49
#: The longest pause between two tries of a batch's unprocessed keys, in seconds.
BATCH_PAUSE_CAP = 0.5


def unprocessed_pause(attempt: int) -> Sleep:
    """The pause before try ``attempt + 1`` of a batch's unprocessed keys: 20 ms, doubling,
    at most :data:`BATCH_PAUSE_CAP`."""
    return Sleep(min(BATCH_PAUSE_CAP, 0.01 * 2**attempt))


class Now:
    """Ask for the wall clock (epoch seconds, a float); :data:`NOW` is one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOW"


NOW: Final = Now()


class Elapsed:
    """Ask for a monotonic clock (seconds, a float), for deadlines; :data:`ELAPSED` is one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ELAPSED"


ELAPSED: Final = Elapsed()

Step = Send | Sleep | Now | Elapsed
#: An operation: yields steps, receives their answers, returns its result.
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
            elif isinstance(step, Elapsed):
                answer = time.monotonic()
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


def result_of(steps: Steps[T], *answers: Any) -> T:
    """Drive ``steps`` with canned answers, in order (an exception is thrown in); for tests.
    Raises RuntimeError when the operation asks for more than it was given."""
    feed = iter(answers)
    try:
        step = next(steps)
        while True:
            answer = next(feed, _NONE_LEFT)
            if answer is _NONE_LEFT:
                raise RuntimeError(f"no canned answer left for {step!r}")
            if isinstance(answer, BaseException):
                step = steps.throw(answer)
                continue
            step = steps.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


_NONE_LEFT = object()


def done(value: T) -> Steps[T]:
    """An operation that needs nothing from outside: returns ``value`` at once."""
    return value
    yield  # pragma: no cover -- makes this a generator
