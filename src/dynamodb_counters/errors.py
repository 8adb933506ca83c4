"""Exceptions raised by dynamodb-counters.

Every error the library raises on purpose derives from :class:`CounterError`::

    CounterError
    ├── ThresholdExceeded      an add would cross floor or ceiling; nothing changed
    ├── CounterNotFound        the counter's item does not exist
    ├── CounterExists          create() on a counter that is already there
    ├── TableNotFound          the table does not exist (see CounterStore.ensure_table)
    ├── NotSupported           an option or argument the strategy cannot honour
    ├── RequestIdMismatch      a known request id reused with another amount
    ├── ContentionError        optimistic retries (or transaction conflicts) exhausted
    ├── CapacityExceeded       no room left on an item (a ``set`` at DynamoDB's item limit)
    ├── DefinitionMismatch     a handle's strategy, bounds or window differ from the stored ones
    ├── HoldExpired            commit() of a hold that expired (its amount came back)
    ├── HoldNotFound           commit()/cancel() of an unknown hold, or of one the other ended
    └── InvalidInput           bad names, amounts, ids or options (also a ValueError)

botocore errors that are not one of these cases (throttling after the SDK gave up, timeouts,
access denied, ...) pass through unchanged, so callers can keep their existing handling.
"""

from __future__ import annotations

__all__ = [
    "CapacityExceeded",
    "ContentionError",
    "CounterError",
    "CounterExists",
    "CounterNotFound",
    "DefinitionMismatch",
    "HoldExpired",
    "HoldNotFound",
    "InvalidInput",
    "NotSupported",
    "RequestIdMismatch",
    "TableNotFound",
    "ThresholdExceeded",
]


class CounterError(Exception):
    """Root of every error dynamodb-counters raises itself."""


class ThresholdExceeded(CounterError):
    """The add would take the counter below its floor or above its ceiling; nothing changed.

    ``value`` is the counter's value seen by the failed condition, when DynamoDB returned it.
    """

    def __init__(self, message: str, *, value: int | None = None) -> None:
        super().__init__(message)
        self.value = value


class CounterNotFound(CounterError):
    """The counter does not exist (create it first)."""


class CounterExists(CounterError):
    """``create()`` found the counter already there."""


class TableNotFound(CounterError):
    """The table does not exist: create it with ``CounterStore.ensure_table()``."""


class NotSupported(CounterError):
    """The strategy cannot do what was asked (e.g. a request id on a non-idempotent strategy)."""


class RequestIdMismatch(CounterError):
    """A request id the counter already knows was sent again with a different amount."""


class ContentionError(CounterError):
    """Too many writers collided: optimistic retries or transaction conflicts were exhausted."""


class CapacityExceeded(CounterError):
    """The store cannot make room on an item (e.g. a ``set`` item at DynamoDB's 400 KB limit)."""


class DefinitionMismatch(CounterError):
    """A handle states a strategy, bound or window option other than the counter's stored one.

    Raised on the handle's first operation (reads included), before anything is written.
    ``stored`` is the counter's :class:`~dynamodb_counters.CounterDefinition`; ``differences``
    the message without its advice (what differs), for callers that advise their own way.
    """

    def __init__(self, message: str, *, stored: object = None, differences: str = "") -> None:
        super().__init__(message)
        self.stored = stored
        self.differences = differences or message


class HoldExpired(CounterError):
    """``commit()`` of a hold whose time ran out: it was not committed, and its amount came
    back to the counter (once, whoever returned it)."""


class HoldNotFound(CounterError):
    """``commit()`` or ``cancel()`` of a hold the counter does not know (never reserved, ended
    longer ago than the window, or on another incarnation of the counter), a commit after a
    cancel, or a cancel after a commit."""


class InvalidInput(CounterError, ValueError):
    """A name, amount, request id or option is not valid."""
