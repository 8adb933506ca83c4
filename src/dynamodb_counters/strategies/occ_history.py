"""``occ_history``: optimistic concurrency whose item remembers its last N requests.

Like ``occ``, plus a list attribute ``_hist`` on the counter item holding, for each of the last
``history`` adds, ``[digest of the request id, amount, tag written, sequence number]``, and a
write counter ``_seq``. The read that OCC needs anyway tells whether a request id was already
counted, so a replay costs the same two requests and changes nothing (``applied=False``); the
tag in the entry tells this call's own landed write (a lost answer) from another caller's
(``applied=True`` only for the former).

Window: the last ``history`` request ids (default 50, stored in the counter's definition); older
ids drop out and a replay of one is counted again. When an add's own answer was lost and, before
it could look, other writers pushed its entry out of the window, the sequence numbers show that
the evidence is gone: the add re-raises the original error instead of guessing (SPEC section 7).
Each entry adds about 70 bytes to the item, so write units grow with ``history`` (1 per KB);
``history`` is at most 4000 so that the item stays well inside DynamoDB's 400 KB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._keys import HISTORY, SEQUENCE
from ..results import AddResult
from .base import Capabilities, OpState, WindowOption
from .occ import OccCounter

MAX_HISTORY = 4000


class OccHistoryCounter(OccCounter):
    """OCC plus the last ``history`` request ids kept in the counter item."""

    name = "occ_history"
    idempotent = True
    window_options = (
        WindowOption("history", 50, "request ids remembered on the item", maximum=MAX_HISTORY),
    )
    capabilities = Capabilities(
        idempotent=True,
        window="the last `history` request ids (default 50)",
        thresholds=True,
        requests_per_add=2,
        write_units_per_add="1 per KB of the counter item, history included (+1 read unit)",
        tells_duplicates="yes",
    )

    def _configure(self, window: Mapping[str, Any]) -> None:
        self.history: int = window["history"]

    def _already_counted(self, item: dict[str, Any], call: OpState) -> AddResult | None:
        entries = item.get(HISTORY, {}).get("L", [])
        for entry in entries:
            digest, amount, tag = (x.get("S") or x.get("N") for x in entry["L"][:3])
            if digest != call.digest:
                continue
            self._check_same_amount(call, amount)
            return call.result(tag in call.written, None)
        if call.ambiguous and call.landings and not self._covers(item, entries, call):
            # One of our writes may have landed and been pushed out since: never guess.
            call.unknown_outcome()
        return None

    def _covers(self, item: Mapping[str, Any], entries: list[Any], call: OpState) -> bool:
        """Would the history still hold this call's entry, had any of its writes landed?"""
        earliest = min(call.landings)
        if int(item.get(SEQUENCE, {}).get("N", "0")) < earliest:
            return True  # nothing was written at that position yet
        if len(entries) < self.history:
            return True  # the list was never trimmed
        oldest = entries[0]["L"]
        return len(oldest) > 3 and int(oldest[3]["N"]) <= earliest

    def _extra_updates(
        self,
        item: dict[str, Any],
        call: OpState,
        tag: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> list[str]:
        assert call.digest is not None
        sequence = int(item.get(SEQUENCE, {}).get("N", "0")) + 1
        call.landings.add(sequence)
        kept = item.get(HISTORY, {}).get("L", [])[-(self.history - 1) :] if self.history > 1 else []
        entry = {
            "L": [{"S": call.digest}, {"N": str(call.amount)}, {"S": tag}, {"N": str(sequence)}]
        }
        values[":hist"] = {"L": [*kept, entry]}
        values[":seq"] = {"N": str(sequence)}
        names["#hist"] = HISTORY
        names["#seq"] = SEQUENCE
        return ["#hist = :hist", "#seq = :seq"]
