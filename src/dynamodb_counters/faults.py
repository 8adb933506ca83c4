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
* **per-item throughput** (optional, ``item_write_limit`` / ``item_read_limit``): every item has
  a budget of units per second (:mod:`dynamodb_counters.throughput`); a request touching an item
  over its budget is answered as AWS answers it, nothing sent: HTTP 400
  ``ProvisionedThroughputExceededException`` with ``ThrottlingReasons``
  ``TableWriteKeyRangeThroughputExceeded`` (or ``...Read...``), which botocore retries as a
  throttle. The budget belongs to the injector: clients that must share an item's budget share
  one injector's :class:`~dynamodb_counters.throughput.ItemThroughput` (``throughput=``).
* **AWS-like mode** (optional, ``aws_like=AwsLike(...)``): answers as AWS does where DynamoDB
  Local is kinder -- throttled transactions cancelled, transaction conflicts between writes held
  in flight, one budget per partition, stale eventually consistent reads, partial batches
  (:mod:`dynamodb_counters.aws_like`). Clients that share one engine's state share
  ``aws_state=``. The handler runs after the other ``before-send`` handlers of the client
  (a test's own hooks first).

Decisions are reproducible: each one is a hash of the seed, the request body, the attempt number
botocore puts in the ``amz-sdk-request`` header, and how many identical (body, attempt) pairs came
before -- so the same workload and seed inject the same faults whatever order threads run in.

    with FaultInjector(client, FaultPlan(lost_answer_rate=0.1, seed=7)) as faults:
        ...
    print(faults.stats)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections import Counter as _Tally
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session
from urllib3.connection import HTTPConnection

from ._aio_hooks import before_send_handler, is_async_client, lose_answer
from .aws_like import AwsLike, AwsLikeEngine, AwsLikeState, Deferred
from .errors import InvalidInput
from .throughput import (
    MODELLED_OPERATIONS,
    READ,
    Charge,
    ItemLookup,
    ItemThroughput,
    RequestPricer,
    parse_body,
)

_ONGOING = "Transaction is ongoing for the item (injected)"
WRITE_OPERATIONS = frozenset({"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"})


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Rates (0..1) of each fault per HTTP attempt, the seed, and the operations affected;
    optionally the per-item throughput model: ``item_write_limit`` write units/s per item, and
    ``item_read_limit`` read units/s per item (default: 3 x the write limit). Off by default.
    The rates apply to ``operations``; the throughput model to every request it prices.
    ``aws_like``: the AWS-like engine mode (its per-partition budget replaces the per-item one:
    give one or the other)."""

    lost_answer_rate: float = 0.0
    throttle_rate: float = 0.0
    conflict_rate: float = 0.0
    seed: int = 0
    operations: frozenset[str] = field(default=WRITE_OPERATIONS)
    item_write_limit: float | None = None
    item_read_limit: float | None = None
    aws_like: AwsLike | None = None

    def __post_init__(self) -> None:
        rates = (self.lost_answer_rate, self.throttle_rate, self.conflict_rate)
        for rate in rates:
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise InvalidInput(f"fault rates must be numbers from 0 to 1, got {rate!r}")
        if sum(rates) > 1:
            raise InvalidInput("fault rates must add up to at most 1")
        for name in ("item_write_limit", "item_read_limit"):
            limit = getattr(self, name)
            if limit is None:
                continue
            if (
                isinstance(limit, bool)
                or not isinstance(limit, int | float)
                or not 0 < limit < math.inf
            ):
                raise InvalidInput(f"{name} must be a number of units/s above 0, got {limit!r}")
        if self.aws_like is not None:
            if not isinstance(self.aws_like, AwsLike):
                raise InvalidInput(f"aws_like must be an AwsLike, got {self.aws_like!r}")
            if self.limits_items:
                raise InvalidInput(
                    "the AWS-like mode limits partitions (AwsLike.write_limit): leave out "
                    "item_write_limit / item_read_limit"
                )

    @property
    def read_limit(self) -> float | None:
        """Read units/s per item: as given, else 3 x the write limit (None: not limited)."""
        if self.item_read_limit is not None:
            return float(self.item_read_limit)
        return None if self.item_write_limit is None else 3.0 * self.item_write_limit

    @property
    def limits_items(self) -> bool:
        return self.item_write_limit is not None or self.item_read_limit is not None

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


def operation_of(request: AWSPreparedRequest) -> str:
    """The DynamoDB operation of a prepared request (its ``X-Amz-Target`` header)."""
    return str(request.headers.get("X-Amz-Target", b"")).rsplit(".", 1)[-1].strip("'")


class FaultInjector:
    """Injects the faults of a :class:`FaultPlan` into one boto3 DynamoDB client.

    Use as a context manager, or call :meth:`attach` / :meth:`detach`. ``stats`` counts what
    was injected (``lost_answers``, ``throttles``, ``conflicts``, ``attempts_seen``; with the
    per-item model, ``item_throttles``, of which ``item_read_throttles`` were reads).

    Args:
        client: the boto3 DynamoDB client.
        plan: what to inject.
        key_names: the table's key attributes (the per-item model finds a ``Put``'s key).
        known_item: the last known full item for a key (prices big items right; the bench
            passes its meter's); by default only the key and values in a request are known.
        throughput: the per-item budgets to spend, to share them with other injectors (other
            clients of the same workload); by default a new one from ``plan``.
        aws_state: with ``plan.aws_like``, the AWS-like engine's state to share with other
            injectors (partition budgets, writes in flight, versions); by default a new one.
    """

    def __init__(
        self,
        client: Any,
        plan: FaultPlan,
        *,
        key_names: tuple[str, ...] = ("pk", "sk"),
        known_item: ItemLookup | None = None,
        throughput: ItemThroughput | None = None,
        aws_state: AwsLikeState | None = None,
    ) -> None:
        self.client = client
        self.plan = plan
        self._lock = threading.Lock()
        self._seen: _Tally[bytes] = _Tally()
        self.stats: _Tally[str] = _Tally()
        # TCP_NODELAY as botocore's own session has it: without it every request this session
        # sends waits ~40 ms for a delayed ACK.
        self._http = URLLib3Session(
            socket_options=list(HTTPConnection.default_socket_options), max_pool_connections=64
        )
        self._attached = False
        if throughput is None and plan.limits_items:
            throughput = ItemThroughput(
                write_limit=plan.item_write_limit, read_limit=plan.read_limit
            )
        self.throughput = throughput
        self.pricer = RequestPricer(key_names, known_item)
        self.aws: AwsLikeEngine | None = None
        if plan.aws_like is not None:
            state = aws_state or AwsLikeState(plan.aws_like, key_names=key_names)
            self.aws = AwsLikeEngine(
                state,
                self.pricer,
                send=self._http.send,
                roll=self._roll,
                signer=client._request_signer,
                region=client.meta.region_name,
                model=plan.aws_like,
                tally=self._tally,
            )

    def _tally(self, name: str, n: int) -> None:
        with self._lock:
            self.stats[name] += n

    def attach(self) -> FaultInjector:
        if not self._attached:
            self._handler = before_send_handler(self.client, self._before_send)
            if self.aws is not None:
                # It may send the request itself: after any other handler (a test's hook).
                self.client.meta.events.register_last("before-send.dynamodb", self._handler)
            else:
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
    ) -> AWSResponse | Awaitable[Any] | None:
        operation = operation_of(request)
        plan = self.plan
        faulty = plan.active and operation in plan.operations
        limited = self.throughput is not None and operation in MODELLED_OPERATIONS
        if not faulty and not limited and self.aws is None:
            return None
        roll = self._roll(request, operation) if faulty else 1.0
        lost = faulty and roll < plan.lost_answer_rate
        if faulty and not lost:
            # A synthetic throttle or conflict is answered before any budget is spent: the
            # request never reached the item.
            made_up = self._synthetic(request, operation, roll - plan.lost_answer_rate)
            if made_up is not None:
                return made_up
        if limited:
            refused = self._over_budget(request, operation)
            if refused is not None:
                return refused
        if self.aws is not None:
            answer = self.aws.answer(request, operation)
            if isinstance(answer, AWSResponse):
                return answer
            if answer is not None:
                if lost:
                    with self._lock:
                        self.stats["lost_answers"] += 1
                return self._later(answer, lost=lost)
        if lost:
            with self._lock:
                self.stats["lost_answers"] += 1
            return self._lose_answer(request)
        return None

    def _synthetic(
        self, request: AWSPreparedRequest, operation: str, roll: float
    ) -> AWSResponse | None:
        plan = self.plan
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

    def _later(self, send: Deferred, *, lost: bool) -> AWSResponse | Awaitable[AWSResponse]:
        """Run the AWS-like engine's sending now (botocore) or in a worker thread (an
        aiobotocore client: it sleeps and blocks); with ``lost``, lose its answer."""

        def run() -> AWSResponse:
            answer = send()
            if lost:
                raise ReadTimeoutError(endpoint_url=answer.url or "")
            return answer

        if is_async_client(self.client):
            return asyncio.to_thread(run)
        return run()

    def _lose_answer(self, request: AWSPreparedRequest) -> Awaitable[NoReturn]:
        """Let the server apply it, then lose the answer (an awaitable doing so, for an
        aiobotocore client)."""
        if is_async_client(self.client):
            return lose_answer(self._http, request)
        self._http.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)

    def _over_budget(self, request: AWSPreparedRequest, operation: str) -> AWSResponse | None:
        """The per-item model's answer when an item the request touches lacks the units."""
        assert self.throughput is not None
        raw = request.body if isinstance(request.body, str | bytes) else None
        charges = self.pricer.charges(operation, parse_body(raw))
        refused = self.throughput.take(charges)
        if refused is None:
            return None
        with self._lock:
            self.stats["item_throttles"] += 1
            if refused[0] == READ:
                self.stats["item_read_throttles"] += 1
        return _key_range_throttle(request.url, refused, self.client.meta.region_name)


#: What DynamoDB says when one partition (here: one item) is over its throughput.
_HOT_KEY = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly. If exceptions persist, check if "
    "you have a hot key (injected: per-item throughput model)"
)


def _key_range_throttle(url: str, refused: Charge, region: str | None) -> AWSResponse:
    kind, table, _item, _units = refused
    reason = (
        "TableReadKeyRangeThroughputExceeded"
        if kind == READ
        else "TableWriteKeyRangeThroughputExceeded"
    )
    # DynamoDB Local's account id; the table is the one the refused item lives in.
    resource = f"arn:aws:dynamodb:{region or 'us-east-1'}:000000000000:table/{table}"
    return _error_response(
        url,
        "ProvisionedThroughputExceededException",
        _HOT_KEY,
        ThrottlingReasons=[{"reason": reason, "resource": resource}],
    )


def _transact_item_count(request: AWSPreparedRequest) -> int:
    try:
        raw = request.body if isinstance(request.body, str | bytes) else b"{}"
        body = json.loads(raw or b"{}")
        return max(1, len(body.get("TransactItems", [])))
    except (ValueError, TypeError):
        return 1
