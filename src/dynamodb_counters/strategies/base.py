"""The protocol every strategy shares.

:class:`Strategy` owns validation, request-id handling, retries, ambiguity resolution, the
counter's incarnation and error mapping. A concrete strategy fills a few hooks:

* ``check_window(options)`` -- validate its window options and fill their defaults (classmethod).
* ``_attempt(call)`` -- one try at an add: build the request(s), send them with
  ``yield from self._send(...)``, interpret the answer. It raises botocore errors untouched; the
  base decides what to retry.
* ``_create_attributes()`` -- extra attributes the counter item starts with (optional).
* ``value()`` -- when the value is not simply the counter item's value attribute.

No strategy does I/O: every operation is a generator of steps (:mod:`dynamodb_counters._steps`)
that yields the requests it needs sent and the pauses it needs taken, receives the answers (or
has the botocore error thrown in), and returns its result. An executor runs it: botocore for
:class:`~dynamodb_counters.CounterStore`, aiobotocore for ``dynamodb_counters.aio``.

Retry policy (why each branch exists):

* Transaction conflicts (``TransactionConflict`` cancellation reasons,
  ``TransactionConflictException``): nothing was applied, so any strategy may try again, with
  backoff, up to ``max_attempts``; then :class:`ContentionError`.
* Ambiguous failures (a timeout or a dropped connection after botocore's own retries, a 5xx,
  ``TransactionInProgressException``): the write may or may not have happened. An idempotent
  strategy tries again with the same request id -- its condition finds out whether the first try
  landed -- up to ``ambiguity_retries`` times, then re-raises the original error. A
  non-idempotent strategy re-raises at once: retrying could count twice. Once botocore cannot
  even connect (``EndpointConnectionError`` after its own retries), no strategy tries again:
  the endpoint is gone for now, and the caller hears at once (not after ``ambiguity_retries``
  more rounds of botocore's backoff) and retries later with the same request id.
* A re-send by botocore itself makes the add ambiguous too, unless every failure botocore
  retried is one that DynamoDB documents as not applied (throttling, a transaction conflict).
* When the evidence that would tell whether an ambiguous add landed has left the strategy's
  window (``occ_history``'s list, ``set``'s generations), the add re-raises the original error:
  never ``ThresholdExceeded`` for an add that landed, never a second application.
* Everything else (throttling after the SDK gave up, access denied, ...) passes through.

Incarnation: every write carries the counter's incarnation in its condition (``_inc = :inc``, or
"has none" for a counter without a stored definition), so no write acts on a counter that was
deleted and created again since the handle learned its definition. A failed condition whose
item shows another incarnation raises :class:`Reincarnated`; the handle learns the new
definition from that item (no extra request) and tries again.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn, TypeVar

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

from .. import _observe as o
from .. import _validate as v
from .._io import error_code, response_of, sdk_retries_of
from .._keys import (
    AMOUNT,
    CALL,
    CREATED_BY,
    DEFINITION,
    INCARNATION,
    REQUEST_ID,
    SHARD_INFIX,
    SWEPT_PREFIXES,
    Layout,
    finish_digest,
)
from .._steps import BATCH_TRIES, NOW, Send, Sleep, Steps, unprocessed_pause
from ..errors import (
    CapacityExceeded,
    ContentionError,
    CounterExists,
    CounterNotFound,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    ThresholdExceeded,
)
from ..results import AddResult, CounterDefinition

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
# Failures DynamoDB documents as "nothing was applied": a re-send after one of these is no
# ambiguity.
_NOT_APPLIED_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    }
)


_READS = frozenset({"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"})


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


def is_overflow(exc: BaseException) -> bool:
    """True when DynamoDB refused a number beyond its 38 digits."""
    if not isinstance(exc, ClientError):
        return False
    texts = [str(response_of(exc).get("Error", {}).get("Message", ""))]
    texts += [str(r.get("Message", "")) for r in response_of(exc).get("CancellationReasons") or []]
    signs = ("overflow", "magnitude", "38 digits")
    return any(sign in text.lower() for text in texts for sign in signs)


def is_item_too_large(exc: BaseException) -> bool:
    """True when DynamoDB refused a write because the item would pass 400 KB."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    texts = []
    if code == "ValidationException":
        texts.append(str(response_of(exc).get("Error", {}).get("Message", "")))
    if code == "TransactionCanceledException":
        reasons = response_of(exc).get("CancellationReasons") or []
        texts += [str(r.get("Message", "")) for r in reasons if r.get("Code") == "ValidationError"]
    return any("item size" in text.lower() for text in texts)


class Reincarnated(Exception):
    """A write met another incarnation of the counter (deleted and created again).

    ``item`` is the counter item as it is now; the handle learns its definition and retries.
    """

    def __init__(self, item: Mapping[str, Any]) -> None:
        super().__init__("the counter was deleted and created again")
        self.item = dict(item)


class _Nonces:
    """Unique strings for calls, without a system call each: a random prefix for this process
    (drawn again in a forked child) and a counter; 32 hex digits, as the first release's
    ``os.urandom(16).hex()`` (the items keep their size)."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"


#: A string unique to one call, in this process and any other (80 random bits a process).
new_nonce = _Nonces()


class OpState:
    """State of one operation (an ``add()``, a ``create()``, a read or a delete) across its
    attempts. (Not to be confused with a :class:`~dynamodb_counters.CallRecord`: one request
    as the ``on_call`` listeners see it.)

    A plain class, not a dataclass: it is made on every add, and the immutable defaults below
    stay on the class until a call sets its own.
    """

    _nonce: str | None = None
    requests: int = 0
    sdk_retries: int = 0
    # True once any attempt of this call may have been applied without us seeing the answer.
    ambiguous: bool = False
    # The first failure that made the call ambiguous: re-raised when the evidence is gone.
    first_error: BaseException | None = None
    conflicts: int = 0

    def __init__(self, amount: int, request_id: str | None, digest: str | None) -> None:
        self.amount = amount
        self.request_id = request_id
        self.digest = digest
        # Entity tags this call wrote (optimistic strategies), to recognise its own landed
        # write.
        self.written: set[str] = set()
        # Strategy-specific positions at which this call's writes would have landed
        # (occ_history's sequence numbers, set's generations).
        self.landings: set[int] = set()

    @property
    def nonce(self) -> str:
        """Unique to this call (made on first use): written beside the request id where the
        strategy can, so that a retry which finds the id already counted can tell its own
        earlier write from another's."""
        if self._nonce is None:
            self._nonce = new_nonce()
        return self._nonce

    def result(self, applied: bool | None, value: int | None) -> AddResult:
        return AddResult(
            applied=applied,
            value=value,
            request_id=self.request_id,
            requests=self.requests,
            sdk_retries=self.sdk_retries,
        )

    def became_ambiguous(self, error: BaseException | None) -> None:
        self.ambiguous = True
        if self.first_error is None and error is not None:
            self.first_error = error

    def unknown_outcome(self, current: BaseException | None = None) -> NoReturn:
        """Give up on an ambiguous add whose evidence is gone: re-raise the original error
        (through :class:`_UnknownOutcome`, so that no retry loop tries again)."""
        error = self.first_error or current
        if error is None:  # pragma: no cover -- only called on ambiguous calls
            raise RuntimeError("unknown outcome without an error")
        raise _UnknownOutcome(error)


class _UnknownOutcome(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class WindowOption:
    """One window option of a strategy, stated once: the store checks it and stores it with the
    counter, the CLI derives its flag, ``strategies`` and the docs its description."""

    name: str
    default: Any
    #: What it means, in a few words (the CLI's help).
    help: str
    #: ``"count"``: a positive int up to ``maximum``; ``"duration"``: a timedelta or seconds.
    kind: str = "count"
    maximum: int | None = None

    def check(self, value: Any) -> Any:
        if self.kind == "duration":
            return v.check_duration(value, what=self.name)
        return v.check_positive_int(value, what=self.name, maximum=self.maximum)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def parse(self) -> Callable[[str], Any]:
        """How the CLI reads it (durations in seconds)."""
        return float if self.kind == "duration" else int


#: ``marker``'s and ``sharded``'s window: how long the evidence of a request id lives.
MARKER_TTL = WindowOption(
    "marker_ttl", timedelta(days=7), "how long a marker lives (seconds)", kind="duration"
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
    """Base class of the strategies; see the module docstring for the protocol."""

    name: ClassVar[str] = ""
    idempotent: ClassVar[bool] = False
    supports_thresholds: ClassVar[bool] = True
    needs_sort_key: ClassVar[bool] = False
    capabilities: ClassVar[Capabilities]
    #: Window options (stored in the counter's definition) accepted by ``store.counter(...)``.
    window_options: ClassVar[tuple[WindowOption, ...]] = ()
    #: Their names, and their values when not given (derived from ``window_options``).
    own_options: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Options every strategy accepts; they stay the caller's (never stored).
    common_options: ClassVar[frozenset[str]] = frozenset(
        {"max_attempts", "ambiguity_retries", "retry_delay"}
    )

    def __init__(
        self,
        *,
        layout: Layout,
        counter: str,
        floor: int | None,
        ceiling: int | None,
        options: Mapping[str, Any],
        incarnation: str | None = None,
    ) -> None:
        self.layout = layout
        self.counter_name = v.check_name(counter)
        infix = layout.reserved_infix_in(self.counter_name)
        if infix is not None:
            raise InvalidInput(
                f"counter name {self.counter_name!r} contains {infix!r}, which a table with a "
                "partition key only reserves for the items counters keep beside them"
            )
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
        #: None: the counter item carries no definition (first release, or written by others).
        self.incarnation = incarnation
        self._digest_base: tuple[str | None, Any] | None = None
        self.window = self.check_window({k: options[k] for k in self.own_options if k in options})
        self._configure(self.window)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "window_options" in cls.__dict__:
            cls.own_options = frozenset(o.name for o in cls.window_options)
            cls.defaults = MappingProxyType({o.name: o.default for o in cls.window_options})

    # -- hooks --------------------------------------------------------------------------------

    @classmethod
    def check_window(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate window options (a subset of ``own_options``); return all, defaults filled."""
        return {o.name: o.check(options.get(o.name, o.default)) for o in cls.window_options}

    def _configure(self, window: Mapping[str, Any]) -> None:
        """Take the checked window options (all of ``own_options``)."""

    def _create_attributes(self) -> dict[str, Any]:
        return {}

    def observe(self, item: Mapping[str, Any]) -> None:
        """Learn what helps the next write from the counter item read on first use."""

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        raise NotImplementedError

    # -- the definition -----------------------------------------------------------------------

    @property
    def definition(self) -> CounterDefinition:
        from types import MappingProxyType

        return CounterDefinition(
            strategy=self.name,
            floor=self.floor,
            ceiling=self.ceiling,
            options=MappingProxyType(dict(self.window)),
            stored=self.incarnation is not None,
        )

    # -- public operations --------------------------------------------------------------------

    def create(self, initial: int = 0) -> Steps[str]:
        """Create the counter with a new incarnation; returns the incarnation."""
        initial = v.check_int(initial, what="initial")
        v.check_within(initial, self.floor, self.ceiling, what="initial")
        self._check_new_name()
        return self._create(initial)

    def _create(self, initial: int) -> Steps[str]:
        from .._definition import encode

        call = OpState(amount=initial, request_id=None, digest=None)
        incarnation = uuid.uuid4().hex
        item = {
            **self.key,
            self.layout.value_attribute: _n(initial),
            # Who created it: a re-send after a lost answer must not report CounterExists.
            CREATED_BY: {"S": call.nonce},
            DEFINITION: {"S": encode(self.definition)},
            INCARNATION: {"S": incarnation},
            **self._create_attributes(),
        }
        yield from self._with_retries(lambda c: self._put_new(c, item), call, repeatable=True)
        self.incarnation = incarnation
        return incarnation

    def _check_new_name(self) -> None:
        # A counter's partition must never be a sharded counter's shard partition (its sweep
        # and its item collection would meet the shard's items). Counters of the first release
        # with such names still open; only new ones are refused.
        if SHARD_INFIX in self.counter_name:
            raise InvalidInput(
                f"counter name {self.counter_name!r} contains {SHARD_INFIX!r}, which is "
                "reserved for the partition keys of sharded counters' shards"
            )

    def _put_new(self, call: OpState, item: dict[str, Any]) -> Steps[None]:
        found = yield from self._put_if_absent(call, item)
        if found is not None and found.get(CREATED_BY, {}).get("S") != call.nonce:
            raise CounterExists(f"counter {self.counter_name!r} already exists")

    def digest_of(self, request_id: str) -> str:
        base = self._digest_base
        if base is None or base[0] != self.incarnation:
            base = self._digest_base = (
                self.incarnation,
                self.layout.digest_base(self.counter_name, self.incarnation),
            )
        return finish_digest(base[1], request_id)

    def add(self, amount: int, *, request_id: str | None = None) -> Steps[AddResult]:
        """Check the arguments now (before any step) and return the add's steps."""
        amount = v.check_amount(amount)
        if request_id is not None:
            request_id = v.check_request_id(request_id)
        return self.checked_add(amount, request_id)

    def checked_add(self, amount: int, request_id: str | None) -> Steps[AddResult]:
        """:meth:`add` for arguments the caller has checked already (the handle has)."""
        if request_id is not None:
            if not self.idempotent:
                raise NotSupported(
                    f"strategy {self.name!r} is not idempotent and cannot honour a request_id; "
                    "use occ_history, transaction, marker, collection or set"
                )
        elif self.idempotent:
            # Generated once, here, never inside the retry loop (SPEC section 3).
            request_id = os.urandom(16).hex()
        digest = None if request_id is None else self.digest_of(request_id)
        call = OpState(amount=amount, request_id=request_id, digest=digest)
        return self._with_retries(self._attempt, call, repeatable=self.idempotent)

    def _with_retries(
        self, attempt: Callable[[OpState], Steps[_T]], call: OpState, *, repeatable: bool
    ) -> Steps[_T]:
        """Run ``attempt`` until it returns, under the retry policy of the module docstring.

        ``repeatable``: the attempt finds out by itself whether an earlier one landed, so an
        ambiguous failure may be retried.
        """
        ambiguous_tries = 0
        while True:
            try:
                return (yield from attempt(call))
            except _UnknownOutcome as unknown:
                self._gave_up("ambiguous add re-raised: its evidence left the window", call)
                raise unknown.error from None
            except (ClientError, BotoCoreError) as exc:
                if is_conflict(exc):
                    yield from self._contended(call, exc)
                    continue
                if is_item_too_large(exc):
                    raise CapacityExceeded(
                        f"counter {self.counter_name!r}: the item would exceed DynamoDB's 400 KB "
                        "item size; nothing changed"
                    ) from exc
                if is_overflow(exc):
                    raise ThresholdExceeded(
                        f"{self.counter_name!r}: the new value would exceed DynamoDB's "
                        "38-digit numbers; nothing changed"
                    ) from exc
                if (
                    repeatable
                    and is_ambiguous(exc)
                    and not isinstance(exc, EndpointConnectionError)
                    and ambiguous_tries < self.ambiguity_retries
                ):
                    # _send marked the call ambiguous if a write failed this way.
                    ambiguous_tries += 1
                    o.retrying("ambiguity", self.counter_name, self.name, ambiguous_tries, exc)
                    yield from self._sleep(ambiguous_tries)
                    continue
                if call.ambiguous and is_ambiguous(exc):
                    self._gave_up("ambiguous add re-raised: its outcome is unknown", call, exc)
                raise

    def value(self) -> Steps[int]:
        item = yield from self._get_item(consistent=True)
        return self._value_of(item)

    def delete(self) -> Steps[None]:
        """Delete this incarnation of the counter and, with a sort key, what it keeps beside it.

        Only items of this incarnation (or of earlier, already deleted ones) are removed: a
        counter created again while this runs keeps everything it wrote.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        call = OpState(amount=0, request_id=None, digest=None)
        try:
            yield from self._send(
                call,
                "DeleteItem",
                {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "ConditionExpression": self._exists_clause(names, values),
                    "ExpressionAttributeNames": names,
                    **({"ExpressionAttributeValues": values} if values else {}),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = response_of(exc).get("Item")
            if old is None and not call.ambiguous:
                old = yield from self._read_item(call=call)  # an engine that leaves the item out
            # Never follow the counter into another incarnation: one created after this delete
            # began is not this delete's to remove.
            if not call.ambiguous:
                # Gone before we came (or never there). Finish what an earlier delete's sweep
                # may have left, then say so.
                if self.layout.sort_key is not None:
                    yield from self.sweep()
                raise CounterNotFound(
                    f"counter {self.counter_name!r} does not exist"
                    + ("" if old is None else " (it was deleted and created again)")
                ) from exc
            # botocore re-sent the delete after a lost answer: the first send deleted this
            # incarnation (whatever was created since is left alone). Sweep what it kept.
        if self.layout.sort_key is not None:
            yield from self.sweep()

    def sweep(self) -> Steps[int]:
        """Delete side items that belong to no living incarnation of this counter.

        A side item carries the incarnation it was written for and its key is unique to that
        incarnation; once the counter item shows another incarnation (or none), the side item
        can never count again. The collection is read first and the counter item after it: a
        side item written for a newer incarnation exists only after that incarnation's counter
        item does, so it is never taken for garbage.
        """
        sk = self.layout.sort_key
        assert sk is not None
        side = [
            (sort_value, item.get(INCARNATION, {}).get("S"))
            for sort_value, item in (yield from self._collection(INCARNATION))
            if sort_value.startswith(SWEPT_PREFIXES)
        ]
        if not side:
            return 0
        current = yield from self._read_item()
        living: str | None = "-" if current is None else current.get(INCARNATION, {}).get("S")
        keys = [
            {self.layout.partition_key: {"S": self.counter_name}, sk: {"S": sort_value}}
            for sort_value, incarnation in side
            # A counter item without an incarnation (first release) owns side items without one.
            if incarnation != living and not (living is None and incarnation is None)
        ]
        yield from self._batch_delete(keys)
        return len(keys)

    def inspect(self) -> Steps[dict[str, Any]]:
        """The counter item (plain Python values) and how many side items it has."""
        from boto3.dynamodb.types import TypeDeserializer

        from .._keys import DELTA_PREFIX, MARKER_PREFIX

        plain = TypeDeserializer()
        item = yield from self._get_item(consistent=True)
        side = {"markers": 0, "deltas": 0}
        if self.layout.sort_key is not None:
            for sort_value, _ in (yield from self._collection()):
                if sort_value.startswith(MARKER_PREFIX):
                    side["markers"] += 1
                elif sort_value.startswith(DELTA_PREFIX):
                    side["deltas"] += 1
        return {
            "name": self.counter_name,
            "strategy": self.name,
            "value": (yield from self.value()),
            "item": {k: plain.deserialize(val) for k, val in item.items()},
            **side,
        }

    # -- helpers for strategies ---------------------------------------------------------------

    def _request(self, operation: str, params: dict[str, Any]) -> Steps[dict[str, Any]]:
        """Send one request outside an add (reads, sweeps)."""
        answer: dict[str, Any] = yield Send(operation, params, self.counter_name, self.name)
        return answer

    def _send(self, call: OpState, operation: str, params: dict[str, Any]) -> Steps[dict[str, Any]]:
        """Send one request of an add, keeping the call's request and SDK-retry counts."""
        call.requests += 1
        write = operation not in _READS
        retried: list[BaseException] = []
        try:
            answer: dict[str, Any] = yield Send(
                operation, params, self.counter_name, self.name, retried
            )
        except ClientError as exc:
            self._note_retries(call, sdk_retries_of(response_of(exc)), retried, write=write)
            if write and is_ambiguous(exc):
                call.became_ambiguous(exc)
            raise
        except BotoCoreError as exc:
            # botocore gave up after its own retries: the server may have applied any of them.
            # ``retried`` holds the failures botocore met, the raised one last.
            self._note_retries(call, max(0, len(retried) - 1), retried, write=write)
            if write and is_ambiguous(exc):
                call.became_ambiguous(exc)
            raise
        retries = sdk_retries_of(answer)
        if retries:
            self._note_retries(call, retries, retried, write=write)
        return answer

    @staticmethod
    def _note_retries(
        call: OpState, retries: int, retried: list[BaseException], *, write: bool = True
    ) -> None:
        if not retries:
            return
        call.sdk_retries += retries
        if not write:
            return  # a re-sent read changes nothing
        # A re-send means an earlier send's outcome was not seen: it may have landed, unless
        # what botocore retried is documented as not applied.
        seen = retried[:retries]
        if len(seen) < retries:
            call.became_ambiguous(seen[0] if seen else None)
            return
        for failure in seen:
            if error_code(failure) not in _NOT_APPLIED_CODES:
                call.became_ambiguous(failure)
                return

    def _put_if_absent(self, call: OpState, item: dict[str, Any]) -> Steps[dict[str, Any] | None]:
        """Put ``item`` unless an item with its key exists; returns the existing item, if any.

        An engine that does not return the item on a failed condition gets it read.
        """
        try:
            yield from self._send(
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
            found = response_of(exc).get("Item")
            if found is None:
                key = {k: item[k] for k in self._key_names()}
                found = yield from self._read_item(key=key, call=call)
            return dict(found or {})
        return None

    def _key_names(self) -> list[str]:
        return [k for k in (self.layout.partition_key, self.layout.sort_key) if k is not None]

    def _check_same_amount(self, call: OpState, counted: str | None) -> None:
        """A known request id must come back with the amount it was counted with."""
        if counted is not None and to_int(counted) != call.amount:
            raise RequestIdMismatch(
                f"request id {call.request_id!r} was counted on {self.counter_name!r} "
                f"with amount {counted}, not {call.amount}"
            )

    def _collection(self, *attributes: str) -> Steps[list[tuple[str, dict[str, Any]]]]:
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
        items = yield from self._query_all(params)
        return [(item.get(sk, {}).get("S", ""), item) for item in items]

    def _read_item(
        self, *, key: dict[str, Any] | None = None, call: OpState | None = None
    ) -> Steps[dict[str, Any] | None]:
        """A strongly consistent GetItem of the counter item (or ``key``); None if absent."""
        params = {"TableName": self.layout.table, "Key": key or self.key, "ConsistentRead": True}
        if call is not None:
            answer = yield from self._send(call, "GetItem", params)
        else:
            answer = yield from self._request("GetItem", params)
        item = answer.get("Item")
        return None if item is None else dict(item)

    def _get_item(
        self, *, consistent: bool = True, call: OpState | None = None
    ) -> Steps[dict[str, Any]]:
        """The counter item of this incarnation; raises CounterNotFound or Reincarnated."""
        item = yield from self._read_item(call=call)
        if item is None:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        self._check_incarnation(item)
        return item

    def _check_incarnation(self, item: Mapping[str, Any]) -> None:
        if item.get(INCARNATION, {}).get("S") != self.incarnation:
            raise Reincarnated(item)

    def _explain(
        self, old_item: Mapping[str, Any] | None, call: OpState | None
    ) -> Steps[dict[str, Any]]:
        """The counter item behind a failed condition, of this incarnation.

        DynamoDB returns the item with the failed condition; an engine that leaves it out gets
        it read (one GetItem, on this failure path only). Raises CounterNotFound when there is
        no counter and Reincarnated when it is another incarnation.
        """
        item = dict(old_item) if old_item is not None else (yield from self._read_item(call=call))
        if item is None:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        self._check_incarnation(item)
        return item

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
        if abs(new) > v.MAX_ABS_NUMBER:
            return True
        if amount < 0 and self.floor is not None and new < self.floor:
            return True
        return amount > 0 and self.ceiling is not None and new > self.ceiling

    def _threshold_exceeded(self, current: int | None, amount: int) -> ThresholdExceeded:
        bound = self.floor if amount < 0 else self.ceiling
        if bound is None:
            what = "DynamoDB's 38-digit numbers"
        else:
            what = f"its {'floor' if amount < 0 else 'ceiling'} {bound}"
        seen = "" if current is None else f" (value {current})"
        return ThresholdExceeded(
            f"adding {amount} to {self.counter_name!r}{seen} would cross {what}",
            value=current,
        )

    def _exists_clause(self, names: dict[str, str], values: dict[str, Any]) -> str:
        """The counter item exists and is the incarnation this handle knows."""
        names["#inc"] = INCARNATION
        if self.incarnation is None:
            names["#pk"] = self.layout.partition_key
            # A counter without a stored definition: it must still have none (not re-created
            # by this library with a definition in between).
            return "attribute_exists(#pk) AND attribute_not_exists(#inc)"
        values[":inc"] = {"S": self.incarnation}
        return "#inc = :inc"

    def _conditions(
        self,
        amount: int,
        names: dict[str, str],
        values: dict[str, Any],
        *,
        bounds: tuple[int | None, int | None] | None = None,
    ) -> list[str]:
        """Condition clauses every counter write carries: this incarnation, no bound crossed.

        ``bounds``: (floor, ceiling) of the item written, when they are not the counter's (a
        shard's share of them).
        """
        floor, ceiling = (self.floor, self.ceiling) if bounds is None else bounds
        names["#v"] = self.layout.value_attribute
        # The item must exist: ADD on a missing item would silently create a counter.
        clauses = [self._exists_clause(names, values)]
        # Inclusive bounds, written as conditions on the value *before* the add so the check
        # and the write are one atomic step; the bound is shifted by the amount. A missing value
        # attribute is 0 (an item written by others): it passes when 0 + amount stays inside.
        if amount < 0 and floor is not None:
            lowest = floor - amount
            if lowest > v.MAX_ABS_NUMBER:
                raise self._threshold_exceeded(None, amount)
            clause = "#v >= :lowest_before"
            clauses.append(f"(attribute_not_exists(#v) OR {clause})" if lowest <= 0 else clause)
            values[":lowest_before"] = _n(lowest)
        if amount > 0 and ceiling is not None:
            highest = ceiling - amount
            if highest < -v.MAX_ABS_NUMBER:
                raise self._threshold_exceeded(None, amount)
            clause = "#v <= :highest_before"
            clauses.append(f"(attribute_not_exists(#v) OR {clause})" if highest >= 0 else clause)
            values[":highest_before"] = _n(highest)
        return clauses

    def _failed_write(
        self, old_item: Mapping[str, Any] | None, call: OpState, exc: BaseException | None = None
    ) -> Steps[Exception]:
        """Turn a failed counter condition into the library error it stands for."""
        item = yield from self._explain(old_item, call)
        if call.ambiguous and self._may_have_landed(call, item):
            call.unknown_outcome(exc)
        return self._threshold_exceeded(self._value_of(item), call.amount)

    def _may_have_landed(self, call: OpState, item: Mapping[str, Any]) -> bool:
        """An ambiguous add met its bound: could an earlier attempt have landed after all?

        Idempotent strategies whose write carries its own evidence (a marker, a token, an id in
        a set) answered that in the same condition: "no". A non-idempotent one cannot know.
        """
        return not self.idempotent

    def _contended(self, call: OpState, exc: BaseException | None) -> Steps[None]:
        call.conflicts += 1
        if call.conflicts >= self.max_attempts:
            self._gave_up("contention exhausted", call, exc)
            raise ContentionError(
                f"counter {self.counter_name!r}: gave up after {call.conflicts} "
                "attempts lost to concurrent writers"
            ) from exc
        o.retrying("conflict", self.counter_name, self.name, call.conflicts, exc)
        yield from self._sleep(call.conflicts)

    def _gave_up(self, what: str, call: OpState, exc: BaseException | None = None) -> None:
        o.gave_up(
            what,
            self.counter_name,
            self.name,
            amount=call.amount,
            request_id=call.request_id,
            failure=call.first_error or exc,
        )

    def _sleep(self, attempt: int) -> Steps[None]:
        """Back off before try ``attempt`` (the executor sleeps)."""
        if self.retry_delay:
            # Full jitter: spreads colliding writers apart instead of re-colliding in lockstep.
            yield Sleep(random.uniform(0, min(0.5, self.retry_delay * 2 ** min(attempt, 10))))

    def _batch_delete(self, keys: list[dict[str, Any]]) -> Steps[None]:
        for start in range(0, len(keys), 25):
            requests: list[dict[str, Any]] = [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]
            ]
            for attempt in range(1, BATCH_TRIES + 1):
                answer = yield from self._request(
                    "BatchWriteItem", {"RequestItems": {self.layout.table: requests}}
                )
                requests = answer.get("UnprocessedItems", {}).get(self.layout.table, [])
                if not requests:
                    break
                yield unprocessed_pause(attempt)
            else:
                # Never report a delete done with items left: the caller may retry delete().
                raise ContentionError(
                    f"counter {self.counter_name!r}: {len(requests)} items it kept were still "
                    f"unprocessed after {BATCH_TRIES} tries (throttled); call delete() again "
                    "to finish"
                )

    def _query_all(self, params: dict[str, Any]) -> Steps[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        while True:
            answer = yield from self._request("Query", params)
            items.extend(answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return items
            params = {**params, "ExclusiveStartKey": last}

    def _cancellation_reasons(self, exc: ClientError) -> list[dict[str, Any]]:
        reasons = response_of(exc).get("CancellationReasons") or []
        return [dict(r) for r in reasons]

    def _ttl_epoch(self, ttl: timedelta) -> Steps[dict[str, str]]:
        now: float = yield NOW
        return _n(int(now + ttl.total_seconds()))

    def _put_new_side_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """The transaction entry that puts a side item (marker, delta) unless it exists."""
        return {
            "Put": {
                "TableName": self.layout.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                # The existing item tells a replay from our own lost write, for free.
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _replayed(
        self, call: OpState, reason: Mapping[str, Any], item: dict[str, Any], attribute: str
    ) -> Steps[AddResult]:
        """The answer to an add whose side item ``item`` already existed (``reason``: the
        cancellation reason of its Put): a duplicate, or this call's own lost write."""
        found = reason.get("Item")
        if found is None:  # an engine that does not return it: read it
            key = {k: item[k] for k in self._key_names()}
            found = (yield from self._read_item(key=key, call=call)) or {}
        self._check_same_amount(call, found.get(attribute, {}).get("N"))
        return call.result(found.get(CALL, {}).get("S") == call.nonce, None)

    def _side_item(self, call: OpState, prefix: str) -> dict[str, Any]:
        """Key and bookkeeping of a side item (marker, delta) of this call."""
        assert call.digest is not None and call.request_id is not None
        item = self.layout.side_key(self.counter_name, prefix, call.digest)  # a new dict
        item[REQUEST_ID] = {"S": call.request_id}
        item[AMOUNT] = _n(call.amount)
        item[CALL] = {"S": call.nonce}
        if self.incarnation is not None:
            item[INCARNATION] = {"S": self.incarnation}
        return item


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    # DynamoDB may normalise numbers ("1E+2"); counters are integers, so a fraction is a bug
    # upstream.
    from decimal import Decimal

    d = Decimal(text)
    if d != d.to_integral_value():
        raise InvalidInput(f"counter value {text} is not an integer") from None
    return int(d)


n = _n
to_int = _to_int
