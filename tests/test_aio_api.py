# mypy: disable-error-code="arg-type"
# (fake and wrong-kind clients are passed on purpose)
"""The async API itself (SPEC section 9): the README's example as written, many tasks on one
client under lost answers, async listing, and clear errors for a client of the other kind.
The contract, fault, restart, racing-duplicate, interleaving and model suites run against both
APIs through the ``api`` fixture (see conftest)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from conftest import new_table_name
from dynamodb_counters import CounterStore, InvalidInput, ThresholdExceeded
from dynamodb_counters.aio import AsyncCounterStore
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal


def test_sixty_four_tasks_on_one_client_are_exact_under_lost_answers(ddb: DynamoDBLocal) -> None:
    async def main() -> tuple[int, int, list[Any], int]:
        async with ddb.async_client(
            retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64
        ) as client:
            store = AsyncCounterStore(client, new_table_name("aio"))
            await store.ensure_table()
            seats = store.counter("tickets#gig-42", strategy="marker", floor=0)
            await seats.create(initial=100)
            plan = FaultPlan(lost_answer_rate=0.3, seed=11)
            with FaultInjector(client, plan) as faults:
                results = await asyncio.gather(
                    *(seats.add(-1, request_id=f"order-{i % 64}") for i in range(128))
                )
            applied = sum(1 for r in results if r.applied)
            with pytest.raises(ThresholdExceeded):
                await store.counter("tickets#gig-42").add(-37)
            names = [name async for name in store.counters()]
            return await seats.value(), applied, names, faults.stats["lost_answers"]

    value, applied, names, lost = asyncio.run(main())
    assert lost > 0
    # 128 adds of 64 distinct orders: each order counted exactly once.
    assert (value, applied, names) == (36, 64, ["tickets#gig-42"])


def test_a_client_of_the_other_kind_is_refused_clearly(ddb: DynamoDBLocal, client: Any) -> None:
    with pytest.raises(InvalidInput, match="aiobotocore DynamoDB client"):
        AsyncCounterStore(client, "counters")

    async def main() -> None:
        async with ddb.async_client() as aio_client:
            with pytest.raises(InvalidInput, match="AsyncCounterStore"):
                CounterStore(aio_client, "counters")

    asyncio.run(main())


def test_the_sync_package_never_imports_the_async_api() -> None:
    import subprocess

    code = "import dynamodb_counters, sys; print('dynamodb_counters.aio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
