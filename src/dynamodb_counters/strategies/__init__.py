"""The counter strategies, by id."""

from __future__ import annotations

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

__all__ = [
    "STRATEGIES",
    "AtomicCounter",
    "Capabilities",
    "CollectionCounter",
    "MarkerCounter",
    "OccCounter",
    "OccHistoryCounter",
    "SetCounter",
    "ShardedCounter",
    "Strategy",
    "TransactionCounter",
]
