"""dynamodb-counters: exact resource counters on Amazon DynamoDB.

Eight strategies behind one interface (see :data:`STRATEGIES`)::

    store = CounterStore(boto3.client("dynamodb"), "counters")
    store.ensure_table()
    seats = store.counter("tickets#gig-42", strategy="marker", floor=0)
    seats.create(initial=100)
    seats.add(-2, request_id="order-81")
"""

from __future__ import annotations

import logging as _logging

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

# A library's manners: records go nowhere until the application configures logging (see
# dynamodb_counters._observe for what is logged, at which level).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

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
