"""The bench: the demo's story with fixed seeds, exact request counts, the ledger, the CLI."""

from __future__ import annotations

import argparse
import json
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from conftest import ALL, IDEMPOTENT, THRESHOLDS, new_table_name
from dynamodb_counters.aws_like import AwsLike
from dynamodb_counters.bench import RAW, Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.bench import cli as bench_cli
from dynamodb_counters.bench import metrics as m
from dynamodb_counters.bench.options import SdkRetry
from dynamodb_counters.bench.targets import RawTarget, Target, new_target
from dynamodb_counters.bench.workload import AppRetry, BenchAborted, Op, Worker, plan_ops
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report.schema import BenchResults, TargetResult, read_results
from dynamodb_counters.results import AddResult

# Its module-scoped fixtures are built once: every test of the file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_bench")

MINIMUM_REQUESTS = {
    "atomic": 1,
    "occ": 2,
    "occ_history": 2,
    "transaction": 1,
    "marker": 1,
    "collection": 1,
    "set": 1,
    "sharded": 1,
}


def _on(ddb: DynamoDBLocal, **kwargs: Any) -> BenchOptions:
    """Options for a bench on the session's DynamoDB Local, in a table of its own."""
    kwargs.setdefault("backend", Backend(endpoint_url=ddb.endpoint_url, table=new_table_name("b")))
    return BenchOptions(**kwargs)


def _by_name(results: BenchResults) -> dict[str, TargetResult]:
    rows = {r["name"]: r for r in results["strategies"]}
    baseline = results.get("baseline")
    if baseline:
        rows[RAW] = baseline
    return rows


# -- the demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResults, Path]:
    out = tmp_path_factory.mktemp("demo") / "counter-report"
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments_demo(parser)
    args = parser.parse_args(["--out", str(out), "--quiet"])
    assert bench_cli.run_demo(args) == 0
    # The report's way in: what the file says it is, checked, then typed.
    return read_results(json.loads((out / "results.json").read_text())), out


def test_demo_idempotent_strategies_stay_exact_and_atomic_drifts(
    demo: tuple[BenchResults, Path],
) -> None:
    results, _ = demo
    rows = _by_name(results)
    assert set(rows) == {*ALL, RAW}
    for name in IDEMPOTENT:
        ledger = rows[name]["ledger"]
        assert ledger["drift"] == 0, (name, ledger)
        assert ledger["final"] == ledger["expected"]
    # Lost answers below the SDK: botocore re-sends atomic's ADD and the server applies it again.
    # The demo's orders are mostly decrements, so every double count takes stock away.
    assert rows["atomic"]["ledger"]["drift"] < 0
    assert rows[RAW]["ledger"]["drift"] < 0
    # The faults really happened, below the SDK, and the SDK really retried.
    for name in ALL:
        assert rows[name]["faults_injected"]["lost_answers"] > 0, name
    assert rows["atomic"]["requests"]["sdk_retries"] > 0


def test_demo_never_crosses_the_floor(demo: tuple[BenchResults, Path]) -> None:
    results, _ = demo
    rows = _by_name(results)
    for name in [*THRESHOLDS, RAW]:
        ledger = rows[name]["ledger"]
        assert ledger["floor"] == 0
        assert ledger["thresholds_enforced"] is True
        assert ledger["floor_crossed"] is False, name
        assert ledger["min_seen"] >= 0
        assert ledger["final"] >= 0
        assert ledger["observations"] > 0
        # More demand than stock: the floor was reached and orders were turned away.
        assert rows[name]["counts"]["rejected"] > 0, name
    # collection cannot enforce a floor, and says so instead of pretending.
    collection = rows["collection"]
    assert collection["ledger"]["thresholds_enforced"] is False
    assert collection["ledger"]["floor"] is None
    assert collection["counts"]["rejected"] == 0
    assert collection["ledger"]["final"] < 0


def test_demo_counts_add_up_and_metadata_is_complete(demo: tuple[BenchResults, Path]) -> None:
    results, out = demo
    run = results["run"]
    assert results["schema"] == "dynamodb-counters/bench-results"
    assert results["schema_version"] == 1
    assert run["preset"] == "demo"
    assert run["seed"] == 7
    assert run["fault_seed"] == 7
    assert run["backend"]["kind"] == "dynamodb-local"
    assert run["options"]["workers"] == 4
    assert run["options"]["faults"]["lost_answer_rate"] == 0.05
    assert {"dynamodb-counters", "boto3", "botocore", "python"} <= set(run["versions"])
    assert run["pricing"] == {"usd_per_million_wru": 0.625, "usd_per_million_rru": 0.125}
    assert "atomic_vs_raw_throughput" in results["comparison"]
    for row in _by_name(results).values():
        counts = row["counts"]
        assert counts["operations"] == 240
        # One attempt per request the application makes; its retries (same id) are inside it.
        assert counts["attempted"] == counts["acknowledged"] + counts["rejected"] + counts["errors"]
        assert counts["attempted"] == 240 + counts["duplicate_sends"]
        assert counts["acknowledged"] == (
            counts["applied"] + counts["duplicates"] + counts["unknown"]
        )
        latency = row["latency_ms"]
        assert latency["p50"] is not None and latency["p95"] is not None
        assert latency["p99"] is not None
        assert latency["p50"] <= latency["p95"] <= latency["p99"]
        assert row["requests"]["http_attempts"] >= counts["attempted"]
        assert row["cost"]["usd_per_million_ops"] > 0
    assert (out / "index.html").is_file()


def test_demo_ends_with_an_exact_flash_sale(demo: tuple[BenchResults, Path]) -> None:
    """The demo's flash sale (SPEC section 8): every target that ran sold its stock exactly."""
    results, out = demo
    flash = results["flash_sale"]
    assert flash["scenario"] == "flash-sale"
    assert flash["options"]["stock"] == 100 and flash["model"]["item_write_limit"] == 30.0
    assert flash["model"]["engine"] == "aws-like"
    ran = [row for row in flash["targets"] if not row.get("skipped")]
    assert [row["name"] for row in ran][:2] == ["atomic", "marker"]
    for row in ran:
        ledger = row["ledger"]
        assert (ledger["drift"], ledger["oversold"], ledger["false_sold_out"]) == (0, 0, 0)
        assert row["acknowledged"] == 100
        assert (row["errors"], row["retryable_errors_reaching_workers"]) == (0, 0)
    verdict = flash["verdict"]
    assert verdict is None or "x the rate of sharded@1 (target >= 5 x: " in verdict
    assert 'id="flash-sale"' in (out / "index.html").read_text(encoding="utf-8")


def test_demo_ends_with_an_exact_checkout(demo: tuple[BenchResults, Path]) -> None:
    """The demo's checkout (holds, SPEC section 13), AWS-like: 0 oversold, every abandoned
    hold returned once, final value = stock - committed, 0 false sold-out, a cost per cart."""
    results, out = demo
    checkout = results["checkout"]
    assert checkout["scenario"] == "checkout"
    options = checkout["options"]
    assert (options["stock"], options["carts"], options["workers"]) == (20, 64, 8)
    assert (options["ttl"], options["engine"]) == (1.0, "aws-like")
    rows = checkout["targets"]
    assert [row["target"] for row in rows] == ["marker", "sharded x4"]
    for row in rows:
        assert (row["oversold"], row["false_sold_out"], row["errors"]) == (0, 0, [])
        assert row["final_value"] == row["expected_value"] == 20 - row["committed"]
        assert row["returned_once"] is True and row["exact"] is True
        assert row["held"] + row["refused"] == 64
        # Every cart that held ended one way: paid, cancelled, abandoned or paid too late.
        ended = row["committed"] + row["cancelled"] + row["abandoned"] + row["expired_at_pay"]
        assert ended == row["held"]
        # Abandoned holds all came back (and a late payment's or late cancel's, nothing else).
        assert row["abandoned"] <= row["returned"]
        assert row["returned"] <= row["abandoned"] + row["expired_at_pay"] + row["cancelled"]
        assert row["abandoned"] > 0 and row["refused"] > 0  # the story happened
        assert row["wru_per_cart"] > 0 and row["usd_per_million_carts"] > 0
    assert checkout["all_exact"] is True
    assert checkout["verdict"].startswith("exact on marker, sharded x4: 0 oversold, every ")
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="checkout"' in page and checkout["verdict"] in page


# -- exact figures without faults ----------------------------------------------------------------


def test_uncontended_requests_per_op_are_each_strategys_minimum(ddb: DynamoDBLocal) -> None:
    results = run_bench(_on(ddb, workers=1, ops=12, initial=1000, mix=Mix(increment_share=0.5)))
    rows = _by_name(results)
    for name, minimum in MINIMUM_REQUESTS.items():
        row = rows[name]
        assert row["requests"]["per_op"] == minimum, name
        assert row["requests"]["http_attempts"] == 12 * minimum
        assert row["counts"]["acknowledged"] == 12
        assert row["counts"]["applied"] == (0 if name == "transaction" else 12)
        assert row["ledger"]["drift"] == 0
        assert row["capabilities"]["requests_per_add"] == minimum
    assert rows["occ"]["requests"]["by_operation"] == {"GetItem": 12, "UpdateItem": 12}
    assert rows["marker"]["requests"]["by_operation"] == {"TransactWriteItems": 12}
    # Request units by the pricing rules, for items well under 1 KB.
    units = {name: rows[name]["units"]["estimated"] for name in ALL}
    assert (units["atomic"]["wru_per_op"], units["atomic"]["rru_per_op"]) == (1.0, 0.0)
    assert (units["occ"]["wru_per_op"], units["occ"]["rru_per_op"]) == (1.0, 1.0)
    assert (units["transaction"]["wru_per_op"], units["transaction"]["rru_per_op"]) == (2.0, 0.0)
    assert (units["marker"]["wru_per_op"], units["marker"]["rru_per_op"]) == (4.0, 0.0)
    # collection: a transaction of the counter check and the delta put, 2 x (1 + 1).
    assert (units["collection"]["wru_per_op"], units["collection"]["rru_per_op"]) == (4.0, 0.0)
    assert (units["set"]["wru_per_op"], units["set"]["rru_per_op"]) == (1.0, 0.0)
    # sharded: a shard update and a marker put, 2 x (1 + 1); no shard runs dry here.
    assert (units["sharded"]["wru_per_op"], units["sharded"]["rru_per_op"]) == (4.0, 0.0)
    assert rows["atomic"]["cost"]["usd_per_million_ops"] == pytest.approx(0.625)
    assert rows["marker"]["cost"]["usd_per_million_ops"] == pytest.approx(2.5)
    assert rows["occ"]["cost"]["usd_per_million_ops"] == pytest.approx(0.75)
    # DynamoDB Local reports capacity for plain writes: the estimate agrees with it there.
    assert rows["atomic"]["units"]["reported"]["wru_per_op"] == 1.0


def test_duplicates_are_told_apart_by_idempotent_strategies_only(ddb: DynamoDBLocal) -> None:
    options = _on(
        ddb,
        workers=1,
        ops=10,
        initial=0,
        mix=Mix(increment_share=1.0, amount=3, duplicate_rate=1.0),
    )
    rows = _by_name(run_bench(options))
    amounts = sum(op.amount for op in plan_ops(seed=1, worker=0, ops=10, mix=options.mix))
    for name in ("occ_history", "marker", "collection", "set", "sharded"):
        counts = rows[name]["counts"]
        assert (counts["duplicate_sends"], counts["applied"], counts["duplicates"]) == (10, 10, 10)
        assert rows[name]["ledger"]["final"] == amounts
        assert rows[name]["ledger"]["drift"] == 0
    # transaction: DynamoDB Local does not say whether a token replay was one (applied=None),
    # but the replay changes nothing.
    assert rows["transaction"]["counts"]["unknown"] == 20
    assert rows["transaction"]["ledger"]["drift"] == 0
    # Non-idempotent strategies cannot take the id: every re-send counts again.
    for name in ("atomic", "occ"):
        assert rows[name]["ledger"]["expected"] == amounts
        assert rows[name]["ledger"]["final"] == 2 * amounts
        assert rows[name]["ledger"]["drift"] == amounts


def test_throttles_the_sdk_cannot_absorb_become_errors_or_app_retries(
    ddb: DynamoDBLocal,
) -> None:
    common: dict[str, Any] = {
        "strategies": ("atomic", "marker"),
        "workers": 2,
        "ops": 5,
        "initial": 10,
        "faults": FaultPlan(throttle_rate=1.0, seed=3),
        "sdk": SdkRetry(max_attempts=1),
    }
    give_up = _by_name(run_bench(_on(ddb, app_retry=AppRetry("give-up"), **common)))
    retry = _by_name(run_bench(_on(ddb, app_retry=AppRetry("same-id", limit=2), **common)))
    for name in ("atomic", "marker"):
        assert give_up[name]["counts"]["errors_by_type"] == {"ThrottlingException": 10}
        assert give_up[name]["counts"]["acknowledged"] == 0
        assert give_up[name]["ledger"]["final"] == 10
        assert give_up[name]["ledger"]["drift"] == 0
        # Throttled requests reach nothing and cost nothing.
        assert give_up[name]["requests"]["answered_by_injected_faults"] == 10
        assert give_up[name]["units"]["estimated"]["wru"] == 0
        assert retry[name]["counts"]["app_retries"] == 20
        assert retry[name]["counts"]["attempted"] == 10
        assert retry[name]["counts"]["errors"] == 10


def test_workers_as_processes_lost_answers(ddb: DynamoDBLocal) -> None:
    options = _on(
        ddb,
        strategies=("atomic", "marker"),
        workers=2,
        processes=True,
        ops=15,
        initial=0,
        mix=Mix(increment_share=1.0),
        faults=FaultPlan(lost_answer_rate=0.3, seed=11),
        compare_raw=True,
    )
    rows = _by_name(run_bench(options))
    assert rows["marker"]["ledger"]["drift"] == 0
    assert rows["marker"]["ledger"]["final"] == 30
    assert rows["marker"]["faults_injected"]["lost_answers"] > 0
    # Every increment is +1, and each lost answer on atomic is one more +1 applied.
    assert rows["atomic"]["ledger"]["drift"] > 0
    assert rows[RAW]["ledger"]["drift"] > 0
    for row in rows.values():
        assert row["counts"]["attempted"] == 30


def test_worker_processes_share_one_aws_like_engine_and_its_answers_are_counted(
    ddb: DynamoDBLocal,
) -> None:
    """Two worker processes, one partition whose bucket holds its burst once (0.001 write
    units/s): the first transactional write takes it, and every later attempt of either process
    is a throttled cancellation. With an engine per process (before), each process's first add
    went through; and the engine's answers were in no result."""
    options = _on(
        ddb,
        strategies=("transaction",),
        workers=2,
        processes=True,
        ops=1,
        initial=0,
        mix=Mix(increment_share=1.0),
        app_retry=AppRetry("give-up"),
        faults=FaultPlan(aws_like=AwsLike(write_limit=0.001, in_flight=0.0)),
    )
    row = _by_name(run_bench(options))["transaction"]
    assert (row["counts"]["acknowledged"], row["counts"]["errors"]) == (1, 1)
    assert row["counts"]["errors_by_type"] == {"TransactionCanceledException": 1}
    # The library tried the refused add max_attempts (32) times; the injector answered each.
    assert row["requests"]["by_operation"] == {"TransactWriteItems": 1 + 32}
    assert row["faults_injected"]["throttles"] == 32
    assert row["ledger"]["final"] == 1


def test_the_raw_baseline_does_the_same_work(ddb: DynamoDBLocal) -> None:
    options = _on(
        ddb,
        strategies=("atomic",),
        workers=1,
        ops=40,
        initial=5,
        floor=0,
        mix=Mix(increment_share=0.2),
        compare_raw=True,
    )
    results = run_bench(options)
    rows = _by_name(results)
    assert options.targets == ("atomic", RAW)
    for name in ("atomic", RAW):
        assert rows[name]["counts"]["attempted"] == 40
        assert rows[name]["ledger"]["drift"] == 0
        assert rows[name]["ledger"]["floor_crossed"] is False
        assert rows[name]["requests"]["per_op"] == 1
    # The same operations in the same order against the same floor: the same outcome.
    assert rows["atomic"]["counts"]["rejected"] == rows[RAW]["counts"]["rejected"] > 0
    assert rows["atomic"]["ledger"]["final"] == rows[RAW]["ledger"]["final"]
    assert (results["comparison"].get("atomic_vs_raw_throughput") or 0) > 0


def test_the_raw_baseline_is_a_target_like_the_strategies() -> None:
    def make(name: str) -> Target:
        return new_target(name, counter=f"c-{name}", table="t", floor=0, ceiling=None)

    raw, atomic, marker = make(RAW), make("atomic"), make("marker")
    assert isinstance(raw, RawTarget) and type(atomic) is Target
    assert (raw.baseline, raw.idempotent, raw.strategy, raw.defaults) == (True, False, "atomic", {})
    assert (atomic.baseline, atomic.idempotent, marker.idempotent) == (False, False, True)
    assert Target.enforces_bounds(RAW) and not Target.enforces_bounds("collection")
    assert raw.window() == atomic.window() == {"kind": "none"}
    assert marker.window()["kind"] == "time"
    described = raw.capabilities()
    assert (described["idempotent"], described["thresholds"]) == (False, True)
    assert described["non_default_options"] == {}
    # Worker processes get targets as they are.
    assert pickle.loads(pickle.dumps(raw)) == raw
    assert type(pickle.loads(pickle.dumps(raw))) is RawTarget


# -- the CLI functions -----------------------------------------------------------------------


def _bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments_bench(parser)
    return parser.parse_args(list(argv))


def test_bench_arguments_build_the_options() -> None:
    args = _bench_args(
        "--strategies=atomic,marker",
        "--workers=3",
        "--ops=7",
        "--floor=0",
        "--initial=5",
        "--increment-share=0.25",
        "--duplicate-rate=0.1",
        "--lost-answers=0.05",
        "--throttles=0.01",
        "--seed=9",
        "--sdk-retry-mode=adaptive",
        "--sdk-max-attempts=5",
        "--app-retry=give-up",
        "--compare-raw",
        "--region=eu-west-1",
    )
    options = bench_cli.options_from_args(args)
    assert options.strategies == ("atomic", "marker")
    assert options.targets == ("atomic", RAW, "marker")
    assert (options.workers, options.ops, options.floor, options.initial) == (3, 7, 0, 5)
    assert options.mix == Mix(increment_share=0.25, amount=1, duplicate_rate=0.1)
    assert options.faults == FaultPlan(lost_answer_rate=0.05, throttle_rate=0.01, seed=9)
    assert options.sdk == SdkRetry(mode="adaptive", max_attempts=5)
    assert options.app_retry == AppRetry(policy="give-up", limit=3)
    assert options.backend == Backend(region="eu-west-1")
    assert not options.backend.embedded


def test_bench_rejects_bad_input_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _bench_args("--strategies=atomic,nope")
    with pytest.raises(SystemExit):
        _bench_args("--lost-answers=1.5")
    capsys.readouterr()
    code = bench_cli.run_bench(_bench_args("--initial=5", "--floor=10", "--quiet"))
    err = capsys.readouterr().err
    assert code == 1
    assert err == "dynamodb-counters: error: initial must not be below the floor\n"
    code = bench_cli.run_bench(_bench_args("--lost-answers=0.6", "--throttles=0.6", "--quiet"))
    assert code == 1
    assert (
        capsys.readouterr().err
        == "dynamodb-counters: error: fault rates must add up to at most 1\n"
    )


def test_bench_refuses_outputs_it_cannot_write_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The endpoint is unreachable: had the bench run first, it would fail on that instead."""
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for extra in (f"--report={a_file}", f"--json={tmp_path}", f"--json={a_file}/x.json"):
        code = bench_cli.run_bench(
            _bench_args("--quiet", "--endpoint-url=http://127.0.0.1:1", extra)
        )
        lines = capsys.readouterr().err.splitlines()
        assert code == 1, extra
        assert len(lines) == 1 and lines[0].startswith("dynamodb-counters: error: "), lines
        assert "127.0.0.1:1" not in lines[0]
    with pytest.raises(SystemExit):
        _bench_args("--wru-price=nan")
    with pytest.raises(SystemExit):
        _bench_args("--rru-price=-1")


def test_bench_writes_json_and_report(ddb: DynamoDBLocal, tmp_path: Path) -> None:
    args = _bench_args(
        "--strategies=set",
        "--workers=1",
        "--ops=3",
        f"--endpoint-url={ddb.endpoint_url}",
        f"--table={new_table_name('b')}",
        f"--json={tmp_path / 'r.json'}",
        f"--report={tmp_path / 'html'}",
        "--quiet",
    )
    assert bench_cli.run_bench(args) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in results["strategies"]] == ["set"]
    assert results["run"]["backend"]["kind"] == "endpoint"
    assert (tmp_path / "html" / "index.html").read_text().startswith("<!DOCTYPE html>")


# -- pure pieces -------------------------------------------------------------------------------


def test_the_workload_is_reproducible_from_its_seed() -> None:
    mix = Mix(increment_share=0.3, amount=5, duplicate_rate=0.2)
    first = plan_ops(seed=4, worker=1, ops=50, mix=mix)
    assert first == plan_ops(seed=4, worker=1, ops=50, mix=mix)
    assert first != plan_ops(seed=5, worker=1, ops=50, mix=mix)
    assert first != plan_ops(seed=4, worker=2, ops=50, mix=mix)
    assert len({op.request_id for op in first}) == 50
    assert all(1 <= abs(op.amount) <= 5 for op in first)


def test_percentiles_and_units() -> None:
    assert m.percentile([], 50) is None
    assert m.percentile([5.0], 99) == 5.0
    assert m.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert m.percentile(list(range(101)), 95) == 95.0
    assert m.number_size("0") == 2
    assert m.number_size("12345") == 4
    assert m.number_size("-100") == 2
    item = {"pk": {"S": "abc"}, "quantity": {"N": "42"}, "_ids": {"SS": ["ab", "cde"]}}
    assert m.item_size(item) == (2 + 3) + (8 + 2) + (4 + 5)
    assert m.item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert (m.write_units(1), m.write_units(1024), m.write_units(1025)) == (1, 1, 2)
    assert (m.read_units(4096), m.read_units(4097), m.read_units(10, consistent=False)) == (
        1.0,
        2.0,
        0.5,
    )
    assert m.cost_per_million(2, 1, wru_price=0.625, rru_price=0.125) == 1.375


def test_update_expressions_are_followed_for_item_sizes() -> None:
    old = {"pk": {"S": "c"}, "quantity": {"N": "5"}, "_ids": {"SS": ["a"]}}
    new = m.apply_update(
        old,
        "ADD #v :amount, #ids :idset SET #last = :nonce",
        {"#v": "quantity", "#ids": "_ids", "#last": "_last"},
        {":amount": {"N": "-2"}, ":idset": {"SS": ["b"]}, ":nonce": {"S": "xyz"}},
    )
    assert new == {
        "pk": {"S": "c"},
        "quantity": {"N": "3"},
        "_ids": {"SS": ["a", "b"]},
        "_last": {"S": "xyz"},
    }
    assert m.apply_update(new, "REMOVE #l", {"#l": "_last"}, {}) == {
        k: v for k, v in new.items() if k != "_last"
    }


class _Flaky:
    """An adder whose first ``failures`` calls raise ``error``, each after ``pause`` seconds."""

    def __init__(self, error: BaseException, failures: int, pause: float = 0.0) -> None:
        self.error, self.failures, self.pause, self.calls = error, failures, pause, 0

    def __call__(self, amount: int, request_id: str | None) -> AddResult:
        self.calls += 1
        time.sleep(self.pause)
        if self.calls <= self.failures:
            raise self.error
        return AddResult(True, None, request_id, 1, 0)


def test_a_request_and_its_retries_are_one_attempt_with_one_latency() -> None:
    flaky = _Flaky(ReadTimeoutError(endpoint_url="http://x"), failures=2, pause=0.02)
    worker = Worker(flaky, idempotent=True, retry=AppRetry("same-id", limit=3))
    out = worker.run([Op("r1", 5, duplicate=False)])
    assert flaky.calls == 3
    assert (out.attempted, out.app_retries, out.acknowledged) == (1, 2, 1)
    assert len(out.latencies) == 1
    assert out.latencies[0] >= 0.06  # the retries' time is the request's time
    assert out.acked == {"r1": 5}


@pytest.mark.parametrize(
    "error",
    [
        NoCredentialsError(),
        ParamValidationError(report="bad"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=["credentials", "parameters", "endpoint"],
)
def test_errors_no_retry_can_help_abort_the_run(error: BaseException) -> None:
    flaky = _Flaky(error, failures=100)
    worker = Worker(flaky, idempotent=True, retry=AppRetry("same-id", limit=3))
    with pytest.raises(BenchAborted) as raised:
        worker.run([Op("r1", 1, duplicate=False), Op("r2", 1, duplicate=False)])
    assert raised.value.cause is error
    assert flaky.calls == 1
    # It crosses a process boundary intact (workers as processes).
    again = pickle.loads(pickle.dumps(raised.value))
    assert type(again.cause) is type(error)


def test_a_stopped_worker_sends_nothing_more() -> None:
    stop = threading.Event()
    flaky = _Flaky(ReadTimeoutError(endpoint_url="http://x"), failures=0)
    worker = Worker(flaky, idempotent=True, retry=AppRetry("give-up"), tick=stop.set, stop=stop)
    out = worker.run([Op(f"r{i}", 1, duplicate=False) for i in range(5)])
    assert flaky.calls == 1
    assert out.attempted == 1


def test_bench_shards_sets_the_sharded_targets_shard_count(ddb: DynamoDBLocal) -> None:
    """``bench --shards N`` is to sharded what --history is to occ_history; a list of counts
    belongs to the flash sale."""
    options = bench_cli.options_from_args(_bench_args("--strategies=sharded", "--shards=3"))
    assert options.shards == 3
    with pytest.raises(InvalidInput, match="one count"):
        bench_cli.options_from_args(_bench_args("--strategies=sharded", "--shards=1,2"))
    results = run_bench(_on(ddb, strategies=("sharded",), shards=3, workers=2, ops=4))
    row = _by_name(results)["sharded"]
    assert row["capabilities"]["options"]["shards"] == 3
    assert row["ledger"]["drift"] == 0
