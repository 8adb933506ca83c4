"""``bench --async``: the workers as asyncio tasks on one aiobotocore client, with the same
workload, faults, meter and ledger as threads on boto3."""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Mapping

import pytest
from botocore.exceptions import ReadTimeoutError

from conftest import new_table_name
from dynamodb_counters import InvalidInput
from dynamodb_counters.bench import RAW, Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.bench import cli as bench_cli
from dynamodb_counters.bench.tasks import in_tasks
from dynamodb_counters.bench.workload import AppRetry, AsyncWorker, Op
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report import workers_kind
from dynamodb_counters.report.schema import BenchResults, TargetResult
from dynamodb_counters.results import AddResult

#: Figures that depend only on the workload, its seed and the fault decisions (keyed on each
#: operation, :mod:`dynamodb_counters.bench.fair`), not on how the workers interleave.
_SAME_COUNTS = ("attempted", "acknowledged", "applied", "duplicates", "rejected", "errors")


def _rows(results: BenchResults) -> dict[str, TargetResult]:
    rows = {r["name"]: r for r in results["strategies"]}
    assert results["baseline"] is not None
    rows[RAW] = results["baseline"]
    return rows


def test_an_async_run_is_exact_and_counts_what_a_sync_run_counts(ddb: DynamoDBLocal) -> None:
    def run(api: str) -> BenchResults:
        return run_bench(
            BenchOptions(
                strategies=("atomic", "marker"),
                compare_raw=True,
                api=api,
                workers=4,
                ops=15,
                rounds=1,
                mix=Mix(duplicate_rate=0.2),
                faults=FaultPlan(lost_answer_rate=0.15, seed=3),
                backend=Backend(endpoint_url=ddb.endpoint_url, table=new_table_name("ba")),
            )
        )

    threads, tasks = run("sync"), run("async")
    assert (threads["run"]["api"], tasks["run"]["api"]) == ("sync", "async")
    assert tasks["run"]["options"]["api"] == "async"
    assert workers_kind(tasks["run"]["options"]) == "asyncio tasks"
    assert workers_kind(threads["run"]["options"]) == "threads"
    sync_rows, async_rows = _rows(threads), _rows(tasks)
    for name in ("atomic", "marker", RAW):
        mine, theirs = async_rows[name], sync_rows[name]
        assert mine["faults_injected"]["lost_answers"] > 0, name
        # The same faults, below aiobotocore's retries, seen by the meter on the async client.
        assert mine["faults_injected"] == theirs["faults_injected"], name
        assert mine["requests"]["lost_answers"] == mine["faults_injected"]["lost_answers"]
        counts: Mapping[str, object] = mine["counts"]
        expected: Mapping[str, object] = theirs["counts"]
        for count in _SAME_COUNTS:
            assert counts[count] == expected[count], (name, count)
        assert mine["ledger"]["expected"] == theirs["ledger"]["expected"], name
        assert mine["ledger"]["final"] == theirs["ledger"]["final"], name
    # Exact where the strategy is idempotent; the same double counts where it is not.
    assert async_rows["marker"]["ledger"]["drift"] == 0
    assert async_rows["marker"]["counts"]["duplicates"] > 0
    assert async_rows["atomic"]["ledger"]["drift"] != 0
    # One request per attempt for atomic and the raw baseline, plus the lost answers' re-sends.
    for name in ("atomic", RAW):
        mine = async_rows[name]
        assert mine["requests"]["http_attempts"] == sync_rows[name]["requests"]["http_attempts"]


def _bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments_bench(parser)
    return parser.parse_args(list(argv))


def test_async_is_an_option_that_processes_and_the_flash_sale_refuse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_cli.options_from_args(_bench_args("--async")).api == "async"
    assert bench_cli.options_from_args(_bench_args()).api == "sync"
    with pytest.raises(InvalidInput, match="api must be one of sync, async"):
        BenchOptions(api="trio")
    assert bench_cli.run_bench(_bench_args("--async", "--processes", "--quiet")) == 1
    assert capsys.readouterr().err == (
        "dynamodb-counters: error: --async runs the workers as asyncio tasks of one process: "
        "leave out --processes\n"
    )
    code = bench_cli.run_bench(_bench_args("--scenario", "flash-sale", "--async", "--quiet"))
    assert code == 1
    assert "--async does not apply to --scenario flash-sale" in capsys.readouterr().err


class _Flaky:
    def __init__(self, error: BaseException, failures: int) -> None:
        self.error, self.failures, self.calls = error, failures, 0

    async def __call__(self, amount: int, request_id: str | None) -> AddResult:
        self.calls += 1
        await asyncio.sleep(0.02)
        if self.calls <= self.failures:
            raise self.error
        return AddResult(True, None, request_id, 1, 0)


def test_an_async_worker_keeps_the_same_books() -> None:
    flaky = _Flaky(ReadTimeoutError(endpoint_url="http://x"), failures=2)
    worker = AsyncWorker(flaky, idempotent=True, retry=AppRetry("same-id", limit=3))
    out = asyncio.run(worker.run([Op("r1", 5, duplicate=True)]))
    assert flaky.calls == 4  # two lost, then the op, then its duplicate send
    assert (out.attempted, out.app_retries, out.acknowledged, out.duplicate_sends) == (2, 2, 2, 1)
    assert out.latencies[0] >= 0.06  # the retries' time is the request's time
    assert out.acked == {"r1": 5}


def test_the_first_failing_task_stops_the_others_at_once() -> None:
    stop = threading.Event()

    async def body(index: int) -> int:
        if index == 1:
            raise RuntimeError("worker 1 failed")
        await asyncio.sleep(30)
        return index

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="worker 1 failed"):
        asyncio.run(in_tasks(4, body, stop))
    assert stop.is_set()
    assert time.monotonic() - started < 5
