"""``occ_history``: optimistic concurrency whose item remembers its last N requests.

Like ``occ``, plus a list attribute ``_hist`` on the counter item holding, for each of the last
``history`` adds, ``[digest of the request id, amount, tag written]``. The read that OCC needs
anyway tells whether a request id was already counted, so a replay costs the same two requests
and changes nothing (``applied=False``); the tag in the entry tells this call's own landed write
(a lost answer) from another caller's (``applied=True`` only for the former).

Window: the last ``history`` request ids (default 50); older ids drop out and a replay of one
is counted again. Each entry adds about 60 bytes to the item, so write units grow with
``history`` (1 write unit per KB).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import _validate as v
from ..results import AddResult
from .base import AddCall, Capabilities
from .occ import OccCounter

HISTORY = "_hist"


class OccHistoryCounter(OccCounter):
    """OCC plus the last ``history`` request ids kept in the counter item."""

    name = "occ_history"
    idempotent = True
    own_options = frozenset({"history"})
    defaults = MappingProxyType({"history": 50})
    capabilities = Capabilities(
        idempotent=True,
        window="the last `history` request ids (default 50)",
        thresholds=True,
        requests_per_add=2,
        write_units_per_add="1 per KB of the counter item, history included (+1 read unit)",
        tells_duplicates="yes",
    )

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.history = v.check_positive_int(
            options.get("history", self.defaults["history"]), what="history", maximum=5000
        )

    def _already_counted(self, item: dict[str, Any], call: AddCall) -> AddResult | None:
        for entry in item.get(HISTORY, {}).get("L", []):
            digest, amount, tag = (x.get("S") or x.get("N") for x in entry["L"])
            if digest != call.digest:
                continue
            self._check_same_amount(call, amount)
            return call.result(tag in call.written, None)
        return None

    def _extra_updates(
        self,
        item: dict[str, Any],
        call: AddCall,
        tag: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> list[str]:
        assert call.digest is not None
        kept = item.get(HISTORY, {}).get("L", [])[-(self.history - 1) :] if self.history > 1 else []
        entry = {"L": [{"S": call.digest}, {"N": str(call.amount)}, {"S": tag}]}
        values[":hist"] = {"L": [*kept, entry]}
        names["#hist"] = HISTORY
        return ["#hist = :hist"]
