"""``dynamodb-counters advise``: one test per branch of the rules, through the command's entry
point. Every price is worked out by hand from DynamoDB's rules: $0.625 per million write units,
$0.125 per million read units; items under 1 KB cost 1 write unit, twice that in a transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dynamodb_counters import STRATEGIES
from dynamodb_counters.cli import main


def _advise(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["advise", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_no_idempotency_is_atomic(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--floor", "--rate", "500")
    assert code == 0
    assert answer["strategy"] == "atomic"
    assert answer["usd_per_million_adds"] == 0.625  # 1 WRU x $0.625
    assert answer["warning"] is None


def test_a_short_window_is_transaction(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--idempotent", "--floor")  # default window: 10 minutes
    assert (code, answer["strategy"]) == (0, "transaction")
    assert answer["usd_per_million_adds"] == 1.25  # 1 WRU x 2 (transaction) x $0.625
    assert "10 minutes" in answer["reason"]


def test_a_longer_window_is_marker_with_that_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--window", "1h", "--floor", "--rate", "100")
    # In seconds: what `counter create --marker-ttl` and `marker_ttl=` both take.
    assert (code, answer["strategy"], answer["options"]) == (0, "marker", {"marker_ttl": 3600})
    # (counter update 1 WRU + marker put 1 WRU) x 2 (transaction) = 4 WRU x $0.625.
    assert answer["usd_per_million_adds"] == 2.5
    assert "1 hour" in answer["reason"]


def test_forever_without_bounds_is_collection(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--window", "forever")
    assert (code, answer["strategy"]) == (0, "collection")
    # A transaction of the counter check and the delta put: 2 x (1 + 1) = 4 WRU.
    assert answer["usd_per_million_adds"] == 2.5
    # Its reads are priced apart: 1,000 deltas of 250 bytes = 250,000 bytes / 4 KB = 62 RRU.
    assert "62 read units per 1,000 deltas" in answer["reason"]


def test_forever_with_a_bound_is_never_collection(capsys: pytest.CaptureFixture[str]) -> None:
    """collection cannot enforce a floor: with one asked for it is not offered at all."""
    code, answer = _advise(capsys, "--window", "forever", "--floor")
    assert code == 0
    assert answer["strategy"] != "collection"
    assert (answer["strategy"], answer["options"]) == ("marker", {"marker_ttl": 365 * 86400})
    assert "no strategy remembers request ids forever and enforces a bound" in answer["warning"]


def test_more_than_one_item_takes_asks_for_shards(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--idempotent", "--floor", "--rate", "2000", "--window", "1h")
    assert code == 0
    # A sharded add writes a shard and a marker (4 WRU) on a partition that takes ~1,000
    # WRU/s -> ~250 adds/s a shard; 2,000 / 250 = 8. The window is the marker's.
    assert (answer["strategy"], answer["options"]) == (
        "sharded",
        {"shards": 8, "marker_ttl": 3600},
    )
    assert answer["usd_per_million_adds"] == 2.5  # 4 WRU x $0.625
    assert answer["warning"] is None


def test_without_sharded_the_answer_says_split(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(STRATEGIES, "sharded")
    code, answer = _advise(capsys, "--idempotent", "--floor", "--rate", "2000", "--window", "1h")
    assert (code, answer["strategy"]) == (0, "marker")
    assert "split the counter over 8 items" in answer["warning"]


def test_a_fast_plain_counter_is_sharded_at_marker_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, answer = _advise(capsys, "--rate", "3000")
    # atomic takes ~1,000 adds/s; sharded: 3,000 / 250 = 12, rounded up to 16 shards, and every
    # add pays for its marker: 4 WRU, not atomic's 1.
    assert (code, answer["strategy"], answer["options"]) == (0, "sharded", {"shards": 16})
    assert answer["usd_per_million_adds"] == 2.5
    assert answer["plan"]["shards"] == 12  # 3,000 / 250, before the power of two


def test_over_the_budget_says_so_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--idempotent", "--budget", "1")
    assert code == 1
    assert answer["strategy"] == "transaction"
    assert "within $1.00" in answer["warning"] and "$1.25" in answer["warning"]


def test_prices_are_the_users(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--wru-price", "1.4")
    assert (code, answer["usd_per_million_adds"]) == (0, 1.4)


def test_plain_text_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--window", "7d"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "strategy: marker, marker_ttl=604800 (7 days)"
    assert out[1].startswith("why: a retry within 7 days is recognised by a marker item")
    assert out[2].startswith("cost: $2.500 per million adds")


@pytest.mark.parametrize("window", ["soon", "0", "-1h"])
def test_a_bad_window_is_a_usage_error(window: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["advise", "--window", window])
    assert exited.value.code == 2
    assert "window" in capsys.readouterr().err


def test_the_plan_at_100000_adds_per_second_names_the_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, answer = _advise(capsys, "--adds-per-second", "100000", "--window", "1h", "--floor")
    assert code == 0
    plan = answer["plan"]
    # 4 write units a sharded add: 400,000 units/s; a partition takes 1,000 -> 400 shards of
    # 250 adds/s. A table's default quota (40,000 units/s) takes 10,000 adds/s, and a counter
    # lives in one table: 10 counters (of 64 shards, the power of two above 40) in 10 tables.
    # Client: 100,000 / 2,600 -> 39 processes, 100,000 / 2,000 -> 50. $: 4 x $0.625.
    assert plan == {
        "adds_per_second": 100000.0,
        "write_units_per_second": 400000.0,
        "shards": 400,
        "counters": 10,
        "shards_per_counter": 64,
        "tables": 10,
        "client_processes": [39, 50],
        "usd_per_million_adds": 2.5,
        "steps": plan["steps"],
    }
    steps = " ".join(plan["steps"])
    for limit in (
        "a partition takes 1,000",
        "warm throughput (4,000 write units/s)",
        "default quota (40,000 write units/s)",
        "at most 99 shards",
        "at most 100 items",
        "~2,000-2,600 adds/s",
    ):
        assert limit in steps, limit
    assert (answer["strategy"], answer["options"]) == (
        "sharded",
        {"shards": 64, "marker_ttl": 3600},
    )
    assert "split the stock over 10 counters of 64 shards" in answer["warning"]


def test_the_plan_at_10000_adds_per_second_fills_one_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, answer = _advise(capsys, "--adds-per-second", "10000")
    plan = answer["plan"]
    # 40,000 write units/s: 40 shards, one table at all of its default quota (said so), 4 to 5
    # client processes.
    assert (plan["shards"], plan["counters"], plan["tables"]) == (40, 1, 1)
    assert plan["client_processes"] == [4, 5]
    assert any("100% of a table's default quota" in step for step in plan["steps"])
    assert (code, answer["options"]) == (0, {"shards": 64})


def test_every_answer_states_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--adds-per-second", "100000"]) == 0
    out = capsys.readouterr().out
    assert "plan at 100,000 adds/s: sharded, 10 counters of 64 shards, 10 tables" in out
    limits = out[out.index("limits on AWS") :]
    for figure in ("1,000 write units/s", "3,000 read units/s", "4,000", "40,000", "99 shards"):
        assert figure in limits, figure


@pytest.mark.parametrize(
    "argv",
    [
        ["--window", "1h", "--floor"],
        ["--window", "forever", "--floor"],
        ["--window", "1h", "--rate", "2000"],
        ["--idempotent"],
    ],
)
def test_the_create_command_printed_is_one_the_cli_takes(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """advise once printed marker_ttl=1h, which `counter create --marker-ttl` refused."""
    from dynamodb_counters.cli import build_parser

    _, answer = _advise(capsys, *argv)
    command = answer["create"].split()
    assert command[:3] == ["dynamodb-counters", "counter", "create"]
    args = build_parser().parse_args([*command[1:3], "seats", *command[4:]])
    assert args.strategy == answer["strategy"]
    for name, value in answer["options"].items():
        assert float(getattr(args, name)) == value


def test_the_sharded_cost_line_names_the_survey_it_sends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sharded surveys with one eventually consistent BatchGetItem; a snapshot only refuses."""
    _, answer = _advise(capsys, "--rate", "2000")
    assert "eventually consistent BatchGetItem, half a read unit each" in answer["units"]
    assert "a refusal reads them consistently (TransactGetItems" in answer["units"]


def test_a_plan_names_one_client_process_once(capsys: pytest.CaptureFixture[str]) -> None:
    """At 2,000 adds/s the plan said "1-1 client processes"."""
    assert main(["advise", "--idempotent", "--floor", "--rate", "2000", "--window", "1h"]) == 0
    out = capsys.readouterr().out
    assert "1-1" not in out
    assert ", 1 table, 1 client process, $2.50 per million adds" in out
    assert "  - 1 client process (one Python process drives ~2,000-2,600 adds/s)" in out
    _, answer = _advise(capsys, "--adds-per-second", "5000")
    assert answer["plan"]["client_processes"] == [2, 3]
    assert answer["plan"]["steps"][-1].startswith("2-3 client processes (one Python")
