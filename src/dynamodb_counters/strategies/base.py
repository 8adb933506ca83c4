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

Retry policy: :mod:`dynamodb_counters._retry` holds it whole, as a table of "outcome -> applied?
retried? what is raised at the end" with the reason for each row. In short: what DynamoDB
documents as not applied (a transaction cancelled only for conflicts or throttling) is tried
again with backoff up to ``max_attempts`` tries, then ``ContentionError`` (conflicts) or
DynamoDB's own error (throttling); an ambiguous failure is tried again by idempotent strategies
only, with the same request id, up to ``ambiguity_retries`` times; when the evidence that would
tell whether an ambiguous add landed has left the strategy's window (``occ_history``'s list,
``set``'s generations), the add re-raises the original error; everything else passes through.
:meth:`Strategy._with_retries` follows the table; :meth:`Strategy._send` notes the ambiguity.

Incarnation: every write carries the counter's incarnation in its condition (``_inc = :inc``, or
"has none" for a counter without a stored definition), so no write acts on a counter that was
deleted and created again since the handle learned its definition. A failed condition whose
item shows another incarnation raises :class:`Reincarnated`; the handle learns the new
definition from that item (no extra request) and tries again.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

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
from .._retry import (
    READS,
    Outcome,
    backoff,
    classify,
    give_up,
    is_ambiguous,
    is_throttled_cancellation,
    reasons_of,
    resend_ambiguity,
)
from .._retry import is_conflict as is_conflict  # importable from here, as before
from .._retry import is_item_too_large as is_item_too_large
from .._retry import is_overflow as is_overflow
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
from ..table import UNSUPPORTED_CODES

_T = TypeVar("_T")

#: Items a sweep reads (and may delete) per page: its memory, whatever the counter's history.
PAGE_ITEMS = 500


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
    # Tries DynamoDB did not apply and that are made again (conflicts, throttled transactions,
    # optimistic collisions, stale snapshots): at ``max_attempts`` the operation gives up.
    not_applied: int = 0
    # What this call's first send took from the handle's shared knowledge (``set``'s
    # generation, ``collection``'s fold count). Later attempts carry it, corrected only by items
    # this call's own writes met: another thread's news must never make a retry's condition
    # pass where the first send's would now fail (an ambiguous add would land twice).
    carried: Any = None

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
        """How the CLI reads it (durations: seconds, or ``30s``, ``10m``, ``1h``, ``7d``)."""
        return v.duration if self.kind == "duration" else int


#: ``marker``'s and ``sharded``'s window: how long the evidence of a request id lives.
MARKER_TTL = WindowOption(
    "marker_ttl",
    timedelta(days=7),
    "how long a marker lives (seconds, or 30s, 10m, 1h, 7d)",
    kind="duration",
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
    #: Adds are transactions: create() writes through TransactWriteItems too, so an engine
    #: without transactions (dynalite) refuses before the counter exists, not after.
    transactional: ClassVar[bool] = False
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
        try:
            yield from self._create_transaction(call, [self._put_new_side_item(item)])
        except NotSupported:
            if self.transactional:
                raise  # its adds need transactions too: refused before anything is written
            # An engine without transactions: a plain conditional put (its re-send after a lost
            # answer could bring back an incarnation deleted meanwhile; nothing prevents that
            # there).
            found = yield from self._put_if_absent(call, item)
            if found is not None and found.get(CREATED_BY, {}).get("S") != call.nonce:
                raise CounterExists(f"counter {self.counter_name!r} already exists") from None

    def _create_transaction(self, call: OpState, items: list[dict[str, Any]]) -> Steps[None]:
        """Create the counter: ``items`` (the counter item's conditional Put first) in one
        transaction whose ``ClientRequestToken`` is this call's nonce.

        Why a transaction, and why this token: a create whose answer was lost is sent again
        (by botocore, or by this call's retry). Were the re-send applied, it would put the very
        item again -- the same incarnation -- and if another process had meanwhile used the
        counter and deleted it, that deleted incarnation would be back, its markers and tokens
        counting for it again. DynamoDB answers a re-sent token (for 10 minutes) with success
        and applies nothing: the create happened once, at its first landing, and a delete
        after it stays done. A condition that fails on the counter item shows who created it:
        this call (an earlier send of it, past the token's window) or another
        (:class:`CounterExists`).
        """
        try:
            yield from self._send(
                call,
                "TransactWriteItems",
                {"TransactItems": items, "ClientRequestToken": call.nonce},
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = self._cancellation_reasons(exc)
            if not reasons or reasons[0].get("Code") != "ConditionalCheckFailed":
                raise
            found = reasons[0].get("Item")
            if found is None:  # an engine that does not return it: read it
                found = (yield from self._read_item(call=call)) or {}
            if found.get(CREATED_BY, {}).get("S") != call.nonce:
                raise CounterExists(f"counter {self.counter_name!r} already exists") from exc

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
        """Run ``attempt`` until it returns, following the table of
        :mod:`dynamodb_counters._retry`.

        ``repeatable``: the attempt finds out by itself whether an earlier one landed, so an
        ambiguous failure may be retried. Every try is the same call: the same request id,
        digest and nonce, so a try that finds an earlier one landed recognises it.
        """
        ambiguous_tries = 0
        while True:
            try:
                return (yield from attempt(call))
            except _UnknownOutcome as unknown:
                self._gave_up("ambiguous add re-raised: its evidence left the window", call)
                raise unknown.error from None
            except (ClientError, BotoCoreError) as exc:
                outcome = classify(exc)
                if outcome.try_again:
                    # A conflict or a throttled transaction: this send applied nothing. But
                    # when botocore re-sent it after a lost answer, an earlier send may have
                    # landed: an add without evidence must not go again (it could count twice).
                    if call.ambiguous and not repeatable:
                        raise (call.first_error or exc) from None
                    yield from self._try_again(call, exc)
                    continue
                if outcome is Outcome.ITEM_TOO_LARGE:
                    raise CapacityExceeded(
                        f"counter {self.counter_name!r}: the item would exceed DynamoDB's 400 KB "
                        "item size; nothing changed"
                    ) from exc
                if outcome is Outcome.OVERFLOW:
                    raise ThresholdExceeded(
                        f"{self.counter_name!r}: the new value would exceed DynamoDB's "
                        "38-digit numbers; nothing changed"
                    ) from exc
                if (
                    outcome is Outcome.AMBIGUOUS
                    and repeatable
                    and ambiguous_tries < self.ambiguity_retries
                ):
                    # _send marked the call ambiguous if a write failed this way.
                    ambiguous_tries += 1
                    o.retrying("ambiguity", self.counter_name, self.name, ambiguous_tries, exc)
                    yield from self._sleep(ambiguous_tries)
                    continue
                if call.ambiguous and is_ambiguous(exc):
                    self._gave_up("ambiguous add re-raised: its outcome is unknown", call, exc)
                # UNREACHABLE, THROTTLED_REQUEST, CONDITION_FAILED, OTHER; AMBIGUOUS when it
                # may not (or no longer) be tried again.
                raise

    def value(self) -> Steps[int]:
        item = yield from self._get_item(consistent=True)
        return self._value_of(item)

    def delete(self) -> Steps[None]:
        """Delete this incarnation of the counter and, with a sort key, what it keeps beside it.

        Only items of this incarnation (or of earlier, already deleted ones) are removed: a
        counter created again while this runs keeps everything it wrote.
        """
        call = OpState(amount=0, request_id=None, digest=None)
        try:
            # A try may meet a running transaction (TransactionConflictException) or lose its
            # answer: the next one's condition tells (see _delete_counter).
            yield from self._with_retries(self._delete_counter, call, repeatable=True)
        except CounterNotFound:
            # Gone before we came (or never there): finish what an earlier delete's sweep may
            # have left, then say so.
            if self.layout.sort_key is not None:
                yield from self.sweep()
            raise
        if self.layout.sort_key is not None:
            yield from self.sweep()

    def _delete_counter(self, call: OpState) -> Steps[None]:
        """One try at deleting the counter item, this incarnation only. Raises CounterNotFound
        when it was gone before this delete came."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
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
            # Never follow the counter into another incarnation: one created after this delete
            # began is not this delete's to remove.
            if call.ambiguous:
                # A send whose answer was lost (re-sent by botocore or by the retry) deleted
                # this incarnation; whatever was created since is left alone.
                return
            old = response_of(exc).get("Item")
            if old is None:
                old = yield from self._read_item(call=call)  # an engine that leaves the item out
            raise CounterNotFound(
                f"counter {self.counter_name!r} does not exist"
                + ("" if old is None else " (it was deleted and created again)")
            ) from exc

    def sweep(self) -> Steps[int]:
        """Delete side items that belong to no living incarnation of this counter.

        A side item carries the incarnation it was written for and its key is unique to that
        incarnation; once the counter item shows another incarnation (or none), the side item
        can never count again. The collection is read a page at a time, and the counter item
        after each page: a side item written for a newer incarnation exists only after that
        incarnation's counter item does, so it is never taken for garbage.
        """
        sk = self.layout.sort_key
        assert sk is not None
        names = {"#pk": self.layout.partition_key, "#sk": sk, "#inc": INCARNATION}
        params: dict[str, Any] = {
            "TableName": self.layout.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":pk": {"S": self.counter_name}},
            "ProjectionExpression": "#pk, #sk, #inc",
            "ConsistentRead": True,
        }
        return self._sweep_pages(params, SWEPT_PREFIXES)

    def _sweep_pages(self, params: dict[str, Any], prefixes: tuple[str, ...]) -> Steps[int]:
        """Delete, a page of :data:`PAGE_ITEMS` at a time, the items of the Query ``params``
        whose sort key starts with one of ``prefixes`` and whose incarnation is not the living
        one (see :meth:`sweep`); returns how many. Memory stays one page whatever the history,
        and a sweep stopped half-way is finished by the next (``delete()`` called again)."""
        pk, sk = self.layout.partition_key, self.layout.sort_key
        assert sk is not None
        removed = 0
        while True:
            answer = yield from self._request("Query", {**params, "Limit": PAGE_ITEMS})
            side = [
                ({pk: item[pk], sk: item[sk]}, item.get(INCARNATION, {}).get("S"))
                for item in answer.get("Items", [])
                if item.get(sk, {}).get("S", "").startswith(prefixes)
            ]
            if side:
                current = yield from self._read_item()  # after the page: see sweep()
                living = "-" if current is None else current.get(INCARNATION, {}).get("S")
                stale = [
                    key
                    for key, incarnation in side
                    # A counter item without an incarnation (first release) owns side items
                    # without one.
                    if incarnation != living and not (living is None and incarnation is None)
                ]
                yield from self._batch_delete(stale)
                removed += len(stale)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return removed
            params = {**params, "ExclusiveStartKey": last}

    def inspect(self) -> Steps[dict[str, Any]]:
        """The counter item (plain Python values) and how many side items it has (counted by
        DynamoDB, ``Select=COUNT``: nothing held in memory, read units as for reading them)."""
        from boto3.dynamodb.types import TypeDeserializer

        from .._keys import DELTA_PREFIX, MARKER_PREFIX

        plain = TypeDeserializer()
        item = yield from self._get_item(consistent=True)
        side = {"markers": 0, "deltas": 0}
        if self.layout.sort_key is not None:
            side["markers"] = yield from self._count(self.counter_name, MARKER_PREFIX)
            side["deltas"] = yield from self._count(self.counter_name, DELTA_PREFIX)
        return {
            "name": self.counter_name,
            "strategy": self.name,
            "value": (yield from self.value()),
            "item": {k: plain.deserialize(val) for k, val in item.items()},
            **side,
        }

    def _count(self, partition: str, prefix: str) -> Steps[int]:
        """How many items of ``partition`` have a sort key starting with ``prefix``."""
        sk = self.layout.sort_key
        assert sk is not None
        params: dict[str, Any] = {
            "TableName": self.layout.table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": self.layout.partition_key, "#sk": sk},
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":prefix": {"S": prefix}},
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        count = 0
        while True:
            answer = yield from self._request("Query", params)
            count += int(answer.get("Count", 0))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return count
            params = {**params, "ExclusiveStartKey": last}

    # -- helpers for strategies ---------------------------------------------------------------

    def _request(self, operation: str, params: dict[str, Any]) -> Steps[dict[str, Any]]:
        """Send one request outside an add (reads, sweeps)."""
        try:
            answer: dict[str, Any] = yield Send(operation, params, self.counter_name, self.name)
        except ClientError as exc:
            self._check_supported(operation, exc)
            raise
        return answer

    def _check_supported(self, operation: str, exc: ClientError) -> None:
        """An engine without ``operation`` (dynalite has no transactions) answers
        UnknownOperationException with an empty message: say what is missing, and for what."""
        if error_code(exc) in UNSUPPORTED_CODES:
            raise NotSupported(
                f"this DynamoDB engine does not support {operation} ({error_code(exc)}), which "
                f"strategy {self.name!r} needs; use DynamoDB, DynamoDB Local or another strategy"
            ) from exc

    def _send(self, call: OpState, operation: str, params: dict[str, Any]) -> Steps[dict[str, Any]]:
        """Send one request of an add, keeping the call's request and SDK-retry counts."""
        call.requests += 1
        write = operation not in READS
        retried: list[BaseException] = []
        try:
            answer: dict[str, Any] = yield Send(
                operation, params, self.counter_name, self.name, retried
            )
        except ClientError as exc:
            self._check_supported(operation, exc)
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
        ambiguous, failure = resend_ambiguity(retries, retried)
        if ambiguous:
            call.became_ambiguous(failure)

    def _put_if_absent(self, call: OpState, item: dict[str, Any]) -> Steps[dict[str, Any] | None]:
        """Put ``item`` unless an item with its key exists; returns the existing item, if any.

        An engine that does not return the item on a failed condition gets it read. A
        :attr:`transactional` strategy puts it in a transaction of one (see there).
        """
        put = self._put_new_side_item(item)
        try:
            if self.transactional:
                yield from self._send(call, "TransactWriteItems", {"TransactItems": [put]})
            else:
                yield from self._send(call, "PutItem", put["Put"])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                (reason,) = self._cancellation_reasons(exc) or [{}]
                if reason.get("Code") != "ConditionalCheckFailed":
                    raise
                found = reason.get("Item")
            elif error_code(exc) == "ConditionalCheckFailedException":
                found = response_of(exc).get("Item")
            else:
                raise
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

    def _try_again(self, call: OpState, exc: BaseException | None) -> Steps[None]:
        """A try that DynamoDB did not apply (``exc``; None for a stale snapshot): pause, or
        give up once ``max_attempts`` tries went this way (``_retry.give_up``; the first
        ambiguous error when an earlier try may have landed)."""
        call.not_applied += 1
        if call.not_applied >= self.max_attempts:
            if call.ambiguous and call.first_error is not None:
                # "Nothing changed" (DynamoDB's throttle, ContentionError) would be untrue: an
                # earlier try may have landed. Its error says so; the same request id settles it.
                self._gave_up("ambiguous add re-raised: its outcome is unknown", call, exc)
                raise call.first_error
            self._gave_up(
                "throttled after retries"
                if exc is not None and is_throttled_cancellation(exc)
                else "contention exhausted",
                call,
                exc,
            )
            give_up(exc, counter=self.counter_name, tries=call.not_applied)
        reason = "throttle" if exc is not None and is_throttled_cancellation(exc) else "conflict"
        o.retrying(reason, self.counter_name, self.name, call.not_applied, exc)
        yield from self._sleep(call.not_applied)

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
        """Back off before try ``attempt + 1`` (the executor sleeps)."""
        if self.retry_delay:
            yield Sleep(backoff(attempt, self.retry_delay))

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
        return reasons_of(exc)

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
