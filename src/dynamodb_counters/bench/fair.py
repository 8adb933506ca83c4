"""Fault decisions keyed on the workload's operation, so that every target meets the same faults.

:class:`~dynamodb_counters.faults.FaultInjector` decides from a hash of the request body. Two
targets doing the same work send different bodies (the raw baseline's ``update_item`` is not
``atomic``'s), so they met different faults: 19 lost answers for one, 14 for the other, and
their throughput ratio measured luck. :class:`OperationFaults` decides instead from the
operation the worker is sending (its request id, set by :meth:`OperationFaults.operation`
around each ``add()``), the SDK's attempt number and how many writes of that operation came
before: the n-th write of operation X at attempt k meets the same fault in every target. Outside
an operation (set-up, reads from the side) it falls back to the body hash.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from botocore.awsrequest import AWSPreparedRequest

from ..faults import FaultInjector, FaultPlan


class OperationFaults(FaultInjector):
    """A :class:`FaultInjector` whose decisions follow the workload's operations."""

    def __init__(self, client: Any, plan: FaultPlan, **model: Any) -> None:
        """``model``: :class:`FaultInjector`'s keyword options of the per-item model."""
        super().__init__(client, plan, **model)
        # Per thread or asyncio task: each has its own context.
        self._scope: ContextVar[tuple[str, str] | None] = ContextVar(
            f"bench-operation-{id(self)}", default=None
        )
        self._sends: Counter[tuple[str, str, str]] = Counter()

    @contextlib.contextmanager
    def operation(self, target: str, request_id: str) -> Iterator[None]:
        """Decide the faults of the requests this thread (or asyncio task) sends in the block
        by ``request_id``; ``target`` only keeps each target's count of sends apart."""
        token = self._scope.set((target, request_id))
        try:
            yield
        finally:
            self._scope.reset(token)

    def _roll(self, request: AWSPreparedRequest, operation: str) -> float:
        current = self._scope.get()
        if current is None:
            return super()._roll(request, operation)
        target, request_id = current
        attempt = str(request.headers.get("amz-sdk-request", b""))
        # botocore's header reads "attempt=N; max=M": the attempt number alone is what repeats.
        attempt = attempt.split(";", 1)[0]
        with self._lock:
            nth = self._sends[(target, request_id, attempt)]
            self._sends[(target, request_id, attempt)] += 1
            self.stats["attempts_seen"] += 1
        text = f"{self.plan.seed}|{request_id}|{attempt}|{nth}"
        digest = hashlib.sha256(text.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64
