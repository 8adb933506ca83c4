"""The bench stops when told, whatever the endpoint does, and keeps what it finished.

Every test runs ``dynamodb-counters bench`` as a subprocess, against DynamoDB Local behind a
proxy that stops answering in the middle of the run (a socket that accepts and never answers),
or against an engine of its own that is paused with SIGSTOP, or that dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _hang import FreezingProxy, wait_for
from dynamodb_counters.local import DynamoDBLocal


#: Ctrl-C must stop the bench within 5 s; the margin is for a loaded 2-core machine, and
#: grows with the load the test run itself puts on it (several workers, each with an engine).
def stop_within() -> float:
    return 5.0 + 1.5 * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


ATOMIC_THEN_MARKER = ("--strategies=atomic,marker", "--workers=2", "--ops=20", "--rounds=1")


def _bench(endpoint: str, *extra: str, processes: bool = False) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-m",
        "dynamodb_counters",
        "bench",
        f"--endpoint-url={endpoint}",
        "--quiet",
        *extra,
    ]
    if processes:
        argv.append("--processes")
    # A session of its own: the test sends Ctrl-C to the whole group, as a terminal does.
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def _reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Whatever the test finds, nothing it started is left running."""
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def _interrupt(process: subprocess.Popen[str], how: str) -> tuple[int, float, list[str]]:
    """Send Ctrl-C (to the process group) or SIGTERM (to the bench alone); returns the exit
    code, the seconds it took and the lines on stderr."""
    started = time.monotonic()
    if how == "SIGINT":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - started, ["still running 30 s after the signal"]
    return process.returncode, time.monotonic() - started, err.splitlines()


def _assert_stopped(result: tuple[int, float, list[str]], process: subprocess.Popen[str]) -> None:
    code, seconds, lines = result
    assert code == 130, (code, seconds, lines)
    # One line; it names what the endpoint's silence kept the cleanup from deleting.
    assert len(lines) == 1 and lines[0].startswith("dynamodb-counters: error: interrupted"), lines
    assert seconds < stop_within(), (seconds, lines)
    # No worker process outlives the bench.
    assert wait_for(lambda: not _group_alive(process.pid), 2.0)


#: How the workers run: threads, processes, or asyncio tasks (``--async``).
WORKERS = {"threads": (), "processes": ("--processes",), "tasks": ("--async",)}


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("workers", list(WORKERS))
def test_a_signal_stops_a_bench_whose_endpoint_never_answers(
    ddb: DynamoDBLocal, workers: str, how: str
) -> None:
    with FreezingProxy(ddb.endpoint_url, requests=60) as proxy:
        bench = _bench(
            proxy.url, "--strategies=marker", "--workers=2", "--ops=5000", *WORKERS[workers]
        )
        with _reaped(bench):
            assert wait_for(proxy.frozen.is_set, 60), (proxy.requests, bench.poll())
            time.sleep(0.5)  # every worker is now waiting for an answer that never comes
            assert bench.poll() is None
            _assert_stopped(_interrupt(bench, how), bench)


@pytest.fixture
def own_engine() -> Iterator[DynamoDBLocal]:
    """An engine of the test's own, to pause; always resumed and stopped at the end."""
    engine = DynamoDBLocal().start()
    process: Any = engine._process
    try:
        yield engine
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        engine.stop()


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_ctrl_c_stops_a_bench_whose_engine_is_paused(
    own_engine: DynamoDBLocal, processes: bool
) -> None:
    java: Any = own_engine._process
    with FreezingProxy(own_engine.endpoint_url) as counting:
        bench = _bench(
            counting.url, "--strategies=atomic", "--workers=2", "--ops=20000", processes=processes
        )
        with _reaped(bench):
            assert wait_for(lambda: counting.requests >= 60, 60), bench.poll()
            os.kill(java.pid, signal.SIGSTOP)
            time.sleep(0.5)
            assert bench.poll() is None
            _assert_stopped(_interrupt(bench, "SIGINT"), bench)


def _java_child(pid: int) -> int | None:
    """The pid of ``pid``'s Java child (its embedded engine), once started."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "java":
                    return int(child)
    return None


def test_ctrl_c_stops_a_bench_whose_own_engine_is_paused() -> None:
    """Issue 18, item 9: with the bench's own embedded engine paused, Ctrl-C took over 10 s
    (stop() waited that long for a SIGTERM a stopped process cannot act on)."""
    argv = [sys.executable, "-m", "dynamodb_counters", "bench", "--quiet", "--strategies=atomic"]
    bench = subprocess.Popen(
        [*argv, "--workers=2", "--ops=20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    with _reaped(bench):
        assert wait_for(lambda: _java_child(bench.pid) is not None, 60), bench.poll()
        java = _java_child(bench.pid)
        assert java is not None
        argv = Path(f"/proc/{java}/cmdline").read_bytes().decode().split("\0")
        engine = DynamoDBLocal(port=int(argv[argv.index("-port") + 1]))  # to ask it, not run it
        client = engine.client(retries={"total_max_attempts": 1}, read_timeout=2)

        def bench_table_made() -> bool:
            with contextlib.suppress(Exception):
                return bool(client.list_tables()["TableNames"])
            return False

        assert wait_for(bench_table_made, 60), bench.poll()
        time.sleep(1.0)  # the workers are adding
        os.kill(java, signal.SIGSTOP)
        time.sleep(0.5)
        assert bench.poll() is None
        stopped = _interrupt(bench, "SIGINT")
        _assert_stopped(stopped, bench)
        # The old stop() waited 10 s for Java to act on SIGTERM before killing it: under
        # that, whatever the load, it was not that wait.
        assert stopped[1] < 10.0, stopped
        assert (
            not Path(f"/proc/{java}").exists()
            or "State:\tZ" in Path(f"/proc/{java}/status").read_text()
        )


# -- what a stopped bench keeps --------------------------------------------------------------


def _outputs(tmp_path: Path) -> tuple[str, str]:
    return f"--json={tmp_path / 'results.json'}", f"--report={tmp_path / 'report'}"


def _partial_results(tmp_path: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    assert results["partial"] is True
    assert [r["name"] for r in results["strategies"]] == ["atomic"]
    atomic = results["strategies"][0]
    assert atomic["counts"]["attempted"] == 40
    assert atomic["counts"]["acknowledged"] == 40
    assert atomic["ledger"]["drift"] == 0
    assert results["run"]["finished_targets"] == ["atomic"]
    assert results["run"]["unfinished_targets"] == ["marker"]
    return results


def _assert_partial_report(tmp_path: Path) -> None:
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<title>dynamodb-counters bench report (partial)</title>" in page
    assert "<b>Partial results.</b>" in page
    assert "Not finished: marker." in page
    assert "<td>atomic</td>" in page and "<td>marker</td>" not in page


def test_a_bench_whose_endpoint_dies_is_out_fast_and_keeps_what_it_finished(
    ddb: DynamoDBLocal, tmp_path: Path
) -> None:
    # With --rounds=1, atomic takes about 65 requests with the table's set-up, its monitor
    # and its final value() read; the whole run about 126: marker dies half way.
    with FreezingProxy(ddb.endpoint_url, requests=95, die=True) as proxy:
        bench = _bench(proxy.url, *ATOMIC_THEN_MARKER, *_outputs(tmp_path))
        with _reaped(bench):
            assert wait_for(proxy.frozen.is_set, 60), proxy.requests
            died = time.monotonic()
            # Out fast: what finished is saved at once (then the report is drawn).
            assert wait_for((tmp_path / "results.json").exists, stop_within())
            assert time.monotonic() - died < stop_within()
            _, err = bench.communicate(timeout=120)
    lines = err.splitlines()
    assert bench.returncode == 1, lines
    assert len(lines) == 1 and lines[0].startswith("dynamodb-counters: error: cannot reach")
    results = _partial_results(tmp_path)
    assert results["run"]["stopped_by"].startswith("cannot reach")
    _assert_partial_report(tmp_path)


def test_ctrl_c_keeps_the_targets_that_finished(ddb: DynamoDBLocal, tmp_path: Path) -> None:
    with FreezingProxy(ddb.endpoint_url, requests=95) as proxy:
        bench = _bench(proxy.url, *ATOMIC_THEN_MARKER, *_outputs(tmp_path))
        with _reaped(bench):
            assert wait_for(proxy.frozen.is_set, 60), proxy.requests
            time.sleep(0.3)
            stopped = _interrupt(bench, "SIGINT")
            _assert_stopped(stopped, bench)
    results = _partial_results(tmp_path)
    assert results["run"]["stopped_by"] == "interrupted"
    # The report too, unless drawing it would have kept Ctrl-C waiting (a loaded machine):
    # then the one line says so, and the JSON has the figures.
    if "no report: no time to draw it" not in stopped[2][0]:
        _assert_partial_report(tmp_path)
