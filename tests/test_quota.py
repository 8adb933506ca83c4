"""Quotas (SPEC section 12): exact windows under concurrency and lost answers, request ids counted
once, denied hits that change nothing, sliding weights -- against DynamoDB Local.

The clock is the tests': the executors answer the steps' ``NOW`` from ``_steps.time``, which the
``clock`` fixture replaces, so every window boundary and weight below is chosen, not met by
chance.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import types
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from _hooks import SendHook, operation_of
from conftest import AWS_LIKE, ENGINES, fresh_client, on_engine, scan_all
from dynamodb_counters import CounterStore, InvalidInput, QuotaDecision
from dynamodb_counters import _steps as steps_module
from dynamodb_counters._io import error_code
from dynamodb_counters.aws_like import AwsLikeState
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.quota import id_digest

HOUR = 3600.0
#: The start of a window of every length used here (a multiple of 3,600 s).
T0 = 1_800_000_000.0


class Clock:
    """The time the executors see; ``set`` it between operations."""

    def __init__(self, now: float) -> None:
        self.now = now

    def set(self, now: float) -> None:
        self.now = now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(T0 + 10.0)
    monkeypatch.setattr(
        steps_module,
        "time",
        types.SimpleNamespace(time=lambda: fake.now, monotonic=time.monotonic, sleep=time.sleep),
    )
    return fake


def window_item(client: Any, table: str, name: str, kind: str, k: int) -> dict[str, Any] | None:
    key = {"pk": {"S": f"{name}#quota#{kind}"}, "sk": {"S": f"quota#{k}"}}
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key=key, ConsistentRead=True
    ).get("Item")
    return item


def count_of(client: Any, table: str, name: str, kind: str, k: int) -> int:
    item = window_item(client, table, name, kind, k)
    return 0 if item is None else int(item["quantity"]["N"])


K0 = int(T0 // HOUR)


# -- fixed windows --------------------------------------------------------------------------


def test_fixed_window_counts_up_to_the_limit_and_tells_when_it_frees(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    quota = api_store.quota("api#t1", limit=3, per=timedelta(hours=1))
    decisions = [quota.hit() for _ in range(3)]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.allowed and not d.duplicate and d.retry_after == 0.0 for d in decisions)
    assert decisions[0].reset_at == T0 + HOUR
    clock.set(T0 + 1000.5)
    denied = quota.hit()
    assert denied == QuotaDecision(
        allowed=False, duplicate=False, remaining=0, reset_at=T0 + HOUR, retry_after=2599.5
    )
    assert quota.remaining() == 0
    assert count_of(client, table, "api#t1", "fixed#3600000", K0) == 3  # the denial changed nothing
    # The next window is a new item: the old one is never read as current.
    clock.set(T0 + HOUR)
    assert quota.remaining() == 3
    assert quota.hit(cost=2).remaining == 1
    assert count_of(client, table, "api#t1", "fixed#3600000", K0) == 3


def test_a_request_id_is_counted_once_and_a_duplicate_says_so(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    quota = api_store.quota("api#t2", limit=5, per=HOUR)
    assert quota.hit(cost=2, request_id="req-1") == QuotaDecision(True, False, 3, T0 + HOUR, 0.0)
    assert quota.hit(request_id="req-2").remaining == 2
    # The same id again, even with another cost: counted already.
    assert quota.hit(cost=2, request_id="req-1") == QuotaDecision(True, True, 2, T0 + HOUR, 0.0)
    item = window_item(client, table, "api#t2", "fixed#3600000", K0)
    assert item is not None
    assert int(item["quantity"]["N"]) == 3
    assert sorted(item["_qids"]["SS"]) == sorted([id_digest("req-1"), id_digest("req-2")])
    # A denied id is not kept: the same id is counted once the limit lets it in.
    assert quota.hit(cost=3, request_id="req-3").allowed is False
    bigger = api_store.quota("api#t2", limit=6, per=HOUR)  # a plan's new limit holds at once
    assert bigger.hit(cost=3, request_id="req-3") == QuotaDecision(True, False, 0, T0 + HOUR, 0.0)
    # The same id in the next window is a new hit.
    clock.set(T0 + HOUR + 1)
    assert bigger.hit(request_id="req-1") == QuotaDecision(True, False, 5, T0 + 2 * HOUR, 0.0)


def test_a_cost_above_the_limit_is_refused_for_ever_and_writes_nothing(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    quota = api_store.quota("api#t3", limit=4, per=HOUR)
    assert quota.hit(cost=5) == QuotaDecision(False, False, 4, T0 + HOUR, math.inf)
    assert window_item(client, table, "api#t3", "fixed#3600000", K0) is None


def test_window_items_carry_the_ttl_and_kinds_never_mix(
    store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    store.counter("api#t4").create(initial=7)  # a counter of the same name stays apart
    for quota in (
        store.quota("api#t4", limit=2, per=HOUR),
        store.quota("api#t4", limit=2, per=2 * HOUR),
        store.quota("api#t4", limit=2, per=HOUR, window="sliding"),
    ):
        assert quota.hit(cost=2).remaining == 0
    item = window_item(client, table, "api#t4", "fixed#3600000", K0)
    assert item is not None and item["expires_at"] == {"N": str(int(T0 + 2 * HOUR))}
    assert count_of(client, table, "api#t4", "fixed#7200000", int(T0 // (2 * HOUR))) == 2
    assert count_of(client, table, "api#t4", "sliding#3600000", K0) == 2
    assert list(store.counters()) == ["api#t4"]
    assert store.counter("api#t4").value() == 7
    # 3 windows, the counter, and the sliding quota's previous window, sealed by its first hit.
    sealed = window_item(client, table, "api#t4", "sliding#3600000", K0 - 1)
    assert sealed is not None and "quantity" not in sealed
    assert sealed["expires_at"] == {"N": str(int(T0 + HOUR))}
    assert len(scan_all(client, table)) == 5


def test_reset_empties_the_current_windows(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    fixed = api_store.quota("api#t5", limit=2, per=HOUR)
    sliding = api_store.quota("api#t5", limit=2, per=HOUR, window="sliding")
    fixed.hit(cost=2)
    sliding.hit(cost=2)
    clock.set(T0 + HOUR + 60)
    assert sliding.remaining() == 0  # ceil(2 * 59/60) = 2 from the previous window
    sliding.reset()
    assert sliding.remaining() == 2
    clock.set(T0 + 10)
    fixed.reset()
    assert fixed.remaining() == 2
    # Left: the (empty) window before the sliding quota's first, sealed, and the one the reset
    # emptied and kept sealed (test_quota_review); TTL takes them.
    left = sorted(item["sk"]["S"] for item in scan_all(client, table))
    assert left == [f"quota#{K0 - 1}", f"quota#{K0}"]


def test_names_and_options_are_checked(store: CounterStore) -> None:
    with pytest.raises(InvalidInput, match="#quota#"):
        store.quota("a#quota#b", limit=1, per=1)
    with pytest.raises(InvalidInput, match="limit"):
        store.quota("a", limit=0, per=1)
    with pytest.raises(InvalidInput, match="window"):
        store.quota("a", limit=1, per=1, window="moving")
    with pytest.raises(InvalidInput, match="milliseconds"):
        store.quota("a", limit=1, per=0.0001)
    with pytest.raises(InvalidInput, match="cost"):
        store.quota("a", limit=1, per=1).hit(cost=0)


def test_a_partition_key_only_table_keeps_quotas_apart_from_counters(
    client: Any, clock: Clock
) -> None:
    name = "pk-only-quota"
    store = CounterStore(client, name, sort_key=None)
    store.ensure_table()
    try:
        store.counter("c").create()
        assert store.quota("c", limit=1, per=HOUR).hit().allowed
        assert list(store.counters()) == ["c"]
        item = client.get_item(
            TableName=name, Key={"pk": {"S": f"c#quota#fixed#3600000#{K0}"}}, ConsistentRead=True
        )["Item"]
        assert item["quantity"] == {"N": "1"}
        with pytest.raises(InvalidInput, match="#quota#"):
            store.counter(f"c#quota#fixed#3600000#{K0}").create()
    finally:
        client.delete_table(TableName=name)


# -- sliding windows ------------------------------------------------------------------------


def test_sliding_window_weighs_the_previous_window_by_its_overlap(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    per = 100.0
    start = T0 + per  # window k (T0 is a multiple of 100 s)
    quota = api_store.quota("api#s1", limit=10, per=per, window="sliding")
    clock.set(T0 + 5)
    assert quota.hit(cost=10).remaining == 0  # the previous window: 10
    clock.set(start + 30)  # 70 % of the previous window still overlaps: ceil(7.0) = 7
    assert quota.remaining() == 3
    assert [quota.hit().allowed for _ in range(4)] == [True, True, True, False]
    denied = quota.hit()
    # Room for one more once ceil(10 * w) <= 6, i.e. at 40 % into the window.
    assert denied.allowed is False
    assert denied.retry_after == pytest.approx(10.0, abs=1e-9)
    assert denied.reset_at == start + per
    clock.set(start + 40)
    assert quota.hit().allowed
    clock.set(start + 40.5)  # 5.95 rounds up to 6: still full
    assert quota.hit().allowed is False
    # Rounded up, the weighted sum never exceeds the limit: 4 now + 10 * 0.595 = 9.95.
    kind = "sliding#100000"
    assert count_of(client, table, "api#s1", kind, int(start // per)) == 4
    # A cost that does not fit this window waits for the next one, where this window's 4 fade.
    clock.set(start + 90)
    assert quota.hit(cost=7).retry_after == pytest.approx(10.0 + per * (1 - 3 / 4), abs=1e-9)


def test_a_hit_of_a_window_already_weighed_counts_in_the_next_one(
    api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    """Once a hit of window k weighed window k-1's count, no hit lands in k-1 any more (a hit
    whose clock lags, or a slow send): it would raise a weight already used."""
    quota = api_store.quota("api#s2", limit=10, per=HOUR, window="sliding")
    clock.set(T0 - 10)
    assert quota.hit(cost=5).allowed  # window K0 - 1
    clock.set(T0 + 1)
    assert quota.hit().remaining == 4  # K0: 1 + ceil(5 * 3599/3600) = 6
    clock.set(T0 - 5)  # a hit that still sees window K0 - 1
    late = quota.hit(cost=3)
    assert late.allowed and late.reset_at == T0 + HOUR  # counted in K0, weighed as at its start
    assert late.remaining == 10 - 4 - 5
    kind = "sliding#3600000"
    assert count_of(client, table, "api#s2", kind, K0 - 1) == 5
    assert count_of(client, table, "api#s2", kind, K0) == 4


def test_a_hit_whose_way_outlasts_several_windows_counts_in_the_window_of_now(
    ddb: DynamoDBLocal, api_store: CounterStore, client: Any, table: str, clock: Clock
) -> None:
    """Each of this hit's sends takes two windows (throttles and botocore's backoff, on 1-s
    windows, take seconds): a hit that moved one window a try chased the clock and gave up
    with ContentionError after 8 sealed windows (seen in the api-quota bench); it counts in
    the window of now."""
    them = api_store.quota("api#s3", limit=10, per=HOUR, window="sliding")
    for j in range(1, 13):  # windows K0 .. K0 + 11 sealed, K0 + 12 holds one hit
        clock.set(T0 + j * HOUR + 1)
        assert them.hit().allowed
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#s3", limit=10, per=HOUR, window="sliding")

    def slow(request: Any, **_: Any) -> None:
        if b"ADD" in bytes(request.body or b""):  # a hit, not a seal
            clock.set(clock.now + 2 * HOUR)

    own.meta.events.register("before-send.dynamodb.UpdateItem", slow)
    clock.set(T0 + 10)
    decision = quota.hit(cost=2)
    assert (decision.allowed, decision.reset_at) == (True, T0 + 13 * HOUR)
    kind = "sliding#3600000"
    assert count_of(client, table, "api#s3", kind, K0 + 12) == 3
    held = [window_item(client, table, "api#s3", kind, K0 + j) or {} for j in range(12)]
    assert [int(item.get("quantity", {"N": "0"})["N"]) for item in held] == [0] + [1] * 11


# -- exact under concurrency and lost answers -----------------------------------------------


#: What a throttled hit raises once botocore's re-sends are spent (AWS-like): nothing applied.
THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException"}
#: The suites' AWS-like engine with a quarter of its partition budget: 8 threads' ~100 hits (a
#: write unit each, refused ones too) take ~4 s at 25 units/s, ~1 s unthrottled: throttled.
TIGHT = replace(AWS_LIKE, write_limit=25.0)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("window", ["fixed", "sliding"])
def test_eight_threads_never_get_more_than_the_limit(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, window: str, engine: str
) -> None:
    """AWS-like too: writes in flight, and a partition's budget (:data:`TIGHT`) the hits go
    over; a hit throttled past botocore's re-sends is sent again by its thread with the same
    id, as an application would."""
    store = CounterStore(client, table)
    state = AwsLikeState(TIGHT)
    if engine == "aws-like":
        own = fresh_client(ddb)
        FaultInjector(own, FaultPlan(aws_like=TIGHT), aws_state=state).attach()
        store = CounterStore(own, table)
    limit = 37
    if window == "sliding":
        clock.set(T0 - HOUR / 2)
        assert store.quota("api#c", limit=limit, per=HOUR, window=window).hit(cost=20).allowed
        clock.set(T0 + HOUR / 4)  # ceil(20 * 0.75) = 15 of the previous window count
    quota = store.quota("api#c", limit=limit, per=HOUR, window=window)
    granted: list[tuple[int, QuotaDecision]] = []
    lock = threading.Lock()

    gave_up: list[str] = []

    def worker(i: int) -> None:
        for j in range(12):
            cost = 1 + (i + j) % 2
            for attempt in range(30):
                try:
                    decision = quota.hit(cost=cost, request_id=f"w{i}-{j}")
                    break
                except ClientError as exc:
                    assert engine == "aws-like" and error_code(exc) in THROTTLED, exc
                    time.sleep(min(0.4, 0.05 * (attempt + 1)))  # the partition refills
            else:
                gave_up.append(f"w{i}-{j}")
                continue
            if decision.allowed:
                with lock:
                    granted.append((cost, decision))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gave_up == []
    if engine == "aws-like":  # ~100 write units at once on one partition of 25 units/s
        assert state.stats["throttles"] > 0
    room = limit if window == "fixed" else limit - 15
    counted = count_of(client, table, "api#c", f"{window}#3600000", K0)
    assert counted == sum(cost for cost, _ in granted)
    assert room - 1 <= counted <= room  # costs 1 and 2: a last unit may stay free
    item = window_item(client, table, "api#c", f"{window}#3600000", K0)
    assert item is not None and len(item["_qids"]["SS"]) == len(granted)
    assert not any(d.duplicate for _, d in granted)
    assert min(d.remaining for _, d in granted) == room - counted


class LoseAnswers(SendHook):
    """The first ``times`` UpdateItem requests reach the table, ``meanwhile`` runs after the
    first, and each answer is lost (botocore re-sends up to 2 times, then the library)."""

    def __init__(self, client: Any, times: int, meanwhile: Any = None) -> None:
        self.client, self.times, self.meanwhile = client, times, meanwhile
        self.lost = 0
        self._http = URLLib3Session()

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != "UpdateItem" or self.lost >= self.times:
            return None
        self._http.send(request)
        self.lost += 1
        if self.lost == 1 and self.meanwhile is not None:
            self.meanwhile()
        raise ReadTimeoutError(endpoint_url=request.url)


def engine_on(client: Any, engine: str) -> contextlib.AbstractContextManager[Any]:
    """The test's engine below ``client``'s sends, entered after a :class:`LoseAnswers` (whose
    hook then runs first: the lost sends reach the table directly, the re-sends the engine)."""
    if engine == "plain":
        return contextlib.nullcontext()
    return FaultInjector(client, on_engine(FaultPlan(), engine))


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("lost", [1, 3])
def test_a_lost_answer_is_counted_once(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, lost: int, engine: str
) -> None:
    """1: botocore's re-send finds the id; 3: botocore gives up and the library sends again."""
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#l", limit=5, per=HOUR)
    with LoseAnswers(own, lost) as hook, engine_on(own, engine):
        decision = quota.hit(cost=2, request_id="req-9")
    assert hook.lost == lost
    assert decision == QuotaDecision(True, False, 3, T0 + HOUR, 0.0)
    assert count_of(client, table, "api#l", "fixed#3600000", K0) == 2


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_lost_answer_followed_by_another_hit_says_duplicate(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, engine: str
) -> None:
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#l2", limit=5, per=HOUR)
    other = CounterStore(client, table).quota("api#l2", limit=5, per=HOUR)
    meanwhile = LoseAnswers(own, 1, meanwhile=lambda: other.hit(request_id="req-b"))
    with meanwhile, engine_on(own, engine):
        decision = quota.hit(cost=2, request_id="req-a")
    assert decision == QuotaDecision(True, True, 2, T0 + HOUR, 0.0)
    assert count_of(client, table, "api#l2", "fixed#3600000", K0) == 3


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_without_a_request_id_a_lost_answer_only_ever_refuses_early(
    ddb: DynamoDBLocal, client: Any, table: str, clock: Clock, engine: str
) -> None:
    own = fresh_client(ddb)
    quota = CounterStore(own, table).quota("api#l3", limit=5, per=HOUR)
    with LoseAnswers(own, 1), engine_on(own, engine):
        decision = quota.hit(cost=2)
    # botocore's re-send is counted again: 4 of 5 taken for one hit of 2, never more than 5.
    assert decision == QuotaDecision(True, False, 1, T0 + HOUR, 0.0)
    assert quota.hit(cost=2).allowed is False


# -- the bench's scenario -------------------------------------------------------------------


def test_bench_api_quota_through_the_cli(ddb: DynamoDBLocal, tmp_path: Any) -> None:
    """``bench --scenario api-quota``, AWS-like by default: both window types, a partition's
    budget the clients go over (throttled), never above the limit, the items hold exactly what
    was granted; the figures are in the results document and its report."""
    import json
    import os
    import subprocess
    import sys

    from dynamodb_counters.report.schema import SCHEMA, read_results

    out, report = tmp_path / "quota.json", tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynamodb_counters",
            "bench",
            "--scenario",
            "api-quota",
            "--workers",
            "4",
            "--ops",
            "15",
            "--item-write-limit",
            "20",
            "--endpoint-url",
            ddb.endpoint_url,
            "--region",
            "us-east-1",
            "--json",
            str(out),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert document["schema"] == SCHEMA and document["scenario"] == "api-quota"
    quota = read_results(document)["api_quota"]
    assert quota["engine"] == "aws-like" and quota["write_limit_per_partition"] == 20.0
    assert quota["all_exact"] is True
    rows = quota["rows"]
    assert [row["window"] for row in rows] == ["fixed", "sliding"]
    for row in rows:
        # Every hit answered (a failed one sent again with its id), none given up.
        assert row["hits"] == 60 and row["hits_given_up"] == 0 and row["failures"] == []
        assert 0 < row["max_granted_in_a_window"] <= row["limit"] == 50
        assert row["windows_over_the_limit"] == 0 and row["stored_equals_granted"]
        assert row["windows_checked"] == row["windows"] and row["windows_stored_otherwise"] == []
        # 60 hits of >= 1 write unit on one partition of 20 units/s (and its burst of 20):
        # the engine throttled some.
        assert row["throttled_requests"] > 0
        assert row["write_units_per_hit"] >= 1.0 and row["usd_per_million_hits"] > 0
    assert "api-quota: 50 per 1 s" in done.stdout and "aws-like, 20 write units/s" in done.stdout
    page = (report / "index.html").read_text()
    assert "API quota: many clients against one quota" in page and "sliding" in page


def test_the_report_shows_a_window_over_its_limit() -> None:
    """The api-quota section of the HTML report, from a results document: a row that granted
    above its limit or whose item holds other than what was granted says so."""
    from datetime import UTC, datetime

    from dynamodb_counters.bench.quota import results_document, section
    from dynamodb_counters.report import render_html
    from dynamodb_counters.report.schema import ApiQuotaRow, read_results

    def row(window: str, over: int, exact: bool) -> ApiQuotaRow:
        return {
            "window": window, "limit": 50, "per_s": 1.0, "workers": 4, "hits": 60,
            "granted": 55, "windows": 2, "max_granted_in_a_window": 50 + over,
            "windows_over_the_limit": over, "stored_equals_granted": exact,
            "windows_checked": 2, "hits_per_s": 123.4, "p50_ms": 5.0, "p99_ms": 987.6,
            "write_units_per_hit": 1.05, "read_units_per_hit": 0.0,
            "usd_per_million_hits": 0.656, "throttled_requests": 17, "conflicts": 0,
            "errors_reaching_clients": {"ProvisionedThroughputExceededException": 2},
            "hits_given_up": 0, "failures": [], "windows_stored_otherwise": [],
        }  # fmt: skip

    rows = [row("fixed", 0, True), row("sliding", 1, False)]
    quota = section(rows, None, ops=15, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert quota["all_exact"] is False and quota["engine"] == "plain"
    document = results_document(
        quota, seconds=1.0, backend={"kind": "dynamodb-local"}, prices=(0.625, 0.125)
    )
    page = render_html(read_results(document))
    assert "an API quota under many clients" in page and "engine: plain" in page
    assert "<td>fixed</td><td>123.4</td><td>987.6</td><td>50 / 50</td>" in page
    over = '<td>51 / 50</td><td><span class="drift">1</span></td><td><span class="drift">NO'
    assert over in page
    assert "<td>17</td><td>2 (0 given up)</td><td>1.05</td><td>0.656</td>" in page


def test_bench_api_quota_plain_and_its_flags() -> None:
    """``--plain``: DynamoDB Local as it is (no throttles); AWS-like flags refused there."""
    import argparse

    from dynamodb_counters.bench.cli import add_arguments_bench, api_quota_model
    from dynamodb_counters.bench.quota import AWS_LIKE_WRITE_LIMIT

    parser = argparse.ArgumentParser()
    add_arguments_bench(parser)
    model = api_quota_model(parser.parse_args(["--scenario", "api-quota"]))
    assert model is not None and model.write_limit == AWS_LIKE_WRITE_LIMIT
    model = api_quota_model(parser.parse_args(["--scenario", "api-quota", "--partitions", "4"]))
    assert model is not None and model.partitions == 4
    assert api_quota_model(parser.parse_args(["--scenario", "api-quota", "--plain"])) is None
    for extra in (["--partitions", "4"], ["--item-write-limit", "5"]):
        with pytest.raises(InvalidInput):
            api_quota_model(parser.parse_args(["--scenario", "api-quota", "--plain", *extra]))


# -- the steps alone (no I/O) ---------------------------------------------------------------


def test_the_steps_round_the_weight_up_natively_and_down_for_limits() -> None:
    """``strict`` (the native quota) rounds the previous window's weight up, so the weighted
    sum never passes the limit; ``limits`` defines its counter with the weight rounded down."""
    from dynamodb_counters._keys import Layout
    from dynamodb_counters.quota import QuotaCore

    layout = Layout("t-1", "pk", "sk", "quantity", "#counter", "expires_at")
    native = QuotaCore(layout, "q", limit=10, per=100, window="sliding")
    lenient = QuotaCore(layout, "q", limit=10, per=100, window="sliding", strict=False)
    k = int(T0 // 100)
    now = T0 + 25  # 75 % of the previous window overlaps: 8 * 0.75 = 6
    assert native.weighted(8, now, k) == lenient.weighted(8, now, k) == 6
    now = T0 + 30  # 5.6
    assert (native.weighted(8, now, k), lenient.weighted(8, now, k)) == (6, 5)
    # 3 counted, a hit of 1: the native quota waits until 8w <= 6 (at 25 %: already), limits
    # until 8w < 7 (already too); with 5 counted: 8w <= 4 at 50 %, 8w < 5 at 37.5 %.
    assert native.retry_after(now, k, 5, 8, 1) == pytest.approx(20.0, abs=1e-9)
    # (8w < 5 is strict: the first time it holds is a step past 37.5 %, test_quota_review.)
    assert lenient.retry_after(now, k, 5, 8, 1) == pytest.approx(7.5, abs=1e-5)
    assert native.retry_after(now, k, 3, 8, 1) == 0.0
    assert native.retry_after(now, k, 3, 8, 11) == math.inf
    fixed = QuotaCore(layout, "q", limit=10, per=100)
    assert fixed.weighted(8, now, k) == 0 and fixed.retry_after(now, k, 10, 0, 1) == 70.0
