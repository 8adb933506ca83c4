"""``CounterStore`` (a table) and ``Counter`` (one counter in it, with its strategy)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from . import _validate as v
from ._io import DynamoIO, Listener, error_code
from ._keys import Layout
from .errors import InvalidInput, NotSupported, TableNotFound
from .results import AddResult
from .strategies import STRATEGIES, CollectionCounter, Strategy

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

    def ensure_table(self, *, wait_seconds: float = 120.0) -> None:
        """Create the table if absent (on-demand, TTL on), wait until ACTIVE. Idempotent.

        An existing table is checked: its key schema must match this store's keys.

        Raises:
            InvalidInput: the existing table's keys differ from the store's.
        """
        layout = self.layout
        try:
            description = self._io.call("DescribeTable", {"TableName": self.table_name})["Table"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            description = self._create_table()
        self._check_schema(description)
        deadline = time.monotonic() + wait_seconds
        while description.get("TableStatus") != "ACTIVE":
            if time.monotonic() > deadline:
                raise TableNotFound(f"table {self.table_name!r} did not become ACTIVE in time")
            time.sleep(0.5)
            description = self._io.call("DescribeTable", {"TableName": self.table_name})["Table"]
        ttl = self._io.call("DescribeTimeToLive", {"TableName": self.table_name})
        status = ttl.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
        if status in (None, "DISABLED"):
            self._io.call(
                "UpdateTimeToLive",
                {
                    "TableName": self.table_name,
                    "TimeToLiveSpecification": {
                        "Enabled": True,
                        "AttributeName": layout.ttl_attribute,
                    },
                },
            )

    def _create_table(self) -> dict[str, Any]:
        layout = self.layout
        keys = [{"AttributeName": layout.partition_key, "KeyType": "HASH"}]
        attributes = [{"AttributeName": layout.partition_key, "AttributeType": "S"}]
        if layout.sort_key is not None:
            keys.append({"AttributeName": layout.sort_key, "KeyType": "RANGE"})
            attributes.append({"AttributeName": layout.sort_key, "AttributeType": "S"})
        try:
            answer = self._io.call(
                "CreateTable",
                {
                    "TableName": self.table_name,
                    "KeySchema": keys,
                    "AttributeDefinitions": attributes,
                    "BillingMode": "PAY_PER_REQUEST",
                },
            )
        except ClientError as exc:
            # Another process created it between our describe and create: fine.
            if error_code(exc) != "ResourceInUseException":
                raise
            return dict(self._io.call("DescribeTable", {"TableName": self.table_name})["Table"])
        return dict(answer["TableDescription"])

    def _check_schema(self, description: dict[str, Any]) -> None:
        schema = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
        expected = {"HASH": self.layout.partition_key}
        if self.layout.sort_key is not None:
            expected["RANGE"] = self.layout.sort_key
        if schema != expected:
            raise InvalidInput(
                f"table {self.table_name!r} has keys {schema}, but this store expects {expected}"
                " (set partition_key= and sort_key= to match)"
            )

    def __repr__(self) -> str:
        return f"CounterStore(table={self.table_name!r})"
