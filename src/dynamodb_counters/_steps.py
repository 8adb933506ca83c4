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
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from ._io import DynamoIO

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


def wall_clock() -> float:
    """What the executors answer :data:`NOW` with (``time.time()``). A seam: a test replaces it
    (``monkeypatch.setattr(_steps, "wall_clock", ...)``) to move time on, e.g. past a hold's
    expiry, without sleeping."""
    return time.time()


class Progress:
    """One operation on its way through an executor.

    :meth:`advance` runs the operation as far as it can: it answers the clocks (:data:`NOW`,
    :data:`ELAPSED`) itself, and requests and pauses too when given a ``send`` and a ``sleep``
    that block (the sync executor); otherwise it returns the request or pause for the caller to
    await and answer through ``answer`` or ``failure`` (the async executor, ``_aio_io``). A
    failed request's exception (an ``Exception``) is thrown into the operation, which
    interprets it. A cancellation or an interrupt is not: it ends the run, and leaving the
    ``with`` block closes the operation.
    """

    __slots__ = ("answer", "failure", "steps", "value")

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps = steps
        self.answer: Any = None
        self.failure: Exception | None = None
        self.value: Any = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.steps.close()

    def advance(
        self,
        send: Callable[[Send], Any] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Send | Sleep | None:
        """The next request or pause the caller must take; None once the operation returned
        (its result in ``value``)."""
        steps = self.steps
        while True:
            try:
                if self.failure is None:
                    step = steps.send(self.answer)
                else:
                    failure, self.failure = self.failure, None
                    step = steps.throw(failure)
            except StopIteration as returned:
                self.value = returned.value
                return None
            self.answer = None
            if isinstance(step, Send):
                if send is None:
                    return step
                try:
                    self.answer = send(step)
                except Exception as exc:
                    self.failure = exc
            elif isinstance(step, Sleep):
                if sleep is None:
                    return step
                sleep(step.seconds)
            else:
                self.answer = time.monotonic() if isinstance(step, Elapsed) else wall_clock()


def run_sync(io: DynamoIO, steps: Steps[T]) -> T:
    """Run ``steps`` with botocore (see :class:`Progress`)."""
    with Progress(steps) as run:
        run.advance(io.send, time.sleep)
        value: T = run.value  # (not typing.cast: a function call on every operation)
        return value


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
