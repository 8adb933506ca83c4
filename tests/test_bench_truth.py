"""The bench tells the truth (SPEC section 10): one test per finding of issue 7.

Costs are worked out by hand from DynamoDB's rules ($0.625 per million write units, $0.125 per
million read units; the bench's items are far under 1 KB: 1 unit per write, 1 per consistent
read), on runs small enough for DynamoDB Local and without faults where a figure must be exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import new_table_name
from dynamodb_counters.bench import RAW, Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.bench.options import SdkRetry
from dynamodb_counters.bench.workload import AppRetry
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal


def _run(ddb: DynamoDBLocal, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("backend", Backend(endpoint_url=ddb.endpoint_url, table=new_table_name("v")))
    results = run_bench(BenchOptions(**kwargs))
    rows: dict[str, Any] = {r["name"]: r for r in results["strategies"]}
    if results.get("baseline"):
        rows[RAW] = results["baseline"]
    rows["_results"] = results
    return rows


def test_costs_are_per_acknowledged_add_with_refusals_apart(ddb: DynamoDBLocal) -> None:
    """At a floor, ``occ`` refuses with a read alone; per attempt it looked cheaper than
    ``atomic``, per acknowledged add it is dearer."""
    rows = _run(
        ddb,
        strategies=("atomic", "occ"),
        workers=1,
        ops=20,
        initial=5,
        floor=0,
        mix=Mix(increment_share=0.0),
    )
    atomic, occ = rows["atomic"], rows["occ"]
    for row in (atomic, occ):
        assert (row["counts"]["acknowledged"], row["counts"]["rejected"]) == (5, 15)
    # atomic: an applied ADD is 1 WRU, a refused one a failed conditional write, 1 WRU too.
    assert atomic["cost"]["usd_per_million_acked"] == pytest.approx(0.625)
    assert atomic["cost"]["usd_per_million_rejected"] == pytest.approx(0.625)
    # occ: a consistent GetItem (1 RRU, $0.125) then the conditional write (1 WRU, $0.625);
    # a refusal is seen after the GetItem alone.
    assert occ["cost"]["usd_per_million_acked"] == pytest.approx(0.75)
    assert occ["cost"]["usd_per_million_rejected"] == pytest.approx(0.125)
    # Per attempt: (5 x 0.75 + 15 x 0.125) / 20 = 0.28125 -- the misleading ranking.
    assert occ["cost"]["usd_per_million_ops"] == pytest.approx(0.28125)
    assert atomic["cost"]["usd_per_million_ops"] == pytest.approx(0.625)


def test_a_floor_collection_cannot_enforce_is_judged_not_dropped(ddb: DynamoDBLocal) -> None:
    rows = _run(
        ddb,
        strategies=("collection",),
        workers=2,
        ops=30,
        initial=5,
        floor=0,
        mix=Mix(increment_share=0.0),
    )
    collection = rows["collection"]
    ledger = collection["ledger"]
    # 60 orders of 1 from a stock of 5: nothing refuses them.
    assert (ledger["final"], ledger["drift"]) == (-55, 0)
    assert ledger["floor"] is None and ledger["asked_floor"] == 0
    assert (ledger["floor_crossed"], ledger["oversold"]) == (True, 55)
    assert collection["verdict"]["kind"] == "unenforced"
    assert collection["verdict"]["text"] == "floor not enforced: oversold by 55"
    # Its value() is a consistent Query over the counter and 60 delta items, then a GetItem of
    # the counter item (did a compaction run meanwhile?). A delta: pk, the counter's name
    # "bench#<12 hex digits>#collection" (2 + 29) + sk "delta#" + 32 hex digits (2 + 38) +
    # quantity -1 (8 + 2) + call nonce (4 + 32) + request_id "s1-wN-NNNNNNN" (10 + 13) +
    # created (7 + 6) + _inc (4 + 32) = 189 bytes; 60 of them 11,340 bytes; with the counter
    # item (< 400 bytes) between 8,193 and 12,288 bytes: 3 read units, and 1 for the GetItem:
    # $0.50 per million value() reads.
    read = collection["value_read"]
    assert (read["requests"], read["rru"], read["reported_rru"]) == (2, 4, 4)
    assert read["usd_per_million_reads"] == pytest.approx(0.5)
    assert read["items_in_partition"] == 61


def test_set_runs_with_the_library_default(ddb: DynamoDBLocal) -> None:
    rows = _run(ddb, strategies=("set",), workers=1, ops=5)
    capabilities = rows["set"]["capabilities"]
    assert capabilities["options"] == {}
    assert capabilities["non_default_options"] == {}
    assert capabilities["window_numbers"]["ids"] == 100  # SetCounter.defaults["capacity"]


def test_atomic_and_the_raw_baseline_meet_the_same_faults(ddb: DynamoDBLocal) -> None:
    rows = _run(
        ddb,
        strategies=("atomic",),
        compare_raw=True,
        workers=2,
        ops=30,
        initial=1000,
        faults=FaultPlan(lost_answer_rate=0.2, seed=11),
    )
    atomic, raw = rows["atomic"], rows[RAW]
    assert atomic["faults_injected"]["lost_answers"] > 0
    assert atomic["faults_injected"] == raw["faults_injected"]
    # The same faults on the same operations: the same double counts (no floor to race for).
    assert atomic["ledger"]["drift"] == raw["ledger"]["drift"]
    assert [r["lost_answers"] for r in atomic["rounds"]] == [
        r["lost_answers"] for r in raw["rounds"]
    ]
    comparison = rows["_results"]["comparison"]
    assert comparison["same_faults"] is True
    assert comparison["atomic_vs_raw_rounds"] == 5  # the default --rounds
    spread = comparison["atomic_vs_raw_spread"]
    assert spread["min"] <= comparison["atomic_vs_raw_throughput"] <= spread["max"]


def test_figures_come_with_their_spread_over_rounds(ddb: DynamoDBLocal) -> None:
    rows = _run(ddb, strategies=("atomic", "collection"), workers=2, ops=12, rounds=3)
    for name in ("atomic", "collection"):
        row = rows[name]
        assert row["throughput"]["rounds"] == 3
        assert [r["attempted"] for r in row["rounds"]] == [8, 8, 8]  # 2 workers x 4 ops
        spread = row["throughput"]["ops_per_s_spread"]
        assert spread["min"] <= spread["median"] <= spread["max"]
        p99 = row["latency_ms"]["p99_spread"]
        assert p99["min"] <= p99["median"] <= p99["max"]
        # Every target is watched from the side the same way, bounded or not: at least once
        # a round, however short the round.
        assert row["ledger"]["observations"] >= 3


def test_adds_of_unknown_outcome_are_counted_apart_from_drift(ddb: DynamoDBLocal) -> None:
    """No SDK retry and an application that gives up: a lost answer ends the add in an
    error, yet the server applied it. The drift is those adds, and the figures say so."""
    rows = _run(
        ddb,
        strategies=("atomic",),
        workers=1,
        ops=30,
        initial=0,
        mix=Mix(increment_share=1.0),
        faults=FaultPlan(lost_answer_rate=0.3, seed=3),
        sdk=SdkRetry(max_attempts=1),
        app_retry=AppRetry(policy="give-up"),
    )
    atomic = rows["atomic"]
    counts, ledger = atomic["counts"], atomic["ledger"]
    lost = atomic["faults_injected"]["lost_answers"]
    assert lost > 0
    assert counts["errors"] == counts["outcome_unknown"] == lost
    assert counts["outcome_unknown_range"] == [0, lost]
    assert ledger["drift"] == lost  # every one of them landed (+1 each)
    assert ledger["drift_beyond_unknown"] == 0
    assert atomic["verdict"]["notes"] == [
        f"{lost} adds refused or failed after a lost answer may have landed: +0..+{lost}",
        f"{lost} ReadTimeoutError",
    ]


def test_a_net_drift_shows_the_double_counts_on_each_side(ddb: DynamoDBLocal) -> None:
    rows = _run(
        ddb,
        strategies=("atomic",),
        workers=1,
        ops=40,
        initial=1000,
        mix=Mix(increment_share=0.5),
        faults=FaultPlan(lost_answer_rate=0.3, seed=5),
    )
    atomic = rows["atomic"]
    exposed = atomic["ledger"]["lost_answer_ops"]
    assert exposed["increments"] > 0 and exposed["decrements"] > 0
    assert atomic["counts"]["errors"] == 0
    # Every lost attempt reached the server and was applied, then botocore sent the ADD again
    # (no floor here to refuse a re-send): the net drift is what the re-sent increments and
    # decrements add up to, and they partly cancel -- which the figures show on each side.
    up, down = exposed["resent_up"], exposed["resent_down"]
    assert up >= exposed["increments"] and down <= -exposed["decrements"]
    assert atomic["ledger"]["drift"] == up + down
    assert abs(atomic["ledger"]["drift"]) < up - down
    assert f"re-sent after lost answers: {up:+d} up, {down:+d} down" in " ".join(
        atomic["verdict"]["notes"]
    )
