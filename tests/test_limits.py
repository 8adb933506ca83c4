"""The ``limits`` storage beyond what limits' own suite checks (``make limits-suite``): the table
it needs, keys DynamoDB could not hold, what ``reset()`` removes, options, lost answers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session
from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMoving
from limits.storage import storage_from_string
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)

from _api import run
from _hooks import SendHook, operation_of
from conftest import fresh_client, scan_all
from dynamodb_counters import CounterStore, InvalidInput, TableNotFound
from dynamodb_counters.limits import AsyncDynamoDBStorage, DynamoDBStorage, storage_name
from dynamodb_counters.local import DynamoDBLocal


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a client made from a URI finds (DynamoDB Local takes any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")


def storage(client: Any, table: str, **options: Any) -> DynamoDBStorage:
    made = storage_from_string(f"dynamodb://{table}", client=client, **options)
    assert isinstance(made, DynamoDBStorage)
    return made


def test_a_missing_table_is_a_clear_error_and_check_is_false(
    ddb: DynamoDBLocal, credentials: None
) -> None:
    uri = f"dynamodb://no-such-table?endpoint_url={ddb.endpoint_url}&region=us-east-1"
    missing = storage_from_string(uri)
    assert missing.check() is False
    with pytest.raises(TableNotFound, match="dynamodb-counters table create"):
        FixedWindowRateLimiter(missing).hit(RateLimitItemPerMinute(5))

    async def main() -> tuple[bool, str]:
        made = storage_from_string(f"async+{uri}")
        assert isinstance(made, AsyncDynamoDBStorage)
        try:
            healthy = await made.check()
            with pytest.raises(TableNotFound) as caught:
                await AsyncMoving(made).hit(RateLimitItemPerMinute(5))
            return healthy, str(caught.value)
        finally:
            await made.aclose()

    healthy, message = run(main())
    assert healthy is False and "ensure_table()" in message


def test_keys_too_long_for_dynamodb_are_hashed_never_truncated(client: Any, table: str) -> None:
    s = storage(client, table)
    limiter = FixedWindowRateLimiter(s)
    limit = RateLimitItemPerMinute(2)
    long_a, long_b = "x" * 3000 + "a", "x" * 3000 + "b"
    assert storage_name(limit.key_for(long_a)) != storage_name(limit.key_for(long_b))
    assert storage_name(limit.key_for(long_a)).startswith("#sha256#")
    assert storage_name("a#quota#b").startswith("#sha256#")  # the reserved infix, too
    assert storage_name("short") == "short"
    assert limiter.hit(limit, long_a) and limiter.hit(limit, long_a)
    assert not limiter.hit(limit, long_a)
    assert limiter.hit(limit, long_b)  # its own count: the keys differ only past any cut
    assert limiter.get_window_stats(limit, long_b).remaining == 1
    assert limiter.hit(limit, "a#quota#b")


def test_reset_removes_what_the_storage_wrote_and_nothing_else(client: Any, table: str) -> None:
    store = CounterStore(client, table)
    store.counter("orders").create(initial=3)
    store.quota("api", limit=5, per=60).hit()
    s = storage(client, table)
    limit = RateLimitItemPerMinute(5)
    FixedWindowRateLimiter(s).hit(limit, "a")
    MovingWindowRateLimiter(s).hit(limit, "b")
    SlidingWindowCounterRateLimiter(s).hit(limit, "c")
    MovingWindowRateLimiter(s).hit(limit, "a")  # a second item of key a
    assert s.reset() == 3
    assert s.reset() == 0
    assert store.counter("orders").value() == 3
    assert store.quota("api", limit=5, per=60).remaining() == 4
    assert len(scan_all(client, table)) == 2


def test_clear_forgets_one_key(client: Any, table: str) -> None:
    s, other = storage(client, table), storage(client, table)
    limiter, limit = MovingWindowRateLimiter(s), RateLimitItemPerMinute(2)
    assert limiter.hit(limit, "k") and limiter.hit(limit, "k") and not limiter.hit(limit, "k")
    # Another process clears the key: this storage's remembered item is stale, and a refusal
    # is only ever decided on a fresh read.
    MovingWindowRateLimiter(other).clear(limit, "k")
    assert limiter.hit(limit, "k")
    assert limiter.get_window_stats(limit, "k").remaining == 1


def test_uri_and_options(ddb: DynamoDBLocal, client: Any, credentials: None) -> None:
    table = "limits-pk-only"
    CounterStore(client, table, sort_key=None).ensure_table()
    try:
        uri = f"dynamodb://{table}?region=eu-west-1&endpoint_url={ddb.endpoint_url}"
        s = DynamoDBStorage(uri, sort_key=None)
        assert isinstance(s, DynamoDBStorage)
        assert s.store.client.meta.region_name == "eu-west-1"
        assert s.store.layout.sort_key is None
        assert SlidingWindowCounterRateLimiter(s).hit(RateLimitItemPerMinute(1), "k")
        assert not SlidingWindowCounterRateLimiter(s).hit(RateLimitItemPerMinute(1), "k")
        assert list(CounterStore(client, table, sort_key=None).counters()) == []
    finally:
        client.delete_table(TableName=table)
    with pytest.raises(InvalidInput, match="colour"):
        storage_from_string("dynamodb://t-1?colour=red")
    with pytest.raises(InvalidInput, match="flavour"):
        storage_from_string("dynamodb://t-1", flavour="x")


class LoseFirstAnswer(SendHook):
    """The first ``operation`` request reaches the table; its answer is lost (botocore re-sends
    the same request)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation, self.lost = client, operation, 0
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation or self.lost:
            return None
        self._http.send(request)
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)


def test_a_moving_window_hit_whose_answer_was_lost_is_counted_once(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    own = fresh_client(ddb)
    s = storage(own, table)
    limit = RateLimitItemPerMinute(3)
    with LoseFirstAnswer(own, "PutItem") as hook:
        assert MovingWindowRateLimiter(s).hit(limit, "k", cost=2)
    assert hook.lost == 1
    # The re-sent write met its own landed twin (the nonce): one entry of 2, not two.
    assert MovingWindowRateLimiter(storage(client, table)).get_window_stats(limit, "k")[1] == 1


def test_a_fixed_window_hit_whose_answer_was_lost_may_count_twice_never_more_than_the_limit(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    own = fresh_client(ddb)
    s = storage(own, table)
    limiter, limit = FixedWindowRateLimiter(s), RateLimitItemPerMinute(3)
    assert limiter.hit(limit, "k")  # the window starts (a PutItem)
    with LoseFirstAnswer(own, "UpdateItem"):
        assert limiter.hit(limit, "k")  # botocore re-sends the ADD: counted twice
    assert s.get(limit.key_for("k")) == 3
    assert not limiter.hit(limit, "k")  # refused early: that is the only way it errs


class LoseFirstHit(LoseFirstAnswer):
    """The first ``ADD`` (a hit; a sliding window's seal is an UpdateItem too) reaches the
    table, and its answer is lost."""

    def _hook(self, request: Any, **kwargs: Any) -> Any:
        if b"ADD" not in bytes(request.body or b""):
            return None
        return super()._hook(request, **kwargs)


def test_a_sliding_counter_hit_whose_lost_send_filled_the_window_is_refused_not_raised(
    ddb: DynamoDBLocal, client: Any, table: str
) -> None:
    """limits wants a yes or no: the re-send that found the window full of its own first send
    answers refused (the native quota re-raises there, tests/test_quota_lost.py)."""
    own = fresh_client(ddb)
    limiter, limit = SlidingWindowCounterRateLimiter(storage(own, table)), RateLimitItemPerMinute(3)
    with LoseFirstHit(own, "UpdateItem") as hook:
        assert limiter.hit(limit, "k", cost=2) is False
    assert hook.lost == 1
    assert limiter.get_window_stats(limit, "k")[1] == 1  # the first send's 2 units stand
