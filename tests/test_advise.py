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
    assert (code, answer["strategy"], answer["options"]) == (0, "marker", {"marker_ttl": "1h"})
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
    assert (answer["strategy"], answer["options"]) == ("marker", {"marker_ttl": "365d"})
    assert "no strategy remembers request ids forever and enforces a bound" in answer["warning"]


def test_more_than_one_item_takes_asks_for_shards(capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = _advise(capsys, "--idempotent", "--floor", "--rate", "2000", "--window", "1h")
    assert code == 0
    # A sharded add writes a shard and a marker (4 WRU) on a partition that takes ~1,000
    # WRU/s -> ~250 adds/s a shard; 2,000 / 250 = 8. The window is the marker's.
    assert (answer["strategy"], answer["options"]) == ("sharded", {"shards": 8, "marker_ttl": "1h"})
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
    code, answer = _advise(capsys, "--rate", "100000")
    assert (answer["options"], code) == ({"shards": 64}, 0)
    assert "more than 64 shards" in answer["warning"]


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
    assert out[0] == "strategy: marker, marker_ttl=7d"
    assert out[1].startswith("why: a retry within 7 days is recognised by a marker item")
    assert out[2].startswith("cost: $2.500 per million adds")


@pytest.mark.parametrize("window", ["soon", "0", "-1h"])
def test_a_bad_window_is_a_usage_error(window: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["advise", "--window", window])
    assert exited.value.code == 2
    assert "window" in capsys.readouterr().err
