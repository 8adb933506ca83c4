"""The protocol every strategy shares.

:class:`Strategy` owns validation, request-id handling, retries, ambiguity resolution and error
mapping. A concrete strategy fills a few hooks:

* ``_attempt(call)`` -- one try at an add: build the request(s), send them with ``self._send``,
  interpret the answer. It raises botocore errors untouched; the base decides what to retry.
* ``_create_attributes()`` -- extra attributes the counter item starts with (optional).
* ``value()`` -- when the value is not simply the counter item's value attribute.

Retry policy (why each branch exists):

* Transaction conflicts (``TransactionConflict`` cancellation reasons,
  ``TransactionConflictException``): nothing was applied, so any strategy may try again, with
  backoff, up to ``max_attempts``; then :class:`ContentionError`.
* Ambiguous failures (a timeout or a dropped connection after botocore's own retries, a 5xx,
  ``TransactionInProgressException``): the write may or may not have happened. An idempotent
  strategy tries again with the same request id -- its condition finds out whether the first try
  landed -- up to ``ambiguity_retries`` times, then re-raises the original error. A
  non-idempotent strategy re-raises at once: retrying could count twice.
* Everything else (throttling after the SDK gave up, access denied, ...) passes through.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectTimeoutError as _ConnectTimeout,
)

from .. import _validate as v
from .._io import DynamoIO, error_code, response_of, sdk_retries_of
from .._keys import DELTA_PREFIX, MARKER_PREFIX, Layout
from ..errors import (
    ContentionError,
    CounterExists,
    CounterNotFound,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    ThresholdExceeded,
)
from ..results import AddResult

CREATED_BY = "_created_by"
_T = TypeVar("_T")

_AMBIGUOUS_CODES = frozenset(
    {
        "InternalServerError",
        "ServiceUnavailable",
        "InternalFailure",
        "TransactionInProgressException",
    }
)
_AMBIGUOUS_ERRORS = (
    ReadTimeoutError,
    ConnectionClosedError,
    EndpointConnectionError,
    _ConnectTimeout,
)


def is_conflict(exc: BaseException) -> bool:
    """True when DynamoDB refused the write because of a concurrent transaction."""
    code = error_code(exc)
    if code == "TransactionConflictException":
        return True
    if code == "TransactionCanceledException" and isinstance(exc, ClientError):
        reasons = response_of(exc).get("CancellationReasons") or []
        return any(r.get("Code") == "TransactionConflict" for r in reasons)
    return False


def is_ambiguous(exc: BaseException) -> bool:
    """True when a failed call may still have been applied by the server."""
    if isinstance(exc, _AMBIGUOUS_ERRORS):
        return True
    return isinstance(exc, ClientError) and error_code(exc) in _AMBIGUOUS_CODES


@dataclass(slots=True)
class AddCall:
    """State of one ``add()`` call across its attempts."""

    amount: int
    request_id: str | None
    digest: str | None
    # Unique to this call: written beside the request id where the strategy can, so that a
    # retry which finds the id already counted can tell its own earlier write from another's.
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)
    requests: int = 0
    sdk_retries: int = 0
    # True once any attempt of this call may have been applied without us seeing the answer.
    ambiguous: bool = False
    conflicts: int = 0
    # Entity tags this call wrote (optimistic strategies), to recognise its own landed write.
    written: set[str] = field(default_factory=set)

    def result(self, applied: bool | None, value: int | None) -> AddResult:
        return AddResult(
            applied=applied,
            value=value,
            request_id=self.request_id,
            requests=self.requests,
            sdk_retries=self.sdk_retries,
        )


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a strategy promises; shown by the CLI, the bench and the README."""

    idempotent: bool
    window: str
    thresholds: bool
    requests_per_add: int
    write_units_per_add: str
    tells_duplicates: str


class Strategy:
    """Base class of the seven strategies; see the module docstring for the protocol."""

    name: ClassVar[str] = ""
    idempotent: ClassVar[bool] = False
    supports_thresholds: ClassVar[bool] = True
    needs_sort_key: ClassVar[bool] = False
    capabilities: ClassVar[Capabilities]
    #: Strategy-specific option names accepted by ``CounterStore.counter(...)``.
    own_options: ClassVar[frozenset[str]] = frozenset()
    #: Values of ``own_options`` when not given.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Options every strategy accepts.
    common_options: ClassVar[frozenset[str]] = frozenset(
        {"max_attempts", "ambiguity_retries", "retry_delay"}
    )

    def __init__(
        self,
        *,
        io: DynamoIO,
        layout: Layout,
        name: str,
        floor: int | None,
        ceiling: int | None,
        options: Mapping[str, Any],
    ) -> None:
        self.io = io
        self.layout = layout
        self.counter_name = v.check_name(name)
        self.floor = v.check_optional_bound(floor, what="floor")
        self.ceiling = v.check_optional_bound(ceiling, what="ceiling")
        v.check_bounds(self.floor, self.ceiling)
        if not self.supports_thresholds and (self.floor is not None or self.ceiling is not None):
            raise NotSupported(
                f"strategy {self.name!r} cannot enforce a floor or ceiling at write time"
            )
        if self.needs_sort_key and layout.sort_key is None:
            raise NotSupported(f"strategy {self.name!r} needs a table with a sort key")
        unknown = set(options) - self.own_options - self.common_options
        if unknown:
            allowed = ", ".join(sorted(self.own_options | self.common_options))
            raise InvalidInput(
                f"unknown option(s) for strategy {self.name!r}: {', '.join(sorted(unknown))} "
                f"(allowed: {allowed})"
            )
        self.max_attempts = v.check_positive_int(
            options.get("max_attempts", 32), what="max_attempts", maximum=1000
        )
        # 0 turns ambiguity retries / backoff off.
        self.ambiguity_retries = v.check_positive_int(
            options.get("ambiguity_retries", 3), what="ambiguity_retries", maximum=100, minimum=0
        )
        self.retry_delay = v.check_duration(
            options.get("retry_delay", 0.01), what="retry_delay", allow_zero=True
        ).total_seconds()
        self.key = layout.counter_key(self.counter_name)
        self._configure(options)

    # -- hooks --------------------------------------------------------------------------------

    def _configure(self, options: Mapping[str, Any]) -> None:
        """Read strategy-specific options (already checked to be known names)."""

    def _create_attributes(self) -> dict[str, Any]:
        return {}

    def _attempt(self, call: AddCall) -> AddResult:
        raise NotImplementedError

    # -- public operations --------------------------------------------------------------------

    def create(self, initial: int = 0) -> None:
        initial = v.check_int(initial, what="initial")
        v.check_within(initial, self.floor, self.ceiling, what="initial")
        call = AddCall(amount=initial, request_id=None, digest=None)
        item = {
            **self.key,
            self.layout.value_attribute: _n(initial),
            # Who created it: a re-send after a lost answer must not report CounterExists.
            CREATED_BY: {"S": call.nonce},
            **self._create_attributes(),
        }
        self._with_retries(lambda c: self._put_new(c, item), call, repeatable=True)

    def _put_new(self, call: AddCall, item: dict[str, Any]) -> None:
        found = self._put_if_absent(call, item)
        if found is not None and found.get(CREATED_BY, {}).get("S") != call.nonce:
            raise CounterExists(f"counter {self.counter_name!r} already exists")

    def add(self, amount: int, *, request_id: str | None = None) -> AddResult:
        amount = v.check_amount(amount)
        if request_id is not None:
            request_id = v.check_request_id(request_id)
            if not self.idempotent:
                raise NotSupported(
                    f"strategy {self.name!r} is not idempotent and cannot honour a request_id; "
                    "use occ_history, transaction, marker, collection or set"
                )
        elif self.idempotent:
            # Generated once, here, never inside the retry loop (SPEC section 3).
            request_id = uuid.uuid4().hex
        digest = None if request_id is None else self.layout.digest(self.counter_name, request_id)
        call = AddCall(amount=amount, request_id=request_id, digest=digest)
        return self._with_retries(self._attempt, call, repeatable=self.idempotent)

    def _with_retries(
        self, attempt: Callable[[AddCall], _T], call: AddCall, *, repeatable: bool
    ) -> _T:
        """Run ``attempt`` until it returns, under the retry policy of the module docstring.

        ``repeatable``: the attempt finds out by itself whether an earlier one landed, so an
        ambiguous failure may be retried.
        """
        ambiguous_tries = 0
        while True:
            try:
                return attempt(call)
            except (ClientError, BotoCoreError) as exc:
                if is_conflict(exc):
                    self._contended(call, exc)
                    continue
                if repeatable and is_ambiguous(exc) and ambiguous_tries < self.ambiguity_retries:
                    ambiguous_tries += 1
                    call.ambiguous = True
                    self._sleep(ambiguous_tries)
                    continue
                raise

    def value(self) -> int:
        item = self._get_item(consistent=True)
        return self._value_of(item)

    def delete(self) -> None:
        """Delete the counter item and, in a table with a sort key, its markers and deltas."""
        try:
            self._call(
                "DeleteItem",
                {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "ConditionExpression": "attribute_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Sweep side items even without a counter item: after a delete whose answer was
            # lost, or deltas added before create(), they must not outlive the counter.
            if self.layout.sort_key is not None:
                self._delete_side_items()
            # botocore re-sent the delete: the first send (answer lost) deleted the item.
            if sdk_retries_of(response_of(exc)) == 0:
                raise CounterNotFound(f"counter {self.counter_name!r} does not exist") from exc
            return
        if self.layout.sort_key is not None:
            self._delete_side_items()

    def inspect(self) -> dict[str, Any]:
        """The counter item (plain Python values) and how many side items it has."""
        from boto3.dynamodb.types import TypeDeserializer

        plain = TypeDeserializer()
        item = self._get_item(consistent=True)
        side = {"markers": 0, "deltas": 0}
        if self.layout.sort_key is not None:
            for sort_value, _ in self._collection():
                if sort_value.startswith(MARKER_PREFIX):
                    side["markers"] += 1
                elif sort_value.startswith(DELTA_PREFIX):
                    side["deltas"] += 1
        return {
            "name": self.counter_name,
            "strategy": self.name,
            "value": self.value(),
            "item": {k: plain.deserialize(val) for k, val in item.items()},
            **side,
        }

    # -- helpers for strategies ---------------------------------------------------------------

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.io.call(operation, params, counter=self.counter_name, strategy=self.name)

    def _send(self, call: AddCall, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request of an add, keeping the call's request and SDK-retry counts."""
        call.requests += 1
        try:
            answer = self._call(operation, params)
        except ClientError as exc:
            self._note_retries(call, sdk_retries_of(response_of(exc)))
            raise
        except BotoCoreError:
            # botocore gave up after its own retries: the server may have applied any of them.
            call.ambiguous = True
            raise
        self._note_retries(call, sdk_retries_of(answer))
        return answer

    @staticmethod
    def _note_retries(call: AddCall, retries: int) -> None:
        if retries:
            call.sdk_retries += retries
            # A re-send means an earlier send's outcome was not seen: it may have landed.
            call.ambiguous = True

    def _put_if_absent(self, call: AddCall, item: dict[str, Any]) -> dict[str, Any] | None:
        """Put ``item`` unless an item with its key exists; returns the existing item, if any."""
        try:
            self._send(
                call,
                "PutItem",
                {
                    "TableName": self.layout.table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                    # The existing item tells a replay from our own lost write, for free.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return dict(response_of(exc).get("Item") or {})
        return None

    def _check_same_amount(self, call: AddCall, counted: str | None) -> None:
        """A known request id must come back with the amount it was counted with."""
        if counted is not None and to_int(counted) != call.amount:
            raise RequestIdMismatch(
                f"request id {call.request_id!r} was counted on {self.counter_name!r} "
                f"with amount {counted}, not {call.amount}"
            )

    def _collection(self, *attributes: str) -> list[tuple[str, dict[str, Any]]]:
        """Every item in the counter's item collection as (sort key value, item), projected
        to the sort key and ``attributes``; pages through results of any size."""
        sk = self.layout.sort_key
        assert sk is not None
        names = {"#pk": self.layout.partition_key, "#sk": sk}
        names.update({f"#a{i}": name for i, name in enumerate(attributes)})
        params: dict[str, Any] = {
            "TableName": self.layout.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":pk": {"S": self.counter_name}},
            "ProjectionExpression": ", ".join(k for k in names if k != "#pk"),
            "ConsistentRead": True,
        }
        return [(item.get(sk, {}).get("S", ""), item) for item in self._query_all(params)]

    def _get_item(self, *, consistent: bool, call: AddCall | None = None) -> dict[str, Any]:
        params = {"TableName": self.layout.table, "Key": self.key, "ConsistentRead": consistent}
        answer = self._send(call, "GetItem", params) if call else self._call("GetItem", params)
        item = answer.get("Item")
        if item is None:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        return dict(item)

    def _value_of(self, item: Mapping[str, Any]) -> int:
        raw = item.get(self.layout.value_attribute)
        if raw is None:
            return 0
        if "N" not in raw:
            raise InvalidInput(
                f"counter {self.counter_name!r}: attribute {self.layout.value_attribute!r} "
                "is not a number"
            )
        return _to_int(raw["N"])

    def _would_cross(self, current: int, amount: int) -> bool:
        new = current + amount
        if amount < 0 and self.floor is not None and new < self.floor:
            return True
        return amount > 0 and self.ceiling is not None and new > self.ceiling

    def _threshold_exceeded(self, current: int | None, amount: int) -> ThresholdExceeded:
        bound = f"floor {self.floor}" if amount < 0 else f"ceiling {self.ceiling}"
        seen = "" if current is None else f" (value {current})"
        return ThresholdExceeded(
            f"adding {amount} to {self.counter_name!r}{seen} would cross its {bound}",
            value=current,
        )

    def _conditions(self, amount: int, names: dict[str, str], values: dict[str, Any]) -> list[str]:
        """Condition clauses every counter write carries: the item exists, no bound is crossed."""
        names["#pk"] = self.layout.partition_key
        names["#v"] = self.layout.value_attribute
        # The item must exist: ADD on a missing item would silently create a counter.
        clauses = ["attribute_exists(#pk)"]
        # Inclusive bounds, written as conditions on the value *before* the add so the check
        # and the write are one atomic step; the bound is shifted by the amount.
        if amount < 0 and self.floor is not None:
            clauses.append("#v >= :lowest_before")
            values[":lowest_before"] = _n(self.floor - amount)
        if amount > 0 and self.ceiling is not None:
            clauses.append("#v <= :highest_before")
            values[":highest_before"] = _n(self.ceiling - amount)
        return clauses

    def _failed_write(self, old_item: Mapping[str, Any] | None, amount: int) -> Exception:
        """Turn a failed counter condition into the library error it stands for."""
        if old_item is None:
            return CounterNotFound(f"counter {self.counter_name!r} does not exist")
        return self._threshold_exceeded(self._value_of(old_item), amount)

    def _contended(self, call: AddCall, exc: BaseException | None) -> None:
        call.conflicts += 1
        if call.conflicts >= self.max_attempts:
            raise ContentionError(
                f"counter {self.counter_name!r}: gave up after {call.conflicts} "
                "attempts lost to concurrent writers"
            ) from exc
        self._sleep(call.conflicts)

    def _sleep(self, attempt: int) -> None:
        if self.retry_delay:
            # Full jitter: spreads colliding writers apart instead of re-colliding in lockstep.
            time.sleep(random.uniform(0, min(0.5, self.retry_delay * 2 ** min(attempt, 10))))

    def _delete_side_items(self) -> None:
        sk = self.layout.sort_key
        assert sk is not None
        keys = [
            {self.layout.partition_key: {"S": self.counter_name}, sk: {"S": sort_value}}
            for sort_value, _ in self._collection()
            if sort_value.startswith((MARKER_PREFIX, DELTA_PREFIX))
        ]
        for start in range(0, len(keys), 25):
            requests: list[dict[str, Any]] = [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]
            ]
            for attempt in range(1, 50):
                answer = self._call(
                    "BatchWriteItem", {"RequestItems": {self.layout.table: requests}}
                )
                requests = answer.get("UnprocessedItems", {}).get(self.layout.table, [])
                if not requests:
                    break
                self._sleep(attempt)

    def _query_all(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            answer = self._call("Query", params)
            items.extend(answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return items
            params = {**params, "ExclusiveStartKey": last}

    def _cancellation_reasons(self, exc: ClientError) -> list[dict[str, Any]]:
        reasons = response_of(exc).get("CancellationReasons") or []
        return [dict(r) for r in reasons]

    def _ttl_epoch(self, ttl: timedelta) -> dict[str, str]:
        return _n(int(time.time() + ttl.total_seconds()))


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _to_int(text: str) -> int:
    if any(c in text for c in ".eE"):
        # DynamoDB may normalise numbers; counters are integers, so a fraction is a bug upstream.
        from decimal import Decimal

        d = Decimal(text)
        if d != d.to_integral_value():
            raise InvalidInput(f"counter value {text} is not an integer")
        return int(d)
    return int(text)


n = _n
to_int = _to_int
