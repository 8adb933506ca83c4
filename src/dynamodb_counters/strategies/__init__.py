"""The counter strategies, by id."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, TypedDict, get_args

from .atomic import AtomicCounter
from .base import Capabilities, Strategy
from .collection import CollectionCounter
from .marker import MarkerCounter
from .occ import OccCounter
from .occ_history import OccHistoryCounter
from .set import SetCounter
from .sharded import ShardedCounter
from .transaction import TransactionCounter

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        AtomicCounter,
        OccCounter,
        OccHistoryCounter,
        TransactionCounter,
        MarkerCounter,
        CollectionCounter,
        SetCounter,
        ShardedCounter,
    )
}

#: The strategy ids, for type checkers and IDEs (``store.counter(name, strategy=...)``).
StrategyName = Literal[
    "atomic", "occ", "occ_history", "transaction", "marker", "collection", "set", "sharded"
]
if frozenset(get_args(StrategyName)) != frozenset(STRATEGIES):  # pragma: no cover
    raise ImportError("StrategyName must list exactly the ids of STRATEGIES")


class CounterOptions(TypedDict, total=False):
    """The keyword options of ``store.counter(...)``, spelled out so a typo is caught before
    run time. Window options are stored with the counter and belong to one strategy each (see
    its ``own_options``); retry options stay the caller's."""

    #: occ_history: request ids remembered on the item.
    history: int
    #: set: request ids a generation holds.
    capacity: int
    #: marker, sharded: how long a marker lives (a timedelta, or seconds).
    marker_ttl: timedelta | float
    #: sharded: shard items (1 to 99, default 8); fixed for the counter's life.
    shards: int
    #: Tries lost to collisions, conflicts or throttled transactions before ContentionError
    #: (or, for throttling, DynamoDB's own error); default 32.
    max_attempts: int
    #: Re-tries of an idempotent add whose outcome is unknown (default 3).
    ambiguity_retries: int
    #: Backoff base, seconds or a timedelta (default 0.01; 0 disables backoff).
    retry_delay: float | timedelta


__all__ = [
    "STRATEGIES",
    "AtomicCounter",
    "Capabilities",
    "CollectionCounter",
    "CounterOptions",
    "MarkerCounter",
    "OccCounter",
    "OccHistoryCounter",
    "SetCounter",
    "ShardedCounter",
    "Strategy",
    "StrategyName",
    "TransactionCounter",
]
