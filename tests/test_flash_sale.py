"""The flash-sale scenario (SPEC sections 8 and 11): tiny runs against DynamoDB Local.

Stock 60, 78 orders, R = 40 write units/s per partition (AWS-like, the default) or per item
(``aws_like=False``): a few seconds per target (DynamoDB Local itself may be slower than that
on a busy machine). What must hold exactly whatever the machine's speed: every unit sold once,
no oversell, no drift, no false "sold out", no error reaching a worker; the speed figures are
only checked to be there.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any, cast

import pytest

from dynamodb_counters import STRATEGIES
from dynamodb_counters.bench.flash import (
    FlashSale,
    FlashSaleOptions,
    false_sold_outs,
    results_document,
    verdict,
)
from dynamodb_counters.bench.options import Backend
from dynamodb_counters.bench.runner import Connection
from dynamodb_counters.errors import InvalidInput
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report import CONTENT_SECURITY_POLICY, render_html
from dynamodb_counters.report.schema import BenchResults

# Its module-scoped fixtures are built once: every test of the file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_flash_sale")

STOCK = 60


def _sale(ddb: DynamoDBLocal, **options: Any) -> BenchResults:
    flash = FlashSaleOptions(
        stock=STOCK,
        workers=8,
        item_write_limit=40.0,
        backend=Backend(endpoint_url=ddb.endpoint_url),
        time_limit=60.0,
        **options,
    )
    connection = Connection("endpoint", ddb.endpoint_url, "us-east-1", True)
    return results_document(flash, connection, FlashSale(flash, connection).run())


def _check_exact(row: dict[str, Any]) -> None:
    ledger = row["ledger"]
    assert row["skipped"] is None
    assert row["orders"] == 78 and row["errors"] == 0, row["errors_by_type"]
    # Conflicts and cancelled transactions the library absorbed: none reached a worker.
    assert row["retryable_errors_reaching_workers"] == 0, row["retryable_errors_by_type"]
    assert row["exact"] is True
    assert row["acknowledged"] == STOCK and row["refused"] == 78 - STOCK
    assert ledger["final"] == 0
    assert ledger["oversold"] == 0
    assert ledger["drift"] == 0
    assert ledger["false_sold_out"] == 0
    assert row["accepted_adds_per_s"] > 0
    assert row["units"]["wru_per_add"] > 0


@pytest.fixture(scope="module")
def results(ddb: DynamoDBLocal) -> BenchResults:
    return _sale(ddb, strategies=("atomic", "marker"))


def test_a_tiny_sale_is_exact(results: BenchResults) -> None:
    flash = results["flash_sale"]
    rows = {r["name"]: r for r in flash["targets"]}
    assert list(rows) == ["atomic", "marker"]
    for row in rows.values():
        _check_exact(row)
    # The buckets start empty: the first orders of 8 workers at once cannot all pass.
    assert sum(row["throttled_requests"] for row in rows.values()) > 0
    # Priced by the meter: a refused order is a failed conditional write, still charged.
    assert rows["atomic"]["units"]["wru_per_add"] == pytest.approx(78 / STOCK)
    # marker: the counter update and the marker put, 2 units each in a transaction.
    assert rows["marker"]["units"]["wru_per_add"] == pytest.approx(4 * 78 / STOCK)
    assert rows["atomic"]["model_ceiling_adds_per_s"] == 40.0
    # AWS-like: the marker shares the counter's partition (4 units an add).
    assert rows["marker"]["model_ceiling_adds_per_s"] == 10.0
    assert flash["all_exact"] is True
    assert flash["model"]["engine"] == "aws-like" and flash["model"]["per"] == "partition"
    # A throttled transaction is cancelled (and tried again by the library), never retried by
    # botocore: marker's throttles are cancellations.
    assert rows["marker"]["throttled_transactions"] > 0
    assert rows["atomic"]["throttled_transactions"] == 0
    for row in rows.values():
        assert {"conflicts", "stale_reads", "unprocessed"} <= set(row)


def test_a_plain_sale_keeps_the_per_item_model(ddb: DynamoDBLocal) -> None:
    flash = _sale(ddb, strategies=("marker",), aws_like=False)["flash_sale"]
    (row,) = flash["targets"]
    _check_exact(row)
    assert flash["model"]["engine"] == "plain"
    assert row["model_ceiling_adds_per_s"] == 20.0
    assert row["throttled_transactions"] == 0 and row["conflicts"] == 0


def test_the_verdict_reads_as_a_result() -> None:
    assert verdict(5.64, 5.0) == "sharded@8 sold 5.6 x the rate of sharded@1 (target >= 5 x: met)"
    assert verdict(3.2, 5.0) == (
        "sharded@8 sold 3.2 x the rate of sharded@1 (target >= 5 x: NOT met)"
    )
    assert verdict(None, 5.0) is None


def test_sharded_targets(ddb: DynamoDBLocal) -> None:
    if "sharded" not in STRATEGIES:
        pytest.skip("the sharded strategy is not in this build yet")
    flash = _sale(ddb, strategies=("sharded",), shards=(1, 2))["flash_sale"]
    assert [r["name"] for r in flash["targets"]] == ["sharded@1", "sharded@2"]
    for row in flash["targets"]:
        _check_exact(row)


def test_sharded_is_skipped_with_a_note_when_absent(ddb: DynamoDBLocal) -> None:
    if "sharded" in STRATEGIES:
        pytest.skip("the sharded strategy is in this build")
    flash = _sale(ddb, strategies=("sharded",), shards=(8,))["flash_sale"]
    (row,) = flash["targets"]
    assert row["name"] == "sharded@8"
    assert "not in this build" in row["skipped"]
    page = render_html(results_document_for(flash))
    assert "not in this build" in page


def results_document_for(flash: dict[str, Any]) -> BenchResults:
    # Only what the report needs of a document to draw the flash sale.
    return cast(BenchResults, {"strategies": [], "baseline": None, "flash_sale": flash})


def test_the_report_section(results: BenchResults) -> None:
    page = render_html(results)
    assert CONTENT_SECURITY_POLICY in page
    for forbidden in ("<script", "<link", "<img", "src="):
        assert forbidden not in page
    assert re.findall(r'<svg class="chart" data-chart="([a-z]+)"', page) == ["flash"]
    assert 'id="flash-sale"' in page
    for name in ("atomic", "marker"):
        assert f"<td>{name}</td>" in page
    for header in ("accepted adds/s", "throttled requests", "false sold out", "$ / M adds"):
        assert f"<th>{header}</th>" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # Beside a bench's own figures, as the demo writes it: one more section, one more chart.
    assert "<h1>dynamodb-counters: a flash sale" in page


def test_the_report_section_names_the_model_the_sale_ran(results: BenchResults) -> None:
    """AWS-like (the default) throttles per partition, where a marker sells at R/4: the report
    said "per item" and "R/2 with marker" beside a table showing R/4, while the terminal said
    "per-partition limit"."""
    text = re.sub(r"<svg.*?</svg>", "", render_html(results), flags=re.DOTALL)
    assert "<th>one partition&#39;s limit</th>" in text
    assert "R write units/s per partition key, dashed" in text
    assert "R/4 with marker" in text
    assert "R = 40.0 write units/s and 120.0 read units/s per partition (AWS-like engine);" in text
    assert "per item" not in text and "R/2" not in text and "one item" not in text
    plain = copy.deepcopy(results)
    plain["flash_sale"]["model"]["per"] = "item"
    text = re.sub(r"<svg.*?</svg>", "", render_html(plain), flags=re.DOTALL)
    assert "<th>one item&#39;s limit</th>" in text
    assert "R/2 with marker" in text and "120.0 read units/s per item;" in text
    assert "partition key" not in text and "AWS-like engine" not in text


def test_false_sold_out_rule() -> None:
    # Stock left at the end: every refusal was false.
    assert false_sold_outs([1.0, 2.0], [0.5], final=1) == 2
    # Sold out at the end: a refusal is false only when an order sent after it was sold.
    assert false_sold_outs([1.0, 2.0, 3.0], [0.5, 2.5], final=0) == 2
    assert false_sold_outs([1.0], [0.5, 0.9], final=0) == 0
    assert false_sold_outs([], [], final=0) == 0


@pytest.mark.parametrize(
    "options",
    [
        {"stock": 0},
        {"demand": 60},
        {"item_write_limit": 0},
        {"shards": ()},
        {"workers": 0},
        {"strategies": ("occ",)},
        {"backend": Backend(table="mine")},
        {"partitions": 0},
        {"in_flight": -1.0},
        {"staleness": float("nan")},
    ],
)
def test_options_are_validated(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        FlashSaleOptions(**{"stock": 60, **options})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynamodb_counters", "bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--scenario", "flash-sale", "--processes"], 1, "--processes does not apply"),
        (["--scenario", "flash-sale", "--item-write-limit", "0"], 2, "above 0"),
        (["--item-write-limit", "fast"], 2, "not a number"),
        (["--scenario", "flash-sale", "--item-write-limit", "off", "--rounds", "2"], 1, "--rounds"),
        (["--scenario", "flash-sale", "--shards", "1,x"], 2, "not an integer"),
        (["--stock", "5"], 1, "--stock belongs to --scenario flash-sale"),
        (["--item-write-limit", "10", "--processes"], 1, "leave out --processes"),
        (["--scenario", "flash-sale", "--plain", "--partitions", "4"], 1, "AWS-like mode"),
        (["--scenario", "flash-sale", "--plain", "--aws-like"], 1, "exclude each other"),
        (["--partitions", "4"], 1, "AWS-like mode (--aws-like)"),
        (["--plain"], 1, "--plain belongs to --scenario flash-sale"),
        (["--aws-like", "--in-flight", "-1"], 2, "seconds"),
    ],
)
def test_cli_errors(args: list[str], code: int, needle: str) -> None:
    done = _cli(*args)
    assert done.returncode == code, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
