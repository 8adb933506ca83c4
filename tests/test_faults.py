# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""The fault matrix: every strategy under each fault, injected below botocore's retries.

Each case runs a concurrent workload whose callers retry a failed ``add()`` later with the same
request id (an app would), and compares the counter with an independent ledger of what callers
were told (``tests/_ledger.py``): ``expected = initial + sum of the amounts of the distinct request
ids acknowledged``.

* Idempotent strategies: drift exactly 0, the floor never crossed, no false duplicate.
* ``atomic`` / ``occ``: no drift other than over-counting (the same add applied again); for
  ``atomic`` without bounds the over-count equals the number of lost answers exactly.
* Throttling and conflicts are answered without sending anything: drift 0 for every strategy.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from _ledger import WRITE_OPERATION, Ledger, LoseAnswers, run_concurrently
from conftest import ALL, APIS, IDEMPOTENT, fresh_client, on_engine, scan_all, store_on
from dynamodb_counters import STRATEGIES, CounterNotFound, CounterStore
from dynamodb_counters.faults import FaultInjector, FaultPlan, _error_response


@dataclass(frozen=True)
class Fault:
    id: str
    plan: FaultPlan
    # botocore's total attempts per call (1 = no SDK retry) and the library's conflict attempts.
    sdk_attempts: int = 3
    max_attempts: int = 32

    @property
    def sends_nothing(self) -> bool:
        return self.plan.lost_answer_rate == 0


FAULTS = {
    f.id: f
    for f in (
        Fault("lost5", FaultPlan(lost_answer_rate=0.05, seed=5)),
        Fault("lost20", FaultPlan(lost_answer_rate=0.20, seed=20)),
        Fault("lost50", FaultPlan(lost_answer_rate=0.50, seed=50)),
        # SDK retries exhausted: the caller sees ThrottlingException and retries later.
        Fault("throttle", FaultPlan(throttle_rate=0.6, seed=6), sdk_attempts=2),
        # The library gives up after 2 conflicts: the caller sees ContentionError.
        Fault("conflict", FaultPlan(conflict_rate=0.6, seed=7), max_attempts=2),
        Fault(
            "mixed",
            FaultPlan(lost_answer_rate=0.15, throttle_rate=0.25, conflict_rate=0.15, seed=8),
            sdk_attempts=2,
            max_attempts=2,
        ),
    )
}
FAST = {("lost20", s) for s in ALL} | {("mixed", "marker"), ("throttle", "set")}
# Through the async API too: one-request, read-then-write and multi-item strategies.
ASYNC = {("lost20", "atomic"), ("lost20", "occ"), ("lost20", "sharded"), ("mixed", "marker")}
# In the AWS-like engine mode too (sync API): the transactional strategies under lost answers
# and under every fault at once, and a single-item strategy throttled.
AWS_LIKE = {
    ("lost20", "marker"),
    ("lost20", "sharded"),
    ("lost20", "collection"),
    ("mixed", "marker"),
    ("throttle", "set"),
}


def matrix(strategies: list[str], workload: str) -> list[Any]:
    """Every fault x strategy through the sync API; a few through the async API too (the same
    steps run in both: the async cases check the executor, not the logic again)."""
    cases = []
    for fault in FAULTS:
        for strategy in strategies:
            fast = (fault, strategy) in FAST
            marks = [] if fast else [pytest.mark.slow]
            for api in APIS if (fault, strategy) in ASYNC else ["sync"]:
                case_id = f"{workload}-{fault}-{strategy}" + ("-async" if api == "async" else "")
                cases.append(pytest.param(fault, strategy, api, "plain", id=case_id, marks=marks))
            if (fault, strategy) in AWS_LIKE:
                case_id = f"{workload}-{fault}-{strategy}-aws-like"
                cases.append(pytest.param(fault, strategy, "sync", "aws-like", id=case_id))
    return cases


THRESHOLD_STRATEGIES = [s for s in ALL if STRATEGIES[s].supports_thresholds]
UNBOUNDED_STRATEGIES = ["atomic", "occ", "collection"]


class FirstCallThrottled(FaultInjector):
    """A :class:`FaultInjector` that also throttles every SDK attempt of the first ``operation``
    request it sees (its re-sends carry the same body), so a throttle surely reaches a caller:
    rates are per request and bodies hold random names, so otherwise one may by chance not."""

    def __init__(self, client: Any, plan: FaultPlan, operation: str, attempts: int) -> None:
        super().__init__(client, plan)
        self.operation = operation
        self.left = attempts
        self._first: bytes | None = None

    def _before_send(self, request: Any, **kwargs: Any) -> Any:
        if str(request.headers.get("X-Amz-Target", b"")).rstrip("'").endswith(self.operation):
            body = bytes(request.body or b"")
            with self._lock:
                self._first = body if self._first is None else self._first
                throttle = body == self._first and self.left > 0
                self.left -= throttle
            if throttle:
                self.stats["throttles"] += 1
                return _error_response(request.url, "ThrottlingException", "(injected, first)")
        return super()._before_send(request, **kwargs)


def faulty_store(ddb: Any, table: str, fault: Fault, api: str) -> tuple[Any, CounterStore]:
    client = fresh_client(
        ddb,
        api,
        retries={"mode": "standard", "total_max_attempts": fault.sdk_attempts},
        connect_timeout=5,
        read_timeout=10,
    )
    return client, store_on(client, table)


def run_case(
    ddb: Any,
    table: str,
    fault: Fault,
    strategy: str,
    *,
    initial: int,
    ops: list[tuple[str, int]],
    floor: int | None,
    api: str,
    engine: str = "plain",
) -> tuple[Ledger, int, FaultInjector]:
    client, store = faulty_store(ddb, table, fault, api)
    name = f"c-{uuid.uuid4().hex[:8]}"
    options: dict[str, Any] = {"max_attempts": fault.max_attempts, "retry_delay": 0.002}
    if strategy == "set":
        options["capacity"] = len(ops) + 1
    counter = store.counter(name, strategy=strategy, floor=floor, **options)
    counter.create(initial=initial)
    ledger = Ledger(initial=initial)
    # Rates are per request and bodies hold random names, so a low rate may by chance never
    # fire: the first add's answer is always lost as well, so every lost-answer case has one.
    first = LoseAnswers(WRITE_OPERATION[strategy], count=1 if fault.plan.lost_answer_rate else 0)
    first.attach(client)
    plan = on_engine(fault.plan, engine)
    faults = (
        FirstCallThrottled(client, plan, WRITE_OPERATION[strategy], fault.sdk_attempts)
        if fault.id == "mixed"
        else FaultInjector(client, plan)
    )
    with faults:
        run_concurrently(counter, ops, ledger, idempotent=STRATEGIES[strategy].idempotent)
    first.detach(client)
    assert first.left == 0
    faults.stats["lost_answers"] += first.lost
    return ledger, counter.value(), faults


def check_faults_fired(fault: Fault, faults: FaultInjector, ledger: Ledger) -> None:
    """A case whose fault never fired proves nothing. Throttling and conflicts must also have
    reached the caller (SDK or library retries exhausted), who retried later."""
    plan = fault.plan
    if plan.lost_answer_rate:
        assert faults.stats["lost_answers"] > 0
    if plan.throttle_rate:
        assert faults.stats["throttles"] > 0
    if plan.conflict_rate:
        assert faults.stats["conflicts"] > 0
    if fault.id == "throttle":
        assert ledger.errors["ThrottlingException"] > 0
    if fault.id == "conflict":
        assert ledger.errors["ContentionError"] > 0
    if fault.id == "mixed":
        assert ledger.raised


@pytest.mark.parametrize(
    ("fault_id", "strategy", "api", "engine"), matrix(THRESHOLD_STRATEGIES, "floor")
)
def test_floor_with_more_demand_than_stock(
    ddb: Any, table: str, fault_id: str, strategy: str, api: str, engine: str
) -> None:
    """Stock 30, demand about 60 (amounts 1..3), floor 0, four threads, faults below the SDK."""
    fault = FAULTS[fault_id]
    rng = random.Random(f"{fault_id}-{strategy}")
    ops = [(f"order-{i}", -rng.randint(1, 3)) for i in range(30)]
    ledger, final, faults = run_case(
        ddb, table, fault, strategy, initial=30, ops=ops, floor=0, api=api, engine=engine
    )
    check_faults_fired(fault, faults, ledger)
    assert final >= 0, "the floor was crossed"
    assert ledger.rejected, "demand exceeded stock, so some orders must be rejected"
    assert not ledger.both_acked_and_rejected()
    drift = final - ledger.expected()
    if STRATEGIES[strategy].idempotent or fault.sends_nothing:
        assert drift == 0, f"{ledger.errors=} {faults.stats=}"
    else:
        # Decrements: counting an add twice makes the value lower than the ledger says.
        assert drift <= 0, f"{strategy} drifted the wrong way: {drift}"
    if STRATEGIES[strategy].idempotent:
        assert ledger.false_duplicates() == []


@pytest.mark.parametrize(
    ("fault_id", "strategy", "api", "engine"), matrix(UNBOUNDED_STRATEGIES, "free")
)
def test_increments_without_bounds(
    ddb: Any, table: str, fault_id: str, strategy: str, api: str, engine: str
) -> None:
    """Forty increments of 1 from four threads: the over-count of atomic is exactly the number
    of lost answers (each one is a request applied whose answer never came back)."""
    fault = FAULTS[fault_id]
    ops = [(f"vote-{i}", 1) for i in range(40)]
    ledger, final, faults = run_case(
        ddb, table, fault, strategy, initial=0, ops=ops, floor=None, api=api, engine=engine
    )
    check_faults_fired(fault, faults, ledger)
    assert len(ledger.acked) == 40
    drift = final - ledger.expected()
    lost = faults.stats["lost_answers"]
    if strategy == "atomic":
        assert drift == lost
        if not fault.sends_nothing:
            assert drift > 0
    elif strategy == "occ":
        assert 0 <= drift <= lost
    else:
        assert drift == 0
        assert ledger.false_duplicates() == []


def test_sdk_retries_are_reported(ddb: Any, table: str, api: str) -> None:
    """A lost first answer is re-sent by botocore; the result says so and counts it once."""
    client = fresh_client(ddb, api, retries={"mode": "standard", "total_max_attempts": 3})
    store = store_on(client, table)
    for strategy in IDEMPOTENT:
        counter = store.counter(f"r-{strategy}", strategy=strategy)
        counter.create(initial=10)
        lose = LoseAnswers(WRITE_OPERATION[strategy]).attach(client)
        try:
            result = counter.add(5, request_id="first")
        finally:
            lose.detach(client)
        assert lose.left == 0
        assert result.sdk_retries == 1
        assert counter.value() == 15
        # The value where the strategy gets it for free: set reads it from its own write.
        assert result.value == 15 if strategy == "set" else result.value in (None, 15)
        expected_applied = None if strategy == "transaction" else True
        assert result.applied is expected_applied, strategy
        again = counter.add(5, request_id="first")
        assert again.applied is (None if strategy == "transaction" else False)
        assert counter.value() == 15


@pytest.mark.parametrize("strategy", ALL)
def test_delete_whose_answer_was_lost(
    ddb: Any, client: Any, table: str, strategy: str, api: str
) -> None:
    """botocore re-sends a DeleteItem whose answer was lost; the re-send finds nothing. The
    delete still succeeded and must also remove what the strategy keeps beside the counter:
    a re-created counter starts from its initial value and forgets old request ids."""
    lossy = fresh_client(ddb, api, retries={"mode": "standard", "total_max_attempts": 3})
    store = store_on(lossy, table)
    idempotent = STRATEGIES[strategy].idempotent
    counter = store.counter("gone", strategy=strategy)
    counter.create(initial=1)
    counter.add(2, request_id="old" if idempotent else None)
    # sharded deletes its counter item and shards in one transaction.
    operation = "TransactWriteItems" if strategy == "sharded" else "DeleteItem"
    lose = LoseAnswers(operation).attach(lossy)
    try:
        counter.delete()
    finally:
        lose.detach(lossy)
    assert lose.left == 0
    with pytest.raises(CounterNotFound):
        counter.value()
    if strategy != "transaction":  # its ClientRequestToken outlives any item, for 10 minutes
        assert [i for i in scan_all(client, table) if i["pk"]["S"].startswith("gone")] == []
    counter.create(initial=0)
    assert counter.value() == 0
    if idempotent and strategy != "transaction":
        assert counter.add(2, request_id="old").applied is True
        assert counter.value() == 2
