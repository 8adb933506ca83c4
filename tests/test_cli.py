"""The command line, through its real entry point (a subprocess), against DynamoDB Local."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from conftest import new_table_name
from dynamodb_counters import STRATEGIES, CounterStore
from dynamodb_counters.local import DynamoDBLocal


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynamodb_counters", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dynamodb-counters: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def target(ddb: DynamoDBLocal, client: Any) -> list[str]:
    table = new_table_name("cli")
    CounterStore(client, table).ensure_table()
    return ["--endpoint-url", ddb.endpoint_url, "--table", table]


def test_counter_lifecycle(target: list[str]) -> None:
    name = "tickets#gig:42 ü"
    base = [name, "--strategy", "marker", "--floor", "0", *target]
    assert run("counter", "create", *base, "--initial", "5").returncode == 0
    first = run("counter", "add", *base, "-2", "--request-id", "order-1", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": True, "value": None, "request_id": "order-1"}
    again = run("counter", "add", *base, "-2", "--request-id", "order-1", "--json")
    assert json.loads(again.stdout)["applied"] is False
    got = run("counter", "get", *base)
    assert got.stdout.strip() == "3"
    over = run("counter", "add", *base, "-4", "--request-id", "order-2")
    assert_one_line_error(over, "would cross its floor 0")
    assert run("counter", "get", *base).stdout.strip() == "3"
    shown = json.loads(run("counter", "inspect", *base, "--json").stdout)
    assert shown["value"] == 3
    assert shown["markers"] == 1
    assert shown["item"]["quantity"] == 3
    assert run("counter", "delete", *base).returncode == 0
    assert_one_line_error(run("counter", "get", *base), "does not exist")


def test_sharded_counter(target: list[str]) -> None:
    create = ["seats", "--strategy", "sharded", "--shards", "3", "--floor", "0", *target]
    assert run("counter", "create", *create, "--initial", "9").returncode == 0
    base = ["seats", *target]  # the stored definition: no --strategy, no --shards
    assert run("counter", "add", *base, "-5", "--request-id", "o1").returncode == 0
    shown = json.loads(run("counter", "inspect", *base, "--json").stdout)
    assert (shown["value"], shown["definition"]["options"]["shards"]) == (4, 3)
    assert sum(s["value"] for s in shown["shards"]) == 4
    assert [s["floor_share"] for s in shown["shards"]] == [0, 0, 0]
    assert_one_line_error(run("counter", "get", *base, "--shards", "4"), "shards=4")
    assert_one_line_error(run("counter", "add", *base, "-5", "--request-id", "o2"), "floor 0")
    assert run("counter", "get", *base).stdout.strip() == "4"


def test_compact_collection(target: list[str]) -> None:
    base = ["votes", "--strategy", "collection", *target]
    assert run("counter", "create", *base).returncode == 0
    for i in range(3):
        assert run("counter", "add", *base, "2", "--request-id", f"v{i}").returncode == 0
    assert json.loads(run("counter", "inspect", *base, "--json").stdout)["deltas"] == 3
    done = run("counter", "compact", *base, "--json")
    assert json.loads(done.stdout) == {"name": "votes", "folded": 3}
    assert run("counter", "get", *base).stdout.strip() == "6"
    compact = run("counter", "compact", "votes", "--strategy", "atomic", *target)
    assert_one_line_error(compact, "keeps no deltas")


def test_table_create_and_pk_only(ddb: DynamoDBLocal, client: Any) -> None:
    table = new_table_name("cli-pk")
    conn = ["--endpoint-url", ddb.endpoint_url, "--table", table, "--no-sort-key"]
    done = run("table", "create", *conn)
    assert done.returncode == 0, done.stderr
    assert client.describe_table(TableName=table)["Table"]["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"}
    ]
    client.put_item(TableName=table, Item={"pk": {"S": "abc123"}, "quantity": {"N": "3"}})
    assert run("counter", "add", "abc123", "-3", "--floor", "0", *conn).returncode == 0
    assert_one_line_error(run("counter", "add", "abc123", "-3", "--floor", "0", *conn), "floor")
    assert run("counter", "get", "abc123", *conn).stdout.strip() == "0"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["counter", "create", "x", "--strategy", "collection", "--floor", "0"], ["collection"]),
        (["counter", "add", "x", "1", "--strategy", "atomic", "--request-id", "r"], ["idempotent"]),
        (["counter", "add", "x", "0"], ["must not be zero"]),
        (["counter", "create", "x", "--floor", "5", "--ceiling", "1"], ["floor 5 is above"]),
        (["counter", "get", "missing"], ["does not exist"]),
    ],
)
def test_errors_are_one_line(target: list[str], args: list[str], needles: list[str]) -> None:
    assert_one_line_error(run(*args, *target), *needles)


def test_missing_table_hints_ensure_table(ddb: DynamoDBLocal) -> None:
    done = run("counter", "get", "x", "--endpoint-url", ddb.endpoint_url, "--table", "nope-nope")
    assert_one_line_error(done, "does not exist", "ensure_table")


def test_unreachable_endpoint() -> None:
    # Issue 18, item 7: a password in the URL was printed in the error line.
    done = run("counter", "get", "x", "--endpoint-url", "http://me:s3cret@127.0.0.1:9")
    assert_one_line_error(done, "cannot reach http://***@127.0.0.1:9")
    assert "s3cret" not in done.stderr


def test_missing_region_and_credentials(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    assert_one_line_error(run("counter", "get", "x", env=env), "no AWS region")
    done = run("counter", "get", "x", "--region", "us-east-1", env=env)
    assert_one_line_error(done, "no AWS credentials")


def test_usage_errors_exit_2() -> None:
    done = run("counter", "add", "x", "1", "--strategy", "nope")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
    assert "Traceback" not in done.stderr


def test_strategies_json() -> None:
    done = run("strategies", "--json")
    rows = json.loads(done.stdout)
    assert [r["strategy"] for r in rows] == [
        "atomic", "occ", "occ_history", "transaction", "marker", "collection", "set", "sharded",
    ]  # fmt: skip
    assert {r["strategy"] for r in rows if r["idempotent"]} == {
        "occ_history", "transaction", "marker", "collection", "set", "sharded",
    }  # fmt: skip


def test_strategies_without_the_bench_extra_is_a_readable_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The core install (no rich) printed each row's values joined by two spaces, in no columns,
    with the booleans as Python's True/False."""
    from dynamodb_counters import cli

    monkeypatch.setattr(cli, "missing_modules", lambda modules: ["rich"])
    assert cli.main(["strategies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "strategy     idem.  bounds  req/add  window; write units/add"
    assert lines[1] == (
        "atomic       no     yes     1        none: a retried add is counted again; "
        "1 per KB of the counter item"
    )
    assert lines[6].startswith("collection   yes    no      1        forever (the delta item")
    assert len(lines) == 1 + len(STRATEGIES)
    assert not any(word in line for line in lines for word in ("True", "False"))


def java_is_gone(endpoint: str) -> bool:
    """Nothing answers on the endpoint's port any more (Java was stopped, not orphaned)."""
    port = int(endpoint.rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_local_start_serves_and_stops_on_ctrl_c(tmp_path: Any, stop: signal.Signals) -> None:
    # SIGINT ignored, as for a command started with & by a script: Ctrl-C must still work.
    process = subprocess.Popen(
        [sys.executable, "-m", "dynamodb_counters", "local", "start", "--db-path", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "DynamoDB Local is running at http://127.0.0.1:" in line, line
        endpoint = line.split(" at ")[1].split()[0]
        table = new_table_name("cli-local")
        assert run("table", "create", "--endpoint-url", endpoint, "--table", table).returncode == 0
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
        assert java_is_gone(endpoint)
    finally:
        if process.poll() is None:
            process.kill()
    # Its data outlives it: the table is in the --db-path folder.
    assert any(tmp_path.iterdir())


# -- SPEC section 7: the stored definition, listing, connection errors ------------------------


def test_commands_use_the_stored_strategy(target: list[str]) -> None:
    """Issue case 1: `counter get` without --strategy read a collection counter as 0."""
    assert run("counter", "create", "votes", "--strategy", "collection", *target).returncode == 0
    added = run("counter", "add", "votes", "4", "--request-id", "v1", *target)
    assert added.returncode == 0, added.stderr
    assert run("counter", "get", "votes", *target).stdout.strip() == "4"
    other = run("counter", "add", "votes", "-300", "--strategy", "atomic", *target)
    assert_one_line_error(other, "stored with another definition", "atomic")
    # The command line's advice, not the library's ("Open it with store.counter(name)").
    assert "store.counter" not in other.stderr
    assert "`counter inspect votes` shows the stored definition" in other.stderr
    assert run("counter", "get", "votes", *target).stdout.strip() == "4"
    inspected = run("counter", "inspect", "votes", "--json", *target)
    assert json.loads(inspected.stdout)["definition"]["strategy"] == "collection"
    assert run("counter", "compact", "votes", *target).stdout.strip() == "folded 1 deltas"
    assert run("counter", "delete", "votes", *target).returncode == 0


def test_counter_list(target: list[str]) -> None:
    for name in ("b", "a"):
        assert run("counter", "create", name, "--strategy", "marker", *target).returncode == 0
    run("counter", "add", "a", "1", "--request-id", "r", *target)
    assert run("counter", "list", *target).stdout.split() == ["a", "b"] or sorted(
        run("counter", "list", *target).stdout.split()
    ) == ["a", "b"]
    assert json.loads(run("counter", "list", "--json", *target).stdout) == ["a", "b"]


@pytest.mark.parametrize("url", ["not-a-url", "http://[::1", "http://127.0.0.1:99999", "ftp://x"])
def test_a_malformed_endpoint_is_one_line(url: str) -> None:
    """Issue case 12: tracebacks, or 'no AWS region configured', for a malformed endpoint."""
    done = run("counter", "get", "x", "--endpoint-url", url)
    assert_one_line_error(done, "--endpoint-url", "not a valid URL")


def test_region_comes_from_aws_region(ddb: DynamoDBLocal) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_CONFIG_FILE="/nonexistent",
    )
    # Not a loopback endpoint, so the region is needed: an unreachable address on purpose
    # (the connection is refused, never sent anywhere: port 9 on loopback is closed).
    done = run("counter", "get", "x", "--endpoint-url", "https://localhost:9", env=env)
    assert "region" not in done.stderr.lower()
    assert_one_line_error(done, "cannot reach")


def first_request_to(*command: str, host: str = "127.0.0.1") -> bytes:
    """The first request the command sends to a port on this machine, with real-looking
    credentials in its environment; ``{port}`` in the command is the listening port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIAREALKEY123", "AWS_SECRET_ACCESS_KEY": "s"}
    argv = [a.replace("{port}", str(port)).replace("{host}", host) for a in command]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamodb_counters", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.settimeout(0.5)
        while True:  # until it connects; a command that ended without sending fails at once
            try:
                conn, _ = server.accept()
                break
            except TimeoutError:
                assert proc.poll() is None, "the command ended without sending a request"
        conn.settimeout(10)
        received = conn.recv(65536)
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        server.close()
    return received


# Every spelling of this machine that reaches the listener on 127.0.0.1 (issue 18, item 7:
# only "localhost", "::1" and "127.*" were recognised).
LOCAL_SPELLINGS = ["127.0.0.1", "0.0.0.0", "2130706433"]


@pytest.mark.parametrize("host", LOCAL_SPELLINGS)
def test_real_credentials_never_go_to_a_plain_http_loopback_port(host: str) -> None:
    """Issue 12, finding 6: whatever listens on a loopback port must not get signed requests
    made with the user's real credentials."""
    received = first_request_to(
        "counter", "get", "x", "--endpoint-url", "http://{host}:{port}", host=host
    )
    assert b"Authorization" in received
    assert b"AKIAREALKEY123" not in received


def test_the_bench_sends_no_real_credentials_to_a_loopback_port() -> None:
    """Issue 18, item 7: the bench sent them whenever the user had credentials."""
    received = first_request_to(
        "bench", "--endpoint-url", "http://127.0.0.1:{port}", "--quiet", "--strategies", "atomic"
    )
    assert b"Authorization" in received
    assert b"AKIAREALKEY123" not in received


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.9.8.7", "127.1", "2130706433", "0x7f000001", "0.0.0.0", "0", "::1",
     "[::1]", "::", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "::ffff:0.0.0.0", "LOCALHOST",
     "localhost.", "db.localhost", "fe80::1%lo"],
)  # fmt: skip
def test_every_spelling_of_this_machine_is_local(host: str) -> None:
    from dynamodb_counters._endpoints import is_local_host

    assert is_local_host(host.strip("[]")) is (host != "fe80::1%lo")


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "dynamodb.us-east-1.amazonaws.com", "::ffff:10.0.0.1", "128.0.0.1", "x"]
)
def test_other_hosts_are_not_local(host: str) -> None:
    from dynamodb_counters._endpoints import check_endpoint, is_local_host

    assert not is_local_host(host)
    assert check_endpoint("https://127.0.0.1:8000") == ("https://127.0.0.1:8000", False)
    assert check_endpoint("http://[::ffff:127.0.0.1]:8000")[1] is True


URL_WITH_PASSWORD = "http://me:s3cret@127.0.0.1:9"


def test_a_password_in_the_endpoint_is_never_printed() -> None:
    """Issue 18, item 7: the error line printed the URL with its password."""
    done = run(
        "bench", "--quiet", "--strategies=atomic", "--sdk-max-attempts=1",
        "--endpoint-url", URL_WITH_PASSWORD,
    )  # fmt: skip
    assert "s3cret" not in done.stderr
    assert_one_line_error(done, "http://***@127.0.0.1:9")
    for command in (["counter", "get", "x"], ["bench"]):
        malformed = run(*command, "--endpoint-url", "http://me:s3cret@127.0.0.1:99999")
        assert "s3cret" not in malformed.stderr
        assert_one_line_error(malformed, "'http://***@127.0.0.1:99999' is not a valid URL")


def test_a_broken_pipe_is_one_line(target: list[str]) -> None:
    run("counter", "create", "p", *target)
    done = subprocess.run(
        f"{sys.executable} -m dynamodb_counters counter list {' '.join(target)} | true",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("port", ["99999", "-5"])
def test_local_start_with_a_port_out_of_range_is_one_line(port: str) -> None:
    """Issue 10, case 12: a traceback for --port 99999 and --port -5."""
    assert_one_line_error(run("local", "start", "--port", port), "port must be")


def test_table_with_other_keys_names_the_cli_flags(ddb: DynamoDBLocal, client: Any) -> None:
    """Issue 10, case 12: `table create` suggested Python arguments (partition_key=)."""
    table = new_table_name("keys")
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    done = run("table", "create", "--endpoint-url", ddb.endpoint_url, "--table", table)
    assert_one_line_error(done, "--partition-key", "--no-sort-key")


def test_holds_and_reclaim(target: list[str], client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from dynamodb_counters import _steps

    seats = CounterStore(client, target[-1]).counter("seats", strategy="marker", floor=0)
    seats.create(initial=5)
    seats.reserve(2, hold_id="cart-1", ttl=600)
    monkeypatch.setattr(_steps, "wall_clock", lambda: time.time() - 3600)
    seats.reserve(1, hold_id="cart-0", ttl=60)  # expired an hour ago
    monkeypatch.undo()
    shown = json.loads(run("counter", "holds", "seats", *target, "--json").stdout)
    assert [(h["hold_id"], h["amount"]) for h in shown["holds"]] == [("cart-0", 1), ("cart-1", 2)]
    text = run("counter", "holds", "seats", *target).stdout.splitlines()
    assert [line.split("\t")[0] for line in text] == ["cart-0", "cart-1"]
    assert text[0].endswith("expired") and text[1].endswith("s left")
    reclaimed = run("counter", "reclaim", "seats", *target, "--json")
    assert json.loads(reclaimed.stdout) == {"name": "seats", "reclaimed": 1}
    assert seats.value() == 3
    CounterStore(client, target[-1]).counter("plain", strategy="atomic").create(initial=1)
    assert_one_line_error(run("counter", "holds", "plain", *target), "cannot hold")


# -- issue 18, item 10 ----------------------------------------------------------------------------


def test_bench_with_a_malformed_endpoint_is_one_line() -> None:
    done = run("bench", "--endpoint-url", "not-a-url", "--quiet")
    assert_one_line_error(done, "--endpoint-url 'not-a-url' is not a valid URL")


def test_durations_have_one_syntax(target: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`advise` printed marker_ttl=1h, which `counter create --marker-ttl 1h` refused."""
    from dynamodb_counters.cli import main

    assert (
        main(["counter", "create", "m", "--strategy", "marker", "--marker-ttl", "1h", *target]) == 0
    )
    assert main(["counter", "inspect", "m", "--json", *target]) == 0
    shown = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert shown["definition"]["options"] == {"marker_ttl": 3600.0}
    assert main(["counter", "get", "m", "--marker-ttl", "3600", *target]) == 0
    assert main(["counter", "get", "m", "--marker-ttl", "60m", *target]) == 0
    assert main(["counter", "get", "m", "--marker-ttl", "2h", *target]) == 1  # stored: 1h
    assert "marker_ttl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["counter", "get", "m", "--marker-ttl", "1w", *target])
    assert usage.value.code == 2
    assert "invalid duration value: '1w'" in capsys.readouterr().err
