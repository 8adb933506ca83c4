"""The single place that talks to DynamoDB.

Every request of every strategy goes through :meth:`DynamoIO.call` (or its async twin,
``_aio_io.AsyncDynamoIO.call``); both wrap the sending in one :class:`Exchange`, which asks for
consumed capacity, times the call, tells listeners, and turns the few errors that are ours
(a missing table) into library errors. Everything else passes through unchanged, so the
strategies interpret ``ClientError`` codes themselves and a fault injected below botocore's
retries is seen here exactly as an application would see it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from logging import DEBUG as _DEBUG
from typing import Any, TypedDict, Unpack, cast

from botocore.exceptions import ClientError

from . import _observe
from ._steps import Send
from .errors import TableNotFound
from .results import CallRecord

Listener = Callable[[CallRecord], None]

#: Where a listener's own failure is reported (it never reaches the caller of the operation).
logger = logging.getLogger("dynamodb_counters")
# Bound once: the seam asks it on every request (logging caches the answer per level).
_debug_on = _observe.REQUESTS.isEnabledFor


class About(TypedDict, total=False):
    """A request's context, besides its operation and parameters (all optional).

    ``counter`` and ``strategy`` go into the :class:`CallRecord`; ``retried``, when given,
    receives the failures the SDK met and retried during the request, in order (the last may be
    the one raised).
    """

    counter: str | None
    strategy: str | None
    retried: list[BaseException] | None


# Operations whose request accepts ReturnConsumedCapacity.
_CAPACITY_OPS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "BatchGetItem",
        "Scan",
    }
)

_METHODS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "Query": "query",
    "BatchWriteItem": "batch_write_item",
    "TransactWriteItems": "transact_write_items",
    "TransactGetItems": "transact_get_items",
    "DescribeTable": "describe_table",
    "CreateTable": "create_table",
    "DescribeTimeToLive": "describe_time_to_live",
    "UpdateTimeToLive": "update_time_to_live",
    "BatchGetItem": "batch_get_item",
    "Scan": "scan",
}

# Failures botocore met and retried during the current call (this thread or task only).
_RETRIED: ContextVar[list[BaseException] | None] = ContextVar("dynamodb_counters_retried")
_CAPTURE_ID = "dynamodb-counters-capture-retried"


def _capture_retried(
    response: Any = None, caught_exception: Any = None, operation: Any = None, **_: Any
) -> None:
    """botocore ``needs-retry`` handler: remember what failed, so that a re-send's caller can
    tell a throttle (never applied) from a lost answer (maybe applied), and re-raise the
    original error when it must. Decides nothing (returns None)."""
    seen = _RETRIED.get(None)
    if seen is None:
        return
    if caught_exception is not None:
        seen.append(caught_exception)
        return
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else None
    if isinstance(parsed, dict) and parsed.get("Error"):
        name = getattr(operation, "name", "DynamoDB")
        seen.append(ClientError(cast(Any, parsed), name))


def error_code(exc: BaseException) -> str:
    """The DynamoDB error code of a ClientError, or the botocore exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def response_of(exc: ClientError) -> dict[str, Any]:
    """The parsed error answer of a ClientError, as a plain dict."""
    return cast(dict[str, Any], exc.response)


def sdk_retries_of(answer: dict[str, Any]) -> int:
    return int(answer.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)


class BaseIO:
    """What the sync and async executors share: the listeners and the ``needs-retry`` capture;
    :class:`Exchange` does everything around one request but the sending itself."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self._listeners: list[Listener] = []
        #: Metrics for this store's requests (:mod:`dynamodb_counters.otel`); None: off.
        self.telemetry: _observe.Telemetry | None = None
        self._lock = threading.Lock()
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            # First, so it sees every attempt before botocore's retry handler answers.
            # aiobotocore's emitter calls plain handlers in the sending task, so the
            # ContextVar set by Exchange is seen there too.
            events.register_first("needs-retry.dynamodb", _capture_retried, unique_id=_CAPTURE_ID)

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]


class Exchange:
    """One request and its answer, as a ``with`` block around the sending (sync or awaited).

    Entering asks for capacity (``params``), starts the clock and the capture of retried
    failures; leaving turns a missing table into :class:`TableNotFound` and tells the listeners.
    The sender stores botocore's parsed answer in ``answer``.
    """

    __slots__ = ("_io", "_started", "_token", "answer", "method", "params", "step")

    def __init__(self, io: BaseIO, step: Send) -> None:
        params = step.params
        if step.operation in _CAPACITY_OPS:
            params = {**params, "ReturnConsumedCapacity": "INDEXES"}
        self._io = io
        self.step = step
        #: What is sent: the step's parameters, asking for consumed capacity where it can.
        self.params = params
        #: The client method that sends this operation.
        self.method = _METHODS[step.operation]
        self.answer: dict[str, Any] | None = None

    def __enter__(self) -> Exchange:
        self._token = _RETRIED.set(self.step.retried)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: object, failure: BaseException | None, tb: object) -> None:
        seconds = time.perf_counter() - self._started
        _RETRIED.reset(self._token)
        if self._io._listeners:
            self._tell(seconds, failure)
        # Logs and metrics (one seam for both executors); nothing to do when both are off.
        if failure is not None or self._io.telemetry is not None or _debug_on(_DEBUG):
            code = None if failure is None else error_code(failure)
            seen = response_of(failure) if isinstance(failure, ClientError) else self.answer
            _observe.request_ended(self._io.telemetry, self.step, seconds, seen, code)
        if (
            isinstance(failure, ClientError)
            and error_code(failure) == "ResourceNotFoundException"
            and self.step.operation != "DescribeTable"
        ):
            raise TableNotFound(
                f"table {self._io.table_name!r} does not exist: create it with "
                "CounterStore.ensure_table() (or `dynamodb-counters table create`)"
            ) from failure

    def _tell(self, seconds: float, failure: BaseException | None) -> None:
        seen: dict[str, Any] = self.answer if self.answer is not None else {}
        if isinstance(failure, ClientError):
            seen = response_of(failure)
        step = self.step
        record = CallRecord(
            operation=step.operation,
            counter=step.counter,
            strategy=step.strategy,
            seconds=seconds,
            sdk_retries=sdk_retries_of(seen),
            consumed_capacity=seen.get("ConsumedCapacity"),
            error_code=None if failure is None else error_code(failure),
            params=self.params,
        )
        for listener in self._io._listeners:
            # An observer never changes an outcome: the request was sent (a write may have
            # landed), so a listener that raises must not make the operation look failed -- the
            # caller's natural retry would count twice. Its error is logged and swallowed.
            try:
                listener(record)
            except Exception:
                logger.exception(
                    "on_call listener %r raised on %s (ignored: listeners never change what an "
                    "operation answers)",
                    listener,
                    record.operation,
                )


class DynamoIO(BaseIO):
    """Sends requests for one store; thread-safe (boto3 clients are)."""

    def call(
        self, operation: str, params: dict[str, Any], **about: Unpack[About]
    ) -> dict[str, Any]:
        """Send one request; returns botocore's parsed answer, raises what botocore raises
        (a missing table as :class:`TableNotFound`). ``about``: see :class:`About`."""
        return self.send(Send(operation, params, **about))

    def send(self, step: Send) -> dict[str, Any]:
        """Send one step's request (as :meth:`call`)."""
        with Exchange(self, step) as exchange:
            answer: dict[str, Any] = getattr(self.client, exchange.method)(**exchange.params)
            exchange.answer = answer
        return answer
