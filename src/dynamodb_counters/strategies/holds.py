"""Holds (SPEC section 13): reserve now, commit or cancel later; expired holds come back once.

What ``marker`` and ``sharded`` share, written once (:class:`Holds`); each fills three hooks:
where a hold lives (``_hold_shard``: the counter's partition, or one shard's), the partitions
to look for holds (``_hold_places``) and the transaction entry that gives an amount back
(``_give_back``). A reserve is an add of ``-amount`` through the strategy's own add (bounds,
escrow moves, lost answers and all), whose evidence is the hold item instead of a marker.

Items (a table with a sort key; see ``_keys``): a live hold is ``"hold#" + digest(hold id)``
beside the markers, with the amount, the reserve's nonce, the incarnation and ``_until`` (when
it expires, epoch seconds). It carries **no TTL attribute**: DynamoDB's TTL would delete an
expired hold nobody reclaimed, and its amount would never come back. A live hold leaves only by
commit, cancel or expiry, each of which *moves* it, in one transaction, to an ended record
``"ended#" + digest`` that says how it ended (``committed``, ``cancelled``, ``expired``) and
carries the TTL attribute, ``marker_ttl`` ahead (default 7 days): that record answers a repeated
commit or cancel and a re-sent reserve, and it keeps the Queries of ``holds()`` and
``reclaim()`` to live holds. ``delete()`` removes both (their incarnation is gone).

Exactly once: every ending deletes the live hold on condition that it is the hold that was read
(its reserve's nonce) and, as of the caller's clock, still live (commit, cancel) or expired
(reclaim, or a commit or cancel that found it expired); an amount comes back in the same
transaction. Of commit, cancel and reclaim racing on one hold, one deletes it; the others'
conditions fail, they read the ended record and answer from it. A reserve's transaction also
checks that no ended record exists, so a reserve re-sent after its hold ended is not a second
hold. Expiry is judged on the clock of the process that acts (the executors' :data:`NOW`).

Window: a commit or cancel repeated, or a reserve re-sent, within ``marker_ttl`` of the ending.
After that a repeated commit or cancel raises ``HoldNotFound`` and a re-sent reserve is a new
hold (as a marker's window ends).

Cost (items under 1 KB): reserve, one ``TransactWriteItems`` of three items (the counter or
shard update, the hold's put, the ended record's check), about 6 write units; commit, one
consistent ``GetItem`` and a transaction of two items (4 write units); cancel, the same and
the amount's return (6 write units); reclaim, one Query per partition (the counter's, or each
shard's) and one transaction per 32 expired holds. An add or reserve refused for lack of room
(towards the floor) on a counter that ever held -- the failed condition's counter item
(``marker``) or the refusal's snapshot of the shards (``sharded``) carries ``_held`` -- reclaims
and tries once more (also when another process returned the expired holds first: the refusal
would be stale); on a counter that never held it costs nothing more.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from .. import _validate as v
from .._io import error_code
from .._keys import (
    AMOUNT,
    CALL,
    ENDED,
    ENDED_PREFIX,
    HELD,
    HOLD_PREFIX,
    INCARNATION,
    REQUEST_ID,
    UNTIL,
)
from .._steps import NOW, Steps
from ..errors import (
    HoldExpired,
    HoldNotFound,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    ThresholdExceeded,
)
from ..results import AddResult, Hold
from .base import OpState, Strategy, n, to_int

COMMITTED, CANCELLED, EXPIRED = "committed", "cancelled", "expired"
_CHECK_FAILED = "ConditionalCheckFailed"
#: Holds ended in one transaction by reclaim(): 1 + 2 x 32 items (a transaction holds 100).
RECLAIM_BATCH = 32
# Set on a refusal whose consistent image shows that no hold was ever reserved there.
_NO_HOLDS = "_no_holds"


class HoldCall(OpState):
    """A reserve, run as an add of ``-amount`` whose evidence is the hold item (``item``):
    the strategy puts it where it would put a marker, and checks the ended record (``check``)
    in the same transaction. ``hold`` is the answer: the one this call made, or the one a
    replay found."""

    def __init__(
        self, amount: int, hold_id: str, digest: str, item: dict[str, Any], check: dict[str, Any]
    ) -> None:
        super().__init__(-amount, hold_id, digest)
        item[CALL] = {"S": self.nonce}
        self.item = item
        self.check = check
        self.hold = Hold(hold_id=hold_id, amount=amount, expires_at=to_int(item[UNTIL]["N"]))

    def settle(self, found: Mapping[str, Any]) -> None:
        """Answer with the hold (live or ended) a replay found."""
        amount = to_int(found.get(AMOUNT, {}).get("N", "0"))
        if amount != self.hold.amount:
            raise RequestIdMismatch(
                f"hold id {self.hold.hold_id!r} holds {amount}, not {self.hold.amount}"
            )
        self.hold = Hold(self.hold.hold_id, amount, to_int(found[UNTIL]["N"]))


class Holds(Strategy):
    """Reserve, commit, cancel and reclaim, on a strategy that fills the hooks below."""

    marker_ttl: timedelta
    #: Whether a refused reserve was refused by its transaction (which checks the ended
    #: record), rather than from a read.
    _refusals_check_ended = False

    # -- hooks --------------------------------------------------------------------------------

    def _hold_shard(self, digest: str) -> int | None:
        """The shard a hold lives on (None: the counter's own partition)."""
        return None

    def _hold_places(self) -> list[int | None]:
        """Every partition holds may live on."""
        return [None]

    def _give_back(self, shard: int | None, amount: int) -> dict[str, Any]:
        """The transaction entry that adds ``amount`` (returned holds) to the counter."""
        raise NotImplementedError

    def _give_back_failed(
        self, shard: int | None, item: Mapping[str, Any] | None, call: OpState
    ) -> Steps[None]:
        """``_give_back``'s condition failed (``item``: what it met): raise what that means."""
        yield from self._explain(item, call)  # CounterNotFound or Reincarnated

    # -- what the strategies' adds call ---------------------------------------------------------

    def _with_hold(self, call: OpState, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A reserve's transaction: every counter or shard update marks its item as one that
        holds (so that a refusal knows whether to reclaim), and the ended record is checked
        last. An add's transaction is left alone."""
        if not isinstance(call, HoldCall):
            return items
        for entry in items:
            update = entry.get("Update")
            if update is not None:
                update["UpdateExpression"] += " SET #held = :held"
                update["ExpressionAttributeNames"]["#held"] = HELD
                update["ExpressionAttributeValues"][":held"] = {"N": "1"}
        return [*items, call.check]

    def _hold_ended(self, call: OpState, reasons: list[dict[str, Any]]) -> Steps[AddResult | None]:
        """A reserve whose transaction met the ended record: the hold it is a replay of ended
        (committed, cancelled or expired). None for anything else."""
        if not isinstance(call, HoldCall) or reasons[-1].get("Code") != _CHECK_FAILED:
            return None
        found = reasons[-1].get("Item")
        if found is None:  # an engine that leaves it out
            found = yield from self._read_item(key=self._key_of(call.check), call=call)
        call.settle(found or {})
        return call.result(False, None)

    def _replayed(
        self, call: OpState, reason: Mapping[str, Any], item: dict[str, Any], attribute: str
    ) -> Steps[AddResult]:
        if not isinstance(call, HoldCall):
            return (yield from super()._replayed(call, reason, item, attribute))
        found = reason.get("Item")
        if found is None:
            found = (yield from self._read_item(key=self._key_of(item), call=call)) or {}
        call.settle(found)
        return call.result(found.get(CALL, {}).get("S") == call.nonce, None)

    def _refusal(
        self, items: list[dict[str, Any] | None], value: int, amount: int
    ) -> ThresholdExceeded:
        """The refusal of an add, decided on ``items`` (a consistent image): it says whether
        those items ever held, so that a refused add reclaims only where it may help."""
        refused = self._threshold_exceeded(value, amount)
        if not any(item is not None and HELD in item for item in items):
            setattr(refused, _NO_HOLDS, True)
        return refused

    def _failed_write(
        self, old_item: Mapping[str, Any] | None, call: OpState, exc: BaseException | None = None
    ) -> Steps[Exception]:
        failed = yield from super()._failed_write(old_item, call, exc)
        if old_item is not None and HELD not in old_item:
            setattr(failed, _NO_HOLDS, True)  # the counter item never held: nothing to reclaim
        return failed

    # -- add: a refusal towards the floor reclaims expired holds and tries once more -----------

    def _may_hold(self) -> bool:
        return self.layout.sort_key is not None and self.floor is not None and self.ceiling is None

    def checked_add(self, amount: int, request_id: str | None) -> Steps[AddResult]:
        if amount > 0 or not self._may_hold():
            return super().checked_add(amount, request_id)
        # Generated once, outside the retries (SPEC 3): the second try is the same request.
        return self._add_or_reclaim(amount, request_id or os.urandom(16).hex())

    def _add_or_reclaim(self, amount: int, request_id: str) -> Steps[AddResult]:
        try:
            return (yield from super().checked_add(amount, request_id))
        except ThresholdExceeded as refused:
            if not (yield from self._reclaimed_some(refused)):
                raise
        return (yield from super().checked_add(amount, request_id))

    # -- the operations -----------------------------------------------------------------------

    def _require_holds(self) -> None:
        if self.layout.sort_key is None:
            raise NotSupported(
                "holds are not supported in a table without a sort key: reclaim() finds a "
                "counter's holds with a Query of its partition"
            )

    def reserve(self, amount: int, *, hold_id: str, ttl: float | timedelta) -> Steps[Hold]:
        """Check the arguments now (before any step) and return the reserve's steps."""
        amount = v.check_amount(amount)
        if amount < 0:
            raise InvalidInput(f"a hold's amount must be positive, got {amount}")
        hold_id = v.check_request_id(hold_id, what="hold_id")
        seconds = v.check_duration(ttl, what="ttl").total_seconds()
        self._require_holds()
        if self.ceiling is not None:
            raise NotSupported(
                f"holds are not supported on a counter with a ceiling ({self.counter_name!r} "
                f"has {self.ceiling}): a hold's amount returned after adds filled the counter "
                "up could cross it"
            )
        return self._reserve(amount, hold_id, seconds)

    def _reserve(self, amount: int, hold_id: str, seconds: float) -> Steps[Hold]:
        now: float = yield NOW
        digest = self.digest_of(hold_id)
        shard = self._hold_shard(digest)
        key = self.layout.hold_key(self.counter_name, digest, shard)
        item = {
            **key,
            REQUEST_ID: {"S": hold_id},
            AMOUNT: n(amount),
            # Whole seconds, rounded up: the hold lives at least ``ttl`` (it is expired from
            # the second ``_until`` on, on the clock of whoever looks).
            UNTIL: n(math.ceil(now + seconds)),
            **self._incarnation_of_side_items(),
        }
        ended = self.layout.hold_key(self.counter_name, digest, shard, ended=True)
        check = {
            "ConditionCheck": {
                "TableName": self.layout.table,
                "Key": ended,
                # A re-sent reserve of a hold that ended is that hold, not a new one.
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        call = HoldCall(amount, hold_id, digest, item, check)
        try:
            yield from self._with_retries(self._attempt, call, repeatable=True)
        except ThresholdExceeded as refused:
            if not self._refusals_check_ended:
                # Refused from a read of the shards and the live hold: a re-sent reserve of a
                # hold that ended since is that hold, not a refusal.
                record = yield from self._read_item(key=ended, call=call)
                if record is not None and self._is_mine(record):
                    call.settle(record)
                    return call.hold
            if not (yield from self._reclaimed_some(refused)):
                raise
            yield from self._with_retries(self._attempt, call, repeatable=True)
        return call.hold

    def commit(self, hold_id: str) -> Steps[None]:
        """End the hold for good (its amount stays taken). Raises HoldExpired (the amount
        came back) or HoldNotFound."""
        outcome = yield from self._finish(v.check_request_id(hold_id, what="hold_id"), COMMITTED)
        if outcome == EXPIRED:
            raise HoldExpired(f"hold {hold_id!r} on {self.counter_name!r} expired")
        if outcome != COMMITTED:
            raise self._not_found(hold_id, outcome)

    def cancel(self, hold_id: str) -> Steps[None]:
        """End the hold and give its amount back (an expired hold: as reclaim would). Raises
        HoldNotFound."""
        outcome = yield from self._finish(v.check_request_id(hold_id, what="hold_id"), CANCELLED)
        if outcome not in (CANCELLED, EXPIRED):
            raise self._not_found(hold_id, outcome)

    def _not_found(self, hold_id: str, outcome: str | None) -> HoldNotFound:
        why = "" if outcome is None else f" (it was {outcome})"
        return HoldNotFound(f"counter {self.counter_name!r} has no hold {hold_id!r}{why}")

    def _finish(self, hold_id: str, how: str) -> Steps[str | None]:
        """Commit or cancel ``hold_id``; returns how it ended (by this call or an earlier one),
        or None for a hold that never was (or left the window)."""
        self._require_holds()
        now = int((yield NOW))
        digest = self.digest_of(hold_id)
        shard = self._hold_shard(digest)
        key = self.layout.hold_key(self.counter_name, digest, shard)
        ended_key = self.layout.hold_key(self.counter_name, digest, shard, ended=True)
        call = OpState(amount=0, request_id=hold_id, digest=digest)

        def attempt(call: OpState) -> Steps[str | None]:
            while True:
                hold = yield from self._read_item(key=key, call=call)
                if hold is None or not self._is_mine(hold):
                    record = yield from self._read_item(key=ended_key, call=call)
                    if record is None or not self._is_mine(record):
                        # Not of this handle's incarnation: is it still the counter's? (A
                        # handle that knew an earlier one learns the current one and tries
                        # again: Reincarnated. One read, on this path only.)
                        yield from self._get_item(call=call)
                        return None
                    return str(record.get(ENDED, {}).get("S"))
                outcome = EXPIRED if to_int(hold[UNTIL]["N"]) <= now else how
                if (yield from self._end(call, shard, [hold], outcome, now)):
                    return outcome
                # Another commit, cancel or reclaim ended it first: its record answers.

        return (yield from self._with_retries(attempt, call, repeatable=True))

    def holds(self) -> Steps[list[Hold]]:
        """The holds not ended yet, expired ones included until they are reclaimed."""
        self._require_holds()
        found: list[Hold] = []
        for shard in self._hold_places():
            for item in (yield from self._live_holds(shard, None)):
                found.append(
                    Hold(item[REQUEST_ID]["S"], to_int(item[AMOUNT]["N"]), to_int(item[UNTIL]["N"]))
                )
        return sorted(found, key=lambda h: (h.expires_at, h.hold_id))

    def reclaim(self) -> Steps[int]:
        """End every expired hold, giving its amount back; returns how many this call ended."""
        return (yield from self._reclaim())[0]

    def _reclaimed_some(self, refused: ThresholdExceeded) -> Steps[bool]:
        """After ``refused``: reclaim expired holds, and say whether to try once more -- always,
        unless the refusal's image shows that the counter never held: another process may
        have returned an expired hold between the refusal and this reclaim's Query."""
        if getattr(refused, _NO_HOLDS, False):
            return False
        yield from self._reclaim()
        return True

    def _reclaim(self) -> Steps[tuple[int, int]]:
        """:meth:`reclaim`: how many holds it ended, and how many expired ones it found."""
        self._require_holds()
        now = int((yield NOW))
        call = OpState(amount=0, request_id=None, digest=None)
        tried: dict[tuple[int | None, str], dict[str, Any]] = {}
        ended: set[tuple[int | None, str]] = set()

        def attempt(call: OpState) -> Steps[None]:
            for shard in self._hold_places():
                expired = yield from self._live_holds(shard, now)
                for start in range(0, len(expired), RECLAIM_BATCH):
                    batch = expired[start : start + RECLAIM_BATCH]
                    tried.update({(shard, self._sort_value(h)): h for h in batch})
                    for hold in (yield from self._end(call, shard, batch, EXPIRED, now)):
                        ended.add((shard, self._sort_value(hold)))

        yield from self._with_retries(attempt, call, repeatable=True)
        if call.ambiguous:
            # A send whose answer was lost may have ended some: their records tell whose.
            for (shard, sort_value), hold in tried.items():
                if (shard, sort_value) in ended:
                    continue
                record = yield from self._read_item(key=self._ended_key_of(hold), call=call)
                if record is not None and record.get(CALL, {}).get("S") == call.nonce:
                    ended.add((shard, sort_value))
        return len(ended), len(tried)

    def value_reclaimed(self) -> Steps[int]:
        """``reclaim()``, then the value."""
        if self.layout.sort_key is not None:
            yield from self.reclaim()
        return (yield from self.value())

    # -- helpers ------------------------------------------------------------------------------

    def _incarnation_of_side_items(self) -> dict[str, Any]:
        return {} if self.incarnation is None else {INCARNATION: {"S": self.incarnation}}

    def _is_mine(self, item: Mapping[str, Any]) -> bool:
        mine: bool = item.get(INCARNATION, {}).get("S") == self.incarnation
        return mine

    def _key_of(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The key of an item, or of a transaction entry's item."""
        if "ConditionCheck" in entry:
            return dict(entry["ConditionCheck"]["Key"])
        return {k: entry[k] for k in self._key_names()}

    def _sort_value(self, item: Mapping[str, Any]) -> str:
        assert self.layout.sort_key is not None
        return str(item[self.layout.sort_key]["S"])

    def _ended_key_of(self, hold: Mapping[str, Any]) -> dict[str, Any]:
        sk = self.layout.sort_key
        assert sk is not None
        return {
            self.layout.partition_key: hold[self.layout.partition_key],
            sk: {"S": self._sort_value(hold).replace(HOLD_PREFIX, ENDED_PREFIX, 1)},
        }

    def _live_holds(self, shard: int | None, expired_at: int | None) -> Steps[list[dict[str, Any]]]:
        """The live holds of this incarnation on ``shard``'s partition (None: the counter's);
        with ``expired_at``, only those expired by then."""
        sk = self.layout.sort_key
        assert sk is not None
        key = self.layout.hold_key(self.counter_name, "", shard)
        names = {"#pk": self.layout.partition_key, "#sk": sk}
        values: dict[str, Any] = {":pk": key[self.layout.partition_key], ":prefix": key[sk]}
        params: dict[str, Any] = {
            "TableName": self.layout.table,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if expired_at is not None:
            names["#until"] = UNTIL
            values[":now"] = n(expired_at)
            params["FilterExpression"] = "#until <= :now"
        items = yield from self._query_all(params)
        mine = [item for item in items if self._is_mine(item)]
        if len(mine) < len(items):
            # Holds of another incarnation: an earlier one's left by an interrupted delete(),
            # or the current one's when this handle knew an earlier one. The counter item
            # tells (Reincarnated: the handle learns it and tries again).
            yield from self._get_item()
        return mine

    def _end(
        self,
        call: OpState,
        shard: int | None,
        holds: list[dict[str, Any]],
        how: str,
        now: int,
    ) -> Steps[list[dict[str, Any]]]:
        """End ``holds`` (live holds as read, all on ``shard``'s partition) as ``how``, giving
        their amounts back unless committed, in one transaction; returns those this call ended
        (the others were ended by someone else meanwhile)."""
        remaining = list(holds)
        while remaining:
            items: list[dict[str, Any]] = []
            if how != COMMITTED:
                total = sum(to_int(h[AMOUNT]["N"]) for h in remaining)
                items.append(self._give_back(shard, total))
            first = len(items)
            for hold in remaining:
                items += self._ending(call, hold, how, now)
            try:
                yield from self._send(call, "TransactWriteItems", {"TransactItems": items})
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = self._cancellation_reasons(exc)
                if len(reasons) < len(items):
                    raise
                if first and reasons[0].get("Code") == _CHECK_FAILED:
                    yield from self._give_back_failed(shard, reasons[0].get("Item"), call)
                    raise exc
                gone = {
                    i
                    for i in range(len(remaining))
                    if reasons[first + 2 * i].get("Code") == _CHECK_FAILED
                }
                if not gone:
                    raise  # a conflict or throttling: the retry policy decides
                remaining = [h for i, h in enumerate(remaining) if i not in gone]
                continue
            return remaining
        return []

    def _ending(
        self, call: OpState, hold: Mapping[str, Any], how: str, now: int
    ) -> list[dict[str, Any]]:
        """The two entries that end ``hold``: delete it (if it is still the hold that was read,
        and still live -- or, for ``expired``, expired -- as of ``now``) and put its record."""
        record = {
            **self._ended_key_of(hold),
            REQUEST_ID: hold[REQUEST_ID],
            AMOUNT: hold[AMOUNT],
            UNTIL: hold[UNTIL],
            ENDED: {"S": how},
            CALL: {"S": call.nonce},
            **self._incarnation_of_side_items(),
            self.layout.ttl_attribute: n(now + int(self.marker_ttl.total_seconds())),
        }
        return [
            {
                "Delete": {
                    "TableName": self.layout.table,
                    "Key": self._key_of(hold),
                    # The reserve's nonce: this hold, not a later one under the same id.
                    # The clock: a commit or cancel never ends an expired hold as if it lived,
                    # and a reclaim never returns a live one.
                    "ConditionExpression": "#call = :call AND #until "
                    + ("<= :now" if how == EXPIRED else "> :now"),
                    "ExpressionAttributeNames": {"#call": CALL, "#until": UNTIL},
                    "ExpressionAttributeValues": {":call": hold[CALL], ":now": n(now)},
                }
            },
            {"Put": {"TableName": self.layout.table, "Item": record}},
        ]
