"""What the library tells operators: logs (the ``logging`` module) and, when a store is
instrumented, metrics (:mod:`dynamodb_counters.otel`).

Logs go to the ``dynamodb_counters`` logger's children, one per module (``dynamodb_counters._io``
for requests, ``dynamodb_counters.strategies.base`` for retry decisions); the package adds only
a ``NullHandler``. Levels:

* DEBUG: every request (operation, counter, strategy, seconds, SDK retries, error code, AWS
  request id), every re-send botocore made below the library, every retry the library decides
  (a transaction conflict, an ambiguous failure).
* WARNING: a throttle that reached the library after botocore's retries, optimistic or
  transaction contention exhausted (``ContentionError``), an ambiguous add re-raised (its
  outcome unknown).

Each record carries structured ``extra`` fields (``operation``, ``counter``, ``strategy``,
``amount``, ``request_id``, ``reason``, ``error_code``, ``seconds``, ``sdk_retries``,
``aws_request_id``, ``attempt``), never credentials and never item contents beyond the counter's
name, the amount and the request id.

Metrics: a :class:`Telemetry` set on a store's executor (``io.telemetry``) hears every request;
while one of that store's operations runs, it is also in :data:`ACTIVE`, so that the retry
decisions taken inside the (I/O-free) strategy code reach it without a reference to the store.
A telemetry that raises is logged at DEBUG and changes no outcome.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._steps import Send
    from .results import AddResult

REQUESTS = logging.getLogger("dynamodb_counters._io")
RETRIES = logging.getLogger("dynamodb_counters.strategies.base")

#: Errors DynamoDB answers when it throttles (never applied).
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)
_CONFLICT_CODES = frozenset({"TransactionConflictException", "TransactionCanceledException"})


def reason_of(code: str | None) -> str:
    """Why a request was retried: ``throttle``, ``conflict`` or ``ambiguity``."""
    if code in THROTTLE_CODES:
        return "throttle"
    if code in _CONFLICT_CODES:
        return "conflict"
    return "ambiguity"


class Telemetry:
    """Receives what a store does (no-op methods; :mod:`dynamodb_counters.otel` fills them).

    Every method is called through :func:`safely`: an exception it raises is logged and
    swallowed, so an exporter that fails never changes a counter's outcome.
    """

    def request(
        self,
        step: Send,
        seconds: float,
        answer: dict[str, Any] | None,
        error_code: str | None,
        retried: list[BaseException],
    ) -> None:
        """One request ended (``answer``: botocore's parsed answer or error answer;
        ``retried``: the failures botocore re-sent after)."""

    def retry(self, reason: str, strategy: str | None) -> None:
        """The library decided to try an operation again (``conflict`` or ``ambiguity``)."""

    def operation(
        self, name: str, counter: str, strategy: str | None, outcome: str, seconds: float
    ) -> None:
        """One operation (``add``) ended: ``applied``, ``duplicate``, ``refused`` (a bound),
        ``unknown`` (the strategy cannot tell: ``applied`` is None) or ``error``."""


#: The telemetry of the store whose operation runs in this thread or task, if any.
ACTIVE: ContextVar[Telemetry | None] = ContextVar("dynamodb_counters_telemetry", default=None)


def safely(method: Any, *args: Any) -> None:
    try:
        method(*args)
    except Exception:  # an exporter's failure is not the counter's
        REQUESTS.debug("telemetry failed", exc_info=True)


def request_ended(
    telemetry: Telemetry | None,
    step: Send,
    seconds: float,
    answer: dict[str, Any] | None,
    error_code: str | None,
) -> None:
    """Log one request (and tell the store's telemetry): called by the executor's seam."""
    failures = list(step.retried or ())
    if failures and error_code is not None and _code(failures[-1]) == error_code:
        failures.pop()  # the last failure seen is the one raised, not retried
    retried = [_code(x) for x in failures]
    if REQUESTS.isEnabledFor(logging.DEBUG):
        metadata = (answer or {}).get("ResponseMetadata", {})
        extra = {
            "operation": step.operation,
            "counter": step.counter,
            "strategy": step.strategy,
            "seconds": round(seconds, 6),
            "sdk_retries": len(retried),
            "error_code": error_code,
            "aws_request_id": metadata.get("RequestId"),
        }
        for code in retried:
            REQUESTS.debug(
                "botocore re-sent %s after %s",
                step.operation,
                code,
                extra={**extra, "reason": reason_of(code), "error_code": code},
            )
        REQUESTS.debug(
            "%s %s in %.3f s%s",
            step.operation,
            "failed" if error_code else "ok",
            seconds,
            f": {error_code}" if error_code else "",
            extra=extra,
        )
    if error_code in THROTTLE_CODES:
        REQUESTS.warning(
            "%s on %r throttled after botocore's retries: %s",
            step.operation,
            step.counter,
            error_code,
            extra={
                "operation": step.operation,
                "counter": step.counter,
                "strategy": step.strategy,
                "error_code": error_code,
                "sdk_retries": len(retried),
            },
        )
    if telemetry is not None:
        safely(telemetry.request, step, seconds, answer, error_code, failures)


def _code(failure: BaseException) -> str:
    from ._io import error_code

    return error_code(failure)


def retrying(
    reason: str, counter: str, strategy: str, attempt: int, failure: BaseException | None
) -> None:
    """The library tries an operation again (a conflict, an ambiguous failure)."""
    if RETRIES.isEnabledFor(logging.DEBUG):
        RETRIES.debug(
            "%r (%s): try %d after %s",
            counter,
            strategy,
            attempt + 1,
            reason,
            extra={
                "counter": counter,
                "strategy": strategy,
                "reason": reason,
                "attempt": attempt,
                "error_code": None if failure is None else _code(failure),
            },
        )
    telemetry = ACTIVE.get()
    if telemetry is not None:
        safely(telemetry.retry, reason, strategy)


def gave_up(
    what: str,
    counter: str,
    strategy: str,
    *,
    amount: int | None,
    request_id: str | None,
    failure: BaseException | None,
) -> None:
    """WARNING: contention exhausted, or an ambiguous add re-raised (``what``)."""
    RETRIES.warning(
        "%r (%s): %s%s",
        counter,
        strategy,
        what,
        "" if failure is None else f" ({_code(failure)})",
        extra={
            "counter": counter,
            "strategy": strategy,
            "reason": what,
            "amount": amount,
            "request_id": request_id,
            "error_code": None if failure is None else _code(failure),
        },
    )


class Observed:
    """Around one operation of an instrumented store: makes its telemetry :data:`ACTIVE`
    (for the retry decisions inside), and tells it the outcome and the time taken."""

    __slots__ = ("_start", "_token", "counter", "handle", "name", "result", "telemetry")

    def __init__(self, telemetry: Telemetry, name: str, handle: Any) -> None:
        self.telemetry = telemetry
        self.name = name
        self.handle = handle
        self.result: AddResult | None = None

    def __enter__(self) -> Observed:
        self._token: Token[Telemetry | None] = ACTIVE.set(self.telemetry)
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: object, failure: BaseException | None, tb: object) -> None:
        ACTIVE.reset(self._token)
        strategy = getattr(self.handle._strategy, "name", None)
        outcome = outcome_of(self.result, failure)
        seconds = time.perf_counter() - self._start
        safely(self.telemetry.operation, self.name, self.handle.name, strategy, outcome, seconds)


def outcome_of(result: AddResult | None, failure: BaseException | None) -> str:
    """``applied``, ``duplicate``, ``unknown``, ``refused`` or ``error``."""
    if failure is not None:
        from .errors import ThresholdExceeded

        return "refused" if isinstance(failure, ThresholdExceeded) else "error"
    if result is None or result.applied is None:
        return "unknown"
    return "applied" if result.applied else "duplicate"
