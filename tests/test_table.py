# mypy: disable-error-code="arg-type"
# (fake and wrong-kind clients are passed on purpose)
"""``ensure_table()``: it never changes a table it did not create, checks what matters (keys and
their types, table state, the TTL attribute), is safe under concurrency, and says one clear thing
per case. Issues 9.4, 10.13 and 12.1.

States DynamoDB Local never shows (UPDATING, DELETING, TTL DISABLING) come from a thin wrapper
around the real client that rewrites DescribeTable / DescribeTimeToLive answers; an engine without
TTL is an error answer injected below botocore's retries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from conftest import fresh_client, new_table_name
from dynamodb_counters import CounterStore, InvalidInput, NotSupported, TableNotFound
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.table import TableReport, TableWarning

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


class RewritingClient:
    """The real client, except that DescribeTable / DescribeTimeToLive answers pass through
    ``table`` / ``ttl`` first (which may also raise)."""

    def __init__(self, client: Any, *, table: Rewrite | None = None, ttl: Rewrite | None = None):
        self._client = client
        self._table = table
        self._ttl = ttl
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def describe_table(self, **params: Any) -> dict[str, Any]:
        self.calls.append("DescribeTable")
        answer: dict[str, Any] = self._client.describe_table(**params)
        return self._table(answer) if self._table else answer

    def describe_time_to_live(self, **params: Any) -> dict[str, Any]:
        self.calls.append("DescribeTimeToLive")
        answer: dict[str, Any] = self._client.describe_time_to_live(**params)
        return self._ttl(answer) if self._ttl else answer

    def update_time_to_live(self, **params: Any) -> dict[str, Any]:
        self.calls.append("UpdateTimeToLive")
        answer: dict[str, Any] = self._client.update_time_to_live(**params)
        return answer


def with_status(status: str) -> Rewrite:
    def rewrite(answer: dict[str, Any]) -> dict[str, Any]:
        return {**answer, "Table": {**answer["Table"], "TableStatus": status}}

    return rewrite


def with_ttl(status: str, attribute: str = "expires_at") -> Rewrite:
    def rewrite(answer: dict[str, Any]) -> dict[str, Any]:
        described = {"TimeToLiveStatus": status, "AttributeName": attribute}
        return {**answer, "TimeToLiveDescription": described}

    return rewrite


def not_found(operation: str) -> ClientError:
    error = {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}
    return ClientError({"Error": error}, operation)  # type: ignore[typeddict-item]


def ttl_of(client: Any, table: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.describe_time_to_live(TableName=table)
    return dict(answer["TimeToLiveDescription"])


@pytest.fixture
def foreign(client: Any) -> Iterator[str]:
    """A table someone else made with plain boto3 (pk S, sk S, TTL off)."""
    name = new_table_name("foreign")
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
    yield name
    client.delete_table(TableName=name)


# -- a table it did not create is never changed (12.1) ------------------------------------------


def test_existing_table_with_ttl_off_is_not_changed_and_a_warning_says_how(
    client: Any, foreign: str
) -> None:
    with pytest.warns(TableWarning) as caught:
        report = CounterStore(client, foreign).ensure_table()
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "DISABLED"}
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "TTL is off" in message
    assert "ensure_table(enable_ttl=True)" in message
    assert f"dynamodb-counters table enable-ttl --table {foreign}" in message
    assert (
        f"aws dynamodb update-time-to-live --table-name {foreign} "
        "--time-to-live-specification Enabled=true,AttributeName=expires_at"
    ) in message
    assert report == TableReport(
        table=foreign,
        created=False,
        status="ACTIVE",
        ttl_status="DISABLED",
        ttl_attribute=None,
        changes=(),
        warnings=(message,),
    )
    assert not report.markers_expire


def test_enable_ttl_is_explicit_and_says_what_it_changed(client: Any, foreign: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = CounterStore(client, foreign).ensure_table(enable_ttl=True)
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert report.changes == (f"turned TTL on for attribute 'expires_at' of table {foreign!r}",)
    assert (report.created, report.ttl_status, report.ttl_attribute) == (
        False,
        "ENABLED",
        "expires_at",
    )
    assert report.markers_expire
    # Asking again changes nothing more.
    assert CounterStore(client, foreign).ensure_table(enable_ttl=True).changes == ()


def test_a_table_it_creates_gets_ttl(client: Any) -> None:
    name = new_table_name("mine")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = CounterStore(client, name, ttl_attribute="ttl").ensure_table()
        assert report.created
        assert report.changes == (
            f"created table {name!r} (pk S, sk S, on-demand, index 'counter-list')",
            f"turned TTL on for attribute 'ttl' of table {name!r}",
        )
        assert ttl_of(client, name) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
        # The second call finds it as it left it.
        again = CounterStore(client, name, ttl_attribute="ttl").ensure_table()
        assert (again.created, again.changes, again.warnings) == (False, (), ())
    finally:
        client.delete_table(TableName=name)


def test_create_false_never_creates(client: Any) -> None:
    name = new_table_name("absent")
    with pytest.raises(TableNotFound, match="does not exist"):
        CounterStore(client, name).ensure_table(create=False)
    assert name not in client.list_tables()["TableNames"]


# -- races and checks (9.4) ---------------------------------------------------------------------


def test_concurrent_ensure_table_on_a_missing_table_all_succeed(client: Any) -> None:
    name = new_table_name("race")
    threads = 24
    start = threading.Barrier(threads)
    reports: list[TableReport] = []
    failures: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            reports.append(CounterStore(client, name).ensure_table())
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    # Set once, around all threads: catch_warnings() is not thread-safe.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    try:
        assert failures == []
        assert len(reports) == threads
        assert sum(r.created for r in reports) == 1
        assert [r.warnings for r in reports] == [()] * threads
        assert {r.ttl_status for r in reports} <= {"ENABLED", "ENABLING"}
        assert ttl_of(client, name) == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": "expires_at",
        }
    finally:
        client.delete_table(TableName=name)


def test_ttl_on_another_attribute_is_a_clear_error(client: Any, foreign: str) -> None:
    client.update_time_to_live(
        TableName=foreign,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
    )
    store = CounterStore(client, foreign)
    for options in ({}, {"enable_ttl": True}):
        with pytest.raises(InvalidInput) as caught:
            store.ensure_table(**options)
        assert str(caught.value) == (
            f"table {foreign!r} has TTL on attribute 'ttl', but this store writes markers with "
            "'expires_at', so they would never expire: pass ttl_attribute='ttl' (on the command "
            "line: --ttl-attribute ttl)"
        )
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    report = CounterStore(client, foreign, ttl_attribute="ttl").ensure_table()
    assert (report.ttl_status, report.ttl_attribute, report.warnings) == ("ENABLED", "ttl", ())


def test_the_cli_has_the_flag_its_ttl_advice_names(
    ddb: DynamoDBLocal, client: Any, foreign: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18, item 10: the advice said ttl_attribute=, which the CLI had no flag for."""
    from dynamodb_counters.cli import main

    client.update_time_to_live(
        TableName=foreign,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
    )
    where = ["--endpoint-url", ddb.endpoint_url, "--table", foreign]

    def check(*extra: str) -> subprocess.CompletedProcess[str]:  # in-process: no interpreter
        code = main(["table", "check", *where, *extra])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(extra, code, out, err)

    refused = check()
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("(on the command line: --ttl-attribute ttl)")
    followed = check("--ttl-attribute", "ttl")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.strip() == f"table {foreign!r} is ACTIVE; TTL ENABLED on 'ttl'"


def test_a_boto3_table_resource_is_refused_at_once(ddb: DynamoDBLocal) -> None:
    """Issue 18, item 10: a Table resource was accepted, then failed on its first request."""
    import boto3

    resource = boto3.resource(
        "dynamodb",
        endpoint_url=ddb.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    for wrong in (resource.Table("counters"), resource):
        with pytest.raises(InvalidInput) as caught:
            CounterStore(wrong, "counters")
        assert "boto3.client('dynamodb'), or table.meta.client" in str(caught.value)
    CounterStore(resource.Table("counters").meta.client, "counters")  # the advice works


@pytest.mark.parametrize("operation", ["CreateTable", "UpdateTimeToLive"])
def test_a_lost_answer_while_creating_still_reports_the_truth(
    ddb: DynamoDBLocal, operation: str
) -> None:
    """The first send lands but its answer is lost; botocore's re-send is refused
    (ResourceInUseException, "TimeToLive is already enabled"). The table is still this call's:
    TTL on, no warning, both changes reported. (Seen in test_restart under load: the table was
    left with TTL off.)"""
    http = URLLib3Session()
    lost: list[str] = []

    def lose_first_answer(request: Any, **_: Any) -> None:
        if not lost:
            lost.append(operation)
            http.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)

    engine = fresh_client(ddb)
    engine.meta.events.register(f"before-send.dynamodb.{operation}", lose_first_answer)
    name = new_table_name("lost")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = CounterStore(engine, name).ensure_table()
        assert lost == [operation]
        assert (report.created, report.ttl_status, report.warnings) == (True, "ENABLED", ())
        assert report.changes == (
            f"created table {name!r} (pk S, sk S, on-demand, index 'counter-list')",
            f"turned TTL on for attribute 'expires_at' of table {name!r}",
        )
        assert ttl_of(engine, name)["TimeToLiveStatus"] == "ENABLED"
    finally:
        engine.delete_table(TableName=name)


@pytest.mark.parametrize("layout", ["pk N", "sk B"])
def test_key_of_another_type_is_invalid_input(client: Any, layout: str) -> None:
    name = new_table_name("types")
    pk_type, sk_type = ("N", "S") if layout == "pk N" else ("S", "B")
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": pk_type},
            {"AttributeName": "sk", "AttributeType": sk_type},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(InvalidInput) as caught:
            CounterStore(client, name).ensure_table()
        wrong, kind = ("pk", "N") if layout == "pk N" else ("sk", "B")
        assert str(caught.value) == (
            f"table {name!r}: key attribute {wrong!r} has type {kind}, but counters need "
            "string keys (S)"
        )
        assert ttl_of(client, name) == {"TimeToLiveStatus": "DISABLED"}
    finally:
        client.delete_table(TableName=name)


def test_updating_table_is_usable_at_once(client: Any, table: str) -> None:
    rewriting = RewritingClient(client, table=with_status("UPDATING"))
    started = time.monotonic()
    report = CounterStore(rewriting, table).ensure_table(wait_seconds=3)
    assert time.monotonic() - started < 2
    assert (report.status, report.ttl_status, report.warnings) == ("UPDATING", "ENABLED", ())
    assert rewriting.calls == ["DescribeTable", "DescribeTimeToLive"]


def test_deleting_table_is_a_clear_error_at_once(client: Any, table: str) -> None:
    answers = [with_status("DELETING")]

    def deleting_then_gone(answer: dict[str, Any]) -> dict[str, Any]:
        if answers:
            return answers.pop()(answer)
        raise not_found("DescribeTable")

    rewriting = RewritingClient(client, table=deleting_then_gone)
    started = time.monotonic()
    with pytest.raises(TableNotFound) as caught:
        CounterStore(rewriting, table).ensure_table(wait_seconds=3)
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"table {table!r} is being deleted (status DELETING): wait until it is gone, "
        "then call ensure_table() again to create it"
    )
    assert rewriting.calls == ["DescribeTable"]


@pytest.mark.parametrize("status", ["INACCESSIBLE_ENCRYPTION_CREDENTIALS", "ARCHIVED"])
def test_unusable_table_is_a_clear_error(client: Any, table: str, status: str) -> None:
    rewriting = RewritingClient(client, table=with_status(status))
    with pytest.raises(TableNotFound) as caught:
        CounterStore(rewriting, table).ensure_table()
    assert str(caught.value) == f"table {table!r} is not usable (status {status})"


def test_ttl_refused_for_another_reason_is_not_swallowed(
    ddb: DynamoDBLocal, client: Any, foreign: str
) -> None:
    """A ValidationException from UpdateTimeToLive is taken as "already on" only when TTL is
    then seen on for our attribute."""

    def refuse(request: Any, **_: Any) -> AWSResponse:
        return _error_answer(request, "ValidationException", "Time to live has been modified")

    engine = fresh_client(ddb)
    engine.meta.events.register("before-send.dynamodb.UpdateTimeToLive", refuse)
    with pytest.raises(ClientError, match="modified"):
        CounterStore(engine, foreign).ensure_table(enable_ttl=True)
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "DISABLED"}


def test_creating_table_that_never_becomes_active_times_out_clearly(
    client: Any, table: str
) -> None:
    rewriting = RewritingClient(client, table=with_status("CREATING"))
    with pytest.raises(TableNotFound) as caught:
        CounterStore(rewriting, table).ensure_table(wait_seconds=1)
    assert str(caught.value) == f"table {table!r} is still CREATING after 1 s"


def test_ttl_disabling_is_reported(client: Any, table: str) -> None:
    rewriting = RewritingClient(client, ttl=with_ttl("DISABLING"))
    with pytest.warns(TableWarning) as caught:
        report = CounterStore(rewriting, table).ensure_table()
    message = str(caught[0].message)
    assert message.startswith(
        f"table {table!r}: TTL is being turned off (DISABLING): markers will not expire"
    )
    assert "dynamodb-counters table enable-ttl" in message
    assert (report.ttl_status, report.warnings, report.changes) == ("DISABLING", (message,), ())
    assert "UpdateTimeToLive" not in rewriting.calls


def test_ttl_enabling_on_our_attribute_is_fine(client: Any, table: str) -> None:
    rewriting = RewritingClient(client, ttl=with_ttl("ENABLING"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = CounterStore(rewriting, table).ensure_table()
    assert (report.ttl_status, report.ttl_attribute, report.markers_expire) == (
        "ENABLING",
        "expires_at",
        True,
    )


# -- an engine without TTL (10.13) --------------------------------------------------------------


def _error_answer(request: Any, code: str, message: str | None = None) -> AWSResponse:
    error = {"__type": f"com.amazon.coral.service#{code}"}
    if message is not None:
        error["message"] = message
    body = json.dumps(error).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["Content-Length"] = str(len(body))

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    return AWSResponse(request.url, 400, headers, Raw())


def _unknown_operation(request: Any, **_: Any) -> AWSResponse:
    """dynalite's answer to an operation it does not implement."""
    return _error_answer(request, "UnknownOperationException")


@pytest.fixture
def no_ttl_client(ddb: DynamoDBLocal) -> Any:
    engine = fresh_client(ddb)
    for operation in ("DescribeTimeToLive", "UpdateTimeToLive"):
        engine.meta.events.register(f"before-send.dynamodb.{operation}", _unknown_operation)
    return engine


def test_engine_without_ttl_creates_the_table_and_warns(no_ttl_client: Any) -> None:
    name = new_table_name("no-ttl")
    try:
        with pytest.warns(TableWarning) as caught:
            report = CounterStore(no_ttl_client, name).ensure_table()
        message = str(caught[0].message)
        assert message == (
            f"table {name!r}: this DynamoDB engine does not support TTL (UpdateTimeToLive: "
            "UnknownOperationException): markers will never expire"
        )
        assert report.created
        assert (report.ttl_status, report.ttl_attribute) == ("UNSUPPORTED", None)
        assert report.changes == (
            f"created table {name!r} (pk S, sk S, on-demand, index 'counter-list')",
        )
        # An existing table on that engine: the same warning, from DescribeTimeToLive.
        with pytest.warns(TableWarning, match=r"DescribeTimeToLive: UnknownOperationException"):
            again = CounterStore(no_ttl_client, name).ensure_table()
        assert (again.created, again.ttl_status) == (False, "UNSUPPORTED")
    finally:
        no_ttl_client.delete_table(TableName=name)


def test_engine_without_ttl_and_enable_ttl_is_not_supported(no_ttl_client: Any, table: str) -> None:
    with pytest.raises(NotSupported) as caught:
        CounterStore(no_ttl_client, table).ensure_table(enable_ttl=True)
    assert str(caught.value) == (
        f"table {table!r}: this DynamoDB engine does not support TTL (DescribeTimeToLive: "
        "UnknownOperationException), so enable_ttl=True cannot be honoured"
    )


# -- the command line ---------------------------------------------------------------------------


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dynamodb_counters", "table", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_cli_table_commands_report_and_change_only_when_asked(
    ddb: DynamoDBLocal, client: Any, foreign: str
) -> None:
    conn = ["--endpoint-url", ddb.endpoint_url, "--table", foreign]
    rc, out, err = finish(cli("create", *conn))
    assert rc == 0, err
    assert out.splitlines() == [f"table {foreign!r} is ACTIVE; TTL DISABLED"]
    (line,) = err.splitlines()
    assert line.startswith(f"dynamodb-counters: warning: table {foreign!r}: TTL is off")
    assert f"dynamodb-counters table enable-ttl --table {foreign}" in line
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "DISABLED"}

    rc, out, err = finish(cli("check", *conn, "--json"))
    assert rc == 0, err
    report = json.loads(out)
    assert (report["created"], report["ttl_status"], report["markers_expire"]) == (
        False,
        "DISABLED",
        False,
    )
    assert report["changes"] == [] and len(report["warnings"]) == 1

    rc, out, err = finish(cli("enable-ttl", *conn))
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        f"turned TTL on for attribute 'expires_at' of table {foreign!r}",
        f"table {foreign!r} is ACTIVE; TTL ENABLED on 'expires_at'",
    ]
    assert ttl_of(client, foreign) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_cli_check_and_enable_ttl_never_create(ddb: DynamoDBLocal, client: Any) -> None:
    name = new_table_name("absent")
    for action in ("check", "enable-ttl"):
        rc, out, err = finish(cli(action, "--endpoint-url", ddb.endpoint_url, "--table", name))
        assert (rc, out) == (1, "")
        assert err.splitlines() == [
            f"dynamodb-counters: error: table {name!r} does not exist: create it with "
            "ensure_table() (or `dynamodb-counters table create`)"
        ]
    assert name not in client.list_tables()["TableNames"]


def test_cli_concurrent_table_create_all_succeed(ddb: DynamoDBLocal, client: Any) -> None:
    name = new_table_name("cli-race")
    conn = ["--endpoint-url", ddb.endpoint_url, "--table", name]
    try:
        results = [finish(p) for p in [cli("create", *conn) for _ in range(4)]]
        assert [(rc, err) for rc, _, err in results] == [(0, "")] * 4
        creators = [out for _, out, _ in results if "created table" in out]
        assert len(creators) == 1
        assert creators[0].splitlines() == [
            f"created table {name!r} (pk S, sk S, on-demand, index 'counter-list')",
            f"turned TTL on for attribute 'expires_at' of table {name!r}",
            f"table {name!r} is ACTIVE; TTL ENABLED on 'expires_at'",
        ]
        assert ttl_of(client, name)["TimeToLiveStatus"] == "ENABLED"
    finally:
        client.delete_table(TableName=name)
