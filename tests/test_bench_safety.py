"""The bench changes nothing it did not create, shares an endpoint safely, writes its files
safely and records no secret."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from conftest import new_table_name, scan_all
from dynamodb_counters import CounterStore
from dynamodb_counters.bench import Backend, BenchOptions, Mix, run_bench
from dynamodb_counters.bench import cli as bench_cli
from dynamodb_counters.bench.runner import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Bench,
    BenchFailed,
    BenchInterrupted,
    Connection,
    ExistingTable,
    redact,
)
from dynamodb_counters.bench.workload import AppRetry, Op, Worker
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.report import CONTENT_SECURITY_POLICY, render_html, write_report
from dynamodb_counters.report.schema import BenchResults
from dynamodb_counters.results import AddResult

# Its module-scoped fixtures are built once: every test of the file runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("test_bench_safety")


def _bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments_bench(parser)
    return parser.parse_args(list(argv))


def _neighbour(client: Any) -> dict[str, Any]:
    """Someone else's counter, under the name the bench used to give its own."""
    layout = CounterStore(client, "any-table").layout
    return {**layout.counter_key("bench#atomic#1"), layout.value_attribute: {"N": "42"}}


def _neighbour_table(client: Any) -> str:
    """A table that is not the bench's, holding one item (and TTL off, as its owner left it)."""
    name = new_table_name("neighbour")
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=name, Item=_neighbour(client))
    return name


def _tables(client: Any) -> set[str]:
    return set(client.list_tables(Limit=100)["TableNames"])


# -- never stuck, never retrying once stopped -----------------------------------------------------


def test_every_bench_client_has_connect_and_read_timeouts() -> None:
    connection = Connection("endpoint", "http://127.0.0.1:1", "us-east-1", True)
    config = connection.client()._client_config
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
    assert (CONNECT_TIMEOUT, READ_TIMEOUT) == (5.0, 10.0)


def test_a_stopped_worker_does_not_retry_a_request_that_hangs() -> None:
    stop = threading.Event()
    calls = 0

    def hanging(amount: int, request_id: str | None) -> AddResult:
        nonlocal calls
        calls += 1
        stop.set()  # Ctrl-C arrives while this request waits for its answer
        raise ReadTimeoutError(endpoint_url="http://x")

    worker = Worker(hanging, idempotent=True, retry=AppRetry("same-id", limit=3), stop=stop)
    out = worker.run([Op("r1", 1, duplicate=False), Op("r2", 1, duplicate=False)])
    assert calls == 1
    assert (out.attempted, out.app_retries, out.acknowledged) == (1, 0, 0)
    assert dict(out.errors) == {"ReadTimeoutError": 1}


# -- tables and counters that are not the bench's ------------------------------------------


def test_the_bench_refuses_a_table_it_did_not_create(
    ddb: DynamoDBLocal, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _neighbour_table(client)
    args = _bench_args(
        "--strategies=atomic", "--workers=1", "--ops=3", "--quiet",
        f"--endpoint-url={ddb.endpoint_url}", f"--table={table}",
    )  # fmt: skip
    assert bench_cli.run_bench(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"dynamodb-counters: error: table {table!r} already exists")
    assert "--use-existing-table" in err[0]
    # Untouched: the same one item, and TTL still off.
    assert scan_all(client, table) == [_neighbour(client)]
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    client.delete_table(TableName=table)


def test_in_an_existing_table_the_bench_deletes_only_its_own_counters(
    ddb: DynamoDBLocal, client: Any
) -> None:
    table = _neighbour_table(client)
    backend = Backend(endpoint_url=ddb.endpoint_url, table=table, use_existing_table=True)
    options = BenchOptions(
        strategies=("atomic", "marker", "collection"),
        workers=2,
        ops=5,
        seed=1,
        compare_raw=True,
        backend=backend,
    )
    results = run_bench(options)
    counters = {r["name"]: r["counter"] for r in results["strategies"]}
    run_id = results["run"]["run_id"]
    assert counters["atomic"] == f"bench#{run_id}#atomic" != "bench#atomic#1"
    baseline = results["baseline"]
    assert baseline is not None and baseline["counter"] == f"bench#{run_id}#raw-boto3"
    for row in results["strategies"]:
        assert row["ledger"]["drift"] == 0
    # The table and the neighbour's counter are there, exactly as before; nothing of the bench is.
    assert table in _tables(client)
    assert scan_all(client, table) == [_neighbour(client)]
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    client.delete_table(TableName=table)


def test_a_table_created_by_someone_else_after_the_check_is_not_deleted(
    ddb: DynamoDBLocal, client: Any
) -> None:
    table = new_table_name("raced")
    for use_existing in (False, True):
        backend = Backend(
            endpoint_url=ddb.endpoint_url, table=table, use_existing_table=use_existing
        )
        options = BenchOptions(strategies=("atomic",), workers=1, ops=3, backend=backend)
        connection = Connection("endpoint", ddb.endpoint_url, "us-east-1", True)
        bench = Bench(options, connection)

        def neighbour_creates_it_first(**_: Any) -> None:
            # Between the bench's check (no such table) and its CreateTable.
            if table not in _tables(client):
                CounterStore(client, table).ensure_table()
                client.put_item(TableName=table, Item=_neighbour(client))

        bench.observer.meta.events.register(
            "before-call.dynamodb.CreateTable", neighbour_creates_it_first
        )
        if use_existing:
            results = bench.run()
            assert results["strategies"][0]["ledger"]["drift"] == 0
        else:
            with pytest.raises(BenchFailed) as failed:
                bench.run()
            assert isinstance(failed.value.cause, ExistingTable)
            assert failed.value.results["partial"] is True
        assert bench.created_table is False
        assert table in _tables(client), use_existing
        assert scan_all(client, table) == [_neighbour(client)]
        client.delete_table(TableName=table)


@pytest.mark.parametrize("stop", ["error", "ctrl-c", "ctrl-c-during-create-table"])
def test_a_set_up_that_fails_after_create_table_deletes_the_table(
    ddb: DynamoDBLocal, client: Any, stop: str
) -> None:
    """Issue 18, item 8: the table was left behind, named nowhere."""
    from dynamodb_counters.faults import _error_response

    options = BenchOptions(
        strategies=("atomic",), workers=1, ops=3, backend=Backend(endpoint_url=ddb.endpoint_url)
    )
    bench = Bench(options, Connection("endpoint", ddb.endpoint_url, "us-east-1", True))

    def after_create_table(request: Any, **_: Any) -> Any:  # the next request: TTL on
        if stop == "ctrl-c":
            raise KeyboardInterrupt
        return _error_response(request.url, "AccessDeniedException", "not allowed (test)")

    def during_create_table(request: Any, **_: Any) -> Any:  # created; the answer never seen
        URLLib3Session().send(request)
        raise KeyboardInterrupt

    during = stop == "ctrl-c-during-create-table"
    bench.observer.meta.events.register(
        "before-send.dynamodb." + ("CreateTable" if during else "UpdateTimeToLive"),
        during_create_table if during else after_create_table,
    )
    with pytest.raises(BenchFailed if stop == "error" else BenchInterrupted) as stopped:
        bench.run()
    failure = stopped.value
    assert isinstance(failure, BenchFailed | BenchInterrupted)
    assert failure.results["run"]["left_behind"] == []
    assert bench.table not in _tables(client)


def test_concurrent_benches_on_one_endpoint_do_not_interfere(
    ddb: DynamoDBLocal, client: Any
) -> None:
    before = _tables(client)
    options = BenchOptions(
        strategies=("atomic", "marker"),
        workers=2,
        ops=15,
        initial=100,
        mix=Mix(increment_share=0.5),
        seed=1,  # the same seed: once the same table and counter names
        backend=Backend(endpoint_url=ddb.endpoint_url),
    )
    runs: list[BenchResults] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            runs.append(run_bench(options))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    tables = {run["run"]["backend"]["table"] for run in runs}
    assert len(tables) == 2
    assert all(t.startswith("dynamodb-counters-bench-") for t in tables)
    for run in runs:
        for row in run["strategies"]:
            assert row["counts"]["acknowledged"] == 30
            assert row["ledger"]["drift"] == 0, row["ledger"]
    # Each deleted the table it created, and nothing else.
    assert _tables(client) == before


# -- files and secrets -----------------------------------------------------------------------


def test_outputs_replace_a_symlink_instead_of_writing_through_it(
    ddb: DynamoDBLocal, tmp_path: Path
) -> None:
    victim_json, victim_html = tmp_path / "victim.json", tmp_path / "victim.html"
    victim_json.write_text("precious\n")
    victim_html.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").symlink_to(victim_json)
    (out / "index.html").symlink_to(victim_html)
    args = _bench_args(
        "--strategies=atomic", "--workers=1", "--ops=2", "--quiet",
        f"--endpoint-url={ddb.endpoint_url}",
        f"--json={out / 'results.json'}", f"--report={out}",
    )  # fmt: skip
    assert bench_cli.run_bench(args) == 0
    assert victim_json.read_text() == "precious\n"
    assert victim_html.read_text() == "precious\n"
    for name in ("results.json", "index.html"):
        assert not (out / name).is_symlink()
    assert json.loads((out / "results.json").read_text())["strategies"][0]["name"] == "atomic"
    assert (out / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.json"]  # no temp


def test_endpoint_credentials_are_recorded_redacted(ddb: DynamoDBLocal, tmp_path: Path) -> None:
    endpoint = ddb.endpoint_url.replace("http://", "http://AKIDKEY:S3CRET@")
    args = _bench_args(
        "--strategies=atomic", "--workers=1", "--ops=2", "--quiet",
        f"--endpoint-url={endpoint}",
        f"--json={tmp_path / 'results.json'}", f"--report={tmp_path}",
    )  # fmt: skip
    assert bench_cli.run_bench(args) == 0
    text = (tmp_path / "results.json").read_text()
    page = (tmp_path / "index.html").read_text()
    for written in (text, page):
        assert "S3CRET" not in written
        assert "AKIDKEY" not in written
    results = json.loads(text)
    redacted = ddb.endpoint_url.replace("http://", "http://***@")
    assert results["run"]["backend"]["endpoint_url"] == redacted
    assert results["run"]["options"]["backend"]["endpoint_url"] == redacted
    assert redacted in page
    assert redact('failed: "https://a:b@host:1/x" and http://plain') == (
        'failed: "https://***@host:1/x" and http://plain'
    )


@pytest.fixture(scope="module")
def small_run(ddb: DynamoDBLocal) -> BenchResults:
    backend = Backend(endpoint_url=ddb.endpoint_url)
    options = BenchOptions(
        strategies=("atomic", "marker"), workers=1, ops=3, floor=0, compare_raw=True,
        backend=backend,
    )  # fmt: skip
    return run_bench(options)


def test_the_report_has_a_content_security_policy_that_lets_it_render(
    small_run: BenchResults, tmp_path: Path
) -> None:
    results = small_run
    page = render_html(results)
    head = page.split("</head>", 1)[0]
    assert (
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">' in head
    )
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    # What the page uses, the policy allows: inline styles (a <style> and the charts' style
    # attributes) and inline SVG whose links stay inside the page; no script, nothing loaded.
    assert head.count("<style>") == 1
    assert "<svg" in page and 'style="' in page
    assert "<script" not in page and " src=" not in page
    links = re.findall(r'href="([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
    assert links and all(link.startswith("#") for link in links)
    assert write_report(results, tmp_path).read_text() == page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_in_chromium_the_policy_blocks_scripts_and_changes_nothing_visible(
    small_run: BenchResults, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    page = render_html(small_run)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    without = page.replace(meta, "")
    probe = '<script>document.body.setAttribute("data-ran", "yes")</script>'

    def chromium(html: str, *flags: str) -> str:
        path = tmp_path / f"page-{len(list(tmp_path.glob('page-*')))}.html"
        path.write_text(html)
        argv = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",  # its own: tests run side by side
        ]  # fmt: skip
        done = subprocess.run(
            [*argv, *flags, path.as_uri()], capture_output=True, text=True, timeout=120
        )
        return done.stdout

    shots: list[bytes] = []
    for html in (page, without):
        shot = tmp_path / f"shot-{len(shots)}.png"
        # Drawn once everything is laid out and painted (virtual time runs until the page is
        # idle): a screenshot taken mid-paint on a loaded machine differed by 0.3 %.
        chromium(
            html,
            "--window-size=1200,2400",
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=5000",
            f"--screenshot={shot}",
        )
        shots.append(shot.read_bytes())
    # The policy blocks nothing the page uses: it looks the same. A blocked stylesheet changes
    # 46 % of the pixels (measured with style-src 'none'); two renders of one page on a loaded
    # machine once differed by 0.3 % (antialiasing, a paint caught midway): hence 2 %.
    assert _differing_pixels(shots[0], shots[1]) < 0.02
    # ... and it is in force: a script that found its way in does not run.
    assert 'data-ran="yes"' not in chromium(page.replace("<body>", "<body>" + probe), "--dump-dom")
    assert 'data-ran="yes"' in chromium(without.replace("<body>", "<body>" + probe), "--dump-dom")


def _differing_pixels(first: bytes, second: bytes) -> float:
    """The share of pixels that differ between two screenshots of the same size."""
    import io

    from PIL import Image, ImageChops

    one, two = (Image.open(io.BytesIO(shot)).convert("RGB") for shot in (first, second))
    assert one.size == two.size and one.size[0] * one.size[1] > 100_000
    mask = ImageChops.difference(one, two).convert("L").point(lambda v: 255 if v else 0)
    histogram = mask.histogram()
    return histogram[255] / (one.size[0] * one.size[1])
