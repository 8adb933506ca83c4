# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""Outages and crashes: the endpoint going away mid-run, a worker process killed with SIGKILL,
and the same request id racing from several threads and processes.

In each case callers retry what failed with the same request id, and an independent ledger of
what callers were told (``tests/_ledger.py``) must match the counter: drift 0 for idempotent
strategies, over-count only for ``atomic`` and ``occ``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from _ledger import Ledger, settle
from conftest import ALL, IDEMPOTENT, new_table_name
from dynamodb_counters import STRATEGIES, CounterStore, ThresholdExceeded
from dynamodb_counters.local import DynamoDBLocal, free_port

WORKER = Path(__file__).resolve().parent / "_worker.py"
# Strategies whose AddResult.applied tells a duplicate from a first write (not transaction on
# DynamoDB Local, which does not break capacity down per table).
TELLS_DUPLICATES = ["occ_history", "marker", "collection", "set", "sharded"]


def workload(strategy: str, count: int, seed: str) -> tuple[int, int | None, list[tuple[str, int]]]:
    """(initial, floor, ops): decrements past the stock where a floor is supported, else
    increments."""
    rng = random.Random(seed)
    if STRATEGIES[strategy].supports_thresholds and STRATEGIES[strategy].idempotent:
        stock = count
        return stock, 0, [(f"{strategy}-{i}", -rng.randint(1, 3)) for i in range(count)]
    return 0, None, [(f"{strategy}-{i}", rng.randint(1, 3)) for i in range(count)]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def replay_changes_nothing(counter: Any, ledger: Ledger, strategy: str) -> None:
    """Every acknowledged id again: a duplicate; every rejected id again: still rejected."""
    before = counter.value()
    for op_id, amount in sorted(ledger.acked.items()):
        result = counter.add(amount, request_id=op_id)
        assert result.applied is (None if strategy == "transaction" else False), op_id
    for op_id, amount in sorted(ledger.rejected.items()):
        with pytest.raises(ThresholdExceeded):
            counter.add(amount, request_id=op_id)
    assert counter.value() == before


# -- the endpoint refuses connections mid-run ----------------------------------------------------


def test_endpoint_down_and_back_up(tmp_path: Path) -> None:
    """A persistent DynamoDB Local is stopped while threads add to a counter of every strategy,
    then a new one is started on the same port and data folder. Adds fail meanwhile (connection
    refused); callers retry with the same request id. Afterwards every acknowledged add is
    there exactly once (idempotent strategies) and replaying every request id changes nothing."""
    port = free_port()
    data = tmp_path / "data"
    engine = DynamoDBLocal(port=port, db_path=data).start()
    restarted: DynamoDBLocal | None = None
    try:
        client = engine.client(
            connect_timeout=1,
            read_timeout=2,
            retries={"mode": "standard", "total_max_attempts": 2},
            max_pool_connections=32,
        )
        table = new_table_name("restart")
        store = CounterStore(client, table)
        store.ensure_table()
        runs: dict[str, tuple[Any, Ledger, list[tuple[str, int]]]] = {}
        for strategy in ALL:
            initial, floor, ops = workload(strategy, 24, f"restart-{strategy}")
            counter = store.counter(strategy, strategy=strategy, floor=floor, retry_delay=0.05)
            counter.create(initial=initial)
            runs[strategy] = (counter, Ledger(initial=initial), ops)

        failures: list[BaseException] = []

        def work(counter: Any, ledger: Ledger, ops: list[tuple[str, int]], idem: bool) -> None:
            try:
                for op_id, amount in ops:
                    settle(counter, amount, op_id, ledger, idempotent=idem, attempts=600, pause=0.1)
                    time.sleep(0.01)  # spread the run over the outage
            except BaseException as exc:
                failures.append(exc)

        threads = []
        for strategy, (counter, ledger, ops) in runs.items():
            for share in (ops[0::2], ops[1::2]):
                idem = STRATEGIES[strategy].idempotent
                threads.append(threading.Thread(target=work, args=(counter, ledger, share, idem)))
        for t in threads:
            t.start()

        def settled() -> int:
            return sum(len(led.acked) + len(led.rejected) for _, led, _ in runs.values())

        wait_for(lambda: settled() >= 40, 60, "adds before the outage")
        engine.stop()
        # Every strategy's callers must have met the outage before the endpoint comes back.
        wait_for(
            lambda: all(led.raised for _, led, _ in runs.values()) or failures,
            60,
            "callers to see the outage",
        )
        restarted = DynamoDBLocal(port=port, db_path=data).start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert failures == []

        drifts = {}
        for strategy, (counter, ledger, ops) in runs.items():
            assert len(ledger.acked) + len(ledger.rejected) == len(ops)
            assert not ledger.both_acked_and_rejected()
            sign = 1 if all(a > 0 for _, a in ops) else -1
            drifts[strategy] = (counter.value() - ledger.expected()) * sign
        # Over-count (an add applied twice) is the only drift allowed, and only for atomic/occ.
        assert {s: d for s, d in drifts.items() if d != 0 and s in IDEMPOTENT} == {}
        assert all(d >= 0 for d in drifts.values()), drifts
        for strategy in IDEMPOTENT:
            counter, ledger, _ = runs[strategy]
            replay_changes_nothing(counter, ledger, strategy)
    finally:
        engine.stop()
        if restarted is not None:
            restarted.stop()


# -- a worker process killed with SIGKILL --------------------------------------------------------


def start_worker(
    endpoint: str,
    table: str,
    strategy: str,
    counter: str,
    ops: list[tuple[str, int]],
    folder: Path,
    *,
    floor: int | None,
    race: bool = False,
    threads: int = 4,
    api: str = "sync",
) -> subprocess.Popen[str]:
    ops_file = folder / f"ops-{time.monotonic_ns()}.json"
    ops_file.write_text(json.dumps(ops))
    args = [sys.executable, str(WORKER), endpoint, table, strategy, counter, str(ops_file)]
    args += ["--threads", str(threads), "--api", api]
    if floor is not None:
        args += ["--floor", str(floor)]
    if race:
        args.append("--race")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_outcomes(
    process: subprocess.Popen[str], ledger: Ledger, amounts: dict[str, int], stop_after: int | None
) -> list[tuple[str, str]]:
    """Record the worker's outcome lines; SIGKILL it after ``stop_after`` of them."""
    assert process.stdout is not None
    lines: list[tuple[str, str]] = []
    for raw in process.stdout:
        word, *rest = raw.split()
        if word == "ack":
            ledger.ack(rest[0], amounts[rest[0]], _Applied(rest[1]))
            lines.append((rest[0], rest[1]))
        elif word == "rej":
            ledger.reject(rest[0], amounts[rest[0]])
        if stop_after is not None and len(ledger.acked) + len(ledger.rejected) >= stop_after:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    return lines


class _Applied:
    """What Ledger.ack needs of an AddResult, parsed from a worker's line."""

    def __init__(self, text: str) -> None:
        self.applied = {"True": True, "False": False, "None": None}[text]


@pytest.mark.parametrize(
    ("strategy", "api"),
    [pytest.param(s, "sync", marks=[] if s in IDEMPOTENT else [pytest.mark.slow]) for s in ALL]
    + [pytest.param("marker", "async")],
)
def test_worker_killed_then_replayed(
    ddb: DynamoDBLocal, store: CounterStore, table: str, tmp_path: Path, strategy: str, api: str
) -> None:
    """A worker process (four threads) is killed with SIGKILL after ten outcomes; a fresh
    process then replays every request id (idempotent strategies) or only the unfinished ops
    (atomic, occ). Idempotent: drift 0. atomic/occ: over-count only (an add in flight at the
    kill may have landed)."""
    initial, floor, ops = workload(strategy, 30, f"kill-{strategy}")
    amounts = dict(ops)
    store.counter("killed", strategy=strategy, floor=floor).create(initial=initial)
    ledger = Ledger(initial=initial)
    first = start_worker(
        ddb.endpoint_url, table, strategy, "killed", ops, tmp_path, floor=floor, api=api
    )
    read_outcomes(first, ledger, amounts, stop_after=10)
    assert first.returncode == -signal.SIGKILL
    finished = set(ledger.acked) | set(ledger.rejected)
    assert 10 <= len(finished) < len(ops)
    idempotent = STRATEGIES[strategy].idempotent
    again = ops if idempotent else [op for op in ops if op[0] not in finished]
    second = start_worker(
        ddb.endpoint_url, table, strategy, "killed", again, tmp_path, floor=floor, api=api
    )
    read_outcomes(second, ledger, amounts, stop_after=None)
    assert second.returncode == 0, second.stderr.read() if second.stderr else ""
    assert set(ledger.acked) | set(ledger.rejected) == set(amounts)
    assert not ledger.both_acked_and_rejected()
    counter = store.counter("killed", strategy=strategy, floor=floor)
    drift = counter.value() - ledger.expected()
    if idempotent:
        assert drift == 0
        if floor is not None:
            assert ledger.rejected  # demand exceeded stock
    else:
        assert drift >= 0  # increments: an add counted twice raises the value


# -- duplicates racing ---------------------------------------------------------------------------


def check_counted_once(
    strategy: str,
    counter: Any,
    initial: int,
    ops: list[tuple[str, int]],
    applied: dict[str, list[bool | None]],
    copies: int,
) -> None:
    assert counter.value() == initial + sum(a for _, a in ops)
    for op_id, _ in ops:
        seen = applied[op_id]
        assert len(seen) == copies, op_id
        if strategy in TELLS_DUPLICATES:
            assert sorted(seen, key=str) == [False] * (copies - 1) + [True], op_id
        else:
            assert seen == [None] * copies, op_id


@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_same_request_id_from_many_threads(api_store: CounterStore, strategy: str) -> None:
    """Eight threads send the same ten request ids at once: each is counted exactly once, and
    exactly one of the eight calls says it applied it (through each API: with the async one,
    the eight threads' adds are tasks on one event loop)."""
    counter = api_store.counter("race", strategy=strategy, retry_delay=0.002)
    counter.create(initial=5)
    ops = [(f"dup-{i}", i + 1) for i in range(10)]
    barrier = threading.Barrier(8)
    applied: dict[str, list[bool | None]] = {op_id: [] for op_id, _ in ops}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for op_id, amount in ops:
                result = counter.add(amount, request_id=op_id)
                with lock:
                    applied[op_id].append(result.applied)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    check_counted_once(strategy, counter, 5, ops, applied, copies=8)


@pytest.mark.parametrize(
    ("strategy", "api"),
    [pytest.param(s, "sync", marks=[] if s == "marker" else [pytest.mark.slow]) for s in IDEMPOTENT]
    + [pytest.param("marker", "async")],
)
def test_same_request_id_from_many_processes(
    ddb: DynamoDBLocal, store: CounterStore, table: str, tmp_path: Path, strategy: str, api: str
) -> None:
    """Four processes of two threads each send the same ten request ids, released together."""
    store.counter("prace", strategy=strategy).create(initial=0)
    ops = [(f"pdup-{i}", i + 1) for i in range(10)]
    workers = [
        start_worker(
            ddb.endpoint_url,
            table,
            strategy,
            "prace",
            ops,
            tmp_path,
            floor=None,
            race=True,
            threads=2,
            api=api,
        )
        for _ in range(4)
    ]
    for w in workers:
        assert w.stdout is not None
        assert w.stdout.readline().strip() == "ready"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    applied: dict[str, list[bool | None]] = {op_id: [] for op_id, _ in ops}
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        for line in out.splitlines():
            word, *rest = line.split()
            if word == "ack":
                applied[rest[0]].append(_Applied(rest[1]).applied)
    counter = store.counter("prace", strategy=strategy)
    check_counted_once(strategy, counter, 0, ops, applied, copies=8)
