"""Strategy logic without a database: canned answers in, the next request out (SPEC section 9).

Every strategy operation is a generator of steps; these tests drive them by hand, as an
executor would, and check what each strategy asks for next after a lost answer, a cancellation
with reasons, a conflict or a collision. The same logic runs against DynamoDB Local in the
other suites, with botocore and with aiobotocore.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from dynamodb_counters import ContentionError, ThresholdExceeded
from dynamodb_counters._keys import CALL, INCARNATION, TAG, Layout
from dynamodb_counters._steps import NOW, Send, Sleep, Steps, done, result_of
from dynamodb_counters.results import AddResult
from dynamodb_counters.strategies import STRATEGIES, Strategy

LAYOUT = Layout(
    table="counters",
    partition_key="pk",
    sort_key="sk",
    value_attribute="quantity",
    counter_sort_value="#counter",
    ttl_attribute="expires_at",
)


def make(strategy: str, **options: Any) -> Strategy:
    floor = options.pop("floor", None)
    return STRATEGIES[strategy](
        layout=LAYOUT,
        counter="seats",
        floor=floor,
        ceiling=None,
        options={"retry_delay": 0.01, **options},
        incarnation="inc-1",
    )


def lost() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="http://engine")


def error(code: str, **extra: Any) -> ClientError:
    answer: Any = {"Error": {"Code": code, "Message": "canned"}, **extra}
    return ClientError(answer, "Op")


def cancelled(*reasons: dict[str, Any]) -> ClientError:
    return error("TransactionCanceledException", CancellationReasons=list(reasons))


def until_send(steps: Steps[Any], answer: Any = None) -> Send:
    """Answer the current step (an exception is thrown in), skip pauses and clock reads; the
    next request. ``answer`` None starts the generator."""
    step = steps.throw(answer) if isinstance(answer, BaseException) else steps.send(answer)
    while not isinstance(step, Send):
        step = steps.send(1_000_000.0 if step is NOW else None)
    return step


def first_send(steps: Steps[Any]) -> Send:
    step = next(steps)
    while not isinstance(step, Send):
        step = steps.send(1_000_000.0 if step is NOW else None)
    return step


def test_marker_after_a_lost_answer_resends_the_same_transaction_and_knows_its_own_marker() -> None:
    steps = make("marker").add(-1, request_id="order-1")
    sent = first_send(steps)
    assert sent.operation == "TransactWriteItems"
    update, put = sent.params["TransactItems"]
    assert update["Update"]["ExpressionAttributeValues"][":inc"] == {"S": "inc-1"}
    marker = put["Put"]["Item"]
    assert marker["expires_at"] == {"N": str(1_000_000 + 7 * 24 * 3600)}
    # The answer is lost: the strategy pauses (backoff), then sends the same writes again.
    again = until_send(steps, lost())
    assert again.params["TransactItems"][1]["Put"]["Item"] == marker
    # The marker is there with this call's nonce: our own first write, applied once.
    reason = {"Code": "ConditionalCheckFailed", "Item": {**marker}}
    with pytest.raises(StopIteration) as finished:
        steps.throw(cancelled({"Code": "None"}, reason))
    result: AddResult = finished.value.value
    assert (result.applied, result.requests) == (True, 2)


def test_marker_replay_is_a_duplicate_from_the_cancellation_reason_alone() -> None:
    steps = make("marker").add(-1, request_id="order-1")
    sent = first_send(steps)
    marker = dict(sent.params["TransactItems"][1]["Put"]["Item"])
    marker[CALL] = {"S": "someone-else"}
    reason = {"Code": "ConditionalCheckFailed", "Item": marker}
    with pytest.raises(StopIteration) as finished:
        steps.throw(cancelled({"Code": "None"}, reason))
    assert finished.value.value.applied is False


def test_a_transaction_conflict_is_retried_after_a_pause_and_then_gives_up() -> None:
    steps = make("transaction", max_attempts=2).add(5, request_id="r")
    sent = first_send(steps)
    assert sent.params["ClientRequestToken"] == LAYOUT.digest("seats", "r", "inc-1")
    conflict = cancelled({"Code": "TransactionConflict"})
    pause = steps.throw(conflict)
    assert isinstance(pause, Sleep) and 0 <= pause.seconds <= 0.04
    assert steps.send(None) == sent  # the same request again
    with pytest.raises(ContentionError):
        steps.throw(conflict)


def test_atomic_never_resends_an_ambiguous_add() -> None:
    steps = make("atomic").add(1)
    first_send(steps)
    timeout = lost()
    with pytest.raises(ReadTimeoutError) as raised:
        steps.throw(timeout)
    assert raised.value is timeout


@pytest.mark.parametrize("strategy", ["marker", "sharded"])
def test_an_endpoint_that_cannot_be_reached_is_reported_at_once(strategy: str) -> None:
    """After a lost answer the add is re-sent (its outcome is unknown); when botocore then cannot
    even connect, after its own retries, the library does not try again: the caller hears at
    once (a dead endpoint was noticed 3 library tries later, each with botocore's backoff) and
    retries later with the same request id."""
    options: dict[str, Any] = {"shards": 2} if strategy == "sharded" else {}
    steps = make(strategy, **options).add(-1, request_id="order-1")
    first = first_send(steps)
    again = until_send(steps, lost())
    assert again.params == first.params
    refused = EndpointConnectionError(endpoint_url="http://engine")
    with pytest.raises(EndpointConnectionError) as raised:
        until_send(steps, refused)
    assert raised.value is refused


def test_a_floor_refusal_comes_from_the_item_the_failed_condition_returned() -> None:
    steps = make("atomic", floor=0).add(-3)
    sent = first_send(steps)
    assert sent.params["ExpressionAttributeValues"][":lowest_before"] == {"N": "3"}
    item = {"quantity": {"N": "2"}, INCARNATION: {"S": "inc-1"}}
    failed = error("ConditionalCheckFailedException", Item=item)
    with pytest.raises(ThresholdExceeded) as refused:
        steps.throw(failed)
    assert refused.value.value == 2


def test_occ_retries_a_collision_with_the_item_it_met_without_reading_again() -> None:
    steps = make("occ").add(4)
    read = first_send(steps)
    assert read.operation == "GetItem"
    item = {"quantity": {"N": "10"}, TAG: {"S": "t1"}, INCARNATION: {"S": "inc-1"}}
    write = until_send(steps, {"Item": item})
    assert write.params["ExpressionAttributeValues"][":oldtag"] == {"S": "t1"}
    assert write.params["ExpressionAttributeValues"][":new"] == {"N": "14"}
    moved = {"quantity": {"N": "11"}, TAG: {"S": "t2"}, INCARNATION: {"S": "inc-1"}}
    retry = until_send(steps, error("ConditionalCheckFailedException", Item=moved))
    assert retry.operation == "UpdateItem"
    assert retry.params["ExpressionAttributeValues"][":oldtag"] == {"S": "t2"}
    assert retry.params["ExpressionAttributeValues"][":new"] == {"N": "15"}
    with pytest.raises(StopIteration) as finished:
        steps.send({})
    assert (finished.value.value.applied, finished.value.value.value) == (True, 15)


def test_result_of_drives_an_operation_with_canned_answers() -> None:
    value = result_of(
        make("atomic").value(), {"Item": {"quantity": {"N": "9"}, INCARNATION: {"S": "inc-1"}}}
    )
    assert value == 9
    assert result_of(done(3)) == 3
    with pytest.raises(RuntimeError, match="no canned answer left"):
        result_of(make("atomic").value())
