"""A DynamoDB storage for ``limits`` (the engine under Flask-Limiter and SlowAPI; SPEC section 12).

``import dynamodb_counters.limits`` registers two schemes::

    from limits.storage import storage_from_string
    storage = storage_from_string("dynamodb://counters?region=eu-west-1")
    storage = storage_from_string("async+dynamodb://counters", client=entered_aiobotocore_client)

URI ``dynamodb://TABLE`` (query parameters ``region`` and ``endpoint_url``); keyword options
``endpoint_url``, ``region_name``, ``client`` (a ready boto3 client, or an entered aiobotocore
client for ``async+dynamodb``) and the table layout options of
:class:`~dynamodb_counters.CounterStore`. The table must exist (``store.ensure_table()`` or
``dynamodb-counters table create``): a missing one raises :class:`~dynamodb_counters.TableNotFound`
naming both, and ``check()`` is False. Install with ``pip install 'dynamodb-counters[limits]'``.

What each of ``limits``' strategies costs, and how:

* **Fixed window** (``incr``): one item per key, its count and the window's end; one UpdateItem
  ``ADD`` on condition that the window has not ended (one write unit); the first hit of a new
  window replaces the ended one with a conditional PutItem (a second write unit). ``limits``
  counts a refused hit too, as it does on Redis.
* **Moving window** (``acquire_entry``): the hits of the last ``expiry`` seconds in one item per
  key, as ``[timestamp, amount]`` pairs, newest first; one strongly consistent GetItem, then a
  PutItem on condition that the item is the one read (the nonce of the write that made it, which
  never comes back, unlike a version number after a delete); a lost race re-reads from the
  failed condition's answer, no extra request. The item holds at most ``limit`` pairs of ~20
  bytes: a hit costs ``ceil(20·n / 1024)`` write units and half as many read units for the
  ``n`` hits in the window (``limit=100``: 2 write units at most; ``limit=1000``: 20).
* **Sliding window counter** (``acquire_sliding_window_entry``): the native sliding quota
  (:mod:`dynamodb_counters.quota`) with the previous window's weight rounded down, as ``limits``
  defines it: one conditional UpdateItem (one write unit) per hit, and the seal of the previous
  window (one more write unit) per window and key in this process. Windows are aligned to the
  epoch (``TimestampedSlidingWindow``).

Exact under concurrency: every write carries its limit in a condition, so 100 threads get
exactly the limit. Under lost answers a hit may be counted twice (``limits`` gives no request
id): that only ever refuses early. The native API with ``request_id`` is exact.

Keys longer than ``limits`` keys usually are (over 1,000 UTF-8 bytes, or containing the reserved
``"#quota#"``) are replaced by their SHA-256, never truncated. Items live under the reserved
quota prefix (``_keys``), ``limits-<strategy>`` kinds: ``reset()`` removes exactly those.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import limits.aio.storage as aio_base
from botocore.exceptions import BotoCoreError, ClientError
from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

from ._io import error_code, response_of
from ._keys import EXPIRES as _EXP
from ._keys import HITS, LAST, QUOTA_INFIX, VERSION, Layout
from ._steps import BATCH_TRIES, NOW, Send, Sleep, Steps, run_sync, unprocessed_pause
from .errors import ContentionError, CounterError, InvalidInput
from .quota import QuotaCore
from .strategies.base import new_nonce

_T = TypeVar("_T")

FIXED = "limits-fixed"
MOVING = "limits-moving"
SLIDING = "limits-sliding"
#: Keys longer than this (UTF-8 bytes) are hashed: DynamoDB allows 2,048 for a partition key.
MAX_KEY_BYTES = 1000
_HASHED = "#sha256#"
#: Optimistic tries of one moving-window hit (each lost try means another hit was written).
MOVING_TRIES = 64
# Keys whose items (moving) or quotas (sliding) a storage remembers.
_KEPT = 4096
_LAYOUT_OPTIONS = frozenset(
    {"partition_key", "sort_key", "value_attribute", "counter_sort_value", "ttl_attribute"}
)


def storage_name(key: str) -> str:
    """The quota name a ``limits`` key is kept under: the key itself, or its SHA-256 when it is
    too long or holds the reserved infix (never truncated)."""
    if len(key.encode("utf-8")) <= MAX_KEY_BYTES and QUOTA_INFIX not in key and _HASHED not in key:
        return key
    return _HASHED + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _exception_is_condition(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class LimitsCore:
    """Every operation of the storage as steps (I/O-free); the sync and async storages run them."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        # (name, expiry, limit) -> the sliding quota, which remembers ended windows' counts.
        self._sliding: dict[tuple[str, int, int], QuotaCore] = {}
        # name -> the moving window's item as last seen (see acquire_entry_steps).
        self._moving: dict[str, dict[str, Any]] = {}

    # -- items --------------------------------------------------------------------------------

    def _key(self, key: str, kind: str) -> dict[str, Any]:
        return self.layout.quota_key(storage_name(key), kind, "0")

    def _get(self, key: str, kind: str) -> Steps[dict[str, Any]]:
        answer: dict[str, Any] = yield Send(
            "GetItem",
            {"TableName": self.layout.table, "Key": self._key(key, kind), "ConsistentRead": True},
            counter=key,
            strategy=kind,
        )
        return dict(answer.get("Item") or {})

    def _delete(self, key: dict[str, Any]) -> Send:
        return Send("DeleteItem", {"TableName": self.layout.table, "Key": key}, strategy="limits")

    # -- fixed window -------------------------------------------------------------------------

    def incr_steps(self, key: str, expiry: float, amount: int = 1) -> Steps[int]:
        layout = self.layout
        names = {"#v": layout.value_attribute, "#exp": _EXP}
        for _ in range(MOVING_TRIES):
            now: float = yield NOW
            values = {":amount": {"N": str(amount)}, ":now": {"N": repr(now)}}
            try:
                # The window this key started has not ended: count in it.
                answer: dict[str, Any] = yield Send(
                    "UpdateItem",
                    {
                        "TableName": layout.table,
                        "Key": self._key(key, FIXED),
                        "UpdateExpression": "ADD #v :amount",
                        "ConditionExpression": "#exp > :now",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                        "ReturnValues": "UPDATED_NEW",
                    },
                    counter=key,
                    strategy=FIXED,
                )
                return int(answer["Attributes"][layout.value_attribute]["N"])
            except ClientError as exc:
                if not _exception_is_condition(exc):
                    raise
            ends = now + expiry
            item = {
                **self._key(key, FIXED),
                layout.value_attribute: {"N": str(amount)},
                _EXP: {"N": repr(ends)},
                layout.ttl_attribute: {"N": str(math.ceil(ends))},
            }
            try:
                # No window, or an ended one: start a new window -- unless another hit just did.
                yield Send(
                    "PutItem",
                    {
                        "TableName": layout.table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(#exp) OR #exp <= :now",
                        "ExpressionAttributeNames": {"#exp": _EXP},
                        "ExpressionAttributeValues": {":now": values[":now"]},
                    },
                    counter=key,
                    strategy=FIXED,
                )
                return amount
            except ClientError as exc:
                if not _exception_is_condition(exc):
                    raise
        raise ContentionError(f"limits key {key!r}: {MOVING_TRIES} tries lost to other hits")

    def _fixed(self, key: str) -> Steps[tuple[int, float | None]]:
        now: float = yield NOW
        item = yield from self._get(key, FIXED)
        ends = item.get(_EXP)
        if ends is None or float(ends["N"]) <= now:
            return 0, None
        return int(item[self.layout.value_attribute]["N"]), float(ends["N"])

    def get_steps(self, key: str) -> Steps[int]:
        count, _ = yield from self._fixed(key)
        return count

    def get_expiry_steps(self, key: str) -> Steps[float]:
        now: float = yield NOW
        _, ends = yield from self._fixed(key)
        return now if ends is None else ends

    # -- moving window ------------------------------------------------------------------------

    @staticmethod
    def _hits(item: Mapping[str, Any], now: float, expiry: float) -> list[tuple[float, int]]:
        """The ``(timestamp, amount)`` pairs of the last ``expiry`` seconds, newest first."""
        pairs = (
            (float(p["L"][0]["N"]), int(p["L"][1]["N"])) for p in item.get(HITS, {}).get("L", [])
        )
        return [(at, amount) for at, amount in pairs if at >= now - expiry]

    def acquire_entry_steps(
        self, key: str, limit: int, expiry: float, amount: int = 1
    ) -> Steps[bool]:
        if amount > limit:
            return False
        layout = self.layout
        name = storage_name(key)
        nonce = new_nonce()
        # The item as this process last saw it: while it is the key's only writer, a hit is
        # one PutItem. Never trusted for a refusal, nor for a grant: the write's condition
        # says whether it is still the item, and a refusal is decided on a consistent read.
        item, fresh = self._moving.get(name), False
        for attempt in range(MOVING_TRIES):
            if item is None:
                item, fresh = (yield from self._get(key, MOVING)), True
            now: float = yield NOW
            hits = self._hits(item, now, expiry)
            if sum(n for _, n in hits) + amount > limit:
                if not fresh:
                    item = None
                    continue
                self._remember(name, item)
                return False
            version = int(item.get(VERSION, {}).get("N", "0"))
            pairs = [(round(now, 6), amount), *hits]
            new = {
                **self._key(key, MOVING),
                HITS: {"L": [{"L": [{"N": repr(at)}, {"N": str(n)}]} for at, n in pairs]},
                VERSION: {"N": str(version + 1)},
                LAST: {"S": nonce},
                layout.ttl_attribute: {"N": str(math.ceil(now + expiry))},
            }
            # Written over exactly the item the hits were counted on: no hit in between. The
            # item is known by the nonce of the write that made it, never by its version: a
            # version starts again at 1 once clear() or TTL deleted the item, and a remembered
            # item of the same version would then overwrite (lose) the hits written since.
            condition, values = "attribute_not_exists(#last)", {}
            if LAST in item:
                condition, values = "#last = :last", {":last": item[LAST]}
            params: dict[str, Any] = {
                "TableName": layout.table,
                "Item": new,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#last": LAST},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            if values:
                params["ExpressionAttributeValues"] = values
            try:
                yield Send("PutItem", params, counter=key, strategy=MOVING)
            except ClientError as exc:
                if not _exception_is_condition(exc):
                    raise
                item, fresh = dict(response_of(exc).get("Item") or {}), True
                if item.get(LAST, {}).get("S") == nonce:
                    self._remember(name, item)
                    return True  # botocore re-sent our landed write
                if attempt:
                    yield Sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                continue
            self._remember(name, new)
            return True
        raise ContentionError(f"limits key {key!r}: {MOVING_TRIES} tries lost to other hits")

    def _remember(self, name: str, item: dict[str, Any]) -> None:
        if len(self._moving) >= _KEPT:
            self._moving.clear()
        self._moving[name] = item

    def get_moving_window_steps(
        self, key: str, limit: int, expiry: float
    ) -> Steps[tuple[float, int]]:
        item = yield from self._get(key, MOVING)
        self._remember(storage_name(key), item)
        now: float = yield NOW  # after the read: as close as can be to the caller's clock
        hits = self._hits(item, now, expiry)
        if not hits:
            return now, 0
        return hits[-1][0], sum(n for _, n in hits)

    # -- sliding window counter ---------------------------------------------------------------

    def _quota(self, key: str, expiry: float, limit: int = 1) -> QuotaCore:
        name = storage_name(key)
        found = self._sliding.get((name, int(expiry * 1000), limit))
        if found is None:
            if len(self._sliding) >= _KEPT:
                self._sliding.clear()
            per_ms = int(expiry * 1000)
            found = QuotaCore(
                self.layout,
                name,
                limit=limit,
                per=per_ms / 1000,
                window="sliding",
                kind=f"{SLIDING}#{per_ms}",
                strict=False,
                deny_when_unsure=True,
            )
            self._sliding[(name, per_ms, limit)] = found
        return found

    def acquire_sliding_steps(
        self, key: str, limit: int, expiry: float, amount: int = 1
    ) -> Steps[bool]:
        if amount > limit:
            return False
        quota = self._quota(key, expiry, limit)
        if amount == 0:
            # A hit of cost 0 counts nothing; limits' own storages allow it unless the window
            # is over its limit (lowered since), and so does this one, on a consistent read.
            now, k, previous, current = yield from quota.window_counts_steps()
            return current + quota.weighted(previous, now, k) <= limit
        decision = yield from quota.hit_steps(amount)
        return decision.allowed

    def get_sliding_window_steps(
        self, key: str, expiry: float
    ) -> Steps[tuple[int, float, int, float]]:
        quota = self._quota(key, expiry)
        for _ in range(MOVING_TRIES):
            _, k, previous, current = yield from quota.window_counts_steps((yield NOW))
            # The times left are the caller's next clock reading's (limits adds them to its
            # own time.time()): taken after the reads, in the window they read.
            now: float = yield NOW
            if quota.index(now) == k:
                break
        previous_ttl = quota.start(k + 1) - now if previous else 0.0
        return previous, previous_ttl, current, quota.start(k + 2) - now

    def clear_sliding_steps(self, key: str, expiry: float) -> Steps[None]:
        name = storage_name(key)
        for cached in [k for k in list(self._sliding) if k[0] == name]:  # a snapshot: threads
            self._sliding.pop(cached, None)
        yield from self._quota(key, expiry).reset_steps()

    # -- the whole storage --------------------------------------------------------------------

    def clear_steps(self, key: str) -> Steps[None]:
        self._moving.pop(storage_name(key), None)
        for kind in (FIXED, MOVING):
            yield self._delete(self._key(key, kind))

    def check_steps(self) -> Steps[bool]:
        try:
            answer: dict[str, Any] = yield Send("DescribeTable", {"TableName": self.layout.table})
        except (ClientError, BotoCoreError):
            return False
        return str(answer["Table"]["TableStatus"]) in ("ACTIVE", "UPDATING")

    def reset_steps(self) -> Steps[int]:
        """Delete every item this storage wrote; the number of keys they belonged to."""
        layout = self.layout
        params: dict[str, Any] | None = {
            "TableName": layout.table,
            "FilterExpression": "contains(#pk, :kind)",
            "ExpressionAttributeNames": {"#pk": layout.partition_key},
            "ExpressionAttributeValues": {":kind": {"S": QUOTA_INFIX + "limits-"}},
            "ConsistentRead": True,
        }
        names: set[str] = set()
        keys: list[dict[str, Any]] = []
        while params is not None:
            page: dict[str, Any] = yield Send("Scan", params)
            for item in page.get("Items", []):
                keys.append({k: item[k] for k in (layout.partition_key, layout.sort_key) if k})
                names.add(str(item[layout.partition_key]["S"]).split(QUOTA_INFIX)[0])
            last = page.get("LastEvaluatedKey")
            params = {**params, "ExclusiveStartKey": last} if last else None
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            request: dict[str, Any] = {layout.table: batch}
            for attempt in range(1, BATCH_TRIES + 1):
                answer: dict[str, Any] = yield Send("BatchWriteItem", {"RequestItems": request})
                request = answer.get("UnprocessedItems") or {}
                if not request:
                    break
                yield unprocessed_pause(attempt)
            else:
                raise ContentionError(f"table {layout.table!r}: deletes still unprocessed")
        self._sliding.clear()
        self._moving.clear()
        return len(names)


# -- the two storages ---------------------------------------------------------------------------


def _options(
    uri: str | None, options: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(table, client options, layout options) from the URI and the keyword options."""
    if not uri:
        raise InvalidInput("a dynamodb storage needs a URI: dynamodb://TABLE")
    parsed = urlparse(uri)
    table = parsed.netloc or parsed.path.lstrip("/")
    if not table:
        raise InvalidInput(f"no table in {uri!r}: use dynamodb://TABLE")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = sorted(set(query) - {"region", "endpoint_url"})
    if unknown:
        raise InvalidInput(f"unknown query parameter(s) in {uri!r}: {', '.join(unknown)}")
    client_options = {
        "region_name": options.pop("region_name", None) or query.get("region"),
        "endpoint_url": options.pop("endpoint_url", None) or query.get("endpoint_url"),
        "client": options.pop("client", None),
    }
    layout = {k: options.pop(k) for k in list(options) if k in _LAYOUT_OPTIONS}
    if options:
        raise InvalidInput(
            f"unknown option(s) for a dynamodb storage: {', '.join(sorted(options))}"
        )
    return table, client_options, layout


_BASE_EXCEPTIONS = (ClientError, BotoCoreError, CounterError)


class DynamoDBStorage(
    Storage, MovingWindowSupport, SlidingWindowCounterSupport, TimestampedSlidingWindow
):
    """``limits`` storage on a DynamoDB table (scheme ``dynamodb``); see the module docstring."""

    STORAGE_SCHEME = ["dynamodb"]  # noqa: RUF012 -- limits declares a plain list

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        import boto3

        from .store import CounterStore

        table, client_options, layout = _options(uri, dict(options))
        client = client_options.pop("client")
        if client is None:
            client = boto3.client("dynamodb", **{k: v for k, v in client_options.items() if v})
        self.store = CounterStore(client, table, **layout)
        self._core = LimitsCore(self.store.layout)
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    def _run(self, steps: Steps[_T]) -> _T:
        return run_sync(self.store._io, steps)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return _BASE_EXCEPTIONS

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._run(self._core.incr_steps(key, expiry, amount))

    def get(self, key: str) -> int:
        return self._run(self._core.get_steps(key))

    def get_expiry(self, key: str) -> float:
        return self._run(self._core.get_expiry_steps(key))

    def check(self) -> bool:
        return self._run(self._core.check_steps())

    def reset(self) -> int | None:
        return self._run(self._core.reset_steps())

    def clear(self, key: str) -> None:
        self._run(self._core.clear_steps(key))

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self._run(self._core.acquire_entry_steps(key, limit, expiry, amount))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self._run(self._core.get_moving_window_steps(key, limit, expiry))

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return self._run(self._core.acquire_sliding_steps(key, limit, expiry, amount))

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._run(self._core.get_sliding_window_steps(key, expiry))

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self._run(self._core.clear_sliding_steps(key, expiry))


class AsyncDynamoDBStorage(
    aio_base.Storage,
    aio_base.MovingWindowSupport,
    aio_base.SlidingWindowCounterSupport,
    TimestampedSlidingWindow,
):
    """``limits.aio`` storage on a DynamoDB table (scheme ``async+dynamodb``), on aiobotocore.

    Without a ``client`` it opens one on first use (in the running event loop) and keeps it;
    :meth:`aclose` closes it.
    """

    STORAGE_SCHEME = ["async+dynamodb"]  # noqa: RUF012

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        table, client_options, layout = _options(uri, dict(options))
        self._table, self._layout_options = table, layout
        client = client_options.pop("client")
        self._client_options = {k: v for k, v in client_options.items() if v}
        self._opened: Any = None
        self._store: Any = None
        if client is not None:
            self._adopt(client)
        from .store import StoreCore

        # The layout checks of a store, without a client yet.
        self._core = LimitsCore(_layout_of(StoreCore, table, layout))
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    def _adopt(self, client: Any) -> None:
        from .aio import AsyncCounterStore

        self._store = AsyncCounterStore(client, self._table, **self._layout_options)

    async def _run(self, steps: Steps[_T]) -> _T:
        from ._aio_io import run_async

        if self._store is None:
            opened = _aio_session().create_client("dynamodb", **self._client_options)
            client = await opened.__aenter__()
            if self._store is None:
                self._opened = opened
                self._adopt(client)
            else:  # another task opened one meanwhile
                await opened.__aexit__(None, None, None)
        return await run_async(self._store._io, steps)

    async def aclose(self) -> None:
        """Close the client this storage opened (not one it was given)."""
        opened, self._opened, self._store = self._opened, None, None
        if opened is not None:
            await opened.__aexit__(None, None, None)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (*_BASE_EXCEPTIONS, asyncio.TimeoutError)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return await self._run(self._core.incr_steps(key, expiry, amount))

    async def get(self, key: str) -> int:
        return await self._run(self._core.get_steps(key))

    async def get_expiry(self, key: str) -> float:
        return await self._run(self._core.get_expiry_steps(key))

    async def check(self) -> bool:
        try:
            return await self._run(self._core.check_steps())
        except (ClientError, BotoCoreError):
            return False

    async def reset(self) -> int | None:
        return await self._run(self._core.reset_steps())

    async def clear(self, key: str) -> None:
        await self._run(self._core.clear_steps(key))

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return await self._run(self._core.acquire_entry_steps(key, limit, expiry, amount))

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return await self._run(self._core.get_moving_window_steps(key, limit, expiry))

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return await self._run(self._core.acquire_sliding_steps(key, limit, expiry, amount))

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return await self._run(self._core.get_sliding_window_steps(key, expiry))

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self._run(self._core.clear_sliding_steps(key, expiry))


_SESSION: Any = None


def _aio_session() -> Any:
    """One aiobotocore session for the storages of this process: it loads DynamoDB's service
    model once, not on each storage's first hit (which would make that hit slow)."""
    global _SESSION
    if _SESSION is None:
        from aiobotocore.session import get_session

        _SESSION = get_session()
    return _SESSION


def _layout_of(store_type: Any, table: str, layout: dict[str, Any]) -> Layout:
    """The layout a store of these options would have (checked as the store checks them)."""

    class _Probe(store_type):  # type: ignore[misc]
        def _make_io(self, client: Any, table_name: str) -> None:
            return None

    probe = _Probe(_NoClient(), table, **layout)
    return probe.layout  # type: ignore[no-any-return]


class _NoClient:
    """Passes the store's client check; never sends (the probe makes no I/O)."""

    def update_item(self, **_: Any) -> None:  # pragma: no cover
        raise AssertionError("the layout probe sends nothing")


__all__ = ["AsyncDynamoDBStorage", "DynamoDBStorage", "LimitsCore", "storage_name"]
