"""The bench's options, as frozen value objects (the CLI builds them from its arguments)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import InvalidInput
from ..faults import FaultPlan
from ..strategies import STRATEGIES
from .metrics import RRU_PRICE, WRU_PRICE
from .workload import SDK_RETRY_MODES, AppRetry, Mix

#: The name of the plain-boto3 baseline in results (not a strategy).
RAW = "raw-boto3"
#: Which API the workers use: the sync one on boto3 (threads or processes), or the async one
#: on aiobotocore (asyncio tasks on one event loop).
APIS = ("sync", "async")


@dataclass(frozen=True, slots=True)
class SdkRetry:
    """botocore's own retries: ``mode`` (standard, adaptive, legacy) and ``max_attempts``
    (the first send included)."""

    mode: str = "standard"
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.mode not in SDK_RETRY_MODES:
            raise InvalidInput(f"SDK retry mode must be one of {', '.join(SDK_RETRY_MODES)}")
        if isinstance(self.max_attempts, bool) or not 1 <= self.max_attempts <= 50:
            raise InvalidInput("SDK max attempts must be an int from 1 to 50")


@dataclass(frozen=True, slots=True)
class Pricing:
    """On-demand prices, USD per million request units (default: us-east-1, Nov 2024)."""

    wru: float = WRU_PRICE
    rru: float = RRU_PRICE

    def __post_init__(self) -> None:
        if not all(0 <= p < math.inf for p in (self.wru, self.rru)):
            raise InvalidInput("prices must be finite and not negative")


@dataclass(frozen=True, slots=True)
class Backend:
    """Where to run: the embedded DynamoDB Local (default), an endpoint, or a region of AWS.

    ``table``: the table to use (default: ``dynamodb-counters-bench-<run-id>``, new for each
    run). The bench writes to a table that exists before it only with ``use_existing_table``
    (then it adds counters named ``bench#<run-id>#...`` and deletes just those). A table the
    bench created is deleted at the end unless ``keep_table``.
    """

    endpoint_url: str | None = None
    region: str | None = None
    table: str | None = None
    keep_table: bool = False
    use_existing_table: bool = False

    @property
    def embedded(self) -> bool:
        return self.endpoint_url is None and self.region is None


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Everything a bench run depends on; a run is reproducible from these (and the seed).

    Attributes:
        strategies: the strategy ids to run, in order.
        workers: concurrent workers per strategy.
        processes: workers are processes (else threads).
        api: ``"sync"`` (``CounterStore`` on a boto3 client) or ``"async"``
            (``AsyncCounterStore`` on one aiobotocore client, the workers asyncio tasks).
        ops: operations per worker per strategy (distinct request ids).
        initial: the counter's initial value.
        floor, ceiling: bounds, for the strategies that enforce them (``collection`` runs
            without; the report says so).
        mix: increments, decrements, duplicates.
        faults: faults injected below the SDK's retries (rates and seed).
        sdk: botocore's retry mode and max attempts.
        app_retry: the application's retry policy.
        compare_raw: also run plain boto3 ``update_item`` ADD calls doing the same work.
        pricing: prices for the cost figures.
        backend: where to run.
        seed: the workload's seed.
        history: ``occ_history``'s window (None: the library's default).
        set_capacity: ``set``'s capacity (None: the library's default).
        shards: ``sharded``'s shard count (None: the library's default).
        preset: the name of the preset the options came from (``"demo"``), if any.
        rounds: each target's operations run in this many rounds (targets compared with each
            other take turns); throughput and latency are given with their spread over rounds.
    """

    strategies: tuple[str, ...] = tuple(STRATEGIES)
    workers: int = 4
    processes: bool = False
    api: str = "sync"
    ops: int = 100
    initial: int = 1000
    floor: int | None = None
    ceiling: int | None = None
    mix: Mix = field(default_factory=Mix)
    faults: FaultPlan = field(default_factory=FaultPlan)
    sdk: SdkRetry = field(default_factory=SdkRetry)
    app_retry: AppRetry = field(default_factory=AppRetry)
    compare_raw: bool = False
    pricing: Pricing = field(default_factory=Pricing)
    backend: Backend = field(default_factory=Backend)
    seed: int = 1
    history: int | None = None
    set_capacity: int | None = None
    shards: int | None = None
    preset: str | None = None
    rounds: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or not 1 <= self.rounds <= 1000:
            raise InvalidInput("rounds must be from 1 to 1000")
        if not self.strategies:
            raise InvalidInput("choose at least one strategy")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise InvalidInput(
                f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}"
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise InvalidInput("a strategy is listed twice")
        if not 1 <= self.workers <= 256:
            raise InvalidInput("workers must be from 1 to 256")
        if not 1 <= self.ops <= 1_000_000:
            raise InvalidInput("ops must be from 1 to 1000000")
        if self.floor is not None and self.initial < self.floor:
            raise InvalidInput("initial must not be below the floor")
        if self.ceiling is not None and self.initial > self.ceiling:
            raise InvalidInput("initial must not be above the ceiling")
        if self.api not in APIS:
            raise InvalidInput(f"api must be one of {', '.join(APIS)}, got {self.api!r}")
        if self.processes and self.api == "async":
            raise InvalidInput(
                "--async runs the workers as asyncio tasks of one process: leave out --processes"
            )
        if self.processes and self.faults.limits_items:
            # Each process would spend its own budget of the same item.
            raise InvalidInput(
                "the per-item throughput model keeps each item's budget in one process: "
                "run the workers as threads (leave out --processes)"
            )

    @property
    def total_ops(self) -> int:
        return self.workers * self.ops

    @property
    def targets(self) -> tuple[str, ...]:
        """What runs, in order: the strategies, with the raw baseline right after ``atomic``
        (or first, when ``atomic`` is not chosen)."""
        if not self.compare_raw:
            return self.strategies
        if "atomic" in self.strategies:
            at = self.strategies.index("atomic") + 1
            return (*self.strategies[:at], RAW, *self.strategies[at:])
        return (RAW, *self.strategies)
