"""Where a counter and what its strategy keeps beside it live in the table.

Table with a sort key (the default ``pk``/``sk`` layout):

=====================  ==========================  ===========================================
item                   partition key               sort key
=====================  ==========================  ===========================================
the counter            ``<name>``                  ``counter_sort_value`` (default ``"#counter"``)
a marker (``marker``)  ``<name>``                  ``"marker#" + digest(request id)``
a delta (``collection``) ``<name>``                ``"delta#" + digest(request id)``
shard i (``sharded``)  ``<name>#shard#<i>``        ``"shard#<i>"``
its marker             ``<name>#shard#<i>``        ``"shard#marker#" + digest(request id)``
a quota's window       ``<name>#quota#<kind>``     ``"quota#" + window``
a live hold            ``<name>``                  ``"hold#" + digest(hold id)``
an ended hold          ``<name>``                  ``"ended#" + digest(hold id)``
a sharded live hold    ``<name>#shard#<i>``        ``"shard#hold#" + digest(hold id)``
a sharded ended hold   ``<name>#shard#<i>``        ``"shard#ended#" + digest(hold id)``
=====================  ==========================  ===========================================

A quota (:mod:`dynamodb_counters.quota`) keeps one item per window; ``kind`` says its window type
and length (``fixed#60000``: fixed windows of 60,000 ms) or, for the ``limits`` storage, its
strategy, so that quotas of different ``per`` or ``window`` never share an item. Quota names never
contain ``"#quota#"``, so the name is what precedes it. Its sort key starts with ``"quota#"``,
which no counter item's can: ``counters()`` never lists a quota.

Holds (``marker``, ``sharded``; SPEC section 13) need a sort key: ``holds()`` and ``reclaim()``
find the live holds with one Query of the prefix ``"hold#"`` on the counter's (or each shard's)
partition, which a partition-key-only table cannot do without a Scan. An ended hold leaves
the ``"hold#"`` prefix for ``"ended#"`` (a record that answers a repeated commit, cancel or
reserve), so those Queries read live holds only.

Table with a partition key only (``sort_key=None``): the counter is ``<name>``, a marker is
``<name> + "#marker#" + digest``; ``collection`` needs a sort key. So that a counter name can
never be the key of another counter's marker, names containing a reserved infix (``"#marker#"``,
``"#delta#"``, ``"#shard#"``) are refused in such a table. A ``sharded`` counter's shard ``i`` is
``<name>#shard#<i>`` there, and its markers are the ordinary ``<name>#marker#<digest>``. A
quota's window is ``<name>#quota#<kind>#<window>`` there (``"#quota#"`` is reserved too).

Shards live on partition keys of their own (AWS's write sharding: an add's writes land on one
shard's partition, never on the counter's). In a table with a sort key their sort keys start with
``"shard#"``, which no counter item's sort key can (``counter_sort_value`` is checked), so a
shard is never taken for a counter (``counters()``) and no other counter's sweep, even one whose
name contains ``"#shard#"`` (from the first release), touches a shard or its markers; ``create()``
refuses such names in new counters all the same.

``digest`` is the first 32 hex digits of SHA-256 over the table, the counter name, the counter's
incarnation and the request id: a request id is scoped to its counter *and* to this life of the
counter (an old id is a new request after ``delete()`` and ``create()``), has a fixed length
whatever the caller's id, and fits DynamoDB's 36-character ClientRequestToken without
truncation. Counters created by the first release have no incarnation; their digests leave it
out, exactly as that release computed them, so their markers and deltas keep counting.

Attributes the library writes (besides the user's key, value and TTL attributes) are listed in
:data:`RESERVED_ATTRIBUTES`; the store refuses a key, value or TTL attribute named like one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MARKER_PREFIX = "marker#"
DELTA_PREFIX = "delta#"
SHARD_PREFIX = "shard#"
QUOTA_PREFIX = "quota#"
SIDE_PREFIXES = (MARKER_PREFIX, DELTA_PREFIX, SHARD_PREFIX, QUOTA_PREFIX)
#: A live hold (SPEC section 13), and the record a hold leaves when it ends.
HOLD_PREFIX = "hold#"
ENDED_PREFIX = "ended#"
#: Sort keys of a shard's markers (on the shard's partition).
SHARD_MARKER_PREFIX = SHARD_PREFIX + MARKER_PREFIX
#: In a partition-key-only table a side item's key is ``<name>#<prefix><digest>``.
RESERVED_INFIXES = tuple("#" + prefix for prefix in SIDE_PREFIXES)
#: Side items a counter keeps in its own item collection (what ``sweep()`` looks for there);
#: shards and their markers live on partitions of their own.
SWEPT_PREFIXES = (MARKER_PREFIX, DELTA_PREFIX, HOLD_PREFIX, ENDED_PREFIX)
#: Refused in the name of a new counter in any table: its partition would be a shard's.
SHARD_INFIX = "#" + SHARD_PREFIX
#: Never in a quota's name: what precedes it in a quota item's partition key is the name.
QUOTA_INFIX = "#" + QUOTA_PREFIX

# Bookkeeping attributes of the counter item.
CREATED_BY = "_created_by"  # nonce of the create() call (a re-sent create knows its own item)
DEFINITION = "_def"  # the stored definition (JSON), SPEC section 7
INCARNATION = "_inc"  # random id of this life of the counter; on side items too
FOLDS = "_folds"  # compactions so far (collection): value() detects a fold under its reads
TAG = "_tag"  # occ entity tag
HISTORY = "_hist"  # occ_history: recent request ids
SEQUENCE = "_seq"  # occ_history: writes so far (tells whether a history still covers an id)
IDS = "_ids"  # set: current generation of request ids
PREVIOUS_IDS = "_prev"  # set: previous generation
GENERATION = "_gen"  # set: rotations so far
LAST = "_last"  # set: nonce of the last call that wrote the item
# Attributes of side items (markers, deltas).
REQUEST_ID = "request_id"
AMOUNT = "amount"
CALL = "call"
CREATED = "created"
# Attributes of quota window items.
QUOTA_IDS = "_qids"  # digests of the request ids counted in the window (a string set)
SEALED = "_sealed"  # sliding: the next window read this window's count; no hit lands after it
HITS = "_hits"  # limits' moving window: [[epoch seconds, amount], ...], newest first
VERSION = "_ver"  # limits' moving window: writes so far (its optimistic condition)
EXPIRES = "_exp"  # limits' fixed window: when the window ends (epoch seconds, a float)
# Attributes of holds.
UNTIL = "_until"  # when the hold expires (epoch seconds): not the TTL attribute, see holds
ENDED = "_ended"  # how an ended hold ended: "committed", "cancelled" or "expired"
HELD = "_held"  # on a counter or shard item: holds were reserved on it (a refusal reclaims)

RESERVED_ATTRIBUTES = frozenset(
    {
        CREATED_BY,
        DEFINITION,
        INCARNATION,
        FOLDS,
        TAG,
        HISTORY,
        SEQUENCE,
        IDS,
        PREVIOUS_IDS,
        GENERATION,
        LAST,
        REQUEST_ID,
        AMOUNT,
        CALL,
        CREATED,
        QUOTA_IDS,
        SEALED,
        HITS,
        VERSION,
        EXPIRES,
        UNTIL,
        ENDED,
        HELD,
    }
)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _hash_part(h: Any, part: str) -> None:
    data = part.encode("utf-8")
    # Length-prefix each part so ("ab", "c") and ("a", "bc") never collide.
    h.update(len(data).to_bytes(4, "big") + data)


def finish_digest(base: Any, request_id: str) -> str:
    """The digest of ``request_id`` from :meth:`Layout.digest_base` (left unchanged)."""
    h = base.copy()
    data = request_id.encode("utf-8")
    h.update(len(data).to_bytes(4, "big") + data)  # as _hash_part, one call less on every add
    return str(h.hexdigest()[:32])


@dataclass(frozen=True, slots=True)
class Layout:
    table: str
    partition_key: str
    sort_key: str | None
    value_attribute: str
    counter_sort_value: str
    ttl_attribute: str

    def digest(self, name: str, request_id: str, incarnation: str | None = None) -> str:
        """The request id's digest for counter ``name`` (of ``incarnation``): 32 hex digits."""
        return finish_digest(self.digest_base(name, incarnation), request_id)

    def digest_base(self, name: str, incarnation: str | None) -> Any:
        """The digest's hash of everything but the request id, for :func:`finish_digest` (a
        handle hashes its counter's part once, not on every add)."""
        h = hashlib.sha256()
        for part in (self.table, name) if incarnation is None else (self.table, name, incarnation):
            _hash_part(h, part)
        return h

    def counter_key(self, name: str) -> dict[str, Any]:
        key: dict[str, Any] = {self.partition_key: _s(name)}
        if self.sort_key is not None:
            key[self.sort_key] = _s(self.counter_sort_value)
        return key

    def side_key(self, name: str, prefix: str, digest: str) -> dict[str, Any]:
        """Key of an item a strategy keeps beside the counter (marker, delta, shard)."""
        if self.sort_key is None:
            return {self.partition_key: _s(f"{name}#{prefix}{digest}")}
        return {self.partition_key: _s(name), self.sort_key: _s(prefix + digest)}

    def shard_key(self, name: str, shard: int) -> dict[str, Any]:
        """Key of shard ``shard`` of the ``sharded`` counter ``name``."""
        pk = _s(f"{name}#{SHARD_PREFIX}{shard}")
        if self.sort_key is None:
            return {self.partition_key: pk}
        return {self.partition_key: pk, self.sort_key: _s(f"{SHARD_PREFIX}{shard}")}

    def shard_marker_key(self, name: str, shard: int, digest: str) -> dict[str, Any]:
        """Key of the marker of a request counted on shard ``shard`` (on the shard's partition
        in a table with a sort key, so an add never writes to the counter's partition)."""
        if self.sort_key is None:
            return self.side_key(name, MARKER_PREFIX, digest)
        pk = _s(f"{name}#{SHARD_PREFIX}{shard}")
        return {self.partition_key: pk, self.sort_key: _s(SHARD_MARKER_PREFIX + digest)}

    def quota_key(self, name: str, kind: str, window: str) -> dict[str, Any]:
        """Key of window ``window`` of the quota ``name`` of ``kind`` (see the module's table)."""
        pk = f"{name}{QUOTA_INFIX}{kind}"
        if self.sort_key is None:
            return {self.partition_key: _s(f"{pk}#{window}")}
        return {self.partition_key: _s(pk), self.sort_key: _s(QUOTA_PREFIX + window)}

    def hold_key(
        self, name: str, digest: str, shard: int | None, *, ended: bool = False
    ) -> dict[str, Any]:
        """Key of a live hold (``ended``: of the record it leaves), on the counter's partition
        or on shard ``shard``'s (a table with a sort key: see the module docstring)."""
        assert self.sort_key is not None
        prefix = ENDED_PREFIX if ended else HOLD_PREFIX
        if shard is None:
            return {self.partition_key: _s(name), self.sort_key: _s(prefix + digest)}
        pk = _s(f"{name}#{SHARD_PREFIX}{shard}")
        return {self.partition_key: pk, self.sort_key: _s(SHARD_PREFIX + prefix + digest)}

    def reserved_infix_in(self, name: str) -> str | None:
        """The reserved infix a counter name contains, where it could collide with a side key."""
        if self.sort_key is not None:
            return None
        return next((infix for infix in RESERVED_INFIXES if infix in name), None)
