"""An independent ledger of what callers were told, and a caller that retries like an app would.

The ledger knows nothing of strategies: it records, per request id, whether ``add()`` was
acknowledged (returned), rejected (``ThresholdExceeded``) or raised something a caller retries
(a botocore error that got past the SDK, ``ContentionError``). What the counter must hold is then
``initial + sum(amount of every acknowledged request id)``; ``drift`` is the difference.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from dynamodb_counters import AddResult, ContentionError, Counter, ThresholdExceeded
from dynamodb_counters._aio_hooks import before_send_handler
from dynamodb_counters._retry import is_throttled_cancellation

# Errors an application retries later with the same request id: the outcome of the failed call
# may be unknown (a timeout, a dropped connection) or nothing was done (throttled, contended).
RETRY_LATER_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)


def retry_later(exc: BaseException) -> bool:
    if isinstance(exc, ContentionError | BotoCoreError):
        return True
    if is_throttled_cancellation(exc):
        # The library's tries ran out on a throttled transaction (AWS-like): nothing applied,
        # DynamoDB's error re-raised unchanged; the caller retries later with the same id.
        return True
    return isinstance(exc, ClientError) and (
        exc.response.get("Error", {}).get("Code") in RETRY_LATER_CODES
    )


@dataclass
class Ledger:
    """Thread-safe record of outcomes, keyed by request id (or an op id for atomic/occ)."""

    initial: int
    acked: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    applied: dict[str, bool | None] = field(default_factory=dict)
    # App-level failures (calls that raised a retry-later error), per id and per error type.
    raised: Tally[str] = field(default_factory=Tally)
    errors: Tally[str] = field(default_factory=Tally)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ack(self, op_id: str, amount: int, result: AddResult) -> None:
        with self._lock:
            assert self.acked.get(op_id, amount) == amount, op_id
            self.acked[op_id] = amount
            self.applied.setdefault(op_id, result.applied)

    def reject(self, op_id: str, amount: int) -> None:
        with self._lock:
            self.rejected[op_id] = amount

    def error(self, op_id: str, exc: BaseException) -> None:
        with self._lock:
            self.raised[op_id] += 1
            code = type(exc).__name__
            if isinstance(exc, ClientError):
                code = str(exc.response.get("Error", {}).get("Code", code))
            self.errors[code] += 1

    def expected(self) -> int:
        with self._lock:
            return self.initial + sum(self.acked.values())

    def both_acked_and_rejected(self) -> set[str]:
        with self._lock:
            return set(self.acked) & set(self.rejected)

    def false_duplicates(self) -> list[str]:
        """Ids reported as duplicates (applied=False) on their very first call: never right."""
        with self._lock:
            return [i for i, a in self.applied.items() if a is False and not self.raised[i]]


def settle(
    counter: Counter,
    amount: int,
    op_id: str,
    ledger: Ledger,
    *,
    idempotent: bool,
    attempts: int = 200,
    pause: float = 0.0,
) -> None:
    """Call ``add`` until it is acknowledged or rejected, retrying with the same request id."""
    for _ in range(attempts):
        try:
            result = counter.add(amount, request_id=op_id if idempotent else None)
        except ThresholdExceeded:
            ledger.reject(op_id, amount)
            return
        except (ClientError, BotoCoreError, ContentionError) as exc:
            if not retry_later(exc):
                raise
            ledger.error(op_id, exc)
            if pause:
                time.sleep(pause)
            continue
        ledger.ack(op_id, amount, result)
        return
    raise AssertionError(f"request {op_id} was neither acknowledged nor rejected")


def run_concurrently(
    counter: Counter,
    ops: Iterable[tuple[str, int]],
    ledger: Ledger,
    *,
    idempotent: bool,
    threads: int = 4,
    pause: float = 0.0,
) -> None:
    """Settle every (op id, amount) from ``threads`` threads sharing one counter handle."""
    work: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
    for op in ops:
        work.put(op)
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                op_id, amount = work.get_nowait()
            except queue.Empty:
                return
            try:
                settle(counter, amount, op_id, ledger, idempotent=idempotent, pause=pause)
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)
                return

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise failures[0]


_http = URLLib3Session()

# The DynamoDB operation that carries each strategy's add.
WRITE_OPERATION = {
    "atomic": "UpdateItem",
    "occ": "UpdateItem",
    "occ_history": "UpdateItem",
    "set": "UpdateItem",
    "transaction": "TransactWriteItems",
    "marker": "TransactWriteItems",
    "collection": "TransactWriteItems",
    "sharded": "TransactWriteItems",
}


class LoseAnswers:
    """A ``before-send`` handler that loses the answer of the first ``count`` requests of one
    operation: sends the request (the server applies it), then raises ``ReadTimeoutError``."""

    def __init__(self, operation: str, count: int = 1) -> None:
        self.operation = operation
        self.left = count
        self.lost = 0
        self._lock = threading.Lock()
        self._handlers: dict[int, Any] = {}

    def __call__(self, request: Any, **_: Any) -> None:
        target = str(request.headers.get("X-Amz-Target", b""))
        if not target.rstrip("'").endswith("." + self.operation):
            return
        with self._lock:
            if self.left <= 0:
                return
            self.left -= 1
            self.lost += 1
        _http.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)

    def attach(self, client: Any) -> LoseAnswers:
        """Hook ``client`` (botocore or aiobotocore: see ``_aio_hooks.before_send_handler``)."""
        handler = before_send_handler(client, self, in_thread=True)
        self._handlers[id(client)] = handler
        client.meta.events.register("before-send.dynamodb", handler)
        return self

    def detach(self, client: Any) -> None:
        handler = self._handlers.pop(id(client))
        client.meta.events.unregister("before-send.dynamodb", handler)
