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
from dynamodb_counters._io import DynamoIO
from dynamodb_counters._keys import CALL, INCARNATION, TAG, Layout
from dynamodb_counters._steps import ELAPSED, NOW, Send, Sleep, Steps, done, result_of, run_sync
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


def test_the_request_id_digest_is_the_first_releases() -> None:
    """Markers, deltas and transaction tokens are keyed by the digest: it may never change, or
    a replay of an add counted before an upgrade would be counted again. Values computed with
    ``Layout.digest`` before this change (without an incarnation: the first release's own
    digest); a handle's cached part of the hash gives the same."""
    assert LAYOUT.digest("seats", "order-1") == "20c0a447b8b77c8b4a787059cbd6478b"
    assert LAYOUT.digest("seats", "order-1", "inc-1") == "7d0f28af45b645a05b6604715a2e7eee"
    assert LAYOUT.digest("é", "x" * 40, "i") == "5378740d4255636077ef70e5c06cdd76"
    strategy = make("marker")
    assert strategy.digest_of("order-1") == "7d0f28af45b645a05b6604715a2e7eee"
    assert strategy.digest_of("order-1") == "7d0f28af45b645a05b6604715a2e7eee"
    strategy.incarnation = None  # the cache follows the incarnation
    assert strategy.digest_of("order-1") == "20c0a447b8b77c8b4a787059cbd6478b"


def test_each_call_has_its_own_nonce_in_this_process_and_in_a_forked_child() -> None:
    """The nonce tells a call's own landed write from another call's with the same request id:
    no two calls may share one, not even a parent's and its forked child's next calls."""
    import os

    from dynamodb_counters.strategies.base import OpState, new_nonce

    calls = [OpState(amount=1, request_id="r", digest="d") for _ in range(1000)]
    assert len({call.nonce for call in calls}) == 1000
    assert {len(call.nonce) for call in calls} == {32}  # the items keep their size
    assert calls[0].nonce == calls[0].nonce  # made once per call
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover -- the child
        os.write(writer, new_nonce().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    in_child = os.read(reader, 100).decode()
    os.close(reader)
    mine = new_nonce()
    assert len(in_child) >= 20 and in_child[:20] != mine[:20]


@pytest.mark.parametrize(
    ("text", "value"), [("7", 7), ("-12", -12), ("1E+2", 100), ("1.0E+1", 10), ("0", 0)]
)
def test_a_stored_number_is_read_as_the_integer_it_is(text: str, value: int) -> None:
    from dynamodb_counters.strategies.base import to_int

    assert to_int(text) == value


def test_a_stored_fraction_is_refused() -> None:
    from dynamodb_counters import InvalidInput
    from dynamodb_counters.strategies.base import to_int

    with pytest.raises(InvalidInput, match=r"counter value 1\.5 is not an integer"):
        to_int("1.5")


class _Client:
    """A client whose update_item answers from a list (an exception is raised)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def update_item(self, **params: Any) -> Any:
        self.sent.append(params)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _asks_clocks_pauses_and_a_request() -> Steps[tuple[Any, ...]]:
    now = yield NOW
    elapsed = yield ELAPSED
    paused = yield Sleep(0)
    try:
        yield Send("UpdateItem", {"TableName": "t"})
    except ClientError as exc:
        failed = exc.response["Error"]["Code"]
    answer = yield Send("UpdateItem", {"TableName": "t"})
    return now, elapsed, paused, failed, answer


def test_run_sync_answers_clocks_pauses_requests_and_throws_failures_in() -> None:
    import time

    client = _Client(error("ThrottlingException"), {"Attributes": {}})
    before = time.time()
    now, elapsed, paused, failed, answer = run_sync(
        DynamoIO(client, "t"), _asks_clocks_pauses_and_a_request()
    )
    assert before <= now <= time.time()
    assert 0 < elapsed <= time.monotonic()
    assert (paused, failed, answer) == (None, "ThrottlingException", {"Attributes": {}})
    assert client.sent == [{"TableName": "t", "ReturnConsumedCapacity": "INDEXES"}] * 2


def test_run_sync_closes_the_steps_on_an_interrupt_and_never_throws_it_in() -> None:
    seen: list[str] = []

    def steps() -> Steps[None]:
        try:
            yield Send("UpdateItem", {"TableName": "t"})
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    with pytest.raises(KeyboardInterrupt):
        run_sync(DynamoIO(_Client(KeyboardInterrupt()), "t"), steps())
    assert seen == ["GeneratorExit"]


def test_threads_never_share_a_nonce() -> None:
    """Eight threads of one process make nonces at once (a handle is shared by threads): all
    distinct, so no call ever takes another's landed write for its own."""
    import threading

    from dynamodb_counters.strategies.base import new_nonce

    made: list[list[str]] = [[] for _ in range(8)]

    def make_many(mine: list[str]) -> None:
        for _ in range(5000):
            mine.append(new_nonce())

    threads = [threading.Thread(target=make_many, args=(m,)) for m in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({n for m in made for n in m}) == 8 * 5000


# -- the retry policy (_retry): cancellations AWS documents as "not applied" ----------------


def throttled(*codes: str) -> ClientError:
    """A cancellation for lack of throughput: ``codes`` per item (default: the first throttled,
    the second not involved)."""
    return cancelled(*({"Code": c} for c in (codes or ("ThrottlingError", "None"))))


@pytest.mark.parametrize("code", ["ThrottlingError", "ProvisionedThroughputExceeded"])
def test_a_throttled_transaction_is_sent_again_with_the_same_evidence(code: str) -> None:
    """Same marker key, same nonce, same amount: the second try can only count once."""
    steps = make("marker").add(-1, request_id="order-1")
    sent = first_send(steps)
    pause = steps.throw(throttled(code, "None"))
    assert isinstance(pause, Sleep) and 0 <= pause.seconds <= 0.02
    again = until_send(steps)
    assert (
        again.params["TransactItems"][1]["Put"]["Item"]
        == sent.params["TransactItems"][1]["Put"]["Item"]
    )
    assert again.params["TransactItems"][0] == sent.params["TransactItems"][0]
    with pytest.raises(StopIteration) as finished:
        steps.send({})
    assert (finished.value.value.applied, finished.value.value.requests) == (True, 2)


def test_throttling_that_never_ends_re_raises_dynamodbs_own_error() -> None:
    steps = make("transaction", max_attempts=3).add(5, request_id="r")
    sent = first_send(steps)
    answers = [throttled(), throttled("None", "ProvisionedThroughputExceeded"), throttled()]
    for answer in answers[:-1]:
        assert until_send(steps, answer) == sent  # the same request, the same token
    with pytest.raises(ClientError) as raised:
        until_send(steps, answers[-1])
    assert raised.value is answers[-1]  # unchanged: the last answer, as DynamoDB gave it


def test_the_last_answer_of_a_lost_budget_decides_what_is_raised() -> None:
    """Throttles and conflicts share ``max_attempts``: a conflict last is ContentionError."""
    steps = make("collection", max_attempts=3).add(5, request_id="r")
    first_send(steps)
    until_send(steps, throttled())
    until_send(steps, cancelled({"Code": "TransactionConflict"}, {"Code": "None"}))
    with pytest.raises(ContentionError):
        until_send(steps, cancelled({"Code": "None"}, {"Code": "TransactionConflict"}))


def test_a_throttle_beside_a_failed_condition_is_read_as_the_condition() -> None:
    """The marker's own ConditionalCheckFailed beside a throttle: a duplicate, not a retry;
    the counter's beside a throttle: its bound."""
    steps = make("marker").add(-1, request_id="order-1")
    sent = first_send(steps)
    marker = {**sent.params["TransactItems"][1]["Put"]["Item"], CALL: {"S": "another call"}}
    with pytest.raises(StopIteration) as finished:
        steps.throw(
            cancelled(
                {"Code": "ThrottlingError"}, {"Code": "ConditionalCheckFailed", "Item": marker}
            )
        )
    assert (finished.value.value.applied, finished.value.value.requests) == (False, 1)
    steps = make("marker", floor=0).add(-3, request_id="order-2")
    first_send(steps)
    item = {"quantity": {"N": "2"}, INCARNATION: {"S": "inc-1"}}
    with pytest.raises(ThresholdExceeded) as refused:
        steps.throw(
            cancelled(
                {"Code": "ConditionalCheckFailed", "Item": item},
                {"Code": "ProvisionedThroughputExceeded"},
            )
        )
    assert refused.value.value == 2


def test_a_resend_by_botocore_after_a_throttled_cancellation_is_no_ambiguity() -> None:
    """botocore re-sent the transaction after a throttled cancellation (a retry mode that
    retries it): the first send applied nothing, so a replay answer is another call's
    (``applied=False``), not perhaps this call's own (``None``)."""
    steps = make("transaction").add(5, request_id="r")
    sent = first_send(steps)
    assert sent.retried is not None
    sent.retried.append(throttled())  # what the executor's capture saw botocore retry
    replay = {
        "ResponseMetadata": {"RetryAttempts": 1},
        "ConsumedCapacity": [{"TableName": "counters", "Table": {"ReadCapacityUnits": 2.0}}],
    }
    with pytest.raises(StopIteration) as finished:
        steps.send(replay)
    assert (finished.value.value.applied, finished.value.value.sdk_retries) == (False, 1)


def test_a_throttled_snapshot_is_read_again_never_refused() -> None:
    """The consistent snapshot that alone may refuse a sharded add is throttled: the add reads
    again (it saw the counter short, so straight to the snapshot) and moves the stock it finds."""
    from test_sharded import _canned_shard, _past_a_dry_try, _surveyed

    strategy, _, steps, _ = _past_a_dry_try(-2)
    snapshot = until_send(steps, _surveyed(strategy, 0, 1))
    assert snapshot.operation == "TransactGetItems"
    again = until_send(steps, throttled("None", "ThrottlingError", "None"))
    assert again.operation == "TransactGetItems" and again.params == snapshot.params
    shards = [{"Item": _canned_shard(strategy, 0, 0)}, {"Item": _canned_shard(strategy, 1, 5)}]
    move = until_send(steps, {"Responses": [*shards, {}]})
    assert [next(iter(i)) for i in move.params["TransactItems"]] == ["Update", "Put", "Update"]


@pytest.mark.parametrize(
    "reasons",
    [[], [{"Code": "None"}], [{"Code": "TransactionConflict"}, {"Code": "ValidationError"}]],
    ids=["no reasons", "only None", "conflict beside a validation error"],
)
def test_a_cancellation_not_documented_as_not_applied_passes_through(
    reasons: list[dict[str, Any]],
) -> None:
    steps = make("transaction").add(5, request_id="r")
    first_send(steps)
    answer = cancelled(*reasons)
    with pytest.raises(ClientError) as raised:
        steps.throw(answer)
    assert raised.value is answer


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_a_single_request_throttled_after_botocores_retries_passes_through(code: str) -> None:
    """botocore already retried it with its own backoff: the library adds no second layer."""
    steps = make("atomic").add(1)
    first_send(steps)
    throttle = error(code)
    with pytest.raises(ClientError) as raised:
        steps.throw(throttle)
    assert raised.value is throttle


def test_a_throttled_move_starts_the_add_again_with_a_new_survey() -> None:
    """The transaction moving room from a donor is throttled: nothing moved; the add looks again
    (its dry shard is known: no plain try) and moves what the new survey shows."""
    from test_sharded import _past_a_dry_try, _surveyed

    strategy, _, steps, survey = _past_a_dry_try(-1)
    steal = until_send(steps, _surveyed(strategy, 0, 2))
    assert [next(iter(i)) for i in steal.params["TransactItems"]] == ["Put", "Update"]
    again = until_send(steps, throttled("None", "ThrottlingError"))
    assert again == survey  # the survey again, not the dry shard's plain add
    steal_again = until_send(steps, _surveyed(strategy, 0, 2))
    assert steal_again.params == steal.params
    with pytest.raises(StopIteration) as finished:
        steps.send({})
    assert (finished.value.value.applied, finished.value.value.requests) == (True, 5)
