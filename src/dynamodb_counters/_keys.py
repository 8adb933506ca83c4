"""Where a counter and what its strategy keeps beside it live in the table.

Table with a sort key (the default ``pk``/``sk`` layout):

=====================  ==========================  ===========================================
item                   partition key               sort key
=====================  ==========================  ===========================================
the counter            ``<name>``                  ``counter_sort_value`` (default ``"#counter"``)
a marker (``marker``)  ``<name>``                  ``"marker#" + digest(request id)``
a delta (``collection``) ``<name>``                ``"delta#" + digest(request id)``
=====================  ==========================  ===========================================

Table with a partition key only (``sort_key=None``): the counter is ``<name>``, a marker is
``<name> + "#marker#" + digest``; ``collection`` needs a sort key.

``digest`` is the first 32 hex digits of SHA-256 over the table, the counter name and the request
id, so a request id is scoped to its counter (SPEC section 3), has a fixed length whatever the
caller's id, and fits DynamoDB's 36-character ClientRequestToken without truncation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MARKER_PREFIX = "marker#"
DELTA_PREFIX = "delta#"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


@dataclass(frozen=True, slots=True)
class Layout:
    table: str
    partition_key: str
    sort_key: str | None
    value_attribute: str
    counter_sort_value: str
    ttl_attribute: str

    def digest(self, name: str, request_id: str) -> str:
        h = hashlib.sha256()
        for part in (self.table, name, request_id):
            data = part.encode("utf-8")
            # Length-prefix each part so ("ab", "c") and ("a", "bc") never collide.
            h.update(len(data).to_bytes(4, "big"))
            h.update(data)
        return h.hexdigest()[:32]

    def counter_key(self, name: str) -> dict[str, Any]:
        key: dict[str, Any] = {self.partition_key: _s(name)}
        if self.sort_key is not None:
            key[self.sort_key] = _s(self.counter_sort_value)
        return key

    def side_key(self, name: str, prefix: str, digest: str) -> dict[str, Any]:
        """Key of an item a strategy keeps beside the counter (marker, delta)."""
        if self.sort_key is None:
            return {self.partition_key: _s(f"{name}#{prefix}{digest}")}
        return {self.partition_key: _s(name), self.sort_key: _s(prefix + digest)}
