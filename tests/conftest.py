"""Shared fixtures: one DynamoDB Local per session (per xdist worker), a fresh table per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dynamodb_counters import STRATEGIES, CounterStore
from dynamodb_counters.local import DynamoDBLocal

IDEMPOTENT = [name for name, cls in STRATEGIES.items() if cls.idempotent]
THRESHOLDS = [name for name, cls in STRATEGIES.items() if cls.supports_thresholds]
ALL = list(STRATEGIES)


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
def store(client: Any, table: str) -> CounterStore:
    return CounterStore(client, table)


def fresh_client(ddb: DynamoDBLocal, **config: Any) -> Any:
    """A client of its own, for tests that attach fault handlers to its events."""
    config.setdefault("retries", {"mode": "standard", "max_attempts": 3})
    config.setdefault("max_pool_connections", 32)
    return ddb.client(**config)


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
