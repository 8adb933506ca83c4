"""Creating and checking the counters table: :func:`ensure_table`.

What it promises (issues 9 and 12 of the first release):

* **It never changes a table it did not create.** A table this call creates gets string keys,
  on-demand billing and TTL on the store's ``ttl_attribute``. On a table that already exists it only
  reads (DescribeTable, DescribeTimeToLive) and reports; TTL is turned on only when asked
  (``enable_ttl=True``, ``dynamodb-counters table enable-ttl``), and the report says so.
* **Listing reads counter items only.** A table this call creates gets a sparse global secondary
  index, :data:`LIST_INDEX`, keyed on the stored definition (``_def``), an attribute only
  counter items carry (markers, deltas and shards never do), projecting keys only:
  ``store.counters()`` scans it, reading one small entry per counter whatever the history.
  Index writes happen only when a counter is created or deleted (adds change no key of it). A
  table that exists is not changed: without the index ``counters()`` falls back to scanning the
  table (every item), as before; :attr:`TableReport.counter_index` says which. To add the index
  to such a table: ``aws dynamodb update-table`` with the same index (see the README).
* **Counters work without TTL**; only the ``marker`` strategy's markers need it, to expire. So TTL
  off (or an engine without TTL) is a :class:`TableWarning` that says how to turn it on, not an
  error. TTL on *another* attribute is an error: this store's markers would never expire, and the
  fix is one constructor argument.
* **Safe under concurrency.** Many processes may call it on a missing table at once: one creates
  it and turns TTL on; the others wait for that and succeed.
* **One clear error per case:** keys with other names or types (:class:`InvalidInput`), a table
  being deleted or not usable, or still CREATING when ``wait_seconds`` ran out
  (:class:`TableNotFound`), ``enable_ttl=True`` on an engine without TTL (:class:`NotSupported`).
  UPDATING is usable: the table serves reads and writes while it changes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ._io import DynamoIO, error_code, response_of, sdk_retries_of
from ._keys import DEFINITION, Layout
from ._steps import ELAPSED, NOW, Send, Sleep, Steps, run_sync
from .errors import InvalidInput, NotSupported, TableNotFound

__all__ = ["LIST_INDEX", "TableReport", "TableWarning", "ensure_table"]

#: Table states in which reads and writes are served.
USABLE = frozenset({"ACTIVE", "UPDATING"})
#: TTL states in which items expire (ENABLING: AWS takes up to an hour to finish).
TTL_ON = frozenset({"ENABLED", "ENABLING"})
#: Error codes of engines that do not implement an operation (dynalite: UnknownOperationException).
UNSUPPORTED_CODES = frozenset(
    {
        "UnknownOperationException",
        "UnknownOperation",
        "InvalidAction",
        "NotImplemented",
        "NotImplementedException",
        "UnsupportedOperation",
        "UnsupportedOperationException",
    }
)
#: How long a caller that may have lost a creation race waits for the winner to turn TTL on.
RACE_TTL_WAIT_SECONDS = 3.0
#: A table created this recently, with TTL off, may be one a concurrent ensure_table() has just
#: created and is about to turn TTL on for.
RECENT_TABLE_SECONDS = 60.0
_POLL_SECONDS = 0.5
#: The sparse index that lists counters (see the module docstring).
LIST_INDEX = "counter-list"


class TableWarning(UserWarning):
    """``ensure_table()`` found something to fix that does not stop counters from working
    (TTL off, being turned off, or not supported by the engine). The message says how to fix it;
    the same text is in :attr:`TableReport.warnings`."""


@dataclass(frozen=True, slots=True)
class TableReport:
    """What :func:`ensure_table` found and did.

    Attributes:
        table: the table's name.
        created: True when this call created the table.
        status: the table's status when the call returned (``ACTIVE`` or ``UPDATING``).
        ttl_status: ``ENABLED``, ``ENABLING``, ``DISABLED``, ``DISABLING`` or ``UNSUPPORTED``
            (the engine has no TTL).
        ttl_attribute: the attribute TTL is on (the store's), or None when TTL is not on.
        changes: what this call changed, one sentence each (empty on a table left as it was).
        warnings: the :class:`TableWarning` messages this call issued.
        counter_index: the table has :data:`LIST_INDEX`, so ``counters()`` reads counter items
            only (False: it scans the whole table).
    """

    table: str
    created: bool
    status: str
    ttl_status: str
    ttl_attribute: str | None
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    counter_index: bool = False

    @property
    def markers_expire(self) -> bool:
        """True when TTL is on for the store's TTL attribute, so markers expire."""
        return self.ttl_status in TTL_ON


@dataclass(slots=True)
class _Ttl:
    status: str
    attribute: str | None = None
    # "Operation: ErrorCode" when the engine does not support TTL.
    unsupported: str | None = None


@dataclass(slots=True)
class _Run:
    """One ensure_table call: its inputs and what it has done so far."""

    layout: Layout
    wait_seconds: float
    deadline: float
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def table(self) -> str:
        return self.layout.table

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def call(self, operation: str, params: dict[str, Any]) -> Steps[dict[str, Any]]:
        answer: dict[str, Any] = yield Send(operation, params)
        return answer


def warn_about(report: TableReport, stacklevel: int = 3) -> TableReport:
    """Issue a :class:`TableWarning` for each of the report's warnings (at the caller's
    caller, by default); returns the report."""
    for message in report.warnings:
        warnings.warn(TableWarning(message), stacklevel=stacklevel)
    return report


def ensure_table(
    io: DynamoIO,
    layout: Layout,
    *,
    wait_seconds: float = 120.0,
    enable_ttl: bool = False,
    create: bool = True,
) -> TableReport:
    """:func:`ensure_table_steps` run with botocore; warnings issued at the caller."""
    steps = ensure_table_steps(
        layout, wait_seconds=wait_seconds, enable_ttl=enable_ttl, create=create
    )
    return warn_about(run_sync(io, steps))


def ensure_table_steps(
    layout: Layout,
    *,
    wait_seconds: float = 120.0,
    enable_ttl: bool = False,
    create: bool = True,
) -> Steps[TableReport]:
    """Create the table if absent, or check the one that exists; see the module docstring.
    Warnings are in the report (the caller issues them).

    Args:
        layout: the store's keys and attribute names.
        wait_seconds: how long a CREATING table may take to become usable.
        enable_ttl: turn TTL on for ``layout.ttl_attribute`` on an existing table where it is
            off (the only change ever made to a table this call did not create).
        create: create the table when it is missing (False: only check).

    Returns:
        A :class:`TableReport`.

    Raises:
        InvalidInput: the table's keys have other names or types than the store's, or TTL is on
            for another attribute than ``layout.ttl_attribute``.
        TableNotFound: the table is missing (``create=False``), being deleted, not usable, or
            still CREATING after ``wait_seconds``.
        NotSupported: ``enable_ttl=True`` on an engine without TTL.
    """
    started: float = yield ELAPSED
    run = _Run(layout, wait_seconds, started + wait_seconds)
    created = False
    description = yield from _describe(run)
    if description is None:
        if not create:
            raise TableNotFound(
                f"table {run.table!r} does not exist: create it with ensure_table() "
                "(or `dynamodb-counters table create`)"
            )
        description, created = yield from _create(run)
    _check_not_going(run, description)
    _check_keys(run, description)
    description = yield from _wait_usable(run, description)
    # Only a table this call created is changed without being asked.
    if created:
        ttl = yield from _turn_ttl_on(run)
    else:
        now = yield NOW
        new = _recent(description, now)
        ttl = yield from _check_ttl(run, enable_ttl=enable_ttl, new=new)
    return TableReport(
        table=run.table,
        created=created,
        status=str(description.get("TableStatus")),
        ttl_status=ttl.status,
        ttl_attribute=ttl.attribute if ttl.status in TTL_ON else None,
        changes=tuple(run.changes),
        warnings=tuple(run.warnings),
        counter_index=has_list_index(description),
    )


def has_list_index(description: dict[str, Any]) -> bool:
    """The table (its DescribeTable description) has the index that lists counters."""
    indexes = description.get("GlobalSecondaryIndexes") or []
    return any(index.get("IndexName") == LIST_INDEX for index in indexes)


# -- the table --------------------------------------------------------------------------------


def _describe(run: _Run) -> Steps[dict[str, Any] | None]:
    """The table's description, or None when it does not exist."""
    try:
        answer = yield from run.call("DescribeTable", {"TableName": run.table})
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return None
    return dict(answer["Table"])


def _create(run: _Run) -> Steps[tuple[dict[str, Any], bool]]:
    """Create the table; returns its description and whether this call created it."""
    layout = run.layout
    keys = [{"AttributeName": layout.partition_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": layout.partition_key, "AttributeType": "S"}]
    if layout.sort_key is not None:
        keys.append({"AttributeName": layout.sort_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": layout.sort_key, "AttributeType": "S"})
    index = {
        "IndexName": LIST_INDEX,
        "KeySchema": [{"AttributeName": DEFINITION, "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    while True:
        try:
            answer = yield from run.call(
                "CreateTable",
                {
                    "TableName": run.table,
                    "KeySchema": keys,
                    "AttributeDefinitions": [
                        *attributes,
                        {"AttributeName": DEFINITION, "AttributeType": "S"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "GlobalSecondaryIndexes": [index],
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            # Another caller created it between our DescribeTable and CreateTable: fine, it is
            # theirs to set up. (Or a table of that name is still being deleted: then it is gone
            # by the next DescribeTable, and we try again.)
            description = yield from _describe(run)
            now = yield NOW
            elapsed = yield ELAPSED
            if description is not None:
                # Unless botocore re-sent our CreateTable after a lost answer: then the first
                # send created the table a moment ago, and it is ours to set up.
                mine = sdk_retries_of(response_of(exc)) > 0 and _recent(description, now)
                if mine:
                    run.changes.append(_created(run, attributes))
                return description, mine
            if elapsed > run.deadline:
                raise TableNotFound(
                    f"table {run.table!r} could not be created within {run.wait_seconds:g} s "
                    "(a table of that name was in use and then gone)"
                ) from exc
            yield Sleep(_POLL_SECONDS)
            continue
        run.changes.append(_created(run, attributes))
        return dict(answer["TableDescription"]), True


def _created(run: _Run, attributes: list[dict[str, str]]) -> str:
    shape = ", ".join(f"{a['AttributeName']} S" for a in attributes)
    return f"created table {run.table!r} ({shape}, on-demand, index {LIST_INDEX!r})"


def _recent(description: dict[str, Any], now: float) -> bool:
    """Created moments ago, or still being created: perhaps by a concurrent ensure_table()."""
    if description.get("TableStatus") == "CREATING":
        return True
    created = description.get("CreationDateTime")
    if not isinstance(created, datetime):
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return now - created.timestamp() < RECENT_TABLE_SECONDS


def _check_not_going(run: _Run, description: dict[str, Any]) -> None:
    status = description.get("TableStatus")
    if status == "DELETING":
        raise TableNotFound(
            f"table {run.table!r} is being deleted (status DELETING): wait until it is gone, "
            "then call ensure_table() again to create it"
        )
    if status not in USABLE and status != "CREATING":
        raise TableNotFound(f"table {run.table!r} is not usable (status {status})")


def _check_keys(run: _Run, description: dict[str, Any]) -> None:
    layout = run.layout
    schema = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    expected = {"HASH": layout.partition_key}
    if layout.sort_key is not None:
        expected["RANGE"] = layout.sort_key
    if schema != expected:
        raise InvalidInput(
            f"table {run.table!r} has keys {schema}, but this store expects {expected}"
            " (set partition_key= and sort_key= to match; on the command line: --partition-key,"
            " --sort-key or --no-sort-key)"
        )
    types = {
        a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])
    }
    for name in expected.values():
        # Counter names and side-item keys are strings: a number or binary key would make the
        # first write fail with a bare ValidationException.
        kind = types.get(name, "S")
        if kind != "S":
            raise InvalidInput(
                f"table {run.table!r}: key attribute {name!r} has type {kind}, but counters "
                "need string keys (S)"
            )


def _wait_usable(run: _Run, description: dict[str, Any]) -> Steps[dict[str, Any]]:
    while description.get("TableStatus") not in USABLE:
        _check_not_going(run, description)
        elapsed = yield ELAPSED
        if elapsed > run.deadline:
            raise TableNotFound(
                f"table {run.table!r} is still {description.get('TableStatus')} after "
                f"{run.wait_seconds:g} s"
            )
        yield Sleep(_POLL_SECONDS)
        again = yield from _describe(run)
        if again is None:
            raise TableNotFound(f"table {run.table!r} was deleted while it was being created")
        description = again
    return description


# -- TTL --------------------------------------------------------------------------------------


def _describe_ttl(run: _Run) -> Steps[_Ttl]:
    try:
        answer = yield from run.call("DescribeTimeToLive", {"TableName": run.table})
    except ClientError as exc:
        if error_code(exc) not in UNSUPPORTED_CODES:
            raise
        return _Ttl("UNSUPPORTED", unsupported=f"DescribeTimeToLive: {error_code(exc)}")
    described = answer.get("TimeToLiveDescription") or {}
    return _Ttl(str(described.get("TimeToLiveStatus", "DISABLED")), described.get("AttributeName"))


def _update_ttl(run: _Run) -> Steps[_Ttl]:
    """Turn TTL on for the store's attribute; returns the TTL state that follows."""
    attribute = run.layout.ttl_attribute
    try:
        yield from run.call(
            "UpdateTimeToLive",
            {
                "TableName": run.table,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
            },
        )
    except ClientError as exc:
        code = error_code(exc)
        if code in UNSUPPORTED_CODES:
            return _Ttl("UNSUPPORTED", unsupported=f"UpdateTimeToLive: {code}")
        if code != "ValidationException":
            raise
        # "TimeToLive is already enabled": someone turned it on between our look and our change.
        # Fine if it is on for our attribute; any other refusal stands.
        ttl = yield from _describe_ttl(run)
        if ttl.status not in TTL_ON:
            raise
        _check_ttl_attribute(run, ttl)
        if sdk_retries_of(response_of(exc)) > 0:
            # botocore re-sent ours after a lost answer: the first send was the change.
            run.changes.append(_ttl_turned_on(run))
        return ttl
    else:
        run.changes.append(_ttl_turned_on(run))
    ttl = yield from _describe_ttl(run)
    _check_ttl_attribute(run, ttl)
    return ttl


def _ttl_turned_on(run: _Run) -> str:
    return f"turned TTL on for attribute {run.layout.ttl_attribute!r} of table {run.table!r}"


def _turn_ttl_on(run: _Run) -> Steps[_Ttl]:
    """A table this call created: TTL on, or a warning when the engine has none."""
    ttl = yield from _update_ttl(run)
    if ttl.unsupported:
        run.warn(_unsupported(run, ttl))
    return ttl


def _check_ttl(run: _Run, *, enable_ttl: bool, new: bool) -> Steps[_Ttl]:
    """A table this call did not create: report, change only when asked.

    ``new``: the table was created moments ago, perhaps by a concurrent ensure_table().
    """
    ttl = yield from _describe_ttl(run)
    if new and not enable_ttl:
        # The caller that won a creation race turns TTL on right after the table is ACTIVE:
        # give it a moment rather than warn that TTL is off.
        elapsed = yield ELAPSED
        until = min(run.deadline, elapsed + RACE_TTL_WAIT_SECONDS)
        while ttl.status == "DISABLED" and elapsed < until:
            yield Sleep(_POLL_SECONDS / 2)
            ttl = yield from _describe_ttl(run)
            elapsed = yield ELAPSED
    if ttl.unsupported:
        if enable_ttl:
            raise NotSupported(
                f"table {run.table!r}: this DynamoDB engine does not support TTL "
                f"({ttl.unsupported}), so enable_ttl=True cannot be honoured"
            )
        run.warn(_unsupported(run, ttl))
        return ttl
    _check_ttl_attribute(run, ttl)
    if ttl.status in TTL_ON:
        return ttl
    if ttl.status == "DISABLED":
        if enable_ttl:
            return (yield from _update_ttl(run))
        run.warn(
            f"table {run.table!r}: TTL is off, so markers (the `marker` strategy's evidence of "
            "counted request ids) never expire and the table keeps growing; counters work "
            f"regardless. {_how_to_enable(run)}"
        )
        return ttl
    # DISABLING (AWS takes up to an hour; TTL cannot be turned on again meanwhile) or a state
    # this library does not know.
    run.warn(
        f"table {run.table!r}: TTL is being turned off ({ttl.status}): markers will not expire. "
        f"When that has finished: {_how_to_enable(run)}"
    )
    return ttl


def _check_ttl_attribute(run: _Run, ttl: _Ttl) -> None:
    attribute = run.layout.ttl_attribute
    if ttl.status in TTL_ON and ttl.attribute != attribute:
        raise InvalidInput(
            f"table {run.table!r} has TTL on attribute {ttl.attribute!r}, but this store writes "
            f"markers with {attribute!r}, so they would never expire: "
            f"pass ttl_attribute={ttl.attribute!r} (on the command line: "
            f"--ttl-attribute {ttl.attribute})"
        )


def _how_to_enable(run: _Run) -> str:
    table, attribute = run.table, run.layout.ttl_attribute
    return (
        f"Turn TTL on for {attribute!r} with ensure_table(enable_ttl=True), "
        f"`dynamodb-counters table enable-ttl --table {table}` or "
        f"`aws dynamodb update-time-to-live --table-name {table} "
        f"--time-to-live-specification Enabled=true,AttributeName={attribute}`"
    )


def _unsupported(run: _Run, ttl: _Ttl) -> str:
    return (
        f"table {run.table!r}: this DynamoDB engine does not support TTL ({ttl.unsupported}): "
        "markers will never expire"
    )
