"""Review of quotas and the ``limits`` storage (issue 20, SPEC section 12): holes found by attack,
each with the test that failed before its fix. Against DynamoDB Local; the clock is the tests'
(``test_quota``'s ``clock`` fixture), so every window and expiry below is chosen.
"""

from __future__ import annotations

import time
import types
from typing import Any

import pytest
from limits import RateLimitItemPerMinute
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from conftest import scan_all
from dynamodb_counters import CounterStore, QuotaDecision
from dynamodb_counters import _steps as steps_module
from dynamodb_counters._keys import Layout
from dynamodb_counters.limits import DynamoDBStorage
from dynamodb_counters.quota import QuotaCore
from test_quota import HOUR, K0, T0, Clock, count_of, window_item


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """``test_quota``'s: the time the executors see."""
    fake = Clock(T0 + 10.0)
    monkeypatch.setattr(
        steps_module,
        "time",
        types.SimpleNamespace(time=lambda: fake.now, monotonic=time.monotonic, sleep=time.sleep),
    )
    return fake


@pytest.mark.parametrize("gone_by", ["clear", "ttl"])
def test_a_moving_window_remembered_before_its_item_was_deleted_never_overwrites_new_hits(
    client: Any, table: str, clock: Clock, gone_by: str
) -> None:
    """A storage remembers a key's item to spare a read. Once the item is deleted (``clear()``
    by another process, or TTL after the window) and written again, its version number starts
    again at 1: the remembered item had the same version, its write passed the condition and
    lost the hits written since (3 granted where 2 are allowed, before the fix)."""
    a = DynamoDBStorage(f"dynamodb://{table}", client=client)
    b = DynamoDBStorage(f"dynamodb://{table}", client=client)
    limit = RateLimitItemPerMinute(2)
    on_a, on_b = MovingWindowRateLimiter(a), MovingWindowRateLimiter(b)
    assert on_a.hit(limit, "k")  # a remembers the item it wrote (version 1)
    clock.set(clock.now + 61)  # that hit has left the window
    if gone_by == "clear":
        on_b.clear(limit, "k")
    else:  # what TTL does to the item, some time after its expires_at
        (item,) = scan_all(client, table)
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    assert on_b.hit(limit, "k")  # a new item, version 1 again
    assert on_a.hit(limit, "k")  # written from a's remembered item: must keep b's hit
    assert not on_b.hit(limit, "k")  # 2 in the last minute
    assert on_a.get_window_stats(limit, "k").remaining == 0
    (item,) = scan_all(client, table)
    assert len(item["_hits"]["L"]) == 2


def test_a_sliding_reset_keeps_the_previous_window_sealed(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    """A handle weighs the previous window once (its seal) and remembers the count. A reset
    deleted that window, seal and all: a hit still on its way to it (or a lagging clock) then
    landed there, unseen by the handles that remembered 0 -- 10 + ceil(10 * 0.997) = 20 units
    in a window of 10, before the fix. Emptied and sealed instead, the late hit counts in the
    current window, as any hit that meets a seal does."""
    quota = api_store.quota("api#r1", limit=10, per=HOUR, window="sliding")
    other = api_store.quota("api#r1", limit=10, per=HOUR, window="sliding")
    late = api_store.quota("api#r1", limit=10, per=HOUR, window="sliding")
    clock.set(T0 + 10)
    assert quota.hit().remaining == 9  # sealed window K0 - 1 (0 units), and remembers it
    other.reset()
    clock.set(T0 - 5)
    decision = late.hit(cost=10)
    assert decision.allowed and decision.reset_at == T0 + HOUR  # counted in K0, not K0 - 1
    kind = "sliding#3600000"
    previous = window_item(client, table, "api#r1", kind, K0 - 1)
    assert previous is not None and "quantity" not in previous and "_sealed" in previous
    assert count_of(client, table, "api#r1", kind, K0) == 10
    clock.set(T0 + 20)
    denied = quota.hit(cost=10)
    assert (denied.allowed, denied.remaining) == (False, 0)
    assert quota.remaining() == 0


def test_a_hit_retried_after_exactly_retry_after_is_allowed(
    api_store: CounterStore, clock: Clock
) -> None:
    """``retry_after`` is the time the weight fades enough, computed in floats: ``now +
    retry_after`` fell 2e-8 s before the boundary the hit's own arithmetic sees (33 x the
    window's share left came to 30.0000001, rounded up to 31), and a caller that waited exactly
    that long was refused again, before the fix (in half of random cases)."""
    quota = api_store.quota("api#ra", limit=46, per=HOUR, window="sliding")
    plan = api_store.quota("api#ra", limit=100, per=HOUR, window="sliding")  # fills the windows
    clock.set(T0 - 100)
    assert plan.hit(cost=42).allowed  # window K0 - 1
    clock.set(T0 + 100)
    assert plan.hit(cost=33).allowed  # window K0: 33 + ceil(42 x 0.97) = 74 of 100
    denied = quota.hit(cost=16)
    assert not denied.allowed
    # In window K0 + 1, where K0's 33 units fade: ceil(33 x w) <= 30 once w <= 30/33.
    assert denied.retry_after == pytest.approx(HOUR - 100 + HOUR * 3 / 33, abs=1e-5)
    clock.set(T0 + 100 + denied.retry_after)
    assert quota.hit(cost=16) == QuotaDecision(True, False, 0, T0 + 2 * HOUR, 0.0)


def test_retry_after_lands_where_the_steps_allow_the_hit() -> None:
    """The same, on the steps alone, for both roundings of the previous window's weight."""
    layout = Layout("t-1", "pk", "sk", "quantity", "#counter", "expires_at")
    for strict in (True, False):
        core = QuotaCore(layout, "q", limit=46, per=HOUR, window="sliding", strict=strict)
        now = T0 + 100
        wait = core.retry_after(now, K0, 33, 42, 16)
        assert wait == pytest.approx(HOUR - 100 + HOUR * (3 if strict else 2) / 33, abs=1e-5)
        assert core.index(now + wait) == K0 + 1
        assert 16 + core.weighted(33, now + wait, K0 + 1) <= 46


def test_a_sliding_reset_keeps_a_current_window_sealed_by_a_clock_ahead(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    """A handle whose clock is already in the next window sealed the current one (0 units) and
    remembers it. A reset deleted it, seal and all, and the current window's hits then landed
    there unseen by that handle (20 units in a window of 10, before the fix)."""
    ahead = api_store.quota("api#r2", limit=10, per=HOUR, window="sliding")
    quota = api_store.quota("api#r2", limit=10, per=HOUR, window="sliding")
    clock.set(T0 + HOUR + 10)
    assert ahead.hit().remaining == 9  # window K0 + 1; sealed K0 with 0 units
    clock.set(T0 + 10)
    quota.reset()
    moved = quota.hit(cost=9)  # K0 is sealed: counted in K0 + 1, beside ahead's unit
    assert (moved.allowed, moved.remaining, moved.reset_at) == (True, 0, T0 + 2 * HOUR)
    assert not quota.hit().allowed
    clock.set(T0 + HOUR + 20)
    assert not ahead.hit().allowed
    kind = "sliding#3600000"
    current = window_item(client, table, "api#r2", kind, K0)
    assert current is not None and "quantity" not in current and "_sealed" in current
    assert count_of(client, table, "api#r2", kind, K0 + 1) == 10


def test_a_limits_sliding_hit_of_cost_0_is_allowed_as_limits_own_storages_allow_it(
    client: Any, table: str, clock: Clock
) -> None:
    """limits' memory and Redis storages take a hit of cost 0 (allowed unless the window is
    over its limit); ours raised InvalidInput for the sliding window counter alone."""
    s = DynamoDBStorage(f"dynamodb://{table}", client=client)
    limiter, limit = SlidingWindowCounterRateLimiter(s), RateLimitItemPerMinute(2)
    assert limiter.hit(limit, "k", cost=0)
    assert limiter.hit(limit, "k", cost=2)
    assert limiter.hit(limit, "k", cost=0)  # full, not over
    assert not limiter.hit(limit, "k")
    assert not s.acquire_sliding_window_entry(limit.key_for("k"), 1, 60, 0)  # over a lower limit
    assert limiter.get_window_stats(limit, "k").remaining == 0
