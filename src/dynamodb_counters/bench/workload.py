"""The workload: options, the operations each worker sends, and the ledger of what was acknowledged.

Every worker gets its own list of operations, generated from the run's seed and the worker's
index only, so every strategy (and the raw baseline) faces exactly the same requests. Each
operation has its own request id; idempotent strategies receive it, non-idempotent ones cannot
take one (the id then only keys the ledger). A worker records, per ``add()`` call, its outcome
and latency, and per request id whether it was acknowledged: the ledger the drift is measured
against (expected = initial + the amounts of the acknowledged distinct request ids).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from ..errors import (
    CapacityExceeded,
    ContentionError,
    CounterError,
    InvalidInput,
    ThresholdExceeded,
)
from ..results import AddResult

APP_RETRY_POLICIES = ("same-id", "give-up")
SDK_RETRY_MODES = ("standard", "adaptive", "legacy")

# Errors after which the outcome is unknown or nothing happened: an application may try again.
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "InternalFailure",
        "TransactionConflictException",
        "TransactionInProgressException",
        "TransactionCanceledException",
    }
)


@dataclass(frozen=True, slots=True)
class Mix:
    """What the operations are: ``increment_share`` of them add ``1..amount``, the rest
    subtract ``1..amount``; ``duplicate_rate`` of them are sent a second time (same id)."""

    increment_share: float = 0.5
    amount: int = 1
    duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("increment_share", "duplicate_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidInput(f"{name} must be a number from 0 to 1, got {value!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 1:
            raise InvalidInput(f"amount must be a positive int, got {self.amount!r}")


@dataclass(frozen=True, slots=True)
class AppRetry:
    """The application's own retry policy for an ``add()`` that raised an error whose outcome
    is unknown (or that changed nothing): ``same-id`` sends it again, up to ``limit`` times;
    ``give-up`` records the error."""

    policy: str = "same-id"
    limit: int = 3

    def __post_init__(self) -> None:
        if self.policy not in APP_RETRY_POLICIES:
            raise InvalidInput(f"app retry policy must be one of {', '.join(APP_RETRY_POLICIES)}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise InvalidInput("app retry limit must be an int >= 0")


@dataclass(frozen=True, slots=True)
class Op:
    request_id: str
    amount: int
    duplicate: bool


def plan_ops(*, seed: int, worker: int, ops: int, mix: Mix) -> list[Op]:
    """The operations of one worker: the same for every strategy of a run."""
    rng = random.Random(f"dynamodb-counters-bench/{seed}/{worker}")
    planned = []
    for index in range(ops):
        sign = 1 if rng.random() < mix.increment_share else -1
        magnitude = rng.randint(1, mix.amount)
        duplicate = rng.random() < mix.duplicate_rate
        planned.append(Op(f"s{seed}-w{worker}-{index:07d}", sign * magnitude, duplicate))
    return planned


@dataclass(slots=True)
class WorkerOutcome:
    """What one worker saw; merged across workers into a strategy's figures."""

    attempted: int = 0
    acknowledged: int = 0
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0
    rejected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    app_retries: int = 0
    duplicate_sends: int = 0
    sdk_retries: int = 0
    library_requests: int = 0
    latencies: list[float] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    values_seen: list[int] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def merge(self, other: WorkerOutcome) -> None:
        self.attempted += other.attempted
        self.acknowledged += other.acknowledged
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.unknown += other.unknown
        self.rejected += other.rejected
        self.errors.update(other.errors)
        self.app_retries += other.app_retries
        self.duplicate_sends += other.duplicate_sends
        self.sdk_retries += other.sdk_retries
        self.library_requests += other.library_requests
        self.latencies.extend(other.latencies)
        self.acked.update(other.acked)
        self.values_seen.extend(other.values_seen)
        self.started = min(self.started, other.started) if self.started else other.started
        self.finished = max(self.finished, other.finished)


class BenchAborted(Exception):
    """An error no retry can help (no credentials, a bad request, no endpoint): the run
    stops and the error is reported as is, instead of a table full of failures."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries with its cause
        return (BenchAborted, (self.cause,))


def _fatal(exc: BaseException) -> bool:
    if isinstance(exc, ConnectTimeoutError):  # a busy endpoint, not a missing one
        return False
    return isinstance(
        exc, NoCredentialsError | NoRegionError | ParamValidationError | EndpointConnectionError
    )


def _retryable(exc: BaseException) -> bool:
    """The outcome is unknown or nothing happened: the application may send it again."""
    if isinstance(exc, ContentionError | ReadTimeoutError | ConnectTimeoutError):
        return True
    if isinstance(exc, ConnectionClosedError):
        return True
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code")) in _RETRYABLE_CODES
    return False


Adder = Callable[[int, "str | None"], AddResult]
AsyncAdder = Callable[[int, "str | None"], Awaitable[AddResult]]
_A = TypeVar("_A", Adder, AsyncAdder)


class _Books(Generic[_A]):
    """What a worker does between its sends, whatever sends them: the ledger and the outcome
    of each request, and the application's retry decision. :class:`Worker` (threads) and
    :class:`AsyncWorker` (asyncio tasks) only add the sending."""

    def __init__(
        self,
        add: _A,
        *,
        idempotent: bool,
        retry: AppRetry,
        tick: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._add: _A = add
        self.stop = stop
        self.idempotent = idempotent
        self.retry = retry
        self.tick = tick
        self.outcome = WorkerOutcome()

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _begin(self, op: Op) -> tuple[str | None, float]:
        """Count a request; its id as the target takes it, and when it started."""
        self.outcome.attempted += 1
        return (op.request_id if self.idempotent else None), time.perf_counter()

    def _failed(self, exc: BaseException) -> bool:
        """Book a request that raised ``exc``; False if ``exc`` is not the request's outcome
        (it stops the worker instead)."""
        out = self.outcome
        if isinstance(exc, ThresholdExceeded):
            out.rejected += 1
        elif isinstance(exc, CapacityExceeded):
            out.errors["CapacityExceeded"] += 1
        elif isinstance(exc, CounterError | ClientError | BotoCoreError):
            out.errors[_error_name(exc)] += 1
        else:
            return False
        return True

    def _acknowledged(self, op: Op, result: AddResult) -> None:
        out = self.outcome
        out.acknowledged += 1
        out.sdk_retries += result.sdk_retries
        out.library_requests += result.requests
        if result.applied is True:
            out.applied += 1
        elif result.applied is False:
            out.duplicates += 1
        else:
            out.unknown += 1
        if result.value is not None:
            out.values_seen.append(result.value)
        # The ledger: the request is counted once, whichever send acknowledged it.
        out.acked[op.request_id] = op.amount

    def _again(self, exc: BaseException, tries: int) -> bool:
        """Whether the application sends a failed ``add()`` again (``tries`` so far).

        Raises:
            BenchAborted: an error no retry can help.
        """
        if isinstance(exc, ThresholdExceeded | CapacityExceeded):
            return False
        if not isinstance(exc, CounterError | ClientError | BotoCoreError):
            return False
        if _fatal(exc):
            raise BenchAborted(exc) from exc
        if self.retry.policy != "same-id" or tries >= self.retry.limit:
            return False
        if not _retryable(exc):
            return False
        # The run is stopping: no more retries of a request that hangs.
        if self._stopped():
            return False
        self.outcome.app_retries += 1
        return True


class Worker(_Books[Adder]):
    """Sends one worker's operations through ``add`` and keeps the books.

    Args:
        add: ``add(amount, request_id)``; ``request_id`` is None for non-idempotent strategies.
        idempotent: whether to pass request ids.
        retry: the application's retry policy.
        tick: called after each operation (progress bars).
        stop: when set, the worker stops before its next operation or application retry.
    """

    def run(self, ops: list[Op]) -> WorkerOutcome:
        out = self.outcome
        out.started = time.perf_counter()
        for op in ops:
            if self._stopped():
                break
            self._send(op)
            if op.duplicate:
                out.duplicate_sends += 1
                self._send(op)
            if self.tick is not None:
                self.tick()
        out.finished = time.perf_counter()
        return out

    def _send(self, op: Op) -> None:
        """One request as the application sees it: its retries (same id) are part of it, in
        its latency and not counted as further requests."""
        request_id, started = self._begin(op)
        tries = 0
        try:
            while True:
                try:
                    result = self._add(op.amount, request_id)
                    break
                except Exception as exc:
                    if not self._again(exc, tries):
                        raise
                    tries += 1
        except Exception as exc:
            if not self._failed(exc):
                raise
            return
        finally:
            self.outcome.latencies.append(time.perf_counter() - started)
        self._acknowledged(op, result)


class AsyncWorker(_Books[AsyncAdder]):
    """:class:`Worker` as an asyncio task: ``add`` is awaited; the same books."""

    async def run(self, ops: list[Op]) -> WorkerOutcome:
        out = self.outcome
        out.started = time.perf_counter()
        for op in ops:
            if self._stopped():
                break
            await self._send(op)
            if op.duplicate:
                out.duplicate_sends += 1
                await self._send(op)
            if self.tick is not None:
                self.tick()
        out.finished = time.perf_counter()
        return out

    async def _send(self, op: Op) -> None:
        """See :meth:`Worker._send`."""
        request_id, started = self._begin(op)
        tries = 0
        try:
            while True:
                try:
                    result = await self._add(op.amount, request_id)
                    break
                except Exception as exc:
                    if not self._again(exc, tries):
                        raise
                    tries += 1
        except Exception as exc:
            if not self._failed(exc):
                raise
            return
        finally:
            self.outcome.latencies.append(time.perf_counter() - started)
        self._acknowledged(op, result)


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def expected_value(initial: int, acked: dict[str, int]) -> int:
    """The ledger's value: initial plus each acknowledged request id's amount, once."""
    return initial + sum(acked.values())
