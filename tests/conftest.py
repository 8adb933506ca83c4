"""Shared fixtures: one DynamoDB Local per session (per xdist worker), a fresh table per test.

Suites that run against both I/O styles (SPEC section 9) take the ``api`` fixture
(``"sync"``/``"async"``) or ``api_store``, and build clients and stores with
:func:`fresh_client` and :func:`store_on`: an async store is an ``AsyncCounterStore`` on an
aiobotocore client, seen through ``_api.SyncView`` so the same test code drives it.

Suites that run in the AWS-like engine mode too (SPEC section 11) take the ``engine`` fixture,
``"plain"`` unless a test opts in with ``@pytest.mark.parametrize("engine", ENGINES,
indirect=True)``: ``store`` / ``api_store`` then use clients whose injector answers as AWS
does (:data:`AWS_LIKE`), and a test building its own injector passes its plan through
:func:`on_engine`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import botocore.retries.standard
import pytest

from dynamodb_counters import STRATEGIES, CounterStore
from dynamodb_counters._aio_hooks import is_async_client
from dynamodb_counters.aws_like import AwsLike, AwsLikeState
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal

APIS = ["sync", "async"]
IDEMPOTENT = [name for name, cls in STRATEGIES.items() if cls.idempotent]
THRESHOLDS = [name for name, cls in STRATEGIES.items() if cls.supports_thresholds]
ALL = list(STRATEGIES)

# botocore's standard and adaptive modes back off before a re-send for up to a second on the
# first retry (a lost answer counts as throttling), doubling after: most of the fault suites'
# wall time was sleeping. In this test process the SDK still re-sends the very same requests,
# the same number of times, only sooner (a twentieth of the delay, jitter kept): every
# interleaving it then produces is one the longer delay allows too. Child processes (workers,
# the CLI, bench processes) keep botocore's own delays.
SDK_BACKOFF_SCALE = 0.05
_sdk_delay = botocore.retries.standard.ExponentialBackoff.delay_amount


def _sooner(self: botocore.retries.standard.ExponentialBackoff, context: Any) -> float:
    return float(_sdk_delay(self, context)) * SDK_BACKOFF_SCALE


botocore.retries.standard.ExponentialBackoff.delay_amount = _sooner  # type: ignore[method-assign]


ENGINES = ["plain", "aws-like"]
#: The suites' AWS-like engine: a partition's budget a contended test goes over (so throttled
#: transactions are cancelled and single writes throttled), writes held in flight 4 ms (so
#: transactions on one item conflict on 2 cores), stale eventually consistent reads, one batch
#: key or request in ten left unprocessed.
AWS_LIKE = AwsLike(
    write_limit=100.0, in_flight=0.004, staleness=1.0, stale_read_rate=0.5, unprocessed_rate=0.1
)


def on_engine(plan: FaultPlan, engine: str) -> FaultPlan:
    """``plan`` in the test's engine mode."""
    return plan if engine == "plain" else replace(plan, aws_like=AWS_LIKE)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """``"plain"`` (DynamoDB Local as it is) or ``"aws-like"`` (indirect parametrization)."""
    return cast(str, getattr(request, "param", "plain"))


@pytest.fixture(scope="session")
def ddb() -> Iterator[DynamoDBLocal]:
    with DynamoDBLocal() as engine:
        yield engine


@pytest.fixture(scope="session")
def client(ddb: DynamoDBLocal) -> Any:
    return ddb.client(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)


def new_table_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table(client: Any) -> Iterator[str]:
    name = new_table_name()
    CounterStore(client, name).ensure_table()
    yield name
    client.delete_table(TableName=name)


@pytest.fixture
def store(client: Any, table: str, engine: str, request: pytest.FixtureRequest) -> CounterStore:
    if engine == "aws-like":
        return CounterStore(request.getfixturevalue("aws_like_clients")["sync"], table)
    return CounterStore(client, table)


@pytest.fixture(scope="session")
def aws_like_clients(ddb: DynamoDBLocal) -> dict[str, Any]:
    """A sync and an async client answering AWS-like, sharing one engine state (one budget per
    partition, one view of the writes in flight); every test has tables of its own."""
    state = AwsLikeState(AWS_LIKE)
    plan = FaultPlan(aws_like=AWS_LIKE)
    clients = {api: fresh_client(ddb, api) for api in APIS}
    for chosen in clients.values():
        FaultInjector(chosen, plan, aws_state=state).attach()
    return clients


# Async clients opened on the background loop, closed at the end of the session.
_ASYNC_CLIENTS: list[Any] = []


@pytest.fixture(scope="session", autouse=True)
def _close_async_clients() -> Iterator[None]:
    yield
    if _ASYNC_CLIENTS:
        from _api import run

        for manager in _ASYNC_CLIENTS:
            run(manager.__aexit__(None, None, None))
        _ASYNC_CLIENTS.clear()


def fresh_client(ddb: DynamoDBLocal, api: str = "sync", **config: Any) -> Any:
    """A client of its own, for tests that attach fault handlers to its events: a boto3
    client, or (``api="async"``) an aiobotocore client opened on the tests' event loop."""
    config.setdefault("retries", {"mode": "standard", "max_attempts": 3})
    config.setdefault("max_pool_connections", 32)
    if api == "sync":
        return ddb.client(**config)
    from _api import run

    manager = ddb.async_client(**config)
    client = run(manager.__aenter__())
    _ASYNC_CLIENTS.append(manager)
    return client


def is_async(client: Any) -> bool:
    return is_async_client(client)


def store_on(client: Any, table: str, **options: Any) -> CounterStore:
    """A store on ``client``: a ``CounterStore``, or for an aiobotocore client an
    ``AsyncCounterStore`` seen synchronously (same names, same behaviour)."""
    if not is_async(client):
        return CounterStore(client, table, **options)
    from _api import SyncView
    from dynamodb_counters.aio import AsyncCounterStore

    view: Any = SyncView(AsyncCounterStore(client, table, **options))
    return cast(CounterStore, view)


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture(scope="session")
def async_client(ddb: DynamoDBLocal) -> Any:
    return fresh_client(ddb, "async", max_pool_connections=64)


@pytest.fixture
def api_store(
    api: str, client: Any, table: str, engine: str, request: pytest.FixtureRequest
) -> CounterStore:
    """``store``, once through each API (in the test's engine mode)."""
    if engine == "aws-like":
        return store_on(request.getfixturevalue("aws_like_clients")[api], table)
    chosen = client if api == "sync" else request.getfixturevalue("async_client")
    return store_on(chosen, table)


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


#: The strategies the contract suite runs through the async API too: one request (atomic,
#: marker), a read-then-write loop (occ), paged reads (collection), several items (sharded).
#: The others differ from these only in the steps, which the sync runs check; the async runs
#: check the executor.
ASYNC_CONTRACT = {"atomic", "occ", "marker", "collection", "sharded"}


#: The cases the contract suite runs in the AWS-like mode too (sync API): the strategies that
#: write with transactions (cancellations, conflicts) or several items, and atomic (throttles
#: that botocore retries). occ, occ_history and set meet only single-item throttles there,
#: which test_faults' AWS-like cases cover.
AWS_LIKE_CONTRACT = {"atomic", "transaction", "marker", "collection", "sharded", "sharded:1"}


def _dropped(nodeid: str, params: dict[str, Any]) -> bool:
    if "test_contract.py::" not in nodeid:
        return False
    strategy = str(params.get("strategy", ""))
    if params.get("engine") == "aws-like":
        return params.get("api") == "async" or strategy not in AWS_LIKE_CONTRACT
    return (
        params.get("api") == "async"
        and bool(strategy)
        and strategy.split(":")[0] not in ASYNC_CONTRACT
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if _dropped(item.nodeid, params):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
