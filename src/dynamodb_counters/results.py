"""Small immutable value objects returned by the library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class AddResult:
    """What one ``Counter.add()`` call did.

    Attributes:
        applied: True when this call changed the counter (also when its first answer was lost
            and a retry found its own write); False when the request id was already counted,
            so nothing changed; None when the strategy cannot tell (documented per strategy).
        value: the counter's new value when the write returns it at no extra cost, else None.
        request_id: the request id used; generated for idempotent strategies when none was given,
            None for non-idempotent strategies.
        requests: DynamoDB calls the library made for this add (the SDK's own re-sends of one
            call are counted in ``sdk_retries``).
        sdk_retries: re-sends botocore made below the library for this add.
    """

    applied: bool | None
    value: int | None
    request_id: str | None
    requests: int = 1
    sdk_retries: int = 0


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One DynamoDB call made by a store, given to ``CounterStore(on_call=...)`` listeners.

    Attributes:
        operation: the DynamoDB operation, e.g. ``"UpdateItem"``.
        counter: the counter's name, or None for table-level calls.
        strategy: the strategy id that made the call, or None.
        seconds: wall time of the call, SDK retries included.
        sdk_retries: how many times botocore re-sent the request (``RetryAttempts``).
        consumed_capacity: DynamoDB's ``ConsumedCapacity`` answer, as returned (None if absent).
        error_code: the error code when the call failed (``"ConditionalCheckFailedException"``,
            ``"ReadTimeoutError"``...), None on success.
        params: the request parameters sent (read-only by convention).
    """

    operation: str
    counter: str | None
    strategy: str | None
    seconds: float
    sdk_retries: int
    consumed_capacity: Any
    error_code: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CounterDefinition:
    """What a counter is, as stored on its item by ``create()`` (SPEC section 7).

    Attributes:
        strategy: the strategy id, e.g. ``"marker"``.
        floor: the inclusive lower bound, or None.
        ceiling: the inclusive upper bound, or None.
        options: the strategy's window options with their values (``history``, ``capacity``,
            ``marker_ttl`` as a timedelta, ``shards``); read-only.
        stored: False for a counter item that carries no definition (written by other code or
            by the first release): then the handle's own arguments apply.
    """

    strategy: str
    floor: int | None
    ceiling: int | None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    stored: bool = True


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold on part of a counter (``Counter.reserve()``, SPEC section 13).

    Attributes:
        hold_id: the caller's id of the hold (scoped to its counter).
        amount: the quantity held (positive): the counter's value is that much lower while the
            hold lives.
        expires_at: epoch seconds (an int) from which the hold is expired: it can no longer be
            committed, and its amount comes back (``reclaim()``, a refused add or reserve, or a
            ``cancel()``).
    """

    hold_id: str
    amount: int
    expires_at: int
