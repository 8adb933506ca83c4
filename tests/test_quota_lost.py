"""A quota hit whose answer was lost, then denied on its re-send (SPEC sections 7 and 12):
"a denied hit changes nothing" must not be said of a hit whose first send may have counted.

The first send of a hit reaches the table and its answer is lost (``ReadTimeoutError`` below
botocore's retries, as :mod:`dynamodb_counters.faults` loses answers); botocore's re-send finds
the window full -- full of this very hit. Without a request id nothing can tell whether the first
send counted: the hit re-raises the original error, as ``atomic`` does for an add after a lost
answer. With a request id the id check tells: the hit was counted, once.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from conftest import fresh_client
from dynamodb_counters import CounterStore, QuotaDecision
from dynamodb_counters.aws_like import error
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.quota import Quota
from test_quota import HOUR, K0, T0, Clock, LoseAnswers, count_of
from test_quota import clock as clock  # the fixture: the time the executors see

WINDOWS = ["fixed", "sliding"]


class LoseHits(LoseAnswers):
    """:class:`LoseAnswers` for the hits only (a sliding window's first hit also seals the
    window before it, with an UpdateItem whose answer must arrive)."""

    def _hook(self, request: Any, **kwargs: Any) -> Any:
        if b"ADD" not in bytes(request.body or b""):
            return None
        return super()._hook(request, **kwargs)


def kind(window: str) -> str:
    return f"{window}#3600000"


def own_quota(ddb: DynamoDBLocal, table: str, name: str, window: str) -> tuple[Any, Quota]:
    """A client of the test's own (for its hooks) and a quota of 5 an hour on it."""
    own = fresh_client(ddb)
    return own, CounterStore(own, table).quota(name, limit=5, per=HOUR, window=window)


class ThrottleFirstHit:
    """The first hit is answered ``ThrottlingException`` without reaching the table (documented
    as not applied); botocore sends it again."""

    def __init__(self, client: Any) -> None:
        self.throttled = 0
        client.meta.events.register_first("before-send.dynamodb.UpdateItem", self._hook)

    def _hook(self, request: Any, **_: Any) -> Any:
        if self.throttled or b"ADD" not in bytes(request.body or b""):
            return None
        self.throttled += 1
        return error(request.url, "ThrottlingException", "Rate exceeded (test)")


@pytest.mark.parametrize("window", WINDOWS)
def test_without_a_request_id_a_lost_send_then_a_denied_resend_reraises(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str
) -> None:
    """Before the fix: ``allowed=False`` -- yet the window holds this hit's 4 units."""
    own, quota = own_quota(ddb, table, "api#lost", window)
    with LoseHits(own, 1) as hook, pytest.raises(ReadTimeoutError):
        quota.hit(cost=4)
    assert hook.lost == 1
    assert count_of(client, table, "api#lost", kind(window), K0) == 4  # it did count


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("throttled_first", [False, True])
def test_without_a_request_id_a_denial_is_a_denial_unless_a_send_may_have_landed(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str, throttled_first: bool
) -> None:
    """A denial with no re-send, or with a re-send after a throttle (AWS documents it as not
    applied), is no ambiguity: the denial stands, and changed nothing."""
    own, quota = own_quota(ddb, table, "api#full", window)
    assert quota.hit(cost=4).allowed
    hook = ThrottleFirstHit(own) if throttled_first else None
    denied = quota.hit(cost=4)
    assert (denied.allowed, denied.duplicate, denied.remaining) == (False, False, 1)
    assert hook is None or hook.throttled == 1
    assert count_of(client, table, "api#full", kind(window), K0) == 4


@pytest.mark.parametrize("window", WINDOWS)
def test_with_a_request_id_a_lost_send_then_a_full_window_is_this_hit_counted_once(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str
) -> None:
    """The id check answers exactly: the re-send is refused, and the refusal's item holds the
    id and this call's nonce -- allowed, not a duplicate, counted once."""
    own, quota = own_quota(ddb, table, "api#rid", window)
    with LoseHits(own, 1) as hook:
        decision = quota.hit(cost=4, request_id="req-1")
    assert hook.lost == 1
    assert decision == QuotaDecision(True, False, 1, T0 + HOUR, 0.0)
    assert count_of(client, table, "api#rid", kind(window), K0) == 4
    # And a genuinely new hit is still denied, changing nothing.
    assert quota.hit(cost=4, request_id="req-2").allowed is False
    assert count_of(client, table, "api#rid", kind(window), K0) == 4


@pytest.mark.parametrize("request_id", [None, "req-1"])
def test_a_lost_send_then_its_window_sealed_is_never_counted_again_in_the_next(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, request_id: str | None
) -> None:
    """Sliding: the hit lands in window K0, its answer is lost, and before botocore's re-send
    another client's hit of K0 + 1 seals K0. The re-send is refused for the seal. With an id
    the refusal shows the hit counted (allowed, once); without one it may have counted:
    re-raised. Before the fix, without an id, the hit moved on and counted again in K0 + 1
    (4 + 4 units for one hit)."""
    own, quota = own_quota(ddb, table, "api#seal", "sliding")
    other = CounterStore(fresh_client(ddb), table).quota(
        "api#seal", limit=5, per=HOUR, window="sliding"
    )

    def seal_meanwhile() -> None:
        clock.set(T0 + HOUR + 1)
        assert other.hit().allowed  # K0 + 1: 1 + ceil(4 x ~1) = 5
        clock.set(T0 + 10)

    with LoseHits(own, 1, meanwhile=seal_meanwhile) as hook:
        if request_id is None:
            with pytest.raises(ReadTimeoutError):
                quota.hit(cost=4)
        else:
            decision = quota.hit(cost=4, request_id=request_id)
            assert (decision.allowed, decision.duplicate) == (True, False)
    assert hook.lost == 1
    assert count_of(client, table, "api#seal", kind("sliding"), K0) == 4
    assert count_of(client, table, "api#seal", kind("sliding"), K0 + 1) == 1
