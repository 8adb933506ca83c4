"""``CounterStore`` (a table) and ``Counter`` (one counter in it, with its strategy).

What a handle and a store do is written once, as steps (:mod:`dynamodb_counters._steps`), in
:class:`HandleCore` and :class:`StoreCore`; :class:`Counter` and :class:`CounterStore` run them
with botocore, ``dynamodb_counters.aio`` with aiobotocore.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Unpack

from botocore.exceptions import ClientError

from . import _validate as v
from ._aio_hooks import is_async_client
from ._definition import UNSET, Known, Requested, known_from_item
from ._io import DynamoIO, Listener
from ._keys import (
    ENDED_PREFIX,
    HOLD_PREFIX,
    RESERVED_ATTRIBUTES,
    RESERVED_INFIXES,
    SIDE_PREFIXES,
    Layout,
)
from ._observe import Observed
from ._steps import BATCH_TRIES, Send, Steps, done, run_sync, unprocessed_pause
from .errors import (
    ContentionError,
    CounterError,
    CounterExists,
    CounterNotFound,
    InvalidInput,
    NotSupported,
)
from .quota import Quota
from .results import AddResult, CounterDefinition, Hold
from .strategies import (
    STRATEGIES,
    CollectionCounter,
    CounterOptions,
    ShardedCounter,
    Strategy,
    StrategyName,
)
from .strategies.base import Reincarnated
from .strategies.holds import Holds
from .table import LIST_INDEX, TableReport, ensure_table_steps, warn_about

if TYPE_CHECKING:
    # The stub package's client type (boto3-stubs[dynamodb]); a string at run time.
    from mypy_boto3_dynamodb import DynamoDBClient  # noqa: F401

_T = TypeVar("_T")
_H = TypeVar("_H", bound="HandleCore")
#: The client type of a store: boto3's or aiobotocore's DynamoDB client.
_C = TypeVar("_C")
# Deletions and re-creations one operation follows before giving up.
_REINCARNATIONS = 8
# Option names that belong to strategies' windows, and the strategies (``marker_ttl`` is both
# marker's and sharded's).
_WINDOW_OWNERS: dict[str, list[type[Strategy]]] = {}
for _cls in STRATEGIES.values():
    for _option in sorted(_cls.own_options):
        _WINDOW_OWNERS.setdefault(_option, []).append(_cls)

DEFAULT_COUNTER_SORT_VALUE = "#counter"

#: How many counters' definitions and incarnations a store remembers (the most recently used).
#: A forgotten counter costs its next handle operation one read of the counter item, as on first
#: use; a store that is asked about any number of names keeps at most this many (~600 bytes
#: each).
KNOWN_COUNTERS = 10_000
#: A new handle's first read happens under one of this many locks (picked by the name's hash),
#: so that threads (tasks) starting on one counter read it once, and the locks do not grow with
#: the names asked about.
FIRST_USE_LOCKS = 64


class KnownCounters:
    """name -> :class:`Known`, the :data:`KNOWN_COUNTERS` most recently used (an LRU).

    Safe for threads without a lock on the hot path: ``OrderedDict``'s operations on str keys
    are atomic; only an insertion (a first use, a re-creation seen) takes the lock.
    """

    def __init__(self, limit: int = KNOWN_COUNTERS) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> Known | None:
        known = self._items.get(name)
        if known is not None:
            with contextlib.suppress(KeyError):  # forgotten meanwhile by another thread
                self._items.move_to_end(name)
        return known

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __setitem__(self, name: str, known: Known) -> None:
        with self._lock:
            self._items[name] = known
            self._items.move_to_end(name)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def pop(self, name: str, default: Known | None = None) -> Known | None:
        return self._items.pop(name, default)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _is_resource(client: Any) -> bool:
    """A boto3 resource (``boto3.resource("dynamodb")`` or one of its ``Table`` objects): its
    ``meta`` holds the client it wraps, a client's own ``meta`` does not."""
    meta = getattr(client, "meta", None)
    return meta is not None and hasattr(meta, "client") and not hasattr(meta, "service_model")


def _no_such_index(exc: ClientError) -> bool:
    """DynamoDB's answer to a request naming an index the table does not have."""
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "specified index" in str(
        error.get("Message", "")
    )


class HandleCore:
    """What a counter handle does, as steps, whatever the I/O style (see :class:`Counter`)."""

    def __init__(
        self, store: StoreCore[Any, Any], name: str, requested: Requested, retry: dict[str, Any]
    ) -> None:
        self._store = store
        self._name = name
        self._requested = requested
        self._retry = retry
        self._strategy: Strategy | None = None

    @property
    def name(self) -> str:
        return self._name

    # -- resolution ---------------------------------------------------------------------------

    def _build(self, definition: CounterDefinition, incarnation: str | None) -> Strategy:
        return self._store._build(self._name, definition, incarnation, self._retry)

    def _adopt(self, known: Known) -> Strategy:
        current = self._strategy
        if current is not None and current.incarnation == known.incarnation:
            return current
        if known.definition is None:
            definition = self._requested.for_item_without_definition()
        else:
            self._requested.check(self._name, known.definition)
            definition = known.definition
        self._strategy = self._build(definition, known.incarnation)
        return self._strategy

    def _current_steps(self) -> Steps[Strategy]:
        known = self._store._known.get(self._name)
        if known is not None:
            return self._adopt(known)
        item = yield from self._store._read_item_steps(self._name)
        strategy = self._adopt(self._store._learn(self._name, item))
        strategy.observe(item)
        return strategy

    def _run_steps(self, operation: Callable[[Strategy], Steps[_T]]) -> Steps[_T]:
        for _ in range(_REINCARNATIONS):
            known = self._store._known.get(self._name)
            if known is not None:
                strategy = self._adopt(known)  # the usual case: no step
            else:
                strategy = yield from self._current_steps()
            try:
                return (yield from operation(strategy))
            except Reincarnated as news:
                self._store._learn(self._name, news.item)
            except CounterNotFound:
                self._store._forget(self._name)
                raise
        raise ContentionError(
            f"counter {self._name!r} was deleted and created again {_REINCARNATIONS} times "
            "during one operation"
        )

    # -- operations, as steps -----------------------------------------------------------------

    def _definition_steps(self) -> Steps[CounterDefinition]:
        return self._run_steps(lambda s: done(s.definition))

    def _create_steps(self, initial: int, exist_ok: bool = False) -> Steps[bool]:
        strategy = self._build(self._requested.for_item_without_definition(), None)
        steps = self._created(strategy, strategy.create(initial))  # checks `initial` now
        if not exist_ok:
            return steps
        return self._get_or_create(initial, steps)

    def _get_or_create(self, initial: int, steps: Steps[bool]) -> Steps[bool]:
        """Create, or take the counter that is there. Exactly one of many racing callers
        creates (the conditional put decides); a re-send of the creating put after a lost
        answer is recognised by its nonce (so the creator still hears True); the others read
        the stored definition, which must match what this handle states."""
        for _ in range(_REINCARNATIONS):
            try:
                return (yield from steps)
            except CounterExists:
                pass
            self._store._forget(self._name)
            try:
                yield from self._current_steps()  # DefinitionMismatch if it differs
                return False
            except CounterNotFound:  # deleted since: try to create it again
                strategy = self._build(self._requested.for_item_without_definition(), None)
                steps = self._created(strategy, strategy.create(initial))
        raise ContentionError(
            f"counter {self._name!r} was created and deleted again {_REINCARNATIONS} times "
            "during one create(exist_ok=True)"
        )

    def _created(self, strategy: Strategy, steps: Steps[str]) -> Steps[bool]:
        incarnation = yield from steps
        self._strategy = strategy
        self._store._known[self._name] = Known(strategy.definition, incarnation)
        return True

    def _add_steps(self, amount: int, request_id: str | None) -> Steps[AddResult]:
        amount = v.check_amount(amount)
        if request_id is not None:
            request_id = v.check_request_id(request_id)
            stated = self._requested.strategy
            if stated is not UNSET and not STRATEGIES[stated].idempotent:
                # Known without a request: the stated strategy cannot honour an id (raises).
                self._build(self._requested.for_item_without_definition(), None).add(
                    amount, request_id=request_id
                )
        return self._run_steps(lambda s: s.checked_add(amount, request_id))

    def _value_steps(self, reclaim: bool = False) -> Steps[int]:
        if reclaim:
            return self._holding(lambda s: s.value_reclaimed())
        return self._run_steps(lambda s: s.value())

    # -- holds (SPEC section 13) --------------------------------------------------------------

    def _holding(self, operation: Callable[[Holds], Steps[_T]]) -> Steps[_T]:
        def run(strategy: Strategy) -> Steps[_T]:
            if not isinstance(strategy, Holds):
                raise NotSupported(
                    f"strategy {strategy.name!r} cannot hold; holds are for marker and sharded"
                )
            return operation(strategy)

        return self._run_steps(run)

    def _reserve_steps(self, amount: int, hold_id: str, ttl: float | timedelta) -> Steps[Hold]:
        # Checked now, before any request (the strategy checks them again: cheap).
        amount = v.check_amount(amount)
        if amount < 0:
            raise InvalidInput(f"a hold's amount must be positive, got {amount}")
        hold_id = v.check_request_id(hold_id, what="hold_id")
        ttl = v.check_duration(ttl, what="ttl")
        return self._holding(lambda s: s.reserve(amount, hold_id=hold_id, ttl=ttl))

    def _commit_steps(self, hold_id: str) -> Steps[None]:
        hold_id = v.check_request_id(hold_id, what="hold_id")
        return self._holding(lambda s: s.commit(hold_id))

    def _cancel_steps(self, hold_id: str) -> Steps[None]:
        hold_id = v.check_request_id(hold_id, what="hold_id")
        return self._holding(lambda s: s.cancel(hold_id))

    def _holds_steps(self) -> Steps[list[Hold]]:
        return self._holding(lambda s: s.holds())

    def _reclaim_steps(self) -> Steps[int]:
        return self._holding(lambda s: s.reclaim())

    def _delete_steps(self) -> Steps[None]:
        try:
            yield from self._run_steps(lambda s: s.delete())
        except CounterNotFound:
            if self._store.layout.sort_key is not None:
                # Items an interrupted delete() left behind belong to no counter: finish it.
                orphan = self._build(self._requested.for_item_without_definition(), None)
                yield from orphan.sweep()
            raise
        finally:
            self._store._forget(self._name)

    def _inspect_steps(self) -> Steps[dict[str, Any]]:
        def look(strategy: Strategy) -> Steps[dict[str, Any]]:
            info = yield from strategy.inspect()
            d = strategy.definition
            info["definition"] = {
                "strategy": d.strategy,
                "floor": d.floor,
                "ceiling": d.ceiling,
                "options": {
                    k: x.total_seconds() if isinstance(x, timedelta) else x
                    for k, x in d.options.items()
                },
                "stored": d.stored,
            }
            return info

        return self._run_steps(look)

    def _compact_steps(self, older_than: float | timedelta) -> Steps[int]:
        stated = self._requested.strategy
        if stated is not UNSET and stated != CollectionCounter.name:
            raise NotSupported(f"strategy {stated!r} keeps no deltas to compact")
        zero = older_than == 0 or older_than == timedelta(0)
        age = timedelta(0) if zero else v.check_duration(older_than, what="older_than")

        def fold(strategy: Strategy) -> Steps[int]:
            if not isinstance(strategy, CollectionCounter):
                raise NotSupported(f"strategy {strategy.name!r} keeps no deltas to compact")
            return strategy.compact(older_than=age)

        return self._run_steps(fold)

    def __repr__(self) -> str:
        stated = self._requested.strategy
        shown = "(stored)" if stated is UNSET else repr(stated)
        return f"{type(self).__name__}({self.name!r}, strategy={shown})"


class Counter(HandleCore):
    """One counter. Get it from :meth:`CounterStore.counter`; the handle makes no request until
    its first operation.

    On its first operation the handle meets the counter's stored definition (SPEC section 7):
    what the caller stated explicitly (strategy, bounds, window options) must equal what
    ``create()`` stored, else :class:`DefinitionMismatch`, before anything is written; what the
    caller left out is taken from the store. The store remembers each counter's definition and
    incarnation after one read; every write carries the incarnation in its condition, so a
    handle learns that the counter was deleted and created again from the item its next failed
    write returns (and a read from the item it reads), at no extra request.
    """

    def _drive(self, steps: Steps[_T]) -> _T:
        return run_sync(self._store._io, steps)

    def _drive_known(self, steps: Steps[_T]) -> _T:
        """Run an operation that starts by learning the counter: when many threads use a new
        handle at once, one of them reads the item and the others wait for it (SPEC 7: one
        read on first use)."""
        if self._name not in self._store._known:
            with self._store._first_use(self._name):
                if self._name not in self._store._known:
                    with contextlib.suppress(CounterError):  # the operation says it again
                        self._drive(self._current_steps())
        return run_sync(self._store._io, steps)

    def _current(self) -> Strategy:
        return self._drive(self._current_steps())

    @property
    def strategy(self) -> str:
        """The strategy id, e.g. ``"marker"`` (the stored one, checked against what this handle
        states; may read the counter once)."""
        return self.definition.strategy

    @property
    def floor(self) -> int | None:
        """The inclusive lower bound (the stored one; may read the counter once)."""
        return self.definition.floor

    @property
    def ceiling(self) -> int | None:
        """The inclusive upper bound (the stored one; may read the counter once)."""
        return self.definition.ceiling

    @property
    def definition(self) -> CounterDefinition:
        """The counter's :class:`CounterDefinition` (read once from the counter item).

        Raises:
            CounterNotFound: the counter does not exist.
            DefinitionMismatch: this handle states another strategy, bound or window option.
        """
        return self._drive_known(self._definition_steps())

    def create(self, initial: int = 0, *, exist_ok: bool = False) -> bool:
        """Create the counter with ``initial`` as its value, storing its definition.

        Args:
            initial: the value it starts with.
            exist_ok: get-or-create: when the counter is there already, take it (its value is
                left as it is) instead of raising :class:`CounterExists`. Safe when many
                processes race on a new name: exactly one creates.

        Returns:
            True when this call created the counter (also when its first answer was lost and
            the SDK's re-send found its own item), False when it was there (``exist_ok``).

        Raises:
            CounterExists: the counter's item is already there (without ``exist_ok``).
            DefinitionMismatch: ``exist_ok`` and the stored definition differs from what this
                handle states (strategy, bounds, window options).
            InvalidInput: ``initial`` is not an int or lies outside floor..ceiling.
        """
        return self._drive(self._create_steps(initial, exist_ok))

    def add(self, amount: int, *, request_id: str | None = None) -> AddResult:
        """Add ``amount`` (an int, positive or negative, not zero).

        Args:
            amount: the change.
            request_id: the caller's id for this change (idempotent strategies). Re-sending the
                same id changes the counter at most once, within the strategy's window. When
                omitted, an idempotent strategy generates one (returned in the result).

        Returns:
            An :class:`AddResult`.

        Raises:
            ThresholdExceeded: the add would cross the floor or ceiling; nothing changed.
            CounterNotFound: the counter does not exist.
            DefinitionMismatch: this handle states another definition than the stored one.
            NotSupported: a request id on a non-idempotent strategy.
            RequestIdMismatch: the id was counted with another amount (where detectable).
            CapacityExceeded: the counter's item cannot grow.
            ContentionError: optimistic retries or transaction conflicts exhausted.
            InvalidInput: a bad amount or request id.
            botocore.exceptions.ClientError: DynamoDB's own error when it passes through, e.g.
                ``TransactionCanceledException`` for a transaction still throttled after
                ``max_attempts`` tries (nothing changed; see :mod:`dynamodb_counters._retry`).
        """
        telemetry = self._store._io.telemetry
        if telemetry is None:
            return self._drive_known(self._add_steps(amount, request_id))
        with Observed(telemetry, "add", self) as seen:  # dynamodb_counters.otel
            seen.result = result = self._drive_known(self._add_steps(amount, request_id))
        return result

    def value(self, *, reclaim: bool = False) -> int:
        """The current value, read strongly consistently.

        A hold's amount is out of the value while the hold lives, and also once it expired,
        until it is reclaimed (by ``reclaim()``, a refused add or reserve, or ``cancel()``).

        Args:
            reclaim: ``reclaim()`` expired holds first (``marker``, ``sharded``).

        Raises:
            CounterNotFound: the counter does not exist.
            NotSupported: ``reclaim=True`` on a strategy without holds.
        """
        return self._drive_known(self._value_steps(reclaim))

    def reserve(self, amount: int, *, hold_id: str, ttl: float | timedelta) -> Hold:
        """Hold ``amount`` (positive) of the counter until ``ttl`` from now (SPEC section 13).

        The amount leaves the value at once, against the floor, as exactly as an add: a
        reserve re-sent with the same ``hold_id`` (after a lost answer too, or after the hold
        ended, within ``marker_ttl``) is that one hold. The hold then ends exactly once: by
        :meth:`commit`, :meth:`cancel`, or expiry (its amount comes back: :meth:`reclaim`).
        When the floor refuses it, expired holds are reclaimed and the reserve tried once more.

        Args:
            amount: the quantity held, a positive int.
            hold_id: the caller's id of the hold (1 to 255 characters).
            ttl: how long the hold lives, at least (a timedelta, or seconds); ``expires_at``
                is rounded up to a whole second.

        Returns:
            The :class:`Hold` (for a replay: the hold as first reserved).

        Raises:
            ThresholdExceeded: the counter lacks the amount, even after reclaiming; nothing held.
            RequestIdMismatch: ``hold_id`` holds another amount.
            NotSupported: a strategy other than marker and sharded, a table without a sort
                key, or a counter with a ceiling.
            CounterNotFound, InvalidInput: as for :meth:`add`.
        """
        return self._drive_known(self._reserve_steps(amount, hold_id, ttl))

    def commit(self, hold_id: str) -> None:
        """End the hold for good: its amount stays out of the counter. Idempotent: a commit of
        a hold this (or another) commit ended returns.

        Raises:
            HoldExpired: the hold expired before the commit; its amount came back (once).
            HoldNotFound: no such hold (never reserved, cancelled, or ended longer ago than
                ``marker_ttl``).
            NotSupported: a strategy other than marker and sharded.
        """
        self._drive_known(self._commit_steps(hold_id))

    def cancel(self, hold_id: str) -> None:
        """End the hold and give its amount back. Idempotent; a cancel of an expired hold ends
        it as expired (its amount comes back, once, as :meth:`reclaim` would) and returns.

        Raises:
            HoldNotFound: no such hold (never reserved, committed, or ended longer ago than
                ``marker_ttl``).
            NotSupported: a strategy other than marker and sharded.
        """
        self._drive_known(self._cancel_steps(hold_id))

    def holds(self) -> list[Hold]:
        """The holds not ended yet, soonest to expire first; expired ones are included until
        they are reclaimed (their ``expires_at`` says so). One Query a partition."""
        return self._drive_known(self._holds_steps())

    def reclaim(self) -> int:
        """End every expired hold, giving its amount back; returns how many this call ended
        (one Query a partition, one transaction per 32 expired holds)."""
        return self._drive_known(self._reclaim_steps())

    def delete(self) -> None:
        """Delete the counter and what its strategy keeps beside it (see each strategy).

        Nothing that belongs to a counter created under the same name after this began is
        removed.

        Raises:
            CounterNotFound: the counter does not exist.
        """
        self._drive_known(self._delete_steps())

    def inspect(self) -> dict[str, Any]:
        """What is stored for this counter: its value, its definition, its item (bookkeeping
        attributes included, as plain Python values) and, in a table with a sort key, how many
        markers and deltas it has.

        Raises:
            CounterNotFound: the counter does not exist.
        """
        return self._drive_known(self._inspect_steps())

    def compact(self, *, older_than: float | timedelta = 0) -> int:
        """``collection`` only: fold delta items older than ``older_than`` into the counter item.

        Keeps ``value()`` cheap. A replay of a folded request id is counted again: that is the
        end of the collection's idempotency window. Returns the number of deltas folded.

        Raises:
            NotSupported: the strategy keeps no deltas.
            CounterNotFound: the counter does not exist.
        """
        return self._drive_known(self._compact_steps(older_than))


class StoreCore(Generic[_H, _C]):
    """What a store does, as steps, whatever the I/O style (see :class:`CounterStore`)."""

    _handle_type: type[_H]
    _io: Any

    def __init__(
        self,
        client: _C,
        table_name: str,
        *,
        partition_key: str = "pk",
        sort_key: str | None = "sk",
        value_attribute: str = "quantity",
        counter_sort_value: str = DEFAULT_COUNTER_SORT_VALUE,
        ttl_attribute: str = "expires_at",
        on_call: Listener | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not 3 <= len(table_name) <= 255:
            raise InvalidInput("table_name must be a str of 3 to 255 characters")
        if _is_resource(client):
            # A Table (or the service resource) has update_item too, with other arguments:
            # it would fail on the first request, far from here.
            raise InvalidInput(
                "client must be a DynamoDB client, not a boto3 resource "
                f"({type(client).__name__}): pass a client: boto3.client('dynamodb'), or "
                "table.meta.client"
            )
        if client is None or not hasattr(client, "update_item"):
            raise InvalidInput("client must be a boto3 DynamoDB client")
        v.check_attribute_name(partition_key, what="partition_key")
        if sort_key is not None:
            v.check_attribute_name(sort_key, what="sort_key")
            if sort_key == partition_key:
                raise InvalidInput("sort_key must differ from partition_key")
        v.check_attribute_name(value_attribute, what="value_attribute")
        if value_attribute in (partition_key, sort_key):
            raise InvalidInput("value_attribute must not be a key attribute")
        v.check_name(counter_sort_value, what="counter_sort_value")
        if counter_sort_value.startswith((*SIDE_PREFIXES, HOLD_PREFIX, ENDED_PREFIX)):
            raise InvalidInput(
                f"counter_sort_value {counter_sort_value!r} starts like the sort keys of side "
                f"items ({', '.join((*SIDE_PREFIXES, HOLD_PREFIX, ENDED_PREFIX))})"
            )
        v.check_attribute_name(ttl_attribute, what="ttl_attribute")
        if ttl_attribute in (partition_key, sort_key, value_attribute):
            raise InvalidInput(
                "ttl_attribute must differ from the key and value attributes: DynamoDB would "
                "delete counters whose value reads as an expired timestamp"
            )
        # Every attribute the library writes must stay apart from the user's own names.
        for what, attribute in (
            ("partition_key", partition_key),
            ("sort_key", sort_key),
            ("value_attribute", value_attribute),
            ("ttl_attribute", ttl_attribute),
        ):
            if attribute in RESERVED_ATTRIBUTES:
                raise InvalidInput(
                    f"{what} {attribute!r} is an attribute the library writes itself; "
                    f"choose another (reserved: {', '.join(sorted(RESERVED_ATTRIBUTES))})"
                )
        self.client = client
        self.table_name = table_name
        self.layout = Layout(
            table=table_name,
            partition_key=partition_key,
            sort_key=sort_key,
            value_attribute=value_attribute,
            counter_sort_value=counter_sort_value,
            ttl_attribute=ttl_attribute,
        )
        self._io = self._make_io(client, table_name)
        # name -> definition and incarnation, learned from reads and failed writes (bounded).
        self._known = KnownCounters()
        # Whether the table has the index that lists counters (None: not known yet).
        self._list_index: bool | None = None
        if on_call is not None:
            self._io.add_listener(on_call)

    def _make_io(self, client: Any, table_name: str) -> Any:
        raise NotImplementedError

    def _first_use(self, name: str) -> Any:
        """The lock (of the executor's kind) under which a new handle first reads ``name``."""
        raise NotImplementedError

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with a :class:`CallRecord` after every DynamoDB call.

        A listener observes and never changes an outcome: one that raises is logged on the
        ``dynamodb_counters`` logger and ignored (the operation answers as if it had not).
        """
        self._io.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._io.remove_listener(listener)

    def counter(
        self,
        name: str,
        *,
        strategy: StrategyName = UNSET,
        floor: int | None = UNSET,
        ceiling: int | None = UNSET,
        **options: Unpack[CounterOptions],
    ) -> _H:
        """A handle on the counter ``name``; makes no request.

        Whatever is not stated is taken from the counter's stored definition on the handle's
        first operation; what is stated must equal it (else :class:`DefinitionMismatch`). For
        ``create()``, and for an item without a stored definition, unstated values default to
        ``strategy="atomic"``, no bounds and each strategy's default window.

        Args:
            name: the counter's name (1 to 1024 UTF-8 bytes): its item's partition key value.
            strategy: one of :data:`dynamodb_counters.STRATEGIES`.
            floor, ceiling: inclusive bounds enforced at write time (not for ``collection``).
            **options: window options, stored with the counter: ``history`` (occ_history),
                ``capacity`` (set), ``marker_ttl`` (marker, sharded), ``shards`` (sharded);
                retry options, the caller's own:
                ``max_attempts`` (collisions before ContentionError, default 32),
                ``ambiguity_retries`` (re-tries of an idempotent add whose outcome is unknown,
                default 3), ``retry_delay`` (backoff base, seconds or timedelta, default 0.01;
                0 disables backoff).

        Raises:
            InvalidInput: bad name, bounds, unknown strategy or option.
            NotSupported: bounds on ``collection``; ``collection`` without a sort key.
        """
        if strategy is not UNSET and (not isinstance(strategy, str) or strategy not in STRATEGIES):
            raise InvalidInput(
                f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        given: dict[str, Any] = dict(options)
        retry = {k: given.pop(k) for k in list(given) if k in Strategy.common_options}
        unknown = sorted(k for k in given if k not in _WINDOW_OWNERS)
        if unknown:
            allowed = sorted({*_WINDOW_OWNERS, *Strategy.common_options})
            raise InvalidInput(
                f"unknown option(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})"
            )
        owners = {cls.name for option in given for cls in _WINDOW_OWNERS[option]}
        common = [cls for cls in STRATEGIES.values() if set(given) <= cls.own_options]
        if strategy is UNSET and given and not common:
            raise InvalidInput(
                f"options {', '.join(sorted(given))} belong to different strategies "
                f"({', '.join(sorted(owners))}); a counter has one"
            )
        window: dict[str, Any] = {}
        for option, value in given.items():
            owner = _WINDOW_OWNERS[option][0]
            if strategy is not UNSET and STRATEGIES[strategy] not in _WINDOW_OWNERS[option]:
                raise InvalidInput(
                    f"unknown option(s) for strategy {strategy!r}: {option} "
                    f"(allowed: {', '.join(sorted(STRATEGIES[strategy].own_options))})"
                )
            window[option] = owner.check_window({option: value})[option]
        requested = Requested(
            strategy=strategy,
            floor=floor if floor is UNSET else v.check_optional_bound(floor, what="floor"),
            ceiling=ceiling
            if ceiling is UNSET
            else v.check_optional_bound(ceiling, what="ceiling"),
            window=window,
        )
        # Validate everything now (name, bounds, retry options, what the strategy supports):
        # the handle built for create() checks all of it without a request.
        probe = self._build(name, requested.for_item_without_definition(), None, retry)
        return self._handle_type(self, probe.counter_name, requested, retry)

    # -- what the store knows of its counters -------------------------------------------------

    def _build(
        self,
        name: str,
        definition: CounterDefinition,
        incarnation: str | None,
        retry: Mapping[str, Any],
    ) -> Strategy:
        cls = STRATEGIES[definition.strategy]
        return cls(
            layout=self.layout,
            counter=name,
            floor=definition.floor,
            ceiling=definition.ceiling,
            options={**definition.options, **retry},
            incarnation=incarnation,
        )

    def _read_item_steps(self, name: str) -> Steps[dict[str, Any]]:
        params = {
            "TableName": self.table_name,
            "Key": self.layout.counter_key(name),
            "ConsistentRead": True,
        }
        answer: dict[str, Any] = yield Send("GetItem", params, counter=name)
        item = answer.get("Item")
        if item is None:
            raise CounterNotFound(f"counter {name!r} does not exist")
        return dict(item)

    def _learn(self, name: str, item: Mapping[str, Any]) -> Known:
        known = known_from_item(item)
        self._known[name] = known
        return known

    def _forget(self, name: str) -> None:
        self._known.pop(name, None)

    def _scan_params(self, *, scan: bool = False) -> dict[str, Any]:
        """The first page's parameters of ``counters()``: the sparse index (only counter items
        are in it, see :mod:`dynamodb_counters.table`) unless ``scan`` or the table is known to
        have none."""
        layout = self.layout
        names = {"#pk": layout.partition_key}
        values: dict[str, Any] = {}
        if layout.sort_key is not None:
            names["#sk"] = layout.sort_key
            values[":counter"] = {"S": layout.counter_sort_value}
            condition = "#sk = :counter"
        else:
            clauses = []
            for i, infix in enumerate(RESERVED_INFIXES):
                values[f":infix{i}"] = {"S": infix}
                clauses.append(f"NOT contains(#pk, :infix{i})")
            condition = " AND ".join(clauses)
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "ProjectionExpression": "#pk",
            "FilterExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if not scan and self._list_index is not False:
            params["IndexName"] = LIST_INDEX
        return params

    def _scan_page_steps(
        self, params: dict[str, Any]
    ) -> Steps[tuple[list[str], dict[str, Any] | None]]:
        """One page of counter names, and the parameters of the next page (None: the last).

        A table without the index (made before it, or by other code) is scanned whole: the
        stated fallback; the store remembers it and asks the index no more."""
        try:
            answer: dict[str, Any] = yield Send("Scan", params)
        except ClientError as exc:
            if "IndexName" not in params or not _no_such_index(exc):
                raise
            self._list_index = False
            params = {k: x for k, x in params.items() if k != "IndexName"}
            answer = yield Send("Scan", params)
        pk = self.layout.partition_key
        names = [str(item[pk]["S"]) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return names, ({**params, "ExclusiveStartKey": last} if last else None)

    def _values_steps(self, names: Iterable[str]) -> Steps[dict[str, int]]:
        wanted = list(dict.fromkeys(v.check_name(name) for name in names))
        items = yield from self._batch_get_steps(wanted)
        result: dict[str, int] = {}
        for name in wanted:
            item = items.get(name)
            if item is None:
                continue
            known = self._learn(name, item)
            handle = self.counter(name)
            strategy = handle._adopt(known)
            if isinstance(strategy, (CollectionCounter, ShardedCounter)):
                try:
                    result[name] = yield from handle._value_steps()
                except CounterNotFound:
                    continue
            else:
                result[name] = strategy._value_of(item)
        return result

    def _batch_get_steps(self, names: list[str]) -> Steps[dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, Any]] = {}
        pk = self.layout.partition_key
        for start in range(0, len(names), 100):
            keys = [self.layout.counter_key(name) for name in names[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(1, BATCH_TRIES + 1):
                answer: dict[str, Any] = yield Send("BatchGetItem", {"RequestItems": request})
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    found[item[pk]["S"]] = dict(item)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                yield unprocessed_pause(attempt)
            else:
                # Never answer "does not exist" for a counter that could not be read.
                raise ContentionError(
                    f"table {self.table_name!r}: counter items still unprocessed after "
                    f"{BATCH_TRIES} BatchGetItem tries (throttled)"
                )
        return found

    def _ensure_table_steps(
        self, wait_seconds: float, enable_ttl: bool, create: bool
    ) -> Steps[TableReport]:
        return ensure_table_steps(
            self.layout, wait_seconds=wait_seconds, enable_ttl=enable_ttl, create=create
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self.table_name!r})"


class CounterStore(StoreCore[Counter, "DynamoDBClient"]):
    """Counters kept in one DynamoDB table.

    Args:
        client: a configured boto3 DynamoDB client (``boto3.client("dynamodb")``).
        table_name: the table.
        partition_key: the table's partition key attribute (a string key).
        sort_key: the table's sort key attribute, or None for a partition-key-only table.
        value_attribute: the attribute holding a counter's value.
        counter_sort_value: the sort key value of counter items (tables with a sort key).
        ttl_attribute: the TTL attribute for items that expire (markers).
        on_call: called with a :class:`CallRecord` after every DynamoDB call (bench, logging);
            what it raises is logged on the ``dynamodb_counters`` logger and ignored.

    A store holds no mutable state besides its listeners and what it remembers of the
    :data:`KNOWN_COUNTERS` counters used most recently (their definitions and incarnations,
    bounded whatever names it is asked about): share one between threads.
    """

    _handle_type = Counter

    def _first_use(self, name: str) -> threading.Lock:
        return self._first_use_locks[hash(name) % FIRST_USE_LOCKS]

    def _make_io(self, client: Any, table_name: str) -> DynamoIO:
        self._first_use_locks = [threading.Lock() for _ in range(FIRST_USE_LOCKS)]
        if is_async_client(client):
            raise InvalidInput(
                "client is an aiobotocore client: use dynamodb_counters.aio.AsyncCounterStore"
            )
        return DynamoIO(client, table_name)

    def counters(self, *, scan: bool = False) -> Iterator[str]:
        """The names of the counters in the table, page by page (never side items).

        On a table made by :meth:`ensure_table` this scans its sparse index
        (:data:`~dynamodb_counters.table.LIST_INDEX`): it reads one small entry per counter
        made by ``create()``, however many markers, deltas or shards the table holds, and is
        eventually consistent (a counter created a moment ago may be missing). On a table
        without the index it scans the whole table (every item read, counted, and dropped).

        Args:
            scan: scan the table even if it has the index: also lists items written by other
                code that no ``create()`` made (in a table with a sort key: items whose sort
                key is the counter sort value; in a partition-key-only table: items whose key
                has no reserved infix).
        """
        params: dict[str, Any] | None = self._scan_params(scan=scan)
        while params is not None:
            names, params = run_sync(self._io, self._scan_page_steps(params))
            yield from names

    def values(self, names: Iterable[str]) -> dict[str, int]:
        """``{name: value}`` for many counters, strongly consistent, in few requests.

        Counter items are read with BatchGetItem (100 a request, unprocessed keys retried);
        a strategy whose value is not on the counter item alone (``collection``, ``sharded``)
        reads its own. Names of counters that do not exist are left out of the result.

        Raises:
            InvalidInput: a bad name.
            DefinitionMismatch: never (no handle states a definition here).
        """
        return run_sync(self._io, self._values_steps(names))

    def quota(
        self, name: str, *, limit: int, per: float | timedelta, window: str = "fixed"
    ) -> Quota:
        """A quota: at most ``limit`` units per window of ``per`` (SPEC section 12); makes no
        request. See :mod:`dynamodb_counters.quota` for windows, exactness and cost.

        Args:
            name: the quota's name (1 to 1024 UTF-8 bytes, without ``"#quota#"``).
            limit: units a window allows (a positive int; the caller's: a new limit holds at
                once).
            per: the window's length, a timedelta or seconds (whole milliseconds).
            window: ``"fixed"`` (aligned to the epoch) or ``"sliding"`` (the sliding window
                counter). Quotas of different ``per`` or ``window`` never share items.

        Raises:
            InvalidInput: a bad name, limit, per or window.
        """
        return Quota(self._io, self.layout, name, limit=limit, per=per, window=window)

    def ensure_table(
        self, *, wait_seconds: float = 120.0, enable_ttl: bool = False, create: bool = True
    ) -> TableReport:
        """Create the table if absent (string keys, on-demand, TTL on), or check the existing one.

        Never changes a table it did not create unless asked: on an existing table it checks the
        keys (names and string types), the state (UPDATING is usable) and TTL, and reports. TTL
        off is a :class:`~dynamodb_counters.table.TableWarning` that says how to turn it on
        (counters work without it; ``marker``'s markers then never expire). Safe to call from
        many processes at once. See :mod:`dynamodb_counters.table`.

        Args:
            wait_seconds: how long a CREATING table may take to become usable.
            enable_ttl: turn TTL on for ``ttl_attribute`` on an existing table where it is off.
            create: create the table when it is missing (False: only check).

        Returns:
            A :class:`~dynamodb_counters.table.TableReport`: what it found and what it changed.

        Raises:
            InvalidInput: the table's keys differ from the store's in name or type, or TTL is on
                for another attribute than ``ttl_attribute``.
            TableNotFound: missing (with ``create=False``), being deleted, not usable, or still
                CREATING after ``wait_seconds``.
            NotSupported: ``enable_ttl=True`` on an engine without TTL.
        """
        steps = self._ensure_table_steps(wait_seconds, enable_ttl, create)
        return warn_about(run_sync(self._io, steps))
