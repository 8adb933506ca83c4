# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""The IAM policy is what the code sends: no action missing, none to spare.

For every strategy, table layout and library operation, the DynamoDB requests the store sends on
DynamoDB Local are recorded through its ``on_call`` seam; the IAM actions they need (worked out
here from AWS's rules, independently of ``iam.py``) must equal the actions of the policy printed
for that strategy and operation alone, and every key they touch must satisfy the policy's
``dynamodb:LeadingKeys`` condition. Operations are discovered from ``iam.OPERATIONS`` and from the
public methods of ``Counter`` and ``CounterStore``: a new operation only needs its row there.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ALL, new_table_name
from dynamodb_counters import (
    STRATEGIES,
    CallRecord,
    Counter,
    CounterStore,
    HoldExpired,
    InvalidInput,
    ThresholdExceeded,
    _steps,
    iam,
)
from dynamodb_counters._keys import MARKER_PREFIX

PREFIX = "shop#"

# AWS: a transaction is authorised item by item, with the item action's own permission.
TRANSACT_ITEM_ACTION = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# Methods that send no request.
NO_REQUEST = {"counter", "quota", "add_listener", "remove_listener"}


def needed_actions(record: CallRecord) -> set[str]:
    if record.operation in ("TransactWriteItems", "TransactGetItems"):
        items = record.params["TransactItems"]
        return {TRANSACT_ITEM_ACTION[kind] for item in items for kind in item}
    return {record.operation}


def leading_keys(record: CallRecord, partition_key: str) -> list[str]:
    """The partition key values a request touches (what ``dynamodb:LeadingKeys`` sees)."""
    params = record.params
    keys: list[dict[str, Any]] = []
    if record.operation in ("GetItem", "UpdateItem", "DeleteItem"):
        keys.append(params["Key"])
    elif record.operation == "PutItem":
        keys.append(params["Item"])
    elif record.operation in ("TransactWriteItems", "TransactGetItems"):
        for item in params["TransactItems"]:
            (inner,) = item.values()
            keys.append(inner.get("Key") or inner["Item"])
    elif record.operation == "BatchWriteItem":
        for requests in params["RequestItems"].values():
            for request in requests:
                (inner,) = request.values()
                keys.append(inner.get("Key") or inner["Item"])
    elif record.operation == "BatchGetItem":
        for wanted in params["RequestItems"].values():
            keys.extend(wanted["Keys"])
    elif record.operation == "Query":
        names = params.get("ExpressionAttributeNames", {})
        for name, value in re.findall(r"(#?\w+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
            if names.get(name, name) == partition_key:
                keys.append({partition_key: params["ExpressionAttributeValues"][value]})
    return [key[partition_key]["S"] for key in keys]


def policy_actions(document: dict[str, Any]) -> set[str]:
    return {a.removeprefix("dynamodb:") for s in document["Statement"] for a in s["Action"]}


def statement(document: dict[str, Any], sid: str) -> dict[str, Any] | None:
    """The statement ``sid`` of the policy, or None."""
    found = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(found) <= 1
    return dict(found[0]) if found else None


# -- running each operation -----------------------------------------------------------------------


def _perform(operation: str, counter: Counter, store: CounterStore, strategy: str) -> None:
    """Run one library operation the way a user would, on every path it has."""
    idempotent = STRATEGIES[strategy].idempotent
    if operation == "create":
        counter.create(initial=10)
    elif operation == "add":
        if idempotent:
            # More than any one of sharded's 8 shards holds: it moves room (a survey first).
            counter.add(-5, request_id="order-1")
            counter.add(-5, request_id="order-1")  # the replay
            if STRATEGIES[strategy].supports_thresholds:
                # A refusal: sharded proves it from a consistent snapshot.
                with pytest.raises(ThresholdExceeded):
                    counter.add(-50, request_id="order-2")
        else:
            counter.add(-1)
    elif operation == "values":
        getattr(store, operation)([counter.name])
    elif operation in ("reserve", "commit", "cancel", "holds", "reclaim"):
        _perform_hold(operation, counter)
    elif operation == "counters_scan":
        assert list(store.counters(scan=True)) == [counter.name]
    elif hasattr(Counter, operation):
        getattr(counter, operation)()
    else:
        answer = getattr(store, operation)()
        if isinstance(answer, Iterator):
            list(answer)


@contextlib.contextmanager
def _an_hour_ago() -> Iterator[None]:
    """Holds reserved in this block expired long ago (the executors' clock seam)."""
    real = _steps.wall_clock
    _steps.wall_clock = lambda: real() - 3600
    try:
        yield
    finally:
        _steps.wall_clock = real


def _perform_hold(operation: str, counter: Counter) -> None:
    """The hold operations on every path they have (the counter is at 5 after ``add``)."""
    if operation == "reserve":
        with _an_hour_ago():
            counter.reserve(1, hold_id="h-expired", ttl=60)
        counter.reserve(1, hold_id="h1", ttl=600)
        counter.reserve(1, hold_id="h2", ttl=600)
        with pytest.raises(ThresholdExceeded):  # reclaims h-expired, tries once more
            counter.reserve(50, hold_id="h-big", ttl=600)
        with _an_hour_ago():
            counter.reserve(1, hold_id="h3", ttl=60)
            counter.reserve(1, hold_id="h4", ttl=60)
    elif operation == "commit":
        counter.commit("h1")
        with pytest.raises(HoldExpired):
            counter.commit("h3")  # its amount comes back
    elif operation == "cancel":
        counter.cancel("h2")
    elif operation == "holds":
        assert [h.hold_id for h in counter.holds()] == ["h4"]
    else:
        assert counter.reclaim() == 1


def record_operations(
    client: Any, strategy: str, *, sort_key: bool
) -> tuple[CounterStore, dict[str, list[CallRecord]]]:
    """Every counter operation of ``iam.OPERATIONS`` once on a fresh table, ``delete`` last."""
    table = new_table_name("iam")
    store = CounterStore(client, table, sort_key="sk" if sort_key else None)
    store.ensure_table()
    records: list[CallRecord] = []
    store.add_listener(records.append)
    bounds = {"floor": 0} if STRATEGIES[strategy].supports_thresholds else {}
    counter = store.counter(f"{PREFIX}seats", strategy=strategy, **bounds)
    order = ["create", *(op for op in iam.OPERATIONS if op not in ("create", "delete")), "delete"]
    seen: dict[str, list[CallRecord]] = {}
    for operation in order:
        if not iam.uses_of(operation, strategy, sort_key=sort_key):
            continue
        if operation == "delete" and sort_key:
            # A marker item under the counter's name whatever the strategy, so that delete's
            # sweep runs (it sweeps for every strategy).
            client.put_item(
                TableName=table,
                Item={"pk": {"S": counter.name}, "sk": {"S": MARKER_PREFIX + "0" * 32}},
            )
        # A fresh process: a new store and handle, which read the counter item on first use
        # (issue 18, item 6: the policy missed that GetItem).
        fresh = CounterStore(client, table, sort_key="sk" if sort_key else None)
        fresh.add_listener(records.append)
        handle = counter if operation == "create" else fresh.counter(counter.name)
        start = len(records)
        _perform(operation, handle, fresh, strategy)
        seen[operation] = records[start:]
    return store, seen


LAYOUTS = [
    pytest.param(strategy, sort_key, id=f"{strategy}-{'pk+sk' if sort_key else 'pk-only'}")
    for strategy in ALL
    for sort_key in (True, False)
    if sort_key or not STRATEGIES[strategy].needs_sort_key
]


@pytest.mark.parametrize(("strategy", "sort_key"), LAYOUTS)
def test_policy_is_exactly_what_each_operation_sends(
    client: Any, strategy: str, sort_key: bool
) -> None:
    store, seen = record_operations(client, strategy, sort_key=sort_key)
    try:
        for operation, records in seen.items():
            document = iam.policy(
                store.table_name,
                strategies=[strategy],
                operations=[operation],
                counter_prefixes=[PREFIX],
                sort_key=sort_key,
            )
            sent = set().union(*(needed_actions(r) for r in records))
            assert sent == policy_actions(document), operation
            # Item actions carry the LeadingKeys condition, and every key touched satisfies it;
            # actions that name no key (a scan) cannot, and stand apart.
            items = statement(document, "CounterItems")
            if items is not None:
                condition = items["Condition"]["ForAllValues:StringLike"]
                assert condition == {"dynamodb:LeadingKeys": [f"{PREFIX}*"]}
            scans = statement(document, "CounterScans")
            assert scans is None or "Condition" not in scans
            # A Scan of the listing index is allowed on the index's ARN, and only there.
            for record in records:
                if record.operation == "Scan":
                    index = record.params.get("IndexName")
                    allowed = statement(
                        document, "CounterScans" if index is None else "CounterList"
                    )
                    assert allowed is not None and "Condition" not in allowed
                    assert allowed["Resource"].endswith(
                        f":table/{store.table_name}" + ("" if index is None else f"/index/{index}")
                    )
            for record in records:
                for key in leading_keys(record, "pk"):
                    assert key.startswith(PREFIX), (operation, record.operation, key)
        # Whole-strategy policy: the union, nothing else.
        everything = set().union(*(needed_actions(r) for rs in seen.values() for r in rs))
        whole = iam.policy(
            store.table_name,
            strategies=[strategy],
            operations=list(iam.OPERATIONS),
            sort_key=sort_key,
        )
        assert policy_actions(whole) == everything
    finally:
        client.delete_table(TableName=store.table_name)


def _perform_quota(operation: str, store: CounterStore, listener: Any) -> None:
    """A quota or ``limits`` operation on every path it has, on a fresh store (a fresh process:
    a sliding quota seals the previous window on its first hit, reads both windows at once)."""
    from dynamodb_counters.limits import DynamoDBStorage

    quotas = [
        store.quota(f"{PREFIX}api#{window}", limit=3, per=3600, window=window)
        for window in ("fixed", "sliding")
    ]
    if operation == "quota_hit":
        for quota in quotas:
            assert quota.hit(cost=2, request_id="r1").allowed
            assert quota.hit(cost=2, request_id="r1").duplicate  # the replay
            assert not quota.hit(cost=2).allowed  # refused
        return
    if operation == "quota_remaining":
        assert [quota.remaining() for quota in quotas] == [1, 1]
        return
    if operation == "quota_reset":
        for quota in quotas:
            quota.reset()
        return
    layout = store.layout
    storage = DynamoDBStorage(
        f"dynamodb://{layout.table}", client=store.client, sort_key=layout.sort_key
    )
    key = f"{PREFIX}LIMITER/tenant-7"
    if operation == "limits_reset":
        storage.incr(key, 60)  # something to reset (not recorded)
    storage.store.add_listener(listener)
    if operation == "limits":
        assert storage.incr(key, 60) == 1
        assert storage.get(key) == 1 and storage.get_expiry(key) > 0
        assert storage.acquire_entry(key, 2, 60) and storage.acquire_entry(key, 2, 60)
        assert not storage.acquire_entry(key, 2, 60)
        assert storage.get_moving_window(key, 2, 60)[1] == 2
        assert storage.acquire_sliding_window_entry(key, 2, 60)
        assert storage.get_sliding_window(key, 60)[2] == 1
        storage.clear(key)
        storage.clear_sliding_window(key, 60)
    elif operation == "limits_check":
        assert storage.check()
    else:
        assert storage.reset() == 1


@pytest.mark.parametrize("sort_key", [True, False], ids=["pk+sk", "pk-only"])
def test_quota_and_limits_operations_are_exactly_what_they_send(
    client: Any, sort_key: bool
) -> None:
    """Quotas and the ``limits`` storage: the same requests whatever the strategies, recorded
    here operation by operation; the policy of each operation alone is exactly that."""
    table = new_table_name("iam-quota")
    layout = {"sort_key": "sk" if sort_key else None}
    CounterStore(client, table, **layout).ensure_table()
    try:
        union: set[str] = set()
        for operation in iam.QUOTA_OPERATIONS:
            records: list[CallRecord] = []
            store = CounterStore(client, table, on_call=records.append, **layout)
            _perform_quota(operation, store, records.append)
            sent = set().union(*(needed_actions(r) for r in records))
            union |= sent
            every: list[list[str] | None] = [[], None]
            for strategies in every:  # whatever the strategies (none, all)
                document = iam.policy(
                    table,
                    strategies=strategies,
                    operations=[operation],
                    counter_prefixes=[PREFIX],
                    sort_key=sort_key,
                )
                assert sent == policy_actions(document), operation
            items = statement(document, "CounterItems")
            assert (items is None) == (operation == "limits_check")
            assert items is None or items["Condition"] == {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{PREFIX}*"]}
            }
            for record in records:
                for key in leading_keys(record, "pk"):
                    assert key.startswith(PREFIX), (operation, record.operation, key)
        # What names no key stands apart: the reset's Scan, the check's DescribeTable.
        reset = iam.policy(table, strategies=[], operations=["limits_reset"])
        assert statement(reset, "CounterScans") == {
            "Sid": "CounterScans",
            "Effect": "Allow",
            "Action": ["dynamodb:Scan"],
            "Resource": f"arn:aws:dynamodb:*:*:table/{table}",
        }
        check = iam.policy(table, strategies=[], operations=["limits_check"])
        assert [s["Sid"] for s in check["Statement"]] == ["CounterTable"]
        whole = iam.policy(table, strategies=[], operations=list(iam.QUOTA_OPERATIONS))
        assert policy_actions(whole) == union
    finally:
        client.delete_table(TableName=table)


def test_quota_operations_are_not_in_the_default_policy_and_the_cli_knows_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dynamodb_counters.cli import main

    assert not set(iam.QUOTA_OPERATIONS) & set(iam.DEFAULT_OPERATIONS)
    flags = ["--operation", "quota_hit", "--operation", "quota_remaining"]
    assert main(["iam-policy", "--table", "counters", *flags]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CounterItems",
                "Effect": "Allow",
                "Action": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                "Resource": "arn:aws:dynamodb:*:*:table/counters",
            }
        ],
    }


def _foreign_table(client: Any) -> str:
    name = new_table_name("iam-foreign")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.mark.parametrize("operation", list(iam.TABLE_OPERATIONS))
def test_table_operations_are_exactly_what_ensure_table_sends(client: Any, operation: str) -> None:
    records: list[CallRecord] = []
    # A new table to create, or one someone else made, TTL off.
    table = new_table_name("iam-new") if operation == "create_table" else _foreign_table(client)
    store = CounterStore(client, table, sort_key=None, on_call=records.append)
    try:
        if operation == "create_table":
            report = store.ensure_table()
        elif operation == "enable_ttl":
            report = store.ensure_table(enable_ttl=True)
        else:
            client.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )
            report = store.ensure_table()
        assert report.markers_expire
        sent = set().union(*(needed_actions(r) for r in records))
        document = iam.policy(table, strategies=[], operations=[operation])
        assert sent == policy_actions(document)
        assert [s["Sid"] for s in document["Statement"]] == ["CounterTable"]
    finally:
        client.delete_table(TableName=table)


def test_every_operation_and_strategy_is_in_the_table() -> None:
    """A new public method or strategy fails here until ``iam.OPERATIONS`` says what it sends."""
    counter_methods = {
        name
        for name, member in inspect.getmembers(Counter)
        if not name.startswith("_") and inspect.isfunction(member)
    }
    store_methods = {
        name
        for name, member in inspect.getmembers(CounterStore)
        if not name.startswith("_") and inspect.isfunction(member)
    }
    operations = set(iam.OPERATIONS)
    assert counter_methods <= operations
    assert store_methods - NO_REQUEST - {"ensure_table"} <= operations
    assert set(iam.TABLE_OPERATIONS) == {"check_table", "create_table", "enable_ttl"}
    for strategy in STRATEGIES:
        for operation in ("create", "add", "value", "delete"):
            assert iam.uses_of(operation, strategy), (strategy, operation)


# -- the document ---------------------------------------------------------------------------------


def test_marker_policy_as_printed() -> None:
    document = iam.policy(
        "counters", strategies=["marker"], region="eu-west-1", account="123456789012"
    )
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CounterItems",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:BatchGetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                ],
                "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/counters",
            },
        ],
    }


def test_manage_table_and_prefixes() -> None:
    document = iam.policy(
        "counters",
        strategies=["atomic"],
        operations=["add", "value", *iam.TABLE_OPERATIONS],
        counter_prefixes=["shop#", "tenant-1/"],
        region="cn-north-1",
    )
    items, table = document["Statement"]
    assert items["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert items["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["shop#*", "tenant-1/*"]}
    }
    assert items["Resource"] == "arn:aws-cn:dynamodb:cn-north-1:*:table/counters"
    assert table == {
        "Sid": "CounterTable",
        "Effect": "Allow",
        "Action": [
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
        ],
        "Resource": "arn:aws-cn:dynamodb:cn-north-1:*:table/counters",
    }
    assert "Condition" not in table


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"strategies": ["nope"]}, "unknown strategy"),
        ({"operations": ["drop"]}, "unknown operation"),
        ({"counter_prefixes": ["a*"]}, "without * or ?"),
        ({"counter_prefixes": [""]}, "non-empty"),
        ({"account": "12"}, "account"),
        ({"region": "mars"}, "region"),
        ({"strategies": ["atomic"], "operations": ["compact"]}, "nothing to allow"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(needle)):
        iam.policy("counters", **kwargs)
    with pytest.raises(InvalidInput, match="table name"):
        iam.policy("a b")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynamodb_counters", "iam-policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_the_policy() -> None:
    done = _cli(
        "--table",
        "counters",
        "--strategy",
        "marker",
        "--strategy",
        "atomic",
        "--region",
        "us-east-1",
        "--account",
        "123456789012",
        "--counter-prefix",
        "shop#",
        "--manage-table",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == iam.policy(
        "counters",
        strategies=["marker", "atomic"],
        operations=[*iam.DEFAULT_OPERATIONS, *iam.TABLE_OPERATIONS],
        region="us-east-1",
        account="123456789012",
        counter_prefixes=["shop#"],
    )
    only = _cli("--table", "t1x", "--strategy", "set", "--operation", "value", "--check-table")
    assert json.loads(only.stdout) == iam.policy(
        "t1x", strategies=["set"], operations=["value", "check_table"]
    )
    pk_only = _cli("--table", "t1x", "--strategy", "marker", "--no-sort-key")
    assert policy_actions(json.loads(pk_only.stdout)) == {
        "BatchGetItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "UpdateItem",
    }


def test_cli_bad_account_is_one_line() -> None:
    done = _cli("--table", "counters", "--account", "42")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "dynamodb-counters: error: not a 12-digit AWS account id: '42'"
    ]


def test_readme_shows_the_marker_policy_as_printed() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme.split("The policy for `marker`", 1)[1]
    block = after.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == iam.policy(
        "counters", strategies=["marker"], region="us-east-1", account="123456789012"
    )


def test_the_default_policy_leaves_listing_out_and_says_why_with_a_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 18, item 6: the default policy allowed Scan (every item of the table, whatever
    the prefix) although few applications list counters."""
    from dynamodb_counters.cli import main

    def _cli(*args: str) -> subprocess.CompletedProcess[str]:  # in-process: no interpreter
        code = main(["iam-policy", *args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    assert "counters" not in iam.DEFAULT_OPERATIONS
    plain = _cli("--table", "counters", "--strategy", "atomic")
    assert "Scan" not in policy_actions(json.loads(plain.stdout))
    assert plain.stderr == ""
    prefixed = _cli("--table", "counters", "--strategy", "atomic", "--counter-prefix", "shop#")
    assert "Scan" not in policy_actions(json.loads(prefixed.stdout))
    assert prefixed.stderr.strip().splitlines() == [
        f"dynamodb-counters: note: {iam.SCAN_NOTE}; it is left out of this policy "
        "(--list-counters adds it)"
    ]
    flags = ["--table", "counters", "--strategy", "atomic", "--counter-prefix", "shop#"]
    listed = _cli(*flags, "--list-counters")
    assert statement(json.loads(listed.stdout), "CounterList") == {
        "Sid": "CounterList",
        "Effect": "Allow",
        "Action": ["dynamodb:Scan"],
        "Resource": "arn:aws:dynamodb:*:*:table/counters/index/counter-list",
    }
    assert listed.stderr.strip().splitlines() == [f"dynamodb-counters: note: {iam.SCAN_NOTE}"]
    whole = _cli(*flags, "--list-counters", "scan")
    assert statement(json.loads(whole.stdout), "CounterScans") == {
        "Sid": "CounterScans",
        "Effect": "Allow",
        "Action": ["dynamodb:Scan"],
        "Resource": "arn:aws:dynamodb:*:*:table/counters",
    }
