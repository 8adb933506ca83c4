"""``sharded``: the value is the sum of ``shards`` items; exact bounds by escrow (SPEC section 8).

One DynamoDB item takes about 1,000 write units/s. A ``sharded`` counter spreads its adds over
``shards`` shard items on partition keys of their own (``<name>#shard#<i>``, see ``_keys``), so
adds scale with the number of shards; the counter item keeps only the definition and
incarnation and no add touches it.

**Add.** The request id's digest picks the shard, so a replay meets its own evidence. One
``TransactWriteItems``: the shard's ``ADD`` (incarnation and the shard's bound as its condition)
and a ``Put`` of a marker on the shard's partition, on condition that it does not exist yet --
idempotent like ``marker`` (a replay is ``applied=False``, this call's own lost write is
recognised by its nonce, another amount raises ``RequestIdMismatch``).

**Escrow.** The floor F and ceiling C are split into per-shard shares (``F // N``, plus one for
the first ``F % N`` shards; the same for C), so each shard is a bounded counter with bounds
(f_i, c_i), and the shards' bounds add up to the counter's: a shard within its share can never
take the sum past a bound. When the chosen shard lacks the room for an add, the add reads all
shards and its marker with one eventually consistent ``BatchGetItem`` (a survey: a quarter of a
snapshot's read units) and moves room in its own transaction: donors (most room first, half of
each donor's room but at least what is still needed) give room to the chosen shard, which takes
the add; the marker is put as usual. When the room moved would only be spent at once (the end of
a sale), the donors take the add beside the marker and the dry shard is not written. Every shard
written carries its incarnation and bound condition, so a stale read only cancels the
transaction; the add then reads again, with a consistent snapshot this time (at most
``max_attempts`` times, then ``ContentionError``; never a wrong refusal). A move or a snapshot
cancelled for a conflict or for lack of throughput applied nothing: the add starts again, on the
same budget (``_retry``), so a throttled snapshot never refuses; a survey throttled whole (no
key read, after botocore's tries) gives way to the snapshot. If the survey shows too little
room in the whole counter, a ``TransactGetItems`` of the shards and the marker (a
consistent snapshot) decides: the add is refused with ``ThresholdExceeded`` (the value of that
snapshot) only if it agrees. That is the only way a sharded add is refused, so a dry shard is
never "sold out" while another has stock. A handle remembers the last value it saw of each
shard, as a hint: it skips the plain try on a shard it saw dry, and goes straight to the
snapshot once it saw the whole counter short.

**Holds** (SPEC section 13, :mod:`.holds`): a reserve is an add of ``-amount`` on the shard
its hold id picks, the hold item in place of the marker (on that shard's partition), with
the same escrow moves; its amount comes back to that shard. A reserve's transaction also
checks the hold's ended record: a move that writes every one of 99 shards would be 101 items,
so then the room moves first in a transaction of its own (the sum unchanged) and the hold
takes it, one request more.

**Value.** One ``TransactGetItems`` of the shards: a sum the counter really had.
**Create / delete.** One transaction each: the counter item and every shard, so shards are never
left without their counter, and nothing of a deleted incarnation ever counts. ``delete()`` then
sweeps the markers (table with a sort key); in a partition-key-only table they are left to their
TTL, like ``marker``'s. ``compact()`` is not supported (nothing to fold).

Window: while the marker lives (``marker_ttl``, default 7 days). ``shards`` (1 to 99: a
transaction holds at most 100 items) is stored in the definition and cannot change for an
existing counter. Cost: an add is one request of 2 x (shard KB + marker KB) write units (at least
4); an add that needs room moved costs one ``BatchGetItem`` (half a read unit per shard and the
marker) and 2 write units per donor more; a refusal, a ``TransactGetItems`` (2 read units each).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from .. import _validate as v
from .._io import error_code
from .._keys import (
    AMOUNT,
    ENDED_PREFIX,
    HOLD_PREFIX,
    INCARNATION,
    MARKER_PREFIX,
    SHARD_MARKER_PREFIX,
    SHARD_PREFIX,
)
from .._retry import Outcome, classify
from .._steps import Steps
from ..errors import CounterNotFound, NotSupported, ThresholdExceeded
from ..results import AddResult
from .base import MARKER_TTL, Capabilities, OpState, WindowOption, n
from .holds import HoldCall, Holds

# A transaction holds at most 100 items: a move writes the chosen shard, the marker and up to
# shards - 1 donors; the snapshot reads every shard and the marker.
MAX_SHARDS = 99
_MAX_TRANSACTION_ITEMS = 100
_CHECK_FAILED = "ConditionalCheckFailed"
#: In a transaction's list of what it writes: the marker (the others are shard indexes).
_MARKER = -1

Bounds = tuple[int, int]

#: Fixed for the counter's life (stored in its definition): re-sharding is a new counter.
SHARDS = WindowOption("shards", 8, "shard items the value is spread over", maximum=MAX_SHARDS)


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal integers (the first ones one larger), summing to it."""
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def spread(total: int, lows: list[int], highs: list[int]) -> list[int]:
    """Initial shard values: near-equal, each within its shares, summing to ``total`` (which
    lies within the sums of the shares)."""
    values = [
        min(max(value, low), high)
        for value, low, high in zip(split(total, len(lows)), lows, highs, strict=True)
    ]
    # Clamping moved the sum: hand the difference to shards with room, first come first.
    rest = total - sum(values)
    for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
        step = min(rest, high - values[i]) if rest > 0 else max(rest, low - values[i])
        values[i] += step
        rest -= step
    return values


class ShardedCounter(Holds):
    """A counter summed over shard items, its bounds held by escrow."""

    name = "sharded"
    transactional = True
    idempotent = True
    window_options = (SHARDS, MARKER_TTL)
    capabilities = Capabilities(
        idempotent=True,
        window="while the marker lives (marker_ttl, default 7 days)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add=(
            "2 x (shard item KB + marker item KB), at least 4; a dry shard adds a "
            "BatchGetItem of the shards and 2 per KB of each donor shard"
        ),
        tells_duplicates="yes",
    )

    def _configure(self, window: Mapping[str, Any]) -> None:
        self.shards: int = window["shards"]
        self.marker_ttl: timedelta = window["marker_ttl"]
        # A missing bound is DynamoDB's 38-digit limit: the sum must stay a number too.
        self._lows = split(-v.MAX_ABS_NUMBER if self.floor is None else self.floor, self.shards)
        self._highs = split(v.MAX_ABS_NUMBER if self.ceiling is None else self.ceiling, self.shards)
        #: (floor share, ceiling share) of each shard: they add up to the counter's bounds.
        self.shares: list[Bounds] = list(zip(self._lows, self._highs, strict=True))
        #: The last value this handle saw of each shard (a failed condition, a read, its own
        #: move): a hint only, to skip a plain add on a shard seen without the room for it.
        #: Every write still carries its shard's bound; a stale hint costs a read, never a count.
        self._seen: dict[int, int] = {}

    def _seen_room(self, amount: int) -> int:
        """The room for ``amount`` in the whole counter, as this handle last saw it (all the
        room a 38-digit number has, when it has not seen every shard)."""
        if len(self._seen) < self.shards:
            return v.MAX_ABS_NUMBER
        return sum(self._room(i, value, amount) for i, value in self._seen.items())

    def _seen_short(self, shard: int, amount: int) -> bool:
        """Whether this handle last saw ``shard`` without the room for ``amount``."""
        value = self._seen.get(shard)
        return value is not None and self._room(shard, value, amount) < abs(amount)

    # -- keys ---------------------------------------------------------------------------------

    def shard_of(self, request_id: str) -> int:
        """The shard an add with ``request_id`` goes to (its marker lives on its partition)."""
        return int(self.digest_of(request_id), 16) % self.shards

    def _shard_key(self, shard: int) -> dict[str, Any]:
        return self.layout.shard_key(self.counter_name, shard)

    def _marker(self, call: OpState, shard: int) -> Steps[dict[str, Any]]:
        if isinstance(call, HoldCall):
            return call.item  # a reserve: the hold (on this shard) is its evidence
        assert call.digest is not None
        return {
            **self._side_item(call, SHARD_MARKER_PREFIX),
            **self.layout.shard_marker_key(self.counter_name, shard, call.digest),
            self.layout.ttl_attribute: (yield from self._ttl_epoch(self.marker_ttl)),
        }

    def _hold_shard(self, digest: str) -> int | None:
        return int(digest, 16) % self.shards  # as shard_of(): the hold id's digest picks it

    def _hold_places(self) -> list[int | None]:
        return list(range(self.shards))

    def _give_back(self, shard: int | None, amount: int) -> dict[str, Any]:
        assert shard is not None
        return self._shard_update(shard, amount)

    def _give_back_failed(
        self, shard: int | None, item: Mapping[str, Any] | None, call: OpState
    ) -> Steps[None]:
        assert shard is not None
        yield from self._check_shard(shard, item, call)

    def _require_definition(self) -> None:
        if self.incarnation is None:
            raise NotSupported(
                f"counter {self.counter_name!r} has no stored definition: a sharded counter "
                "is made by create(), which writes its shards"
            )

    # -- add ----------------------------------------------------------------------------------

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        self._require_definition()
        assert call.request_id is not None
        shard = self.shard_of(call.request_id)
        marker = yield from self._marker(call, shard)
        survey = True
        while True:
            done = None
            if not self._seen_short(shard, call.amount):
                done = yield from self._try_add(call, shard, marker)
            if done is None:
                done = yield from self._try_move(call, shard, marker, survey=survey)
                # A plan that failed may have come from a stale read: read consistently now.
                survey = False
            if done is not None:
                return done
            # A snapshot went stale under concurrent adds and moves: read again, with backoff.
            yield from self._try_again(call, None)

    def _shard_update(self, shard: int, amount: int) -> dict[str, Any]:
        """ADD ``amount`` to ``shard``: this incarnation, the shard's shares of the bounds."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":amount": n(amount)}
        conditions = self._conditions(amount, names, values, bounds=self.shares[shard])
        return {
            "Update": {
                "TableName": self.layout.table,
                "Key": self._shard_key(shard),
                "UpdateExpression": "ADD #v :amount",
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _try_add(
        self, call: OpState, shard: int, marker: dict[str, Any]
    ) -> Steps[AddResult | None]:
        """The add on its shard alone; None when the shard lacks the room."""
        try:
            update = self._shard_update(shard, call.amount)
        except ThresholdExceeded:
            return None  # beyond the shard's share at any value: the others may have room
        items = [update, self._put_new_side_item(marker)]
        done = yield from self._write(call, items, marker, [shard, _MARKER])
        seen = self._seen.get(shard)
        if done is not None and done.applied and seen is not None:
            self._seen[shard] = seen + call.amount
        return done

    def _write(
        self, call: OpState, items: list[dict[str, Any]], marker: dict[str, Any], written: list[int]
    ) -> Steps[AddResult | None]:
        """Send an add's transaction: ``items`` are shard updates and the marker's put, and
        ``written`` says which (a shard's index, or ``_MARKER``). None when a shard's condition
        failed (this incarnation's shard lacked the room: read and try again)."""
        items = self._with_hold(call, items)
        try:
            yield from self._send(call, "TransactWriteItems", {"TransactItems": items})
        except ClientError as exc:
            reasons = self._reasons(exc, len(items))
            ended = yield from self._hold_ended(call, reasons)
            if ended is not None:
                return ended
            # The marker first: a counted request is a duplicate even when a shard is dry.
            at = written.index(_MARKER)
            if reasons[at].get("Code") == _CHECK_FAILED:
                return (yield from self._replayed(call, reasons[at], marker, AMOUNT))
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == _CHECK_FAILED]
            if not failed:
                raise
            for i in failed:
                item = reasons[i].get("Item")
                yield from self._check_shard(written[i], item, call)
                if item is not None:
                    self._seen[written[i]] = self._value_of(item)
            return None
        return call.result(True, None)

    def _try_move(
        self, call: OpState, shard: int, marker: dict[str, Any], *, survey: bool = True
    ) -> Steps[AddResult | None]:
        """Room moves from other shards to ``shard`` in the add's transaction; None: the
        snapshot went stale (or room came meanwhile), try again."""
        keys = [*self._shard_keys(), {k: marker[k] for k in self._key_names()}]
        need = abs(call.amount)
        # Plan from a cheap read; refuse only from a consistent snapshot (at once when this
        # handle last saw too little room in the whole counter: sold out, most likely).
        found = None
        if survey and self._seen_room(call.amount) >= need:
            found = yield from self._survey(call, keys)
        consistent = found is None
        while True:
            if found is None:
                found = yield from self._snapshot(call, keys)
            if found[-1] is not None:  # counted already (a replay, or this call's lost write)
                return (yield from self._replayed(call, {"Item": found[-1]}, marker, AMOUNT))
            values = yield from self._values_of(found[:-1], call)
            self._seen = dict(enumerate(values))
            rooms = [self._room(i, value, call.amount) for i, value in enumerate(values)]
            if sum(rooms) >= need or consistent:
                break
            found, consistent = None, True
        if sum(rooms) < need:
            # The whole counter lacks the room (at one consistent moment): the only refusal.
            raise self._refusal(found[:-1], sum(values), call.amount)
        if rooms[shard] >= need:
            # The shard has the room (a stale hint, or another add's move): the plain add.
            return (yield from self._try_add(call, shard, marker))
        moves = self._plan(shard, values, rooms, call.amount)
        sign = 1 if call.amount > 0 else -1
        kept = call.amount - sign * sum(take for _, take in moves)
        donors = [self._shard_update(donor, sign * take) for donor, take in moves]
        # Room moved in only to be spent at once: the donors take the add, the dry shard is
        # not written (one item less in the transaction, no write on a dry shard's budget).
        if kept == 0:
            items = [self._put_new_side_item(marker), *donors]
            written = [_MARKER, *(d for d, _ in moves)]
        else:
            items = [self._shard_update(shard, kept), self._put_new_side_item(marker), *donors]
            written = [shard, _MARKER, *(d for d, _ in moves)]
            if len(items) + isinstance(call, HoldCall) > _MAX_TRANSACTION_ITEMS:
                # A reserve also checks its ended record: with every shard written that is one
                # item too many. The room moves first, on its own (the sum unchanged, so a
                # move applied twice or left alone counts nothing), and the hold takes it.
                yield from self._move_room(call, shard, moves, sign)
                return (yield from self._try_add(call, shard, marker))
        done = yield from self._write(call, items, marker, written)
        if done is not None:
            self._seen[shard] = values[shard] + kept
            for donor, take in moves:
                self._seen[donor] = values[donor] + sign * take
        return done

    def _move_room(
        self, call: OpState, shard: int, moves: list[tuple[int, int]], sign: int
    ) -> Steps[None]:
        """Move room from the donors of ``moves`` to ``shard`` (in the direction ``sign`` of
        the add), in a transaction of its own. A donor's condition that failed (its room was
        taken meanwhile) moves nothing: the add that follows finds out, and tries again."""
        moved = sum(take for _, take in moves)
        items = [
            self._shard_update(shard, -sign * moved),
            *(self._shard_update(donor, sign * take) for donor, take in moves),
        ]
        try:
            yield from self._send(call, "TransactWriteItems", {"TransactItems": items})
        except ClientError as exc:
            reasons = self._reasons(exc, len(items))
            written = [shard, *(donor for donor, _ in moves)]
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == _CHECK_FAILED]
            if not failed:
                raise
            for i in failed:
                yield from self._check_shard(written[i], reasons[i].get("Item"), call)
            return
        self._seen.pop(shard, None)

    def _room(self, shard: int, value: int, amount: int) -> int:
        """How far ``shard`` may move in the direction of ``amount`` within its share."""
        floor, ceiling = self.shares[shard]
        return value - floor if amount < 0 else ceiling - value

    def _plan(
        self, shard: int, values: list[int], rooms: list[int], amount: int
    ) -> list[tuple[int, int]]:
        """Donors and how much room each gives ``shard``: most room first, half of a donor's
        room but at least what is still needed, no more than ``shard`` can take in."""
        need = abs(amount) - rooms[shard]
        floor, ceiling = self.shares[shard]
        # Room moved in carries the shard's value away from the add's bound, towards the other
        # one: the shard may take in at most its room on that side plus the add itself.
        cap = abs((ceiling if amount < 0 else floor) - values[shard]) + abs(amount)
        donors = sorted(
            (i for i in range(self.shards) if i != shard and rooms[i] > 0),
            key=lambda i: (-rooms[i], i),
        )
        moves: list[tuple[int, int]] = []
        moved = 0
        for donor in donors:
            if moved >= need:
                break
            take = min(rooms[donor], max((rooms[donor] + 1) // 2, need - moved), cap - moved)
            moves.append((donor, take))
            moved += take
        return moves

    # -- reading ------------------------------------------------------------------------------

    def _shard_keys(self) -> list[dict[str, Any]]:
        return [self._shard_key(i) for i in range(self.shards)]

    def _survey(
        self, call: OpState, keys: list[dict[str, Any]]
    ) -> Steps[list[dict[str, Any] | None] | None]:
        """The items at ``keys`` from one eventually consistent ``BatchGetItem`` (a quarter of a
        snapshot's read units): good enough to pick donors, since every write carries its
        shard's bound. None when it is not all there (unprocessed keys, every key throttled, a
        shard not seen, or seen from another incarnation): take a snapshot instead."""
        table = self.layout.table
        try:
            answer = yield from self._send(
                call, "BatchGetItem", {"RequestItems": {table: {"Keys": keys}}}
            )
        except ClientError as exc:
            if classify(exc) is not Outcome.THROTTLED_REQUEST:
                raise
            # No key could be read (AWS's answer then), even after botocore's tries: the survey
            # is only a plan, and the snapshot reads under the retry policy. Never a refusal.
            return None
        if answer.get("UnprocessedKeys"):
            return None
        names = self._key_names()
        by_key = {
            tuple(sorted((k, str(item[k])) for k in names)): dict(item)
            for item in answer.get("Responses", {}).get(table, [])
        }
        found = [by_key.get(tuple(sorted((k, str(key[k])) for k in names))) for key in keys]
        # An eventually consistent read may show a shard of an earlier incarnation (or none):
        # only a consistent read may conclude anything from that.
        mine = all(
            item is not None and item.get(INCARNATION, {}).get("S") == self.incarnation
            for item in found[:-1]
        )
        return found if mine else None

    def _snapshot(
        self, call: OpState, keys: list[dict[str, Any]]
    ) -> Steps[list[dict[str, Any] | None]]:
        """The items at ``keys`` (None: absent), read at one moment (TransactGetItems)."""
        gets = [{"Get": {"TableName": self.layout.table, "Key": key}} for key in keys]
        answer = yield from self._send(call, "TransactGetItems", {"TransactItems": gets})
        return [None if "Item" not in r else dict(r["Item"]) for r in answer.get("Responses") or []]

    def _values_of(self, shards: list[dict[str, Any] | None], call: OpState) -> Steps[list[int]]:
        """The shards' values; raises CounterNotFound or Reincarnated for shards that are not
        this incarnation's."""
        for i, item in enumerate(shards):
            if item is None or item.get(INCARNATION, {}).get("S") != self.incarnation:
                yield from self._check_shard(i, item, call)
        return [self._value_of(item or {}) for item in shards]

    def _check_shard(
        self, shard: int, item: Mapping[str, Any] | None, call: OpState
    ) -> Steps[None]:
        """Return if ``item`` (a shard as a failed condition or a read showed it) is this
        incarnation's; else raise CounterNotFound or Reincarnated."""
        if item is None:  # absent, or an engine that leaves it out of a failed condition
            item = yield from self._read_item(key=self._shard_key(shard), call=call)
        if item is not None and item.get(INCARNATION, {}).get("S") == self.incarnation:
            return
        yield from self._explain(None, call)  # the counter item tells: gone, or another incarnation
        # create() and delete() write the counter item and its shards in one transaction.
        raise CounterNotFound(
            f"counter {self.counter_name!r}: shard {shard} is missing (written by other code?)"
        )

    def _reasons(self, exc: ClientError, count: int) -> list[dict[str, Any]]:
        """The cancellation reasons of a transaction of ``count`` items; re-raise otherwise."""
        if error_code(exc) != "TransactionCanceledException":
            raise exc
        reasons = self._cancellation_reasons(exc)
        if len(reasons) < count:
            raise exc
        return reasons

    def value(self) -> Steps[int]:
        self._require_definition()
        return sum((yield from self.shard_values()))

    def shard_values(self) -> Steps[list[int]]:
        """Each shard's value, read at one moment (TransactGetItems)."""
        call = OpState(amount=0, request_id=None, digest=None)

        def read(call: OpState) -> Steps[list[int]]:
            shards = yield from self._snapshot(call, self._shard_keys())
            return (yield from self._values_of(shards, call))

        return (yield from self._with_retries(read, call, repeatable=True))

    # -- create, delete, inspect --------------------------------------------------------------

    def _put_new(self, call: OpState, item: dict[str, Any]) -> Steps[None]:
        """The counter item (without a value: its shards hold it) and every shard, at once."""
        initial = int(item[self.layout.value_attribute]["N"])
        counter = {k: val for k, val in item.items() if k != self.layout.value_attribute}
        shards = [
            {
                "Put": {
                    "TableName": self.layout.table,
                    # Shards of a deleted incarnation may be here (written by other code):
                    # the counter item's condition says no incarnation lives, so none counts.
                    "Item": {
                        **self._shard_key(i),
                        self.layout.value_attribute: n(value),
                        INCARNATION: item[INCARNATION],
                    },
                }
            }
            for i, value in enumerate(spread(initial, self._lows, self._highs))
        ]
        # One transaction with this call's token: a re-send never revives a deleted
        # incarnation (see Strategy._create_transaction).
        put = self._put_new_side_item(counter)
        yield from self._create_transaction(call, [put, *shards])

    def delete(self) -> Steps[None]:
        """Delete the counter item and every shard in one transaction (this incarnation only),
        then, in a table with a sort key, sweep the markers."""
        self._require_definition()
        return (yield from super().delete())

    def _delete_counter(self, call: OpState) -> Steps[None]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        mine = self._exists_clause(names, values)
        counter = {
            "Delete": {
                "TableName": self.layout.table,
                "Key": self.key,
                "ConditionExpression": mine,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        shard_names = {**names, "#pk": self.layout.partition_key}
        shards = [
            {
                "Delete": {
                    "TableName": self.layout.table,
                    "Key": key,
                    # A shard missing (other code) must not keep the counter from going.
                    "ConditionExpression": f"attribute_not_exists(#pk) OR {mine}",
                    "ExpressionAttributeNames": shard_names,
                    "ExpressionAttributeValues": values,
                }
            }
            for key in self._shard_keys()
        ]
        try:
            yield from self._send(call, "TransactWriteItems", {"TransactItems": [counter, *shards]})
        except ClientError as exc:
            reasons = self._reasons(exc, 1 + len(shards))
            if reasons[0].get("Code") != _CHECK_FAILED:
                raise
            if call.ambiguous:
                # An earlier send whose answer was lost deleted this incarnation; whatever was
                # created since is not this delete's to remove.
                return
            old = reasons[0].get("Item")
            raise CounterNotFound(
                f"counter {self.counter_name!r} does not exist"
                + ("" if old is None else " (it was deleted and created again)")
            ) from exc

    def sweep(self) -> Steps[int]:
        """Delete markers and holds under the counter's name and on its shards' partitions that
        belong to no living incarnation, a page at a time (read before the counter item, as the
        base explains)."""
        removed = yield from super().sweep()
        sk = self.layout.sort_key
        assert sk is not None
        side = tuple(SHARD_PREFIX + prefix for prefix in (MARKER_PREFIX, HOLD_PREFIX, ENDED_PREFIX))
        for i in range(self.shards):
            pk = self._shard_key(i)[self.layout.partition_key]
            params: dict[str, Any] = {
                "TableName": self.layout.table,
                "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
                "ExpressionAttributeNames": {
                    "#pk": self.layout.partition_key,
                    "#sk": sk,
                    "#inc": INCARNATION,
                },
                "ExpressionAttributeValues": {":pk": pk, ":prefix": {"S": SHARD_PREFIX}},
                "ProjectionExpression": "#pk, #sk, #inc",
                "ConsistentRead": True,
            }
            removed += yield from self._sweep_pages(params, side)
        return removed

    def inspect(self) -> Steps[dict[str, Any]]:
        """The counter item, each shard's value, shares and room, and the markers."""
        from boto3.dynamodb.types import TypeDeserializer

        self._require_definition()
        plain = TypeDeserializer()
        item = yield from self._get_item(consistent=True)
        values = yield from self.shard_values()
        shards = []
        for i, value in enumerate(values):
            # A counter without a bound shows none (its shares are then the 38-digit limit's).
            floor = None if self.floor is None else self.shares[i][0]
            ceiling = None if self.ceiling is None else self.shares[i][1]
            shards.append(
                {
                    "shard": i,
                    "value": value,
                    "floor_share": floor,
                    "ceiling_share": ceiling,
                    "headroom_down": None if floor is None else value - floor,
                    "headroom_up": None if ceiling is None else ceiling - value,
                }
            )
        markers = 0
        if self.layout.sort_key is not None:
            for i in range(self.shards):
                pk = self._shard_key(i)[self.layout.partition_key]["S"]
                markers += yield from self._count(pk, SHARD_MARKER_PREFIX)
        return {
            "name": self.counter_name,
            "strategy": self.name,
            "value": sum(values),
            "item": {k: plain.deserialize(val) for k, val in item.items()},
            "markers": markers,
            "deltas": 0,
            "shards": shards,
        }
