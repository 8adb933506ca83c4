"""What the bench measures: a :class:`Target` is one strategy's counter, a :class:`RawTarget`
the raw baseline (plain ``update_item`` ADD calls doing the same work, not a strategy).

Each knows how to create its item, send its adds (on boto3, or awaited on aiobotocore), read
and delete its value, and describe itself (capabilities, window, options), so the runner treats
every target alike. Targets are frozen and picklable: worker processes get them as they are.
Make one with :func:`new_target`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, ClassVar, NoReturn, cast

from botocore.exceptions import ClientError

from .. import STRATEGIES, CounterStore, ThresholdExceeded
from .._keys import Layout
from ..results import AddResult
from ..store import Counter as StoreCounter
from ..strategies import StrategyName
from .options import RAW
from .workload import Adder, AsyncAdder


@dataclass(frozen=True, slots=True)
class Target:
    """One strategy's counter to measure; picklable.

    Attributes:
        name: the strategy id (or :data:`RAW`), as the results name the target.
        counter: the counter's name.
        table: its table.
        floor, ceiling: the bounds it runs with (None where it cannot enforce them).
        options: the strategy options the run chose, sorted.
        initial_item: the counter item as created (the meter's starting point for its size).
    """

    name: str
    counter: str
    table: str
    floor: int | None
    ceiling: int | None
    options: tuple[tuple[str, Any], ...]
    initial_item: tuple[tuple[str, Any], ...]

    #: The raw baseline, not a strategy (the results keep it apart).
    baseline: ClassVar[bool] = False

    @staticmethod
    def enforces_bounds(name: str) -> bool:
        """Whether the target ``name`` can run with a floor or a ceiling."""
        return name == RAW or STRATEGIES[name].supports_thresholds

    @property
    def idempotent(self) -> bool:
        return STRATEGIES[self.name].idempotent

    @property
    def bounded(self) -> bool:
        return self.floor is not None or self.ceiling is not None

    @property
    def strategy(self) -> StrategyName:
        """The strategy whose handle reads and deletes the counter."""
        return cast(StrategyName, self.name)

    @property
    def defaults(self) -> dict[str, Any]:
        """The library's default options of the strategy."""
        return dict(STRATEGIES[self.name].defaults)

    # -- requests ----------------------------------------------------------------------------

    def counter_on(self, client: Any) -> StoreCounter:
        """The target's counter through a boto3 ``client`` (reads, deletes)."""
        return CounterStore(client, self.table).counter(self.counter, **self._handle_options())

    def _handle_options(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "floor": self.floor,
            "ceiling": self.ceiling,
            **dict(self.options),
        }

    def create(self, client: Any, initial: int) -> None:
        """Create the counter; never over an item that exists (CounterExists)."""
        self.counter_on(client).create(initial)

    def adder(self, client: Any) -> Adder:
        """``add(amount, request_id)`` for the target, on a boto3 ``client``."""
        counter = self.counter_on(client)
        # A handle reads the counter's definition once, on first use: do it now, before the
        # meter counts requests, so that requests per op are the steady state.
        counter.definition  # noqa: B018

        def add(amount: int, request_id: str | None) -> AddResult:
            return counter.add(amount, request_id=request_id)

        return add

    async def async_adder(self, client: Any) -> AsyncAdder:
        """``await add(amount, request_id)`` for the target, on an aiobotocore ``client``:
        one :class:`~dynamodb_counters.aio.AsyncCounterStore` and one handle, shared by every
        task of the event loop."""
        from ..aio import AsyncCounterStore

        counter = AsyncCounterStore(client, self.table).counter(
            self.counter, **self._handle_options()
        )
        await counter.definition  # read once, before the meter counts (see adder)

        async def add(amount: int, request_id: str | None) -> AddResult:
            return await counter.add(amount, request_id=request_id)

        return add

    # -- description -------------------------------------------------------------------------

    def described(self) -> dict[str, Any]:
        """What the strategy promises (its capabilities, as the results give them)."""
        return asdict(STRATEGIES[self.name].capabilities)

    def window(self) -> dict[str, Any]:
        """The idempotency window in numbers (the text is in its capabilities)."""
        name, options = self.name, dict(self.options)
        if name in ("atomic", "occ"):
            return {"kind": "none"}
        strategy = STRATEGIES[name]
        given = {**strategy.defaults, **options}
        if name == "occ_history":
            return {"kind": "ids", "ids": int(given["history"])}
        if name == "set":
            capacity = int(given["capacity"])
            if "refuses" in strategy.capabilities.window:
                return {"kind": "ids", "ids": capacity, "refuses_when_full": True}
            # Two generations (SPEC section 7): the last ``capacity`` to ``2 x capacity`` ids.
            return {"kind": "ids", "ids": capacity, "up_to": 2 * capacity}
        if name == "transaction":
            return {"kind": "time", "seconds": 600}
        if name in ("marker", "sharded"):  # both remember an id while its marker lives
            ttl = given["marker_ttl"]
            seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
            return {"kind": "time", "seconds": seconds}
        if name == "collection":
            return {"kind": "forever"}
        return {"kind": "unknown"}

    def capabilities(self) -> dict[str, Any]:
        """The target's capabilities, window and options, as the results give them."""
        options = dict(self.options)
        defaults = self.defaults
        # Options the run chose that are not the library's defaults: shown beside the figures.
        changed = {
            k: {"run": v, "default": str(defaults.get(k))}
            for k, v in options.items()
            if defaults.get(k) != v
        }
        return {
            **self.described(),
            "window_numbers": self.window(),
            "options": options,
            "non_default_options": changed,
        }


@dataclass(frozen=True, slots=True)
class RawTarget(Target):
    """The raw baseline: plain ``update_item`` ADD calls on a plain item, doing the same work.

    Its item reads, and is deleted, as ``atomic``'s (the same attribute, no definition needed).
    """

    baseline: ClassVar[bool] = True

    @property
    def idempotent(self) -> bool:
        return False

    @property
    def strategy(self) -> StrategyName:
        return "atomic"

    @property
    def defaults(self) -> dict[str, Any]:
        return {}

    def create(self, client: Any, initial: int) -> None:
        layout = CounterStore(client, self.table).layout
        client.put_item(
            TableName=self.table,
            Item={**layout.counter_key(self.counter), layout.value_attribute: {"N": str(initial)}},
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": layout.partition_key},
        )

    def adder(self, client: Any) -> Adder:
        layout = CounterStore(client, self.table).layout
        key = layout.counter_key(self.counter)

        def add(amount: int, request_id: str | None) -> AddResult:
            try:
                answer = client.update_item(**self._request(layout, key, amount))
            except ClientError as exc:
                _raise_refusal(exc, amount)
            return _result(answer, layout.value_attribute)

        return add

    async def async_adder(self, client: Any) -> AsyncAdder:
        from ..aio import AsyncCounterStore

        layout = AsyncCounterStore(client, self.table).layout
        key = layout.counter_key(self.counter)

        async def add(amount: int, request_id: str | None) -> AddResult:
            try:
                answer = await client.update_item(**self._request(layout, key, amount))
            except ClientError as exc:
                _raise_refusal(exc, amount)
            return _result(answer, layout.value_attribute)

        return add

    def _request(self, layout: Layout, key: dict[str, Any], amount: int) -> dict[str, Any]:
        """The ``UpdateItem`` for ``amount``.

        What a careful user writes by hand, asking DynamoDB for what the library asks for (the
        item must exist, the bound holds, the old item on a failed condition, the capacity
        consumed), so that the ratio measures the library, not a different request."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": "ADD #v :amount",
            "ConditionExpression": "attribute_exists(#pk)",
            "ExpressionAttributeNames": {
                "#v": layout.value_attribute,
                "#pk": layout.partition_key,
            },
            "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
            "ReturnValues": "UPDATED_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ReturnConsumedCapacity": "INDEXES",
        }
        if amount < 0 and self.floor is not None:
            params["ConditionExpression"] += " AND #v >= :least"
            params["ExpressionAttributeValues"][":least"] = {"N": str(self.floor - amount)}
        elif amount > 0 and self.ceiling is not None:
            params["ConditionExpression"] += " AND #v <= :most"
            params["ExpressionAttributeValues"][":most"] = {"N": str(self.ceiling - amount)}
        return params

    def described(self) -> dict[str, Any]:
        return {
            "idempotent": False,
            "window": "none: a retried add is counted again",
            "thresholds": True,
            "requests_per_add": 1,
            "write_units_per_add": "1 per KB of the counter item",
            "tells_duplicates": "no",
        }

    def window(self) -> dict[str, Any]:
        return {"kind": "none"}


def new_target(
    name: str,
    *,
    counter: str,
    table: str,
    floor: int | None,
    ceiling: int | None,
    options: tuple[tuple[str, Any], ...] = (),
) -> Target:
    """The target ``name`` (a strategy id, or :data:`RAW`), its item not yet created."""
    kind = RawTarget if name == RAW else Target
    return kind(
        name=name,
        counter=counter,
        table=table,
        floor=floor,
        ceiling=ceiling,
        options=options,
        initial_item=(),
    )


def _raise_refusal(exc: ClientError, amount: int) -> NoReturn:
    """A failed condition is the raw baseline's bound: raise ThresholdExceeded for it; any
    other error as it is."""
    if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
        raise ThresholdExceeded(f"adding {amount} would cross a bound") from exc
    raise exc


def _result(answer: dict[str, Any], value_attribute: str) -> AddResult:
    new = answer.get("Attributes", {}).get(value_attribute, {}).get("N")
    retries = int(answer.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
    return AddResult(
        applied=True,
        value=None if new is None else int(new),
        request_id=None,
        requests=1,
        sdk_retries=retries,
    )
