"""Adversarial review of the retry policy (issue 17, SPEC section 11): holes found, each pinned.

Every test here failed on the policy as it was merged (1e950b2); each forces its answers at the
HTTP layer, below botocore's retries (a ``before-send`` hook: a lost answer is sent for real and
then reported as a read timeout, a synthetic answer is sent nowhere), so that botocore's own
re-sends and the library's tries meet them exactly as they would meet AWS.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import fresh_client, store_on
from dynamodb_counters import ThresholdExceeded
from dynamodb_counters._keys import INCARNATION
from dynamodb_counters.faults import _error_response, _transact_item_count
from dynamodb_counters.local import DynamoDBLocal

#: Lose the answer: the request is applied, then botocore sees a read timeout (and re-sends).
LOSE = "lose"
#: The connection times out before anything is sent (botocore re-sends).
NO_CONNECTION = "no connection"


class Script(SendHook):
    """Answers the requests of ``operation`` in turn with ``answers``, then lets them pass.

    An answer is :data:`LOSE`, :data:`NO_CONNECTION`, an error code (answered with nothing sent),
    or a list of cancellation reason codes, one per item of a transaction (a
    ``TransactionCanceledException``, nothing sent). ``seen`` counts the requests of
    ``operation``."""

    def __init__(self, client: Any, operation: str, answers: list[Any]) -> None:
        self.client, self.operation, self.answers = client, operation, list(answers)
        self.seen = 0
        self._lock = threading.Lock()
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation:
            return None
        with self._lock:
            self.seen += 1
            if not self.answers:
                return None
            answer = self.answers.pop(0)
        if answer == LOSE:
            self._http.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        if answer == NO_CONNECTION:
            raise ConnectTimeoutError(endpoint_url=request.url)
        if isinstance(answer, list):
            assert len(answer) == _transact_item_count(request)
            return _error_response(
                request.url,
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(answer)}]",
                CancellationReasons=[{"Code": code} for code in answer],
            )
        return _error_response(request.url, answer, "injected")


@pytest.fixture
def own(ddb: DynamoDBLocal, api: str) -> Any:
    """A client of this test's own (the hook is attached to it), sync or async."""
    return fresh_client(ddb, api)


@pytest.mark.parametrize("strategy", ["atomic", "occ"])
def test_a_conflict_after_a_lost_answer_never_sends_a_non_idempotent_add_again(
    own: Any, table: str, strategy: Any
) -> None:
    """botocore re-sent an add whose answer was lost (it landed) and the re-send met a running
    transaction (``TransactionConflictException``: not applied). The add may have landed, and
    it carries no request id: the library must not send it again (it would count twice); it
    re-raises the lost answer's error, the outcome unknown (as it does for a bound met after
    a lost answer)."""
    counter = store_on(own, table).counter("c", strategy=strategy, retry_delay=0)
    counter.create(initial=10)
    script = Script(own, "UpdateItem", [LOSE, "TransactionConflictException"])
    with script, pytest.raises(ReadTimeoutError):
        counter.add(5)
    assert script.seen == 2  # the lost send and botocore's re-send; never a third
    assert counter.value() == 15  # counted once (was 20: the library sent the add again)


def test_a_marker_not_looked_at_beside_a_bound_is_no_refusal(own: Any, table: str) -> None:
    """A cancellation whose counter reason is ``ConditionalCheckFailed`` (the bound) while the
    marker's is a throttle or a conflict: the marker's condition was not decided, so the request
    may be counted already (its own lost write, or an earlier call's). ``ThresholdExceeded``
    would refuse an add that was counted (the unit gone, the order refused); nothing was
    applied, so the add tries again and the marker tells."""
    counter = store_on(own, table).counter("c", strategy="marker", floor=0, retry_delay=0)
    counter.create(initial=1)
    # The first send lands (the value is 0 now); botocore's re-send is cancelled: the bound
    # fails (0 - 1 < 0), the marker is throttled.
    answers = [LOSE, ["ConditionalCheckFailed", "ThrottlingError"]]
    with Script(own, "TransactWriteItems", answers) as script:
        result = counter.add(-1, request_id="order-1")  # was: ThresholdExceeded
    assert (result.applied, script.seen) == (True, 3)
    assert counter.value() == 0
    # A replay of the counted order meets the bound and a marker held by another transaction:
    # a duplicate, not a refusal.
    answers = [["ConditionalCheckFailed", "TransactionConflict"]]
    with Script(own, "TransactWriteItems", answers) as script:
        assert counter.add(-1, request_id="order-1").applied is False
    assert script.seen == 2
    # A new order is refused once the marker is decided (absent): the bound alone.
    script = Script(own, "TransactWriteItems", [["ConditionalCheckFailed", "ThrottlingError"]])
    with script, pytest.raises(ThresholdExceeded) as refused:
        counter.add(-1, request_id="order-2")
    assert refused.value.value == 0
    assert counter.value() == 0


@pytest.mark.parametrize("strategy", ["atomic", "set"])
def test_a_connection_that_timed_out_before_sending_makes_no_add_ambiguous(
    own: Any, table: str, strategy: Any
) -> None:
    """botocore re-sent an add after ``ConnectTimeoutError`` (the connection was never made:
    nothing was sent, in botocore and in aiobotocore alike). That re-send is no ambiguity: a
    bound met then is ``ThresholdExceeded`` (was: the timeout re-raised, outcome "unknown"), and
    a counted request id is a duplicate (was: ``applied=None``). An endpoint that cannot be
    connected to is heard at once, after botocore's own tries (was: 3 rounds more of them for an
    idempotent strategy, each waiting out the connect timeout: 16 sends)."""
    counter = store_on(own, table).counter("c", strategy=strategy, floor=0, retry_delay=0)
    counter.create(initial=1)
    request_id = "order-1" if strategy == "set" else None
    counter.add(-1, request_id=request_id)
    script = Script(own, "UpdateItem", [NO_CONNECTION])
    with script, pytest.raises(ThresholdExceeded) as refused:
        counter.add(-1, request_id="order-2" if request_id else None)
    assert (refused.value.value, script.seen) == (0, 2)
    if request_id:
        with Script(own, "UpdateItem", [NO_CONNECTION]) as script:
            assert counter.add(-1, request_id=request_id).applied is False
        assert script.seen == 2
    assert counter.value() == 0
    script = Script(own, "UpdateItem", [NO_CONNECTION] * 20)
    with script, pytest.raises(ConnectTimeoutError):
        counter.add(1, request_id="order-3" if request_id else None)
    assert script.seen == 4  # botocore's send and 3 re-sends (the tests' clients), no more
    assert counter.value() == 0


@pytest.mark.parametrize("reason", ["ThrottlingError", "TransactionConflict"])
def test_an_add_that_may_have_landed_never_ends_in_nothing_changed(
    own: Any, table: str, reason: str
) -> None:
    """The first send's answer was lost (it landed); botocore's re-send and every try after it
    were cancelled (throttled, or conflicting) until ``max_attempts``. DynamoDB's
    ``TransactionCanceledException`` (documented: nothing changed) or ``ContentionError`` would
    tell the caller the order was not taken while the unit is gone: the add re-raises the lost
    answer's error instead (the outcome unknown; the same request id settles it)."""
    counter = store_on(own, table).counter(
        "c", strategy="marker", floor=0, retry_delay=0, max_attempts=3
    )
    counter.create(initial=10)
    cancelled = ["None", reason]
    script = Script(own, "TransactWriteItems", [LOSE, cancelled, cancelled, cancelled])
    with script, pytest.raises(ReadTimeoutError):
        counter.add(-3, request_id="order-1")
    assert script.seen == 4  # the lost send, botocore's re-send, 2 tries more
    assert counter.value() == 7
    assert counter.add(-3, request_id="order-1").applied is False  # counted, once
    assert counter.value() == 7


def test_a_bound_beside_a_marker_throttled_to_the_end_is_dynamodbs_error() -> None:
    """Canned steps: the counter's bound fails while the marker stays throttled, try after try.
    Nothing was applied, and the marker was never judged: after ``max_attempts`` tries the
    throttled cancellation itself, unchanged (was: ``ThresholdExceeded`` at the first)."""
    from test_steps import cancelled, first_send, make, until_send

    steps = make("marker", floor=0, max_attempts=2).add(-3, request_id="order-1")
    sent = first_send(steps)
    item = {"quantity": {"N": "2"}, INCARNATION: {"S": "inc-1"}}
    bound = {"Code": "ConditionalCheckFailed", "Item": item}
    assert until_send(steps, cancelled(bound, {"Code": "ThrottlingError"})).params == sent.params
    last = cancelled(bound, {"Code": "ProvisionedThroughputExceeded"})
    with pytest.raises(ClientError) as raised:
        steps.throw(last)
    assert raised.value is last


def test_the_table_rows_the_review_moved() -> None:
    """A connect timeout sent nothing: unreachable, not ambiguous; an endpoint error stays
    "maybe" (aiobotocore raises it for a connection reset after sending). Reasons that leave an
    item's condition undecided are the throttles and the conflict, never ``None``."""
    from botocore.exceptions import EndpointConnectionError

    from dynamodb_counters._retry import (
        Outcome,
        classify,
        is_ambiguous,
        undecided,
        was_not_applied,
    )

    timeout = ConnectTimeoutError(endpoint_url="http://x")
    assert (classify(timeout), is_ambiguous(timeout), was_not_applied(timeout)) == (
        Outcome.UNREACHABLE,
        False,
        True,
    )
    gone = EndpointConnectionError(endpoint_url="http://x")
    assert (classify(gone), is_ambiguous(gone), was_not_applied(gone)) == (
        Outcome.UNREACHABLE,
        True,
        False,
    )
    codes = ["None", "ConditionalCheckFailed", "ValidationError", "TransactionConflict"]
    codes += ["ThrottlingError", "ProvisionedThroughputExceeded"]
    assert [c for c in codes if undecided({"Code": c})] == codes[3:]
    assert not undecided({})


def test_a_survey_throttled_to_the_end_takes_the_snapshot_instead(own: Any, table: str) -> None:
    """A sharded add on a dry shard surveys the shards with one ``BatchGetItem``. AWS answers
    ``ProvisionedThroughputExceededException`` when none of its keys could be read; botocore
    retries that, then gives up. The survey is only a plan: the add reads the consistent
    snapshot instead (under the retry policy) and takes the unit another shard has (was: the
    throttle raised to the caller, the unit left unsold)."""
    from test_retry_policy import _ids_on

    store = store_on(own, table)
    counter = store.counter("stock", strategy="sharded", floor=0, shards=2, retry_delay=0)
    counter.create(initial=2)  # shards [1, 1]
    first, second = _ids_on(counter, 0, 2)
    counter.add(-1, request_id=first)  # shard 0 dry
    throttled = ["ProvisionedThroughputExceededException"] * 4  # botocore's send and 3 re-sends
    with Script(own, "BatchGetItem", throttled) as script:
        assert counter.add(-1, request_id=second).applied is True
    assert script.seen == 4
    assert counter.value() == 0
