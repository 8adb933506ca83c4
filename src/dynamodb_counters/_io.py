"""The single place that talks to DynamoDB.

Every request of every strategy goes through :meth:`DynamoIO.call`, which asks for consumed
capacity, times the call, tells listeners, and turns the few errors that are ours
(a missing table) into library errors. Everything else passes through unchanged, so the
strategies interpret ``ClientError`` codes themselves and a fault injected below botocore's
retries is seen here exactly as an application would see it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from .errors import TableNotFound
from .results import CallRecord

Listener = Callable[[CallRecord], None]

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


class DynamoIO:
    """Sends requests for one store; thread-safe (boto3 clients are)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            # First, so it sees every attempt before botocore's retry handler answers.
            events.register_first("needs-retry.dynamodb", _capture_retried, unique_id=_CAPTURE_ID)

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    def call(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        counter: str | None = None,
        strategy: str | None = None,
        retried: list[BaseException] | None = None,
    ) -> dict[str, Any]:
        """Send one request; returns botocore's parsed answer, raises what botocore raises.

        ``retried``, when given, receives the failures botocore met during the call, in order
        (the last may be the one raised).
        """
        if operation in _CAPACITY_OPS:
            params = {**params, "ReturnConsumedCapacity": "INDEXES"}
        method = getattr(self.client, _METHODS[operation])
        started = time.perf_counter()
        answer: dict[str, Any] | None = None
        failure: BaseException | None = None
        token = _RETRIED.set(retried if retried is not None else None)
        try:
            answer = method(**params)
            return answer
        except ClientError as exc:
            failure = exc
            if error_code(exc) == "ResourceNotFoundException" and operation != "DescribeTable":
                raise TableNotFound(
                    f"table {self.table_name!r} does not exist: create it with "
                    "CounterStore.ensure_table() (or `dynamodb-counters table create`)"
                ) from exc
            raise
        except BotoCoreError as exc:
            failure = exc
            raise
        finally:
            _RETRIED.reset(token)
            listeners = self._listeners
            if listeners:
                seen: dict[str, Any] = answer if answer is not None else {}
                if isinstance(failure, ClientError):
                    seen = response_of(failure)
                record = CallRecord(
                    operation=operation,
                    counter=counter,
                    strategy=strategy,
                    seconds=time.perf_counter() - started,
                    sdk_retries=sdk_retries_of(seen),
                    consumed_capacity=seen.get("ConsumedCapacity"),
                    error_code=None if failure is None else error_code(failure),
                    params=params,
                )
                for listener in listeners:
                    listener(record)
