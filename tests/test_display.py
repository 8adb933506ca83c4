"""The terminal's end of a bench: 100 columns, every id whole, a verdict per strategy, a legend."""

from __future__ import annotations

import copy

import pytest
from rich.console import Console

from conftest import ALL, new_table_name
from dynamodb_counters.bench import Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.bench.display import comparison_line, results_table, verdict_block
from dynamodb_counters.cli import main
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report import LEGEND, verdict_of
from dynamodb_counters.report.schema import BenchResults

# Its module-scoped fixtures are built once: every test of the file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_display")


@pytest.fixture(scope="module")
def results(ddb: DynamoDBLocal) -> BenchResults:
    return run_bench(
        BenchOptions(
            workers=2,
            ops=6,
            initial=4,
            floor=0,
            mix=Mix(increment_share=0.2),
            faults=FaultPlan(lost_answer_rate=0.2, seed=5),
            compare_raw=True,
            rounds=2,
            backend=Backend(endpoint_url=ddb.endpoint_url, table=new_table_name("d")),
        )
    )


def _render(results: BenchResults, width: int = 100) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(results_table(results))
    line = comparison_line(results)
    if line:
        console.print(line)
    console.print(verdict_block(results))
    return console.export_text().splitlines()


def test_the_end_of_a_run_fits_100_columns(results: BenchResults) -> None:
    lines = _render(results)
    assert max(len(line) for line in lines) <= 100
    # Every id whole, once in the table and once in the verdicts.
    for name in ALL:
        found = [line for line in lines if line.strip().startswith(f"{name} ")]
        assert len(found) == 2 + (name == "atomic"), "\n".join(lines)  # + "atomic throughput"
    assert any(line.startswith("raw-boto3*") for line in lines)


def test_it_ends_with_a_verdict_per_strategy_and_a_legend(results: BenchResults) -> None:
    text = "\n".join(_render(results))
    verdicts = text[text.index("Verdict") :]
    for row in results["strategies"]:
        assert f"  {row['name']}" in verdicts
        assert verdict_of(row)["text"] in verdicts
    # collection was asked for a floor it cannot enforce, and sold below it.
    assert "collection   floor not enforced: oversold by" in verdicts
    assert " ".join(text.split()).endswith("Legend: " + " ".join(LEGEND.split()))
    assert "\nLegend: acked: add() returned" in text


def test_dup_says_when_the_strategy_could_not_tell(results: BenchResults) -> None:
    doctored = copy.deepcopy(results)
    row = next(r for r in doctored["strategies"] if r["name"] == "transaction")
    row["counts"]["unknown"], row["counts"]["duplicates"] = 7, 0
    row.pop("verdict")
    lines = _render(doctored)
    line = next(x for x in lines if x.startswith("transaction "))
    assert line.split()[5] == "?"  # not "0": the strategy answered applied=None
    assert any("duplicates not told for 7 of its adds (applied=None)" in x for x in lines)


def test_the_095_target_is_not_claimed_under_faults(results: BenchResults) -> None:
    line = comparison_line(results)
    assert line is not None
    assert line.startswith("atomic throughput = ")
    assert "median of 2 rounds" in line and "same faults in each" in line
    assert "not the >= 0.95 target" in line
    # The sentence ended on "which is for runs without" (without what?).
    assert line.endswith("not the >= 0.95 target, which is for runs without faults")
    calm = copy.deepcopy(results)
    calm["comparison"]["faults_active"] = False
    assert str(comparison_line(calm)).endswith("; target >= 0.95")


def test_strategies_fits_80_columns_with_whole_ids(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["strategies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ALL:
        assert any(line.startswith(f"│ {name} ") for line in lines), name


def test_the_flash_sale_ratio_reads_as_a_result() -> None:
    """ "sharded@8 sells 3.2 x the rate of sharded@1 (target: 6 x)" read like a failed test."""
    from dynamodb_counters.bench.display import flash_table

    table = flash_table({"model": {"item_write_limit": 20}, "targets": [], "sharded_8_vs_1": 3.2})
    assert str(table.caption).splitlines()[0] == (
        "sharded@8 sold 3.2 x the rate of sharded@1 (8 x would be linear)"
    )
