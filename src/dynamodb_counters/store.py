"""``CounterStore`` (a table) and ``Counter`` (one counter in it, with its strategy)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import _validate as v
from ._io import DynamoIO, Listener
from ._keys import Layout
from .errors import InvalidInput, NotSupported
from .results import AddResult
from .strategies import STRATEGIES, CollectionCounter, Strategy
from .table import TableReport, ensure_table

DEFAULT_COUNTER_SORT_VALUE = "#counter"


class Counter:
    """One counter, kept by one strategy. Get it from :meth:`CounterStore.counter`."""

    def __init__(self, strategy: Strategy) -> None:
        self._strategy = strategy

    @property
    def name(self) -> str:
        return self._strategy.counter_name

    @property
    def strategy(self) -> str:
        """The strategy id, e.g. ``"marker"``."""
        return self._strategy.name

    @property
    def floor(self) -> int | None:
        return self._strategy.floor

    @property
    def ceiling(self) -> int | None:
        return self._strategy.ceiling

    def create(self, initial: int = 0) -> None:
        """Create the counter with ``initial`` as its value.

        Raises:
            CounterExists: the counter's item is already there.
            InvalidInput: ``initial`` is not an int or lies outside floor..ceiling.
        """
        self._strategy.create(initial)

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
            CounterNotFound: the counter does not exist (not checked by ``collection``).
            NotSupported: a request id on a non-idempotent strategy.
            RequestIdMismatch: the id was counted with another amount (where detectable).
            CapacityExceeded: a ``set`` counter is full.
            ContentionError: optimistic retries or transaction conflicts exhausted.
            InvalidInput: a bad amount or request id.
        """
        return self._strategy.add(amount, request_id=request_id)

    def value(self) -> int:
        """The current value, read strongly consistently.

        Raises:
            CounterNotFound: the counter does not exist.
        """
        return self._strategy.value()

    def delete(self) -> None:
        """Delete the counter and what its strategy keeps beside it (see each strategy).

        Raises:
            CounterNotFound: the counter does not exist.
        """
        self._strategy.delete()

    def inspect(self) -> dict[str, Any]:
        """What is stored for this counter: its value, its item (bookkeeping attributes
        included, as plain Python values) and, in a table with a sort key, how many markers
        and deltas it has.

        Raises:
            CounterNotFound: the counter does not exist.
        """
        return self._strategy.inspect()

    def compact(self, *, older_than: float | timedelta = 0) -> int:
        """``collection`` only: fold delta items older than ``older_than`` into the counter item.

        Keeps ``value()`` cheap. A replay of a folded request id is counted again: that is the
        end of the collection's idempotency window. Returns the number of deltas folded.

        Raises:
            NotSupported: the strategy keeps no deltas.
            CounterNotFound: the counter does not exist.
        """
        strategy = self._strategy
        if not isinstance(strategy, CollectionCounter):
            raise NotSupported(f"strategy {strategy.name!r} keeps no deltas to compact")
        zero = older_than == 0 or older_than == timedelta(0)
        age = timedelta(0) if zero else v.check_duration(older_than, what="older_than")
        return strategy.compact(older_than=age)

    def __repr__(self) -> str:
        return f"Counter({self.name!r}, strategy={self.strategy!r})"


class CounterStore:
    """Counters kept in one DynamoDB table.

    Args:
        client: a configured boto3 DynamoDB client (``boto3.client("dynamodb")``).
        table_name: the table.
        partition_key: the table's partition key attribute (a string key).
        sort_key: the table's sort key attribute, or None for a partition-key-only table.
        value_attribute: the attribute holding a counter's value.
        counter_sort_value: the sort key value of counter items (tables with a sort key).
        ttl_attribute: the TTL attribute for items that expire (markers).
        on_call: called with a :class:`CallRecord` after every DynamoDB call (bench, logging).

    A store holds no mutable state besides its listeners: share one between threads.
    """

    def __init__(
        self,
        client: Any,
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
        v.check_attribute_name(ttl_attribute, what="ttl_attribute")
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
        self._io = DynamoIO(client, table_name)
        if on_call is not None:
            self._io.add_listener(on_call)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with a :class:`CallRecord` after every DynamoDB call."""
        self._io.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._io.remove_listener(listener)

    def counter(
        self,
        name: str,
        *,
        strategy: str = "atomic",
        floor: int | None = None,
        ceiling: int | None = None,
        **options: Any,
    ) -> Counter:
        """A handle on the counter ``name`` kept with ``strategy``; makes no request.

        Args:
            name: the counter's name (1 to 1024 UTF-8 bytes): its item's partition key value.
            strategy: one of :data:`dynamodb_counters.STRATEGIES`.
            floor, ceiling: inclusive bounds enforced at write time (not for ``collection``).
            **options: strategy options: ``history`` (occ_history), ``capacity`` (set),
                ``marker_ttl`` (marker); for all: ``max_attempts`` (collisions before
                ContentionError, default 32), ``ambiguity_retries`` (re-tries of an idempotent
                add whose outcome is unknown, default 3), ``retry_delay`` (backoff base,
                seconds or timedelta, default 0.01; 0 disables backoff).

        Raises:
            InvalidInput: bad name, bounds, unknown strategy or option.
            NotSupported: bounds on ``collection``; ``collection`` without a sort key.
        """
        if not isinstance(strategy, str) or strategy not in STRATEGIES:
            raise InvalidInput(
                f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        cls = STRATEGIES[strategy]
        return Counter(
            cls(
                io=self._io,
                layout=self.layout,
                name=name,
                floor=floor,
                ceiling=ceiling,
                options=options,
            )
        )

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
        return ensure_table(
            self._io,
            self.layout,
            wait_seconds=wait_seconds,
            enable_ttl=enable_ttl,
            create=create,
        )

    def __repr__(self) -> str:
        return f"CounterStore(table={self.table_name!r})"
