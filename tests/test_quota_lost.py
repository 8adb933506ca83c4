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
from dynamodb_counters.local import DynamoDBLocal
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


@pytest.mark.parametrize("window", WINDOWS)
def test_without_a_request_id_a_lost_send_then_a_denied_resend_reraises(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str
) -> None:
    """Before the fix: ``allowed=False`` -- yet the window holds this hit's 4 units."""
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#lost", limit=5, per=HOUR, window=window)
    with LoseHits(own, 1) as hook, pytest.raises(ReadTimeoutError):
        quota.hit(cost=4)
    assert hook.lost == 1
    assert count_of(client, table, "api#lost", kind(window), K0) == 4  # it did count


@pytest.mark.parametrize("window", WINDOWS)
def test_without_a_request_id_a_denial_with_no_resend_is_still_a_denial(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str
) -> None:
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#full", limit=5, per=HOUR, window=window)
    assert quota.hit(cost=4).allowed
    denied = quota.hit(cost=4)
    assert (denied.allowed, denied.duplicate, denied.remaining) == (False, False, 1)
    assert count_of(client, table, "api#full", kind(window), K0) == 4


@pytest.mark.parametrize("window", WINDOWS)
def test_with_a_request_id_a_lost_send_then_a_full_window_is_this_hit_counted_once(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str
) -> None:
    """The id check answers exactly: the re-send is refused, and the refusal's item holds the
    id and this call's nonce -- allowed, not a duplicate, counted once."""
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#rid", limit=5, per=HOUR, window=window)
    with LoseHits(own, 1) as hook:
        decision = quota.hit(cost=4, request_id="req-1")
    assert hook.lost == 1
    assert decision == QuotaDecision(True, False, 1, T0 + HOUR, 0.0)
    assert count_of(client, table, "api#rid", kind(window), K0) == 4
    # And a genuinely new hit is still denied, changing nothing.
    assert quota.hit(cost=4, request_id="req-2").allowed is False
    assert count_of(client, table, "api#rid", kind(window), K0) == 4
