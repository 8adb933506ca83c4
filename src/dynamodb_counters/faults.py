"""Fault injection *below* botocore's retry layer.

A handler on botocore's ``before-send.dynamodb.<Operation>`` event decides, per HTTP attempt,
whether to interfere:

* **lost answer** -- the handler sends the prepared request itself (so the server applies it),
  then raises ``ReadTimeoutError``: exactly what a dropped response looks like. botocore's
  retry handler then re-sends, as it would on a real network.
* **throttle** -- a synthetic ``ThrottlingException`` answer (HTTP 400); nothing is sent.
* **conflict** -- a synthetic transaction conflict, nothing sent: ``TransactionCanceledException``
  with ``TransactionConflict`` reasons for ``TransactWriteItems``, ``TransactionConflictException``
  for single-item writes.

Decisions are reproducible: each one is a hash of the seed, the request body, the attempt number
botocore puts in the ``amz-sdk-request`` header, and how many identical (body, attempt) pairs came
before -- so the same workload and seed inject the same faults whatever order threads run in.

    with FaultInjector(client, FaultPlan(lost_answer_rate=0.1, seed=7)) as faults:
        ...
    print(faults.stats)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter as _Tally
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from ._aio_hooks import before_send_handler, is_async_client, lose_answer
from .errors import InvalidInput

_ONGOING = "Transaction is ongoing for the item (injected)"
WRITE_OPERATIONS = frozenset({"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"})


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Rates (0..1) of each fault per HTTP attempt, the seed, and the operations affected."""

    lost_answer_rate: float = 0.0
    throttle_rate: float = 0.0
    conflict_rate: float = 0.0
    seed: int = 0
    operations: frozenset[str] = field(default=WRITE_OPERATIONS)

    def __post_init__(self) -> None:
        rates = (self.lost_answer_rate, self.throttle_rate, self.conflict_rate)
        for rate in rates:
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise InvalidInput(f"fault rates must be numbers from 0 to 1, got {rate!r}")
        if sum(rates) > 1:
            raise InvalidInput("fault rates must add up to at most 1")

    @property
    def active(self) -> bool:
        return bool(self.lost_answer_rate or self.throttle_rate or self.conflict_rate)


class _Body:
    """The minimal raw stream AWSResponse reads its content from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _error_response(url: str, code: str, message: str, **extra: Any) -> AWSResponse:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    ).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = "injected-" + hashlib.sha1(body).hexdigest()[:12]
    headers["Content-Length"] = str(len(body))
    return AWSResponse(url, 400, headers, _Body(body))


class FaultInjector:
    """Injects the faults of a :class:`FaultPlan` into one boto3 DynamoDB client.

    Use as a context manager, or call :meth:`attach` / :meth:`detach`. ``stats`` counts what
    was injected (``lost_answers``, ``throttles``, ``conflicts``, ``attempts_seen``).
    """

    def __init__(self, client: Any, plan: FaultPlan) -> None:
        self.client = client
        self.plan = plan
        self._lock = threading.Lock()
        self._seen: _Tally[bytes] = _Tally()
        self.stats: _Tally[str] = _Tally()
        self._http = URLLib3Session()
        self._attached = False

    def attach(self) -> FaultInjector:
        if not self._attached:
            self._handler = before_send_handler(self.client, self._before_send)
            self.client.meta.events.register("before-send.dynamodb", self._handler)
            self._attached = True
        return self

    def detach(self) -> None:
        if self._attached:
            self.client.meta.events.unregister("before-send.dynamodb", self._handler)
            self._attached = False

    def __enter__(self) -> FaultInjector:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _roll(self, request: AWSPreparedRequest, operation: str) -> float:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        attempt = str(request.headers.get("amz-sdk-request", b""))
        base = hashlib.sha256(f"{self.plan.seed}|{operation}|{attempt}|".encode() + body).digest()
        with self._lock:
            nth = self._seen[base]
            self._seen[base] += 1
            self.stats["attempts_seen"] += 1
        digest = hashlib.sha256(base + nth.to_bytes(8, "big")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _before_send(
        self, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | Awaitable[NoReturn] | None:
        target = str(request.headers.get("X-Amz-Target", b""))
        operation = target.rsplit(".", 1)[-1].strip("'")
        if not self.plan.active or operation not in self.plan.operations:
            return None
        roll = self._roll(request, operation)
        plan = self.plan
        if roll < plan.lost_answer_rate:
            with self._lock:
                self.stats["lost_answers"] += 1
            return self._lose_answer(request)
        roll -= plan.lost_answer_rate
        if roll < plan.throttle_rate:
            with self._lock:
                self.stats["throttles"] += 1
            return _error_response(
                request.url,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput (injected)",
            )
        roll -= plan.throttle_rate
        if roll < plan.conflict_rate:
            with self._lock:
                self.stats["conflicts"] += 1
            if operation == "TransactWriteItems":
                count = _transact_item_count(request)
                reasons = [
                    {
                        "Code": "TransactionConflict",
                        "Message": "Transaction is ongoing for the item (injected)",
                    }
                ]
                return _error_response(
                    request.url,
                    "TransactionCanceledException",
                    "Transaction cancelled, please refer cancellation reasons for specific reasons "
                    "[TransactionConflict] (injected)",
                    CancellationReasons=reasons + [{"Code": "None"}] * (count - 1),
                )
            return _error_response(
                request.url,
                "TransactionConflictException",
                "Transaction is ongoing for the item (injected)",
            )
        return None

    def _lose_answer(self, request: AWSPreparedRequest) -> Awaitable[NoReturn]:
        """Let the server apply it, then lose the answer (an awaitable doing so, for an
        aiobotocore client)."""
        if is_async_client(self.client):
            return lose_answer(self._http, request)
        self._http.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)


def _transact_item_count(request: AWSPreparedRequest) -> int:
    try:
        raw = request.body if isinstance(request.body, str | bytes) else b"{}"
        body = json.loads(raw or b"{}")
        return max(1, len(body.get("TransactItems", [])))
    except (ValueError, TypeError):
        return 1
