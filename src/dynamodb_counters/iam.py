"""Least-privilege IAM policies for what the library actually sends.

:data:`OPERATIONS` is the one table: for each library operation, per strategy, the DynamoDB
requests the code sends (``tests/test_iam.py`` records them on DynamoDB Local for every strategy,
operation and table layout and checks that the table says exactly that). :func:`policy` derives
the policy from it:

* **Actions.** One per API operation, except transactions, which IAM authorises item by item:
  a ``TransactWriteItems`` with an ``Update`` and a ``Put`` needs ``dynamodb:UpdateItem`` and
  ``dynamodb:PutItem`` (there is no ``dynamodb:TransactWriteItems`` action).
* **Resource.** The table's ARN; listing (``store.counters()``) scans the sparse index
  :data:`~dynamodb_counters.table.LIST_INDEX`, whose ARN is the resource of its statement.
* **``dynamodb:LeadingKeys``.** Counter names are arbitrary, so a condition on the partition key
  helps only when the caller's names share a prefix: ``counter_prefixes=["shop#"]`` limits every
  item action to partition keys starting with it. That covers everything a counter keeps: in a
  table with a sort key, markers and deltas share the counter's partition key; in a
  partition-key-only table a marker's key is the counter's name plus a suffix; a ``sharded``
  counter's shards and their markers are on ``<name>#shard#<i>``. A prefix cannot
  restrict ``Scan`` (a scan names no key), so any scan action goes in a statement of its own.
* **Table management** (create, check, turn TTL on) only when asked: ``ensure_table()`` on an
  existing table needs ``check_table``; creating it or turning TTL on needs more.
* **Quotas and the ``limits`` storage** (:data:`QUOTA_OPERATIONS`) send the same requests
  whatever the counters' strategies, and only when asked (not in the default policy). A quota's
  items are on ``<name>#quota#...`` and a ``limits`` key's on ``<key>#quota#limits-...``, so a
  prefix of the names (``LIMITER/``: ``limits``' default namespace) restricts them too --
  except a ``limits`` key over 1,000 bytes, kept under its SHA-256 (``#sha256#...``). The
  storage's ``reset()`` scans the table and ``check()`` describes it: neither names a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .strategies import STRATEGIES
from .table import LIST_INDEX

__all__ = [
    "COUNTER_OPERATIONS",
    "DEFAULT_OPERATIONS",
    "OPERATIONS",
    "QUOTA_OPERATIONS",
    "TABLE_OPERATIONS",
    "Use",
    "actions_for",
    "policy",
    "table_arn",
    "uses_of",
]


@dataclass(frozen=True, slots=True)
class Use:
    """One kind of DynamoDB request a library operation sends.

    Attributes:
        api: the DynamoDB API operation, e.g. ``"UpdateItem"`` or ``"TransactWriteItems"``.
        items: for transactions, the kinds of item actions in it (``"Put"``, ``"Update"``,
            ``"Delete"``, ``"ConditionCheck"``, ``"Get"``).
        sort_key_only: sent only in a table with a sort key.
        index: the index it reads (its ARN is the resource), or None for the table.
    """

    api: str
    items: tuple[str, ...] = ()
    sort_key_only: bool = False
    index: str | None = None


#: Any strategy (entries for a named strategy take its place).
ANY = "*"

_SIDE_QUERY = Use("Query", sort_key_only=True)
_SNAPSHOT = Use("TransactGetItems", ("Get",))
# Holds (a table with a sort key): a reserve's transaction, the ending of holds (a reclaim,
# or a commit or cancel that returns the amount), the read of a hold or its ended record.
_RESERVE = Use("TransactWriteItems", ("Update", "Put", "ConditionCheck"), sort_key_only=True)
_HOLD_END = Use("TransactWriteItems", ("Update", "Delete", "Put"), sort_key_only=True)
_HOLD_READ = Use("GetItem", sort_key_only=True)
_HOLD_OPERATIONS: Mapping[str, tuple[Use, ...]] = {
    # A refused reserve reclaims (a Query a partition) and tries once more; sharded refuses from
    # a snapshot, and reads the hold's ended record (a re-sent reserve of an ended hold).
    "reserve": (_RESERVE, _SIDE_QUERY, _HOLD_END),
    "commit": (
        _HOLD_READ,
        Use("TransactWriteItems", ("Delete", "Put"), sort_key_only=True),
        _HOLD_END,
    ),
    "cancel": (_HOLD_READ, _HOLD_END),
    "holds": (_SIDE_QUERY,),
    "reclaim": (_SIDE_QUERY, _HOLD_END),
}
_SHARDED_RESERVE = (
    *_HOLD_OPERATIONS["reserve"],
    Use("BatchGetItem", sort_key_only=True),
    Use("TransactGetItems", ("Get",), sort_key_only=True),
    _HOLD_READ,
)
#: A handle's first operation reads the counter item (its stored definition and incarnation):
#: every operation of a fresh process sends it once, whatever the strategy.
_FIRST_USE = Use("GetItem")

#: Library operation -> strategy (or :data:`ANY`) -> the requests it sends in a fresh process.
#: Keep it to what the code does: the test fails on an action no operation sends as on one the
#: policy lacks.
OPERATIONS: Mapping[str, Mapping[str, tuple[Use, ...]]] = {
    # One transaction with the create call's own token (sharded: with its shards).
    "create": {ANY: (Use("TransactWriteItems", ("Put",)),)},
    "add": {
        "atomic": (_FIRST_USE, Use("UpdateItem")),
        "occ": (_FIRST_USE, Use("UpdateItem")),
        "occ_history": (_FIRST_USE, Use("UpdateItem")),
        "transaction": (_FIRST_USE, Use("TransactWriteItems", ("Update",))),
        "marker": (_FIRST_USE, Use("TransactWriteItems", ("Update", "Put"))),
        "collection": (_FIRST_USE, Use("TransactWriteItems", ("ConditionCheck", "Put"))),
        "set": (_FIRST_USE, Use("UpdateItem")),
        # A dry shard: a snapshot of the shards and the marker, then the move.
        "sharded": (
            _FIRST_USE,
            Use("TransactWriteItems", ("Update", "Put")),
            Use("BatchGetItem"),
            _SNAPSHOT,
        ),
    },
    "value": {
        ANY: (_FIRST_USE,),
        "collection": (_FIRST_USE, Use("Query")),
        "sharded": (_FIRST_USE, _SNAPSHOT),
    },
    # The sweep of markers and deltas runs for every strategy: items of the counter's name may
    # be there whatever the strategy (a delete whose answer was lost, older releases).
    "delete": {
        ANY: (
            _FIRST_USE,
            Use("DeleteItem"),
            _SIDE_QUERY,
            Use("BatchWriteItem", sort_key_only=True),
        ),
        "sharded": (
            _FIRST_USE,
            Use("TransactWriteItems", ("Delete",)),
            _SIDE_QUERY,
            Use("BatchWriteItem", sort_key_only=True),
        ),
    },
    "inspect": {
        ANY: (_FIRST_USE, _SIDE_QUERY),
        "collection": (_FIRST_USE, Use("Query")),
        "sharded": (_FIRST_USE, _SNAPSHOT, _SIDE_QUERY),
    },
    "compact": {
        "collection": (_FIRST_USE, Use("Query"), Use("TransactWriteItems", ("Update", "Delete")))
    },
    # Not in the default policy (see :func:`policy`): a Scan names no key, so no counter prefix
    # restricts it. ``counters``: the sparse index of a table made by ensure_table() (every
    # counter's key); ``counters_scan``: the whole table (a table without the index, or
    # ``counters(scan=True)``).
    "counters": {ANY: (Use("Scan", index=LIST_INDEX),)},
    "counters_scan": {ANY: (Use("Scan"),)},
    "values": {
        ANY: (Use("BatchGetItem"),),
        "collection": (Use("BatchGetItem"), Use("Query"), Use("GetItem")),
        "sharded": (Use("BatchGetItem"), _SNAPSHOT),
    },
    **{
        operation: {
            # A fresh process reads the counter item first (holds: tables with a sort key only).
            "marker": (_HOLD_READ, *uses),
            "sharded": (_HOLD_READ, *(_SHARDED_RESERVE if operation == "reserve" else uses)),
        }
        for operation, uses in _HOLD_OPERATIONS.items()
    },
}

#: ``ensure_table()`` in its three uses: on an existing table (checks only), on a missing table
#: (creates it, TTL on), with ``enable_ttl=True`` on a table whose TTL is off.
TABLE_OPERATIONS: Mapping[str, tuple[Use, ...]] = {
    "check_table": (Use("DescribeTable"), Use("DescribeTimeToLive")),
    "create_table": (
        Use("DescribeTable"),
        Use("CreateTable"),
        Use("UpdateTimeToLive"),
        Use("DescribeTimeToLive"),
    ),
    "enable_ttl": (Use("DescribeTable"), Use("DescribeTimeToLive"), Use("UpdateTimeToLive")),
}

#: Quotas (``store.quota(...)``) and the ``limits`` storage (``dynamodb_counters.limits``):
#: operation -> the requests it sends, for every window type, whatever the strategies.
QUOTA_OPERATIONS: Mapping[str, tuple[Use, ...]] = {
    # The window's conditional ADD; sliding: the seal of the previous window too (an update).
    "quota_hit": (Use("UpdateItem"),),
    # The window's count (GetItem); sliding: both windows in one BatchGetItem.
    "quota_remaining": (Use("GetItem"), Use("BatchGetItem")),
    # A conditional delete; a sealed sliding window is emptied (an update) and kept sealed.
    "quota_reset": (Use("DeleteItem"), Use("UpdateItem")),
    # Every strategy of limits: fixed window (an update, a put for a new window), moving
    # window (a read, a conditional put), sliding window counter (the native quota's requests),
    # get_expiry and clear (deletes).
    "limits": (
        Use("GetItem"),
        Use("BatchGetItem"),
        Use("PutItem"),
        Use("UpdateItem"),
        Use("DeleteItem"),
    ),
    "limits_check": (Use("DescribeTable"),),
    # Finds what the storage wrote with a Scan (no key to restrict), deletes it in batches.
    "limits_reset": (Use("Scan"), Use("BatchWriteItem")),
}

COUNTER_OPERATIONS = tuple(OPERATIONS)
#: Operations a policy holds unless told otherwise: all but listing (``store.counters()``),
#: whose Scan reads every item of the table and which ``dynamodb:LeadingKeys`` cannot restrict.
DEFAULT_OPERATIONS = tuple(op for op in OPERATIONS if op not in ("counters", "counters_scan"))
#: Said on stderr by ``iam-policy`` when a counter prefix is given (a policy is JSON only).
SCAN_NOTE = (
    "listing counters (store.counters(), `counter list`) sends a Scan, which "
    "dynamodb:LeadingKeys cannot restrict to the prefix: it reads every counter's name (of "
    f"the index {LIST_INDEX!r}), or with --list-counters scan every item of the table"
)

# IAM actions on the table itself (its CounterTable statement).
_TABLE_ACTIONS = frozenset(
    {"DescribeTable", "DescribeTimeToLive", "CreateTable", "UpdateTimeToLive"}
)
# IAM actions that DynamoDB authorises per item, so dynamodb:LeadingKeys can restrict them.
_KEYED_ACTIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "ConditionCheckItem",
    }
)
_TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_REGION = re.compile(r"\*|[a-z]{2}(-[a-z]+)+-\d+")
_ACCOUNT = re.compile(r"\*|\d{12}")


def actions_for(use: Use) -> frozenset[str]:
    """The IAM actions (without the ``dynamodb:`` prefix) one kind of request needs."""
    if use.api in ("TransactWriteItems", "TransactGetItems"):
        return frozenset(_TRANSACT_ITEM_ACTIONS[kind] for kind in use.items)
    return frozenset({use.api})


def uses_of(operation: str, strategy: str, *, sort_key: bool = True) -> tuple[Use, ...]:
    """The requests ``operation`` sends for ``strategy`` (empty if it sends none)."""
    if operation in TABLE_OPERATIONS:
        uses = TABLE_OPERATIONS[operation]
    elif operation in QUOTA_OPERATIONS:
        uses = QUOTA_OPERATIONS[operation]
    else:
        by_strategy = OPERATIONS[operation]
        uses = by_strategy.get(strategy, by_strategy.get(ANY, ()))
    return tuple(u for u in uses if sort_key or not u.sort_key_only)


def table_arn(table: str, *, region: str = "*", account: str = "*") -> str:
    """The table's ARN (partition ``aws``, ``aws-cn`` or ``aws-us-gov`` from the region)."""
    partition = "aws"
    if region.startswith("cn-"):
        partition = "aws-cn"
    elif region.startswith("us-gov-"):
        partition = "aws-us-gov"
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{table}"


def policy(
    table: str,
    *,
    strategies: Iterable[str] | None = None,
    operations: Iterable[str] | None = None,
    region: str = "*",
    account: str = "*",
    counter_prefixes: Iterable[str] = (),
    sort_key: bool = True,
) -> dict[str, Any]:
    """The least-privilege IAM policy document for the given strategies and operations.

    Args:
        table: the table's name.
        strategies: strategy ids (default: all).
        operations: library operations: any of :data:`OPERATIONS` (default: all but
            ``counters``, :data:`DEFAULT_OPERATIONS`), of :data:`QUOTA_OPERATIONS` and of
            :data:`TABLE_OPERATIONS` (none by default).
        region: the table's region, or ``"*"``.
        account: the 12-digit account id, or ``"*"``.
        counter_prefixes: when every counter name starts with one of these, item actions are
            limited to partition keys with that prefix (``dynamodb:LeadingKeys``).
        sort_key: the table has a sort key (a partition-key-only table needs fewer actions).

    Returns:
        The policy as a dict, ready for ``json.dumps``.

    Raises:
        InvalidInput: an unknown strategy or operation, a malformed name, region, account or
            prefix, or a choice that sends no request at all (no policy to print).
    """
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise InvalidInput(f"not a DynamoDB table name: {table!r}")
    if not _REGION.fullmatch(region):
        raise InvalidInput(f"not an AWS region: {region!r}")
    if not _ACCOUNT.fullmatch(account):
        raise InvalidInput(f"not a 12-digit AWS account id: {account!r}")
    chosen = list(STRATEGIES) if strategies is None else list(strategies)
    for strategy in chosen:
        if strategy not in STRATEGIES:
            known = ", ".join(STRATEGIES)
            raise InvalidInput(f"unknown strategy {strategy!r}; choose from {known}")
    wanted = list(DEFAULT_OPERATIONS) if operations is None else list(operations)
    for operation in wanted:
        if not any(
            operation in known for known in (OPERATIONS, QUOTA_OPERATIONS, TABLE_OPERATIONS)
        ):
            known = ", ".join([*OPERATIONS, *QUOTA_OPERATIONS, *TABLE_OPERATIONS])
            raise InvalidInput(f"unknown operation {operation!r}; choose from {known}")
    prefixes = list(counter_prefixes)
    for prefix in prefixes:
        # IAM's StringLike has no escape for its wildcards.
        if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "*?"):
            raise InvalidInput(
                f"a counter prefix must be a non-empty str without * or ?: {prefix!r}"
            )

    item_actions: set[str] = set()
    table_actions: set[str] = set()
    index_actions: dict[str, set[str]] = {}
    for operation in wanted:
        if operation in TABLE_OPERATIONS or operation in QUOTA_OPERATIONS:
            # The same requests whatever the strategies.
            for use in uses_of(operation, "", sort_key=sort_key):
                needed = actions_for(use)
                table_actions.update(needed & _TABLE_ACTIONS)
                item_actions.update(needed - _TABLE_ACTIONS)
            continue
        for strategy in chosen:
            for use in uses_of(operation, strategy, sort_key=sort_key):
                if use.index is not None:
                    index_actions.setdefault(use.index, set()).update(actions_for(use))
                else:
                    item_actions.update(actions_for(use))
    resource = table_arn(table, region=region, account=account)
    statements: list[dict[str, Any]] = []
    keyed = sorted(item_actions & _KEYED_ACTIONS)
    if keyed:
        statement: dict[str, Any] = {
            "Sid": "CounterItems",
            "Effect": "Allow",
            "Action": [f"dynamodb:{a}" for a in keyed],
            "Resource": resource,
        }
        if prefixes:
            statement["Condition"] = {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in prefixes]}
            }
        statements.append(statement)
    unkeyed = sorted(item_actions - _KEYED_ACTIONS)
    if unkeyed:
        statements.append(
            {
                # No partition key to restrict (Scan): the whole table, whatever the prefixes.
                "Sid": "CounterScans",
                "Effect": "Allow",
                "Action": [f"dynamodb:{a}" for a in unkeyed],
                "Resource": resource,
            }
        )
    for index, actions in sorted(index_actions.items()):
        statements.append(
            {
                # The listing index: a Scan names no key either, so no prefix condition.
                "Sid": "CounterList",
                "Effect": "Allow",
                "Action": [f"dynamodb:{a}" for a in sorted(actions)],
                "Resource": f"{resource}/index/{index}",
            }
        )
    if table_actions:
        statements.append(
            {
                "Sid": "CounterTable",
                "Effect": "Allow",
                "Action": [f"dynamodb:{a}" for a in sorted(table_actions)],
                "Resource": resource,
            }
        )
    if not statements:
        raise InvalidInput(
            f"nothing to allow: operations {', '.join(wanted) or '(none)'} send no request "
            f"for strategies {', '.join(chosen) or '(none)'}"
        )
    return {"Version": "2012-10-17", "Statement": statements}
