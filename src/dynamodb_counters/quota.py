"""Quotas and rate limits: how many units a window of time allows (SPEC section 12).

::

    quota = store.quota("api#tenant-7", limit=1000, per=timedelta(minutes=1))
    decision = quota.hit(cost=1, request_id="req-81")     # QuotaDecision

Windows. ``fixed``: windows aligned to the epoch, ``[k·per, (k+1)·per)``, one item each.
``sliding``: the sliding window counter -- the current fixed window's count plus the previous
window's count weighted by the share of it that the last ``per`` still overlaps; a hit is
allowed when that weighted sum, the previous window's part rounded up, stays within ``limit``.

Exact. A hit is one conditional UpdateItem on the current window's item: ``ADD`` the cost, on
condition that the count is at most ``limit - cost`` (sliding: minus the previous window's
weighted count). The limit is the caller's and lives in the condition, never on the item, so
a plan's new limit holds at once and no race between hits can pass it. A denied hit changes
nothing (the failed condition returns the item, which tells ``remaining`` and ``retry_after``
at no extra request). Sliding: the first hit of a window (per handle) *seals* the previous
window -- one UpdateItem that marks it and returns its count -- and every sliding hit's
condition refuses a sealed window, so the count a hit weighs is final: a hit still on its way
to the previous window, or one whose clock lags, counts in the next window instead (a read
could miss it, and the weighted sum could pass the limit). Clocks: the window is the hit's own
clock's (:data:`~dynamodb_counters._steps.NOW`).

Request ids. With ``request_id`` the window item keeps a 20-hex-digit digest of the id in a
string set; the condition refuses an id already there (``NOT contains``), so a hit is counted
at most once in its window -- also when its answer was lost and botocore or the library sent
it again. A hit whose id was counted answers ``allowed=True, duplicate=True``; this call's own
earlier send, recognised by its nonce, answers ``duplicate=False`` (when another hit wrote the
item in between, ``duplicate=True``). Without ``request_id`` a lost answer re-sent by botocore
may count twice: that only ever refuses early, never grants more than ``limit``.

Cost. Fixed: one UpdateItem per hit, one write unit (1 KB) while the item is small; each
request id adds ~24 bytes to the window's item, so a window that counted ``n`` ids costs about
``1 + n/42`` write units a hit (a window holds ~16,000 ids before DynamoDB's 400 KB item limit:
:class:`~dynamodb_counters.CapacityExceeded`). A refused hit is billed as a write too (a failed
condition is). Sliding: the same, plus the seal, one more write unit per window per handle.
One window is one item: DynamoDB's 1,000 write units/s per partition cap one quota at ~1,000
hits/s on AWS (fewer once request ids make the item pass 1 KB).
``remaining()`` reads one item (two for sliding); ``reset()`` deletes the current window's (and
empties the previous one's, keeping its seal). Window items carry
the TTL attribute (``2·per`` past their start); a window past its end is never read as current,
whether TTL removed it yet or not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from botocore.exceptions import ClientError

from . import _validate as v
from ._io import error_code, response_of, sdk_retries_of
from ._keys import LAST, QUOTA_IDS, QUOTA_INFIX, SEALED, Layout
from ._retry import is_ambiguous, is_item_too_large, resend_ambiguity
from ._steps import BATCH_TRIES, NOW, Send, Steps, run_sync, unprocessed_pause
from .errors import CapacityExceeded, ContentionError, InvalidInput
from .strategies.base import new_nonce, to_int

if TYPE_CHECKING:
    from ._aio_io import AsyncDynamoIO
    from ._io import DynamoIO

_T = TypeVar("_T")

Window = Literal["fixed", "sliding"]
WINDOWS: tuple[Window, ...] = ("fixed", "sliding")
#: Tries of a hit with a request id whose answer was lost after botocore's own retries.
AMBIGUITY_RETRIES = 3
# The previous windows' counts a sliding handle remembers (fixed once their window ended).
_ENDED_KEPT = 256
# Sealed windows a sliding hit moves past before it gives up (its clock lags far behind).
_SEALED_TRIES = 8


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    """What a hit got.

    Attributes:
        allowed: True when counted (or already counted: ``duplicate``); False when the window
            is full, and then nothing was counted.
        duplicate: True when this request id was already counted in its window.
        remaining: what the window still allows after this hit (never below 0).
        reset_at: epoch seconds when the current window ends (fixed: all its room comes back;
            sliding: its count starts to fade).
        retry_after: seconds until a hit of this cost could be allowed; 0.0 when allowed,
            ``math.inf`` when the cost is above the limit.
    """

    allowed: bool
    duplicate: bool
    remaining: int
    reset_at: float
    retry_after: float


def id_digest(request_id: str) -> str:
    """The digest a window keeps for a request id: 20 hex digits (80 bits) of SHA-256, a fixed
    size whatever the id (a window's ids collide with odds below 2^-50)."""
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:20]


def check_quota_name(name: Any) -> str:
    checked: str = v.check_name(name, what="quota name")
    if QUOTA_INFIX in checked:
        raise InvalidInput(f"quota name {checked!r} contains {QUOTA_INFIX!r}, which is reserved")
    return checked


class QuotaCore:
    """One quota's operations as steps (I/O-free); :class:`Quota` and :class:`AsyncQuota` run
    them. ``strict=False`` rounds the previous window's weighted count down, as ``limits``
    defines its sliding window counter (its storage uses that); the native quota rounds up, so
    the weighted sum itself never exceeds the limit. ``deny_when_unsure=True`` answers a hit
    without a request id that botocore re-sent after a lost answer, and whose re-send was
    refused, as denied (``limits``' storage: its callers want a yes or no, and a refusal only
    ever refuses early); the native quota re-raises the lost answer's error instead, since the
    first send may have counted and "a denied hit changes nothing" would not be true."""

    def __init__(
        self,
        layout: Layout,
        name: str,
        *,
        limit: int,
        per: float | timedelta,
        window: str = "fixed",
        kind: str | None = None,
        strict: bool = True,
        deny_when_unsure: bool = False,
    ) -> None:
        self.layout = layout
        self.name = check_quota_name(name)
        self.limit = v.check_positive_int(limit, what="limit")
        seconds = v.check_duration(per, what="per").total_seconds()
        per_ms = round(seconds * 1000)
        if per_ms < 1 or abs(per_ms - seconds * 1000) > 1e-6:
            raise InvalidInput(f"per must be a whole number of milliseconds, got {seconds} s")
        if window not in WINDOWS:
            raise InvalidInput(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        self.window = window
        self.per_ms = per_ms
        self.per = per_ms / 1000
        self.kind = kind or f"{window}#{per_ms}"
        self.strict = strict
        self.deny_when_unsure = deny_when_unsure
        # Sliding: window index -> its count, for windows that ended (cannot change any more).
        self._ended: dict[int, int] = {}

    # -- windows ------------------------------------------------------------------------------

    def index(self, now: float) -> int:
        """The window ``now`` falls in."""
        return int(now * 1000) // self.per_ms

    def key(self, k: int) -> dict[str, Any]:
        return self.layout.quota_key(self.name, self.kind, str(k))

    def start(self, k: int) -> float:
        return k * self.per_ms / 1000

    def weighted(self, previous: int, now: float, k: int) -> int:
        """The previous window's count weighted by its overlap with the last ``per``."""
        if previous == 0 or self.window == "fixed":
            return 0
        overlap = previous * (1 - (now - self.start(k)) / self.per)
        return math.ceil(overlap) if self.strict else math.floor(overlap)

    def forget(self) -> None:
        """Drop the counts of ended windows this handle remembers (after a reset)."""
        self._ended.clear()

    # -- operations ---------------------------------------------------------------------------

    def hit_steps(self, cost: int = 1, request_id: str | None = None) -> Steps[QuotaDecision]:
        cost = v.check_positive_int(cost, what="cost")
        digest = None if request_id is None else id_digest(v.check_request_id(request_id))
        now: float = yield NOW
        k = self.index(now)
        nonce = new_nonce()
        for _ in range(_SEALED_TRIES):
            previous = yield from self._previous_steps(k)
            decision = yield from self._hit_window_steps(k, now, previous, cost, digest, nonce)
            if decision is not None:
                return decision
            # Sliding: the window was sealed (a hit of the next one read its count) while this
            # hit was on its way: it counts in the next window -- or in the window of now, when
            # its way took longer (throttles and botocore's backoff can take seconds, and a
            # hit that moved one window a try would chase the clock without catching it).
            fresh: float = yield NOW
            k = max(k + 1, self.index(fresh))
            now = max(fresh, self.start(k))
        raise ContentionError(
            f"quota {self.name!r}: {_SEALED_TRIES} windows in a row were already sealed "
            "(this clock lags far behind the other clients')"
        )

    def _hit_window_steps(
        self, k: int, now: float, previous: int, cost: int, digest: str | None, nonce: str
    ) -> Steps[QuotaDecision | None]:
        weighted = self.weighted(previous, now, k)
        room = self.limit - cost - weighted
        layout = self.layout
        names = {"#v": layout.value_attribute, "#ttl": layout.ttl_attribute, "#last": LAST}
        values: dict[str, Any] = {
            ":cost": {"N": str(cost)},
            ":room": {"N": str(room)},
            ":ttl": {"N": str(math.ceil(self.start(k + 2)))},
            ":nonce": {"S": nonce},
        }
        # The window allows this hit: its count is at most limit - cost (- the previous
        # window's weight). A window nobody hit yet is empty -- but not when even an empty one
        # cannot take the hit (room < 0: the clause can never hold).
        conditions = ["(attribute_not_exists(#v) OR #v <= :room)" if room >= 0 else "#v <= :room"]
        if self.window == "sliding":
            # Its count is fixed once the next window read it: that read is in the next
            # window's conditions, so no hit may land here after it.
            names["#sealed"] = SEALED
            conditions.append("attribute_not_exists(#sealed)")
        update = "SET #ttl = :ttl, #last = :nonce ADD #v :cost"
        if digest is not None:
            names["#ids"] = QUOTA_IDS
            values[":id"] = {"S": digest}
            values[":ids"] = {"SS": [digest]}
            # Counted at most once in its window: a re-send of a landed hit finds its id.
            conditions.append("NOT contains(#ids, :id)")
            update += ", #ids :ids"
        params = {
            "TableName": layout.table,
            "Key": self.key(k),
            "UpdateExpression": update,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        for attempt in range(AMBIGUITY_RETRIES + 1):
            retried: list[BaseException] = []
            try:
                answer = yield Send("UpdateItem", params, self.name, "quota", retried)
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    assert isinstance(exc, ClientError)
                    if digest is None and not self.deny_when_unsure:
                        # botocore re-sent the hit after a failure that may have landed: the
                        # window this re-send found full (or sealed) may hold this very hit.
                        # Without an id nothing can tell: re-raise that failure, as an add
                        # after a lost answer does, rather than say "denied, nothing changed".
                        retries = sdk_retries_of(response_of(exc))
                        ambiguous, failure = resend_ambiguity(retries, retried)
                        if ambiguous:
                            raise (failure or exc) from None
                    item = response_of(exc).get("Item") or {}
                    return self._refused(item, now, k, previous, cost, digest, nonce)
                if is_item_too_large(exc):
                    raise CapacityExceeded(
                        f"quota {self.name!r}: the window's item cannot keep more request ids"
                    ) from exc
                if digest is not None and is_ambiguous(exc) and attempt < AMBIGUITY_RETRIES:
                    continue  # the condition finds out whether the lost send landed
                raise
            count = self._count(answer.get("Attributes", {}))
            return QuotaDecision(
                allowed=True,
                duplicate=False,
                remaining=max(0, self.limit - count - weighted),
                reset_at=self.start(k + 1),
                retry_after=0.0,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(
        self,
        item: dict[str, Any],
        now: float,
        k: int,
        previous: int,
        cost: int,
        digest: str | None,
        nonce: str,
    ) -> QuotaDecision | None:
        count = self._count(item)
        remaining = max(0, self.limit - count - self.weighted(previous, now, k))
        if digest is not None and digest in item.get(QUOTA_IDS, {}).get("SS", ()):
            own = item.get(LAST, {}).get("S") == nonce
            return QuotaDecision(True, not own, remaining, self.start(k + 1), 0.0)
        if SEALED in item:
            return None
        wait = self.retry_after(now, k, count, previous, cost)
        return QuotaDecision(False, False, remaining, self.start(k + 1), wait)

    def retry_after(self, now: float, k: int, count: int, previous: int, cost: int) -> float:
        """Seconds until a hit of ``cost`` could be allowed, if nobody else hits meanwhile."""
        if cost > self.limit:
            return math.inf
        if self.window == "fixed":
            at = self.start(k + 1)
        else:
            left = self.limit - count - cost  # what the previous window's weight may still be
            if left >= 0:
                at = self._fades_to(k, previous, left)
            else:  # not in this window: in the next one, this window's count fades
                at = self._fades_to(k + 1, count, self.limit - cost)
        # Computed in floats, ``now + wait`` can fall a hair before the boundary that a hit's own
        # arithmetic (index, weighted) sees, and a hit then would be refused: step past it.
        wait, step = max(0.0, at - now), 1e-6
        for _ in range(64):
            if self._fits(now + wait, k, count, previous, cost):
                break
            wait, step = wait + step, step * 2
        return wait

    def _fits(self, now: float, k: int, count: int, previous: int, cost: int) -> bool:
        """Whether a hit of ``cost`` at ``now`` fits, window ``k`` holding ``count`` and the one
        before ``previous`` (nobody else hitting meanwhile)."""
        j = self.index(now)
        if j == k:
            return count + cost + self.weighted(previous, now, k) <= self.limit
        if j == k + 1:
            return cost + self.weighted(count, now, j) <= self.limit
        return j > k

    def _fades_to(self, k: int, previous: int, allowed: int) -> float:
        """When, in window ``k``, the weighted ``previous`` rounds to at most ``allowed``."""
        if previous <= allowed:
            return self.start(k)
        # ceil(previous·w) <= allowed  <=>  w <= allowed/previous; floor: w < (allowed+1)/previous
        share = (allowed if self.strict else allowed + 1) / previous
        return self.start(k) + self.per * (1 - share)

    def _previous_steps(self, k: int) -> Steps[int]:
        if self.window == "fixed":
            return 0
        known = self._ended.get(k - 1)
        if known is not None:
            return known
        count = yield from self._seal_steps(k - 1)
        self._remember_ended(k - 1, count)
        return count

    def _seal_steps(self, k: int, *, empty: bool = False) -> Steps[int]:
        """Window ``k``'s count, sealed: no hit lands in it after this (their condition says
        so), so the count a hit of window ``k + 1`` weighs is final. One write unit per window
        and handle (a read could miss a hit of window ``k`` still on its way). ``empty``: its
        count and request ids removed too (a reset)."""
        layout = self.layout
        update = "SET #sealed = :true, #ttl = if_not_exists(#ttl, :ttl)"
        names = {"#sealed": SEALED, "#ttl": layout.ttl_attribute}
        if empty:
            update += " REMOVE #v, #ids"
            names.update({"#v": layout.value_attribute, "#ids": QUOTA_IDS})
        answer: dict[str, Any] = yield Send(
            "UpdateItem",
            {
                "TableName": layout.table,
                "Key": self.key(k),
                "UpdateExpression": update,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":true": {"BOOL": True},
                    ":ttl": {"N": str(math.ceil(self.start(k + 2)))},
                },
                "ReturnValues": "ALL_NEW",
            },
            counter=self.name,
            strategy="quota",
        )
        return self._count(answer.get("Attributes") or {})

    def _remember_ended(self, k: int, count: int) -> None:
        if len(self._ended) >= _ENDED_KEPT:
            self._ended.clear()
        self._ended[k] = count

    def _read_count_steps(self, k: int) -> Steps[int]:
        answer: dict[str, Any] = yield Send(
            "GetItem",
            {
                "TableName": self.layout.table,
                "Key": self.key(k),
                "ConsistentRead": True,
                "ProjectionExpression": "#v",
                "ExpressionAttributeNames": {"#v": self.layout.value_attribute},
            },
            counter=self.name,
            strategy="quota",
        )
        return self._count(answer.get("Item") or {})

    def _count(self, item: dict[str, Any]) -> int:
        found = item.get(self.layout.value_attribute)
        return 0 if found is None else to_int(found["N"])

    def window_counts_steps(self, now: float | None = None) -> Steps[tuple[float, int, int, int]]:
        """``(now, k, previous count, current count)``, read strongly consistently."""
        if now is None:
            now = yield NOW
        k = self.index(now)
        if self.window == "fixed" or k - 1 in self._ended:
            previous = yield from self._previous_steps(k)
            current = yield from self._read_count_steps(k)
            return now, k, previous, current
        # Both windows in one request (a caller adding the times left to its own clock wants
        # the reads quick).
        # (Not sealed: a read changes nothing; a hit of window k seals k - 1 itself.)
        counts = yield from self._read_counts_steps([k - 1, k])
        return now, k, counts[k - 1], counts[k]

    def _read_counts_steps(self, windows: list[int]) -> Steps[dict[int, int]]:
        layout = self.layout
        keys = {window: self.key(window) for window in windows}
        request: dict[str, Any] = {
            layout.table: {"Keys": list(keys.values()), "ConsistentRead": True}
        }
        counts = dict.fromkeys(windows, 0)
        for attempt in range(1, BATCH_TRIES + 1):
            answer: dict[str, Any] = yield Send(
                "BatchGetItem", {"RequestItems": request}, counter=self.name, strategy="quota"
            )
            for item in answer.get("Responses", {}).get(layout.table, []):
                for window, key in keys.items():
                    if all(item.get(attribute) == value for attribute, value in key.items()):
                        counts[window] = self._count(item)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return counts
            yield unprocessed_pause(attempt)
        raise ContentionError(f"quota {self.name!r}: windows still unprocessed (throttled)")

    def remaining_steps(self) -> Steps[int]:
        now, k, previous, current = yield from self.window_counts_steps()
        return max(0, self.limit - current - self.weighted(previous, now, k))

    def reset_steps(self) -> Steps[None]:
        now: float = yield NOW
        k = self.index(now)
        delete: dict[str, Any] = {"TableName": self.layout.table, "Key": self.key(k)}
        if self.window == "sliding":
            # A sealed window is emptied, never deleted: its seal stays. Other handles remember
            # the count they weighed; a hit on its way to an unsealed window would land there
            # unseen by them. (The current window is sealed only by a clock already past it.)
            delete["ConditionExpression"] = "attribute_not_exists(#sealed)"
            delete["ExpressionAttributeNames"] = {"#sealed": SEALED}
        try:
            yield Send("DeleteItem", delete, counter=self.name, strategy="quota")
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            yield from self._seal_steps(k, empty=True)
        if self.window == "sliding":
            yield from self._seal_steps(k - 1, empty=True)
        self.forget()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, limit={self.limit}, per={self.per}, "
            f"window={self.window!r})"
        )


class Quota(QuotaCore):
    """A quota on a :class:`~dynamodb_counters.CounterStore`; get it from
    :meth:`CounterStore.quota`. Thread-safe; makes no request until its first operation."""

    def __init__(self, io: DynamoIO, layout: Layout, name: str, **options: Any) -> None:
        super().__init__(layout, name, **options)
        self._io = io

    def hit(self, cost: int = 1, *, request_id: str | None = None) -> QuotaDecision:
        """Count ``cost`` units if the window allows them (see the module docstring).

        Args:
            cost: units this hit takes (a positive int).
            request_id: the caller's id: counted at most once in its window.

        Returns:
            A :class:`QuotaDecision`.

        Raises:
            InvalidInput: a bad cost or request id.
            CapacityExceeded: the window's item cannot keep more request ids.
            TableNotFound: the table does not exist.
        """
        return run_sync(self._io, self.hit_steps(cost, request_id))

    def remaining(self) -> int:
        """What the window allows now (strongly consistent reads)."""
        return run_sync(self._io, self.remaining_steps())

    def reset(self) -> None:
        """Empty the current window (sliding: and the previous one, which stays sealed, so no
        late hit lands in it). Another handle that already weighed the previous window keeps
        its count until the window ends (it refuses early meanwhile, never grants more)."""
        run_sync(self._io, self.reset_steps())


class AsyncQuota(QuotaCore):
    """:class:`Quota` on an ``AsyncCounterStore``: the same operations, awaited."""

    def __init__(self, io: AsyncDynamoIO, layout: Layout, name: str, **options: Any) -> None:
        super().__init__(layout, name, **options)
        self._io = io

    def _run(self, steps: Steps[_T]) -> Awaitable[_T]:
        from ._aio_io import run_async

        return run_async(self._io, steps)

    async def hit(self, cost: int = 1, *, request_id: str | None = None) -> QuotaDecision:
        """See :meth:`Quota.hit`."""
        return await self._run(self.hit_steps(cost, request_id))

    async def remaining(self) -> int:
        """See :meth:`Quota.remaining`."""
        return await self._run(self.remaining_steps())

    async def reset(self) -> None:
        """See :meth:`Quota.reset`."""
        await self._run(self.reset_steps())


__all__ = ["AsyncQuota", "Quota", "QuotaCore", "QuotaDecision"]
