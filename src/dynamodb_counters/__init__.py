"""dynamodb-counters: exact resource counters on Amazon DynamoDB.

Seven strategies behind one interface (see :data:`STRATEGIES`)::

    store = CounterStore(boto3.client("dynamodb"), "counters")
    store.ensure_table()
    seats = store.counter("tickets#gig-42", strategy="marker", floor=0)
    seats.create(initial=100)
    seats.add(-2, request_id="order-81")
"""

from __future__ import annotations

from .errors import (
    CapacityExceeded,
    ContentionError,
    CounterError,
    CounterExists,
    CounterNotFound,
    DefinitionMismatch,
    HoldExpired,
    HoldNotFound,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    TableNotFound,
    ThresholdExceeded,
)
from .quota import Quota, QuotaDecision
from .results import AddResult, CallRecord, CounterDefinition, Hold
from .store import Counter, CounterStore
from .strategies import STRATEGIES, Capabilities, Strategy

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "AddResult",
    "CallRecord",
    "Capabilities",
    "CapacityExceeded",
    "ContentionError",
    "Counter",
    "CounterDefinition",
    "CounterError",
    "CounterExists",
    "CounterNotFound",
    "CounterStore",
    "DefinitionMismatch",
    "Hold",
    "HoldExpired",
    "HoldNotFound",
    "InvalidInput",
    "NotSupported",
    "Quota",
    "QuotaDecision",
    "RequestIdMismatch",
    "Strategy",
    "TableNotFound",
    "ThresholdExceeded",
    "__version__",
]
